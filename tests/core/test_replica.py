"""core.replica: pending and release, duplicates, final rejection and its cascade, profiles."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    CommentPayload,
    EditPayload,
    Operation,
    ProfilePayload,
    make_operation,
)
from p2pcomments.core.replica import Applied, Duplicate, Pending, Rejected, Replica
from p2pcomments.errors import NotFound

from .story import ALICE, BOB, CAROL, OWNER, Story, row
from .strategies import fingerprint


def test_thread_then_comment_applied() -> None:
    story = Story()
    c = story.comment(ALICE)
    replica = Replica()
    assert replica.apply(story.thread).outcome == Applied(op_id=story.thread.id)
    result = replica.apply(c)
    assert result.outcome == Applied(op_id=c.id)
    assert result.released == ()
    assert c.id in replica
    assert replica.get(c.id) == c
    assert replica.thread_of(c.id) == story.thread.id
    assert replica.operation_count() == 2


def test_pending_then_released_in_a_cascade() -> None:
    story = Story()
    a = story.comment(ALICE, "a")
    b = story.comment(BOB, "b", parent=a)
    edit = story.edit(BOB, b, "b2")
    replica = Replica()
    for op in (edit, b, a):
        outcome = replica.apply(op).outcome
        assert isinstance(outcome, Pending)
    assert replica.pending[a.id] == {story.thread.id}
    assert story.thread.id in replica.missing()
    assert replica.get(a.id) == a  # pending operations can be served to peers
    assert a.id not in replica
    result = replica.apply(story.thread)
    assert result.outcome == Applied(op_id=story.thread.id)
    assert [(op.id, outcome) for op, outcome in result.released] == [
        (a.id, Applied(op_id=a.id)),
        (b.id, Applied(op_id=b.id)),
        (edit.id, Applied(op_id=edit.id)),
    ]
    assert replica.pending == {}
    assert replica.missing() == frozenset()
    assert row(replica.view(story.thread.id), b).body == "b2"


def test_pending_names_exactly_what_is_missing() -> None:
    story = Story()
    a = story.comment(ALICE, after=[story.thread])
    b = story.comment(BOB, after=[story.thread])
    c = story.comment(CAROL, parent=a, after=[a, b])
    replica = Replica()
    replica.merge([story.thread, a])
    outcome = replica.apply(c).outcome
    assert outcome == Pending(op_id=c.id, missing=frozenset({b.id}))
    result = replica.apply(b)
    assert [op.id for op, _ in result.released] == [c.id]


def test_duplicates() -> None:
    story = Story()
    a = story.comment(ALICE)
    b = story.comment(BOB, parent=a)
    replica = Replica()
    replica.apply(b)
    assert replica.apply(b).outcome == Duplicate(op_id=b.id)  # a pending duplicate
    replica.merge([story.thread, a])
    assert replica.apply(a).outcome == Duplicate(op_id=a.id)
    assert replica.apply(story.thread).outcome == Duplicate(op_id=story.thread.id)
    profile = story.profile(ALICE, "Alice")
    replica.apply(profile)
    assert replica.apply(profile).outcome == Duplicate(op_id=profile.id)
    assert replica.operation_count() == 4


def test_rejected_with_reason_and_rejection_is_remembered() -> None:
    story = Story()
    c = story.comment(ALICE)
    forged = story.edit(BOB, c, "not mine")
    replica = story.replay()
    outcome = replica.apply(forged).outcome
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "not-author"
    assert forged.id not in replica
    assert replica.get(forged.id) is None


def test_rejected_cascades_to_pending_dependents() -> None:
    story = Story()
    c = story.comment(ALICE)
    forged = story.edit(BOB, c, "not mine")
    on_forged = story.comment(CAROL, "replying after the forged edit", after=[forged])
    on_that = story.react(ALICE, on_forged, "+1", after=[on_forged])
    replica = Replica()
    replica.merge([story.thread, c, on_that, on_forged])
    assert set(replica.pending) == {on_forged.id, on_that.id}
    result = replica.apply(forged)
    assert isinstance(result.outcome, Rejected)
    released = {op.id: outcome for op, outcome in result.released}
    assert set(released) == {on_forged.id, on_that.id}
    for outcome in released.values():
        assert isinstance(outcome, Rejected)
        assert outcome.reason == "bad-reference"
    assert replica.pending == {}
    assert replica.missing() == frozenset()


def test_dependents_arriving_after_a_rejection_are_rejected_at_once() -> None:
    story = Story()
    c = story.comment(ALICE)
    forged = story.edit(BOB, c, "not mine")
    on_forged = story.comment(CAROL, after=[forged])
    replica = story.replay([story.thread, c, forged])
    outcome = replica.apply(on_forged).outcome
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "bad-reference"
    again = replica.apply(forged).outcome
    assert isinstance(again, Rejected)
    assert again.reason == "not-author"


def test_thread_id_naming_a_comment_is_wrong_thread() -> None:
    story = Story()
    c = story.comment(ALICE)
    bogus = make_operation(
        BOB, CommentPayload(body="x"), timestamp_ms=5, thread=c.id, refs=(c.id,), deps=(c.id,)
    )
    replica = story.replay()
    outcome = replica.apply(bogus).outcome
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "wrong-thread"


def test_unknown_thread_is_not_found() -> None:
    with pytest.raises(NotFound) as caught:
        Replica().view(b"\x00" * 32)
    assert caught.value.http_status == 404
    with pytest.raises(LookupError):
        Replica().thread(b"\x00" * 32)


def test_profiles_last_writer_wins_and_name_the_authors() -> None:
    story = Story()
    c = story.comment(ALICE)
    newer = story.profile(ALICE, "Alice", ts=9_000)
    story.profile(ALICE, "old Alice", ts=8_000)
    story.profile(OWNER, "The Owner", ts=1)
    for seed in range(4):
        replica = story.replay(seed=seed)
        assert replica.profiles[bytes(ALICE.verify_key)] == newer
        assert replica.names() == {
            bytes(ALICE.verify_key): "Alice",
            bytes(OWNER.verify_key): "The Owner",
        }
        view = replica.view(story.thread.id)
        assert view.owner_name == "The Owner"
        assert row(view, c).author_name == "Alice"
    assert len(story.replica.profile_operations()) == 3


def test_profile_timestamp_tie_broken_by_id() -> None:
    one = make_operation(ALICE, ProfilePayload(name="one"), timestamp_ms=7)
    two = make_operation(ALICE, ProfilePayload(name="two"), timestamp_ms=7)
    winner = max((one, two), key=lambda op: op.id)
    for order in ((one, two), (two, one)):
        replica = Replica()
        replica.merge(order)
        assert replica.profiles[bytes(ALICE.verify_key)] == winner


def test_names_are_one_unchanging_mapping_until_a_profile_wins() -> None:
    replica = Replica()
    replica.merge([make_operation(ALICE, ProfilePayload(name="Alice"), timestamp_ms=5)])
    names = replica.names()
    assert replica.names() is names  # asked again: not copied again
    with pytest.raises(TypeError):
        names[bytes(BOB.verify_key)] = "Bob"  # type: ignore[index]
    replica.merge([make_operation(ALICE, ProfilePayload(name="older"), timestamp_ms=4)])
    assert replica.names() is names  # a losing profile changes no name
    replica.merge([make_operation(ALICE, ProfilePayload(name="Alicia"), timestamp_ms=6)])
    assert replica.names() == {bytes(ALICE.verify_key): "Alicia"}
    assert names == {bytes(ALICE.verify_key): "Alice"}  # what a reader held stays as it was


def test_profiles_need_no_thread() -> None:
    replica = Replica()
    profile = make_operation(BOB, ProfilePayload(name="Bob"), timestamp_ms=1)
    assert replica.apply(profile).outcome == Applied(op_id=profile.id)
    assert profile.id in replica
    assert replica.get(profile.id) == profile
    assert replica.thread_of(profile.id) is None


def test_two_threads_side_by_side() -> None:
    first, second = Story(title="one"), Story(title="two", start=5_000)
    first.comment(ALICE)
    second.comment(BOB)
    replica = Replica()
    replica.merge(second.ops + first.ops)
    assert set(replica.threads) == {first.thread.id, second.thread.id}
    assert replica.view(first.thread.id).digest() == first.view().digest()
    assert replica.view(second.thread.id).digest() == second.view().digest()


# -- found while writing these tests: SPEC §5 rule 1-2 vs the replica --------------------------


def _comment_whose_thread_is(thread_id: bytes, story: Story) -> tuple[object, object]:
    anchor = story.comment(ALICE, "anchor")
    op = make_operation(
        BOB,
        CommentPayload(body="bogus thread id"),
        timestamp_ms=99,
        thread=thread_id,
        refs=(anchor.id,),
        deps=(anchor.id,),
    )
    return anchor, op


def test_op_whose_thread_is_a_rejected_op_is_rejected_in_any_order() -> None:
    story = Story()
    c = story.comment(ALICE)
    forged = story.edit(BOB, c, "not mine")  # rejected: not-author
    _anchor, bogus = _comment_whose_thread_is(forged.id, story)
    ops = [*story.ops, bogus]
    before = story.replay([op for op in ops if op is not forged] + [forged])
    after = story.replay(ops)
    assert fingerprint(before, ops) == fingerprint(after, ops)
    assert bogus.id not in after.pending  # type: ignore[attr-defined]


def test_op_referencing_a_profile_is_wrong_thread() -> None:
    story = Story()
    profile = story.profile(ALICE, "Alice")
    _anchor, bogus = _comment_whose_thread_is(profile.id, story)
    replica = story.replay()
    outcome = replica.apply(bogus).outcome  # type: ignore[arg-type]
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "wrong-thread"
    assert replica.pending == {}


def test_rejection_reason_does_not_depend_on_arrival_order() -> None:
    story = Story()
    c = story.comment(ALICE)
    forged = story.edit(BOB, c, "not mine")  # rejected: not-author
    profile = story.profile(CAROL, "Carol")
    both = make_operation(
        CAROL,
        CommentPayload(body="depends on a rejected op and on a profile"),
        timestamp_ms=99,
        thread=story.thread.id,
        refs=(c.id,),
        deps=frozenset({forged.id, profile.id}),
    )
    base = [story.thread, c]
    reasons = set()
    for last_two in ((forged, profile), (profile, forged)):
        replica = story.replay([*base, both, *last_two])
        outcome = replica.apply(both).outcome
        assert isinstance(outcome, Rejected)
        reasons.add(outcome.reason)
    direct = story.replay([*base, forged, profile, both]).apply(both).outcome
    assert isinstance(direct, Rejected)
    assert reasons == {direct.reason}


def test_verdict_judges_only_what_it_can_and_agrees_with_apply() -> None:
    """Rule 5 (what the gossip validator asks): a reason only when everything the operation
    references is applied here (or is a profile); the same reason `apply` then gives."""
    story = Story()
    comment = story.comment(OWNER)
    profile = story.profile(BOB, "Bob")
    replica = story.replay()
    thread_id = story.thread.id

    def op(payload: object, ref: bytes, key: SigningKey = BOB) -> Operation:
        return make_operation(key, payload, timestamp_ms=5_000, thread=thread_id, refs=(ref,))  # type: ignore[arg-type]

    cases = {
        "reply": (op(CommentPayload(body="reply"), comment.id), None),
        "not-author": (op(EditPayload(body="mine now"), comment.id), "not-author"),
        "profile": (op(CommentPayload(body="p"), profile.id), "wrong-thread"),
        "thread": (story.thread, None),
        "missing": (op(CommentPayload(body="?"), b"\x01" * 32), None),
    }
    for name, (candidate, expected) in cases.items():
        assert replica.verdict(candidate) == expected, name
    for name in ("not-author", "profile"):
        outcome = replica.apply(cases[name][0]).outcome
        assert isinstance(outcome, Rejected), name
        assert outcome.reason == cases[name][1]
    assert isinstance(replica.apply(cases["reply"][0]).outcome, Applied)
    assert isinstance(replica.apply(cases["missing"][0]).outcome, Pending)


def test_verdict_of_an_operation_whose_parent_is_in_another_thread() -> None:
    first, second = Story(), Story(title="another")
    stray = first.comment(ALICE)
    replica = first.replay([*first.ops, *second.ops])
    crossing = make_operation(
        BOB,
        CommentPayload(body="x"),
        timestamp_ms=9_000,
        thread=second.thread.id,
        refs=(stray.id,),
    )
    assert replica.verdict(crossing) == "wrong-thread"
    outcome = replica.apply(crossing).outcome
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "wrong-thread"
