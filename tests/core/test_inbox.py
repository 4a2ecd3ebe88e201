"""`core.inbox`: an author's inbox is a pure, order-independent function of the operations held."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcomments.core.inbox import (
    InboxEntry,
    InboxKind,
    author_inbox,
    inbox_recipients,
    inbox_topic,
    thread_inbox,
)
from p2pcomments.core.ops import Kind, ModAction, ReactPayload
from p2pcomments.core.replica import Replica

from .story import ALICE, BOB, CAROL, OWNER, Story
from .strategies import KEYS, History, budget, histories, replica_of

EXAMPLES = settings(max_examples=budget(0.4))


def _key(signing_key: object) -> bytes:
    return bytes(signing_key.verify_key)  # type: ignore[attr-defined]


def _inbox(story: Story, who: object) -> list[InboxEntry]:
    return thread_inbox(story.replica.thread(story.thread.id), _key(who), story.replica.names())


def _kinds(entries: list[InboxEntry]) -> list[tuple[InboxKind, bytes]]:
    return [(entry.kind, entry.id) for entry in entries]


# -- the rules, one by one ------------------------------------------------------------------------


def test_a_reply_to_my_comment_is_in_my_inbox_with_both_texts() -> None:
    story = Story()
    mine = story.comment(ALICE, "What do you think?")
    answer = story.comment(BOB, "I agree.", parent=mine)
    story.profile(BOB, "Bob")
    [entry] = _inbox(story, ALICE)
    assert entry.kind is InboxKind.REPLY
    assert (entry.id, entry.subject, entry.actor) == (answer.id, mine.id, _key(BOB))
    assert (entry.text, entry.subject_body, entry.actor_name) == (
        "I agree.",
        "What do you think?",
        "Bob",
    )
    assert entry.thread == story.thread.id
    assert entry.thread_title == "A post"
    assert _inbox(story, BOB) == []  # Bob wrote the reply; Alice's comment is no news to Bob


def test_my_own_operations_are_never_in_my_inbox() -> None:
    story = Story(owner=ALICE)
    mine = story.comment(ALICE, "first")
    story.comment(ALICE, "me again", parent=mine)
    story.react(ALICE, mine, "👍")
    story.hide(ALICE, mine)
    assert _inbox(story, ALICE) == []


def test_comments_in_my_thread_reactions_and_moderation_of_my_comments() -> None:
    story = Story(owner=OWNER)
    alice = story.comment(ALICE, "hello")
    bob = story.comment(BOB, "top-level in the owner's thread")
    like = story.react(BOB, alice, "👍")
    story.react(CAROL, alice, "")  # a withdrawal is no news
    hide = story.hide(OWNER, alice)
    assert _kinds(_inbox(story, ALICE)) == [
        (InboxKind.MODERATION, hide.id),
        (InboxKind.REACTION, like.id),
    ]
    [moderation, reaction] = _inbox(story, ALICE)
    assert moderation.action is ModAction.HIDE
    assert moderation.subject == alice.id
    assert reaction.text == "👍"
    # The owner hears of every top-level comment of its thread (not of its own hide).
    assert _kinds(_inbox(story, OWNER)) == [
        (InboxKind.COMMENT, bob.id),
        (InboxKind.COMMENT, alice.id),
    ]


def test_a_moderator_acting_in_my_thread_is_in_my_inbox() -> None:
    story = Story(owner=OWNER)
    story.add_moderator(OWNER, CAROL)
    bob = story.comment(BOB, "spam")
    hide = story.hide(CAROL, bob)
    close = story.close(CAROL)
    entries = _inbox(story, OWNER)
    assert _kinds(entries)[:2] == [
        (InboxKind.MODERATION, close.id),
        (InboxKind.MODERATION, hide.id),
    ]
    assert entries[0].action is ModAction.CLOSE
    assert entries[0].subject == story.thread.id


def test_edits_near_me_of_what_i_answered_and_of_answers_to_me() -> None:
    story = Story()
    bob = story.comment(BOB, "the sky is green")
    mine = story.comment(ALICE, "it is not", parent=bob)
    changed = story.edit(BOB, bob, "the sky is blue")
    answer = story.comment(CAROL, "agreed with Alice", parent=mine)
    reworded = story.edit(CAROL, answer, "I agree with Alice")
    unrelated = story.comment(CAROL, "elsewhere")
    story.edit(CAROL, unrelated, "still elsewhere")
    assert _kinds(_inbox(story, ALICE)) == [
        (InboxKind.EDIT, reworded.id),
        (InboxKind.REPLY, answer.id),
        (InboxKind.EDIT, changed.id),
    ]
    edit, reply, _ = _inbox(story, ALICE)
    assert reply.text == "I agree with Alice"  # the reply as shown now
    assert edit.subject == answer.id
    assert edit.subject_body == "I agree with Alice"


def test_a_retracted_reply_leaves_the_inbox() -> None:
    story = Story()
    mine = story.comment(ALICE, "question")
    answer = story.comment(BOB, "oops", parent=mine)
    story.edit(BOB, answer, "oops, edited")
    assert [e.kind for e in _inbox(story, ALICE)] == [InboxKind.EDIT, InboxKind.REPLY]
    story.retract(BOB, answer)
    assert _inbox(story, ALICE) == []


def test_what_a_close_suppresses_is_not_in_the_inbox_until_reopened() -> None:
    story = Story(owner=OWNER)
    mine = story.comment(ALICE, "question")
    close = story.close(OWNER)
    late = story.comment(BOB, "after the close", parent=mine, after=[mine])  # never saw the close
    assert _inbox(story, ALICE) == []
    story.reopen(OWNER, after=[close, late])
    assert _kinds(_inbox(story, ALICE)) == [(InboxKind.REPLY, late.id)]


def test_author_inbox_merges_threads_newest_first() -> None:
    one, two = Story(start=1000), Story(start=1005, title="Another")
    first = one.comment(ALICE, "in one")
    second = two.comment(ALICE, "in two")
    replies = [one.comment(BOB, "r1", parent=first), two.comment(BOB, "r2", parent=second)]
    replica = Replica()
    replica.merge([*one.ops, *two.ops])
    entries = author_inbox(replica.threads.values(), _key(ALICE), replica.names())
    assert [e.id for e in entries] == [
        r.id for r in sorted(replies, key=lambda r: r.timestamp_ms, reverse=True)
    ]
    assert {e.thread_title for e in entries} == {"A post", "Another"}


# -- properties over random histories -------------------------------------------------------------


def _inbox_of(replica: Replica, author: bytes) -> list[InboxEntry]:
    return author_inbox(replica.threads.values(), author, replica.names())


@EXAMPLES
@given(history=histories(), seed=st.randoms(use_true_random=False))
def test_the_inbox_does_not_depend_on_arrival_order(history: History, seed: random.Random) -> None:
    expected = {key: _inbox_of(replica_of(history.ops), _key(key)) for key in KEYS}
    shuffled = list(history.ops)
    seed.shuffle(shuffled)
    for replica in (replica_of(shuffled), replica_of(reversed(history.ops))):
        for key in KEYS:
            assert _inbox_of(replica, _key(key)) == expected[key]


@EXAMPLES
@given(history=histories())
def test_every_entry_follows_the_rules_and_every_reply_is_there(history: History) -> None:
    replica = replica_of(history.ops)
    for key in KEYS:
        author = _key(key)
        entries = _inbox_of(replica, author)
        order = [(e.timestamp_ms, e.id) for e in entries]
        assert order == sorted(order, reverse=True)
        assert len({e.id for e in entries}) == len(entries)
        for entry in entries:
            state = replica.threads[entry.thread]
            op = state.ops[entry.id]
            assert op.author != author
            assert entry.actor == op.author
            assert not state.is_suppressed(op.id)
            if entry.kind is InboxKind.REPLY:
                assert state.ops[op.target].author == author
            elif entry.kind is InboxKind.COMMENT:
                assert state.owner == author
                assert op.target == state.id
            elif entry.kind is InboxKind.REACTION:
                assert state.ops[op.target].author == author
                assert entry.text
            elif entry.kind is InboxKind.MODERATION:
                assert state.owner == author or state.ops[op.target].author == author
            else:
                edited = state.ops[op.target]
                answered_it = any(
                    other.kind is Kind.COMMENT
                    and other.author == author
                    and other.target == edited.id
                    for other in state.ops.values()
                )
                parent = state.ops[edited.target]
                assert answered_it or (parent.kind is Kind.COMMENT and parent.author == author)
        listed = {e.id for e in entries}
        for state in replica.threads.values():
            for op in state.ops.values():
                if op.author == author or state.is_suppressed(op.id) or op.kind is Kind.THREAD:
                    continue
                target = state.ops[op.target]
                to_mine = target.kind is Kind.COMMENT and target.author == author
                if op.kind is Kind.COMMENT and to_mine and not state.is_retracted(op.id):
                    assert op.id in listed
                if op.kind is Kind.REACT and to_mine:
                    payload = op.payload
                    assert isinstance(payload, ReactPayload)
                    assert (op.id in listed) == bool(payload.reaction)


@EXAMPLES
@given(history=histories())
def test_every_entry_reaches_its_author_by_the_recipients_rule(history: History) -> None:
    """Rule 4: whoever has an operation in their inbox is among its recipients."""
    replica = replica_of(history.ops)
    for key in KEYS:
        author = _key(key)
        for entry in _inbox_of(replica, author):
            state = replica.threads[entry.thread]
            assert author in inbox_recipients(state, state.ops[entry.id])
    for state in replica.threads.values():
        for op in state.ops.values():
            assert op.author not in inbox_recipients(state, op)


def test_the_inbox_topic_is_one_of_256_buckets_of_the_key() -> None:
    import hashlib

    topics = {inbox_topic(_key(key)) for key in KEYS}
    for key in KEYS:
        digest = hashlib.sha256(b"p2pcomments/inbox/v1" + _key(key)).digest()
        assert inbox_topic(_key(key)) == f"p2pc/1/inbox/{digest[0]:02x}"
    assert all(len(topic) == len("p2pc/1/inbox/") + 2 for topic in topics)
    # the vector SPEC §8.2 gives other implementations: the all-zero key
    assert inbox_topic(bytes(32)) == "p2pc/1/inbox/b6"
