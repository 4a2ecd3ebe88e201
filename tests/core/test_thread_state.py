"""core.thread_state: every numbered rule of the module docstring, by scripted histories.

Each script is also replayed into fresh replicas in shuffled orders: whatever the rule says must
hold on every node, not just on the writer's.
"""

from __future__ import annotations

import pytest

from p2pcomments.core.ops import (
    CommentPayload,
    EditPayload,
    ModAction,
    Operation,
    ProfilePayload,
    ThreadPayload,
    make_operation,
)
from p2pcomments.core.replica import Replica
from p2pcomments.core.thread_state import ThreadState, ThreadView
from p2pcomments.errors import InvalidOperation

from .story import ALICE, BOB, CAROL, MALLORY, OWNER, Story, row

SEEDS = range(6)


def settled(story: Story) -> ThreadView:
    """The writer's view, after checking that every shuffled replay agrees with it."""
    view = story.view()
    for seed in SEEDS:
        assert story.replay_view(seed=seed).digest() == view.digest(), f"replay seed {seed}"
    return view


def pk(key: object) -> bytes:
    return bytes(key.verify_key)  # type: ignore[attr-defined]


# -- the thread ------------------------------------------------------------------------------


def test_a_state_starts_from_a_thread_operation_only() -> None:
    profile = make_operation(ALICE, ProfilePayload(name="a"), timestamp_ms=1)
    with pytest.raises(InvalidOperation):
        ThreadState(profile)


def test_empty_thread_view() -> None:
    story = Story(title="Hello")
    view = settled(story)
    assert view.id == story.thread.id
    assert view.owner == pk(OWNER)
    assert view.title == "Hello"
    assert view.url is None
    assert view.comments == ()
    assert view.closed is False
    assert view.moderators == ()
    assert view.operation_count == 1


def test_url_thread_view() -> None:
    op = make_operation(
        OWNER,
        ThreadPayload(title="", url="https://blog.example/p", site="blog.example"),
        timestamp_ms=5,
    )
    view = ThreadState(op).view()
    assert (view.title, view.url, view.site, view.timestamp_ms) == (
        "",
        "https://blog.example/p",
        "blog.example",
        5,
    )


# -- rule 1: applied only with the whole causal past; parents belong to the thread ----------------


def test_rule1_heads_follow_the_causal_graph() -> None:
    story = Story()
    a = story.comment(ALICE, after=[story.thread])
    b = story.comment(BOB, after=[story.thread])
    state = story.replica.thread(story.thread.id)
    assert state.heads == {a.id, b.id}
    c = story.comment(CAROL)
    assert set(c.deps) == {a.id, b.id}
    assert state.heads == {c.id}
    assert c.id in state
    assert len(state) == 4


def test_rule1_a_parent_from_another_thread_is_wrong_thread() -> None:
    story = Story()
    other = Story(title="Other")
    foreign = other.comment(ALICE)
    story.replica.merge(other.ops)
    reply = story.comment(BOB, parent=foreign, after=[story.thread])
    assert story.reason(reply) == "wrong-thread"
    dep = story.comment(BOB, after=[story.thread, foreign])
    assert story.reason(dep) == "wrong-thread"


# -- rule 2: who may do what -------------------------------------------------------------------


def test_rule2_comment_parent_is_thread_or_comment() -> None:
    story = Story()
    c = story.comment(ALICE)
    edit = story.edit(ALICE, c, "edited")
    reply_to_edit = story.comment(BOB, parent=edit)
    assert story.reason(reply_to_edit) == "bad-reference"


def test_rule2_targets_must_be_comments() -> None:
    story = Story()
    c = story.comment(ALICE)
    edit = story.edit(ALICE, c, "edited")
    assert story.reason(story.react(BOB, edit, "+1")) == "bad-reference"
    assert story.reason(story.edit(ALICE, edit, "again")) == "bad-reference"
    assert story.reason(story.retract(ALICE, edit)) == "bad-reference"
    assert story.reason(story.hide(OWNER, edit)) == "bad-reference"


def test_rule2_only_the_author_edits() -> None:
    story = Story()
    c = story.comment(ALICE, "mine")
    forged = story.edit(BOB, c, "not yours")
    by_owner = story.edit(OWNER, c, "not even the owner's")
    assert story.reason(forged) == "not-author"
    assert story.reason(by_owner) == "not-author"
    assert row(settled(story), c).body == "mine"


def test_rule2_only_the_author_retracts() -> None:
    story = Story()
    c = story.comment(ALICE, "mine")
    assert story.reason(story.retract(BOB, c)) == "not-author"
    assert story.reason(story.retract(OWNER, c)) == "not-author"
    assert row(settled(story), c).retracted is False


def test_rule2_anyone_reacts() -> None:
    story = Story()
    c = story.comment(ALICE)
    for key in (ALICE, BOB, OWNER, MALLORY):
        assert story.reason(story.react(key, c, "+1")) is None


def test_rule2_only_the_owner_appoints_and_removes_moderators() -> None:
    story = Story()
    assert story.reason(story.add_moderator(ALICE, BOB)) == "not-owner"
    assert story.reason(story.add_moderator(OWNER, ALICE)) is None
    # even a moderator can't appoint or remove
    assert story.reason(story.add_moderator(ALICE, BOB)) == "not-owner"
    assert story.reason(story.remove_moderator(ALICE, ALICE)) == "not-owner"
    assert settled(story).moderators == (pk(ALICE),)


def test_rule2_the_owner_cannot_be_removed() -> None:
    story = Story()
    assert story.reason(story.remove_moderator(OWNER, OWNER)) == "bad-field"


def test_rule2_owner_moderates_without_appointment() -> None:
    story = Story()
    c = story.comment(ALICE)
    assert story.reason(story.hide(OWNER, c)) is None
    assert row(settled(story), c).hidden is True


def test_rule2_non_moderator_may_not_hide_close_or_reopen() -> None:
    story = Story()
    c = story.comment(ALICE)
    assert story.reason(story.hide(MALLORY, c)) == "not-moderator"
    assert story.reason(story.unhide(MALLORY, c)) == "not-moderator"
    assert story.reason(story.close(MALLORY)) == "not-moderator"
    assert story.reason(story.reopen(MALLORY)) == "not-moderator"
    assert story.reason(story.hide(ALICE, c)) == "not-moderator"  # authors don't hide either
    view = settled(story)
    assert row(view, c).hidden is False
    assert view.closed is False


def test_rule2_moderator_appointed_in_causal_past_may_hide_close_reopen() -> None:
    story = Story()
    c = story.comment(ALICE)
    story.add_moderator(OWNER, BOB)
    hide = story.hide(BOB, c)
    assert story.reason(hide) is None
    close = story.close(BOB)
    assert story.reason(close) is None
    assert settled(story).closed is True
    assert story.reason(story.reopen(BOB)) is None
    view = settled(story)
    assert view.closed is False
    assert row(view, c).hidden_by == pk(BOB)


def test_rule2_appointment_not_in_causal_past_does_not_count() -> None:
    """Bob hides concurrently with (not after) his appointment: invalid on every node."""
    story = Story()
    c = story.comment(ALICE)
    story.add_moderator(OWNER, BOB, after=[c])
    hide = story.hide(BOB, c, after=[c])
    assert story.reason(hide) == "not-moderator"
    assert row(settled(story), c).hidden is False


def test_rule2_moderator_removed_before_may_not() -> None:
    story = Story()
    c = story.comment(ALICE)
    story.add_moderator(OWNER, BOB)
    story.remove_moderator(OWNER, BOB)
    assert story.reason(story.hide(BOB, c)) == "not-moderator"
    assert story.reason(story.close(BOB)) == "not-moderator"
    assert settled(story).moderators == ()


def test_rule2_remove_concurrent_with_a_later_hide() -> None:
    """Bob hides having seen his appointment but not the removal made concurrently: valid."""
    story = Story()
    c = story.comment(ALICE)
    add = story.add_moderator(OWNER, BOB)
    remove = story.remove_moderator(OWNER, BOB, after=[add])
    hide = story.hide(BOB, c, after=[add])
    assert story.reason(hide) is None
    later = story.hide(BOB, c, after=[remove, hide])
    assert story.reason(later) == "not-moderator"
    view = settled(story)
    assert row(view, c).hidden is True
    assert view.moderators == ()


def test_rule2_add_wins_over_a_concurrent_remove() -> None:
    story = Story()
    c = story.comment(ALICE)
    first_add = story.add_moderator(OWNER, BOB)
    remove = story.remove_moderator(OWNER, BOB, after=[first_add])
    second_add = story.add_moderator(OWNER, BOB, after=[first_add])  # concurrent with the remove
    view = settled(story)
    assert view.moderators == (pk(BOB),)
    hide = story.hide(BOB, c, after=[remove, second_add])
    assert story.reason(hide) is None


def test_rule2_re_adding_after_a_remove_restores() -> None:
    story = Story()
    c = story.comment(ALICE)
    story.add_moderator(OWNER, BOB)
    story.remove_moderator(OWNER, BOB)
    story.add_moderator(OWNER, BOB)
    assert story.reason(story.hide(BOB, c)) is None
    assert settled(story).moderators == (pk(BOB),)


def test_rule2_removing_one_moderator_leaves_the_others() -> None:
    story = Story()
    story.add_moderator(OWNER, BOB)
    story.add_moderator(OWNER, CAROL)
    story.remove_moderator(OWNER, BOB)
    assert settled(story).moderators == (pk(CAROL),)


# -- rule 3: order --------------------------------------------------------------------------


def test_rule3_siblings_by_height_then_timestamp_then_id() -> None:
    story = Story()
    late = story.comment(ALICE, "late", after=[story.thread], ts=5_000)
    early = story.comment(BOB, "early", after=[story.thread], ts=2_000)
    higher = story.comment(CAROL, "saw both", after=[late, early], ts=1_500)
    view = settled(story)
    assert [c.id for c in view.comments] == [early.id, late.id, higher.id]


def test_rule3_forged_early_timestamp_still_sorts_after_its_past() -> None:
    story = Story()
    first = story.comment(ALICE, "first", ts=10_000)
    reply = story.comment(BOB, "answer", ts=1)  # claims to be older than the thread
    assert first.id in reply.deps
    assert [c.id for c in settled(story).comments] == [first.id, reply.id]


def test_rule3_equal_timestamps_order_by_id() -> None:
    story = Story()
    ops = [
        story.comment(k, f"c{i}", after=[story.thread], ts=7_000)
        for i, k in enumerate((ALICE, BOB, CAROL))
    ]
    assert [c.id for c in settled(story).comments] == sorted(op.id for op in ops)


def test_rule3_tree_is_depth_first_with_depths_and_reply_counts() -> None:
    story = Story()
    a = story.comment(ALICE, "a")
    a1 = story.comment(BOB, "a1", parent=a)
    a1x = story.comment(CAROL, "a1x", parent=a1)
    b = story.comment(BOB, "b")
    a2 = story.comment(CAROL, "a2", parent=a)
    view = settled(story)
    assert [(c.id, c.depth) for c in view.comments] == [
        (a.id, 0),
        (a1.id, 1),
        (a1x.id, 2),
        (a2.id, 1),
        (b.id, 0),
    ]
    assert row(view, a).reply_count == 2
    assert row(view, a1x).parent == a1.id
    assert row(view, a).parent == story.thread.id


def test_rule3_deep_reply_chain_needs_no_recursion() -> None:
    story = Story()
    parent = story.thread
    for i in range(1500):
        parent = story.comment(ALICE, f"level {i}", parent=parent)
    view = story.view()
    assert view.comments[-1].depth == 1499
    assert len(view.comments) == 1500


# -- rule 4: edits and retractions ----------------------------------------------------------


def test_rule4_edit_last_writer_wins_by_timestamp() -> None:
    story = Story()
    c = story.comment(ALICE, "original")
    newer = story.edit(ALICE, c, "newer", after=[c], ts=9_000)
    older = story.edit(ALICE, c, "older", after=[c], ts=8_000)
    view = settled(story)
    assert row(view, c).body == "newer"
    assert [e.id for e in row(view, c).edits] == [older.id, newer.id]
    assert [e.body for e in row(view, c).edits] == ["older", "newer"]


def test_rule4_edit_timestamp_tie_broken_by_id() -> None:
    story = Story()
    c = story.comment(ALICE, "original")
    one = story.edit(ALICE, c, "one", after=[c], ts=9_000)
    two = story.edit(ALICE, c, "two", after=[c], ts=9_000)
    winner = max((one, two), key=lambda op: op.id)
    assert row(settled(story), c).body == ("one" if winner is one else "two")


def test_rule4_no_edit_shows_the_original() -> None:
    story = Story()
    c = story.comment(ALICE, "original")
    view = settled(story)
    assert row(view, c).body == "original"
    assert row(view, c).edits == ()
    assert row(view, c).author == pk(ALICE)


def test_rule4_retraction_leaves_a_tombstone_with_replies_attached() -> None:
    story = Story()
    c = story.comment(ALICE, "regret")
    story.edit(ALICE, c, "regret, edited")
    reply = story.comment(BOB, "reply", parent=c)
    story.retract(ALICE, c)
    view = settled(story)
    tomb = row(view, c)
    assert tomb.retracted is True
    assert tomb.body is None
    assert tomb.edits == ()
    assert tomb.reply_count == 1
    assert row(view, reply).parent == c.id
    assert row(view, reply).depth == 1
    assert row(view, reply).body == "reply"


def test_rule4_retraction_is_final() -> None:
    story = Story()
    c = story.comment(ALICE, "gone")
    retract = story.retract(ALICE, c)
    story.edit(ALICE, c, "back?", ts=retract.timestamp_ms + 1_000)
    story.comment(BOB, "still replying", parent=c)
    view = settled(story)
    assert row(view, c).retracted is True
    assert row(view, c).body is None


def test_rule4_edit_concurrent_with_retraction_does_not_resurrect() -> None:
    story = Story()
    c = story.comment(ALICE, "x")
    story.retract(ALICE, c, after=[c], ts=1)
    story.edit(ALICE, c, "y", after=[c], ts=99_999)
    assert row(settled(story), c).body is None


# -- rule 5: reactions and hide/unhide ------------------------------------------------------


def test_rule5_reactions_group_by_text_with_sorted_authors() -> None:
    story = Story()
    c = story.comment(ALICE)
    for key in (BOB, CAROL, ALICE):
        story.react(key, c, "+1")
    story.react(MALLORY, c, "🎉")
    reactions = row(settled(story), c).reactions
    assert [(r.reaction, r.authors) for r in reactions] == [
        ("+1", tuple(sorted((pk(BOB), pk(CAROL), pk(ALICE))))),
        ("🎉", (pk(MALLORY),)),
    ]


def test_rule5_one_reaction_per_author_last_writer_wins() -> None:
    story = Story()
    c = story.comment(ALICE)
    story.react(BOB, c, "🎉", after=[c], ts=9_000)
    story.react(BOB, c, "+1", after=[c], ts=8_000)
    reactions = row(settled(story), c).reactions
    assert [(r.reaction, r.authors) for r in reactions] == [("🎉", (pk(BOB),))]


def test_rule5_empty_reaction_withdraws() -> None:
    story = Story()
    c = story.comment(ALICE)
    story.react(BOB, c, "+1")
    story.react(CAROL, c, "+1")
    story.react(BOB, c, "")
    reactions = row(settled(story), c).reactions
    assert [(r.reaction, r.authors) for r in reactions] == [("+1", (pk(CAROL),))]
    story.react(CAROL, c, "")
    assert row(settled(story), c).reactions == ()


def test_rule5_withdraw_older_than_the_reaction_loses() -> None:
    story = Story()
    c = story.comment(ALICE)
    story.react(BOB, c, "+1", after=[c], ts=9_000)
    story.react(BOB, c, "", after=[c], ts=8_000)
    assert len(row(settled(story), c).reactions) == 1


def test_rule5_reactions_are_per_comment() -> None:
    story = Story()
    a = story.comment(ALICE)
    b = story.comment(ALICE)
    story.react(BOB, a, "+1")
    story.react(BOB, b, "-1")
    view = settled(story)
    assert [r.reaction for r in row(view, a).reactions] == ["+1"]
    assert [r.reaction for r in row(view, b).reactions] == ["-1"]


def test_rule5_hide_unhide_last_writer_wins() -> None:
    story = Story()
    c = story.comment(ALICE)
    story.add_moderator(OWNER, BOB)
    story.hide(OWNER, c)
    assert row(settled(story), c).hidden_by == pk(OWNER)
    story.unhide(BOB, c)
    view = settled(story)
    assert row(view, c).hidden is False
    assert row(view, c).hidden_by is None
    assert row(view, c).body is not None  # hidden or not, the body stays in the view


def test_rule5_concurrent_hide_and_unhide_resolve_by_timestamp_then_id() -> None:
    story = Story()
    c = story.comment(ALICE)
    story.hide(OWNER, c, after=[c], ts=9_000)
    story.unhide(OWNER, c, after=[c], ts=8_000)
    assert row(settled(story), c).hidden is True
    story.unhide(OWNER, c, after=[c], ts=9_500)
    assert row(settled(story), c).hidden is False


def test_rule5_invalid_hide_takes_no_part() -> None:
    story = Story()
    c = story.comment(ALICE)
    story.hide(OWNER, c, ts=1_000)
    story.unhide(MALLORY, c, ts=99_999)  # rejected: no part in the contest
    assert row(settled(story), c).hidden is True


# -- rule 6: closing is causal ----------------------------------------------------------------


def test_rule6_close_marks_the_thread_closed() -> None:
    story = Story()
    before = story.comment(ALICE, "before")
    story.close()
    view = settled(story)
    assert view.closed is True
    assert row(view, before).after_close is False


def test_rule6_comment_after_close_with_forged_early_timestamp_is_after_close() -> None:
    story = Story()
    story.comment(ALICE, "before")
    close = story.close()
    late = story.comment(MALLORY, "I was here first, honest", ts=1)
    assert late.timestamp_ms < close.timestamp_ms < story.thread.timestamp_ms + 1_000
    assert story.reason(late) is None  # valid and kept...
    view = settled(story)
    assert row(view, late).after_close is True  # ...but not shown by default


def test_rule6_comment_concurrent_with_close_is_after_close() -> None:
    story = Story()
    first = story.comment(ALICE, "before")
    story.close(after=[first])
    sneaky = story.comment(MALLORY, "never saw the close", after=[first], ts=1)
    assert row(settled(story), sneaky).after_close is True


def test_rule6_comment_in_the_close_s_past_shows_whatever_its_timestamp() -> None:
    story = Story()
    future = story.comment(ALICE, "clock ahead", ts=10**13)
    story.close()
    assert row(settled(story), future).after_close is False


def test_rule6_reply_after_reopen_shows() -> None:
    story = Story()
    story.comment(ALICE)
    close = story.close()
    during = story.comment(BOB, "while closed")
    reopen = story.reopen()
    after = story.comment(CAROL, "after the reopen")
    view = settled(story)
    assert view.closed is False
    assert row(view, during).after_close is False  # the reopen saw it: it is let in
    assert row(view, after).after_close is False
    assert reopen.id in after.deps or close.id in reopen.deps


def test_rule6_concurrent_with_close_but_seen_by_the_reopen_shows() -> None:
    story = Story()
    first = story.comment(ALICE)
    close = story.close(after=[first])
    concurrent = story.comment(BOB, "concurrent", after=[first])
    story.reopen(after=[close, concurrent])
    assert row(settled(story), concurrent).after_close is False


def test_rule6_not_seen_by_the_reopen_and_not_after_it_stays_suppressed() -> None:
    story = Story()
    first = story.comment(ALICE)
    close = story.close(after=[first])
    concurrent = story.comment(BOB, "concurrent", after=[first])
    story.reopen(after=[close])
    view = settled(story)
    assert view.closed is False
    assert row(view, concurrent).after_close is True


def test_rule6_edits_and_reactions_after_close_take_no_part() -> None:
    story = Story()
    c = story.comment(ALICE, "original")
    story.react(BOB, c, "+1")
    story.close()
    story.edit(ALICE, c, "sneaky edit")
    story.react(CAROL, c, "🎉")
    story.react(BOB, c, "")
    view = settled(story)
    assert row(view, c).body == "original"
    assert row(view, c).edits == ()
    assert [(r.reaction, r.authors) for r in row(view, c).reactions] == [("+1", (pk(BOB),))]


def test_rule6_retraction_and_moderation_still_work_when_closed() -> None:
    story = Story()
    c = story.comment(ALICE)
    d = story.comment(BOB)
    story.close()
    story.retract(ALICE, c)
    story.hide(OWNER, d)
    view = settled(story)
    assert row(view, c).retracted is True
    assert row(view, d).hidden is True


def test_rule6_thread_stays_closed_while_some_close_has_no_reopen() -> None:
    story = Story()
    story.comment(ALICE)
    add = story.add_moderator(OWNER, BOB)
    close_a = story.close(OWNER, after=[add])
    close_b = story.close(BOB, after=[add])
    assert story.reason(close_b) is None
    story.reopen(OWNER, after=[close_a])
    assert settled(story).closed is True
    story.reopen(OWNER, after=[close_b])
    assert settled(story).closed is False


def test_rule6_close_arriving_late_recomputes_suppression() -> None:
    """The close reaches a node after the comments made after it: same view as the writer's."""
    story = Story()
    c = story.comment(ALICE)
    close = story.close()
    late = story.comment(BOB, "after close")
    story.edit(ALICE, c, "after close too")
    replica = story.replay([op for op in story.ops if op is not close])
    assert set(replica.pending) == {late.id, story.ops[-1].id}  # waiting for the close
    assert close.id not in replica
    replica.apply(close)
    assert not replica.pending
    assert replica.view(story.thread.id).digest() == settled(story).digest()


def test_rule6_closed_flag_on_the_state() -> None:
    story = Story()
    state = story.replica.thread(story.thread.id)
    assert state.closed is False
    story.close()
    assert state.closed is True
    late = story.comment(ALICE)
    assert state.is_suppressed(late.id)


def test_rule6_causal_deps_prefer_control_operations() -> None:
    """With more heads than fit in deps, a new operation still depends on the close."""
    story = Story()
    base = story.comment(ALICE)
    for i in range(20):
        story.comment(BOB, f"concurrent {i}", after=[base])
    close = story.close(after=[base])
    state = story.replica.thread(story.thread.id)
    assert len(state.heads) == 21
    deps = state.causal_deps()
    assert len(deps) == 16
    assert close.id in deps
    assert list(deps) == sorted(deps)


# -- rule 7: parent edited after the reply ---------------------------------------------------


def test_rule7_reply_before_the_edit_is_flagged() -> None:
    story = Story()
    c = story.comment(ALICE, "I like cats")
    reply = story.comment(BOB, "me too", parent=c)
    story.edit(ALICE, c, "I like dogs")
    assert row(settled(story), reply).parent_edited_after is True


def test_rule7_reply_that_saw_the_edit_is_not_flagged() -> None:
    story = Story()
    c = story.comment(ALICE, "I like cats")
    story.edit(ALICE, c, "I like dogs")
    reply = story.comment(BOB, "dogs are great", parent=c)
    assert row(settled(story), reply).parent_edited_after is False


def test_rule7_reply_concurrent_with_the_edit_is_flagged() -> None:
    story = Story()
    c = story.comment(ALICE, "v1")
    story.edit(ALICE, c, "v2", after=[c])
    reply = story.comment(BOB, "reply to v1", parent=c, after=[c])
    assert row(settled(story), reply).parent_edited_after is True


def test_rule7_only_the_winning_edit_counts() -> None:
    story = Story()
    c = story.comment(ALICE, "v1")
    winning = story.edit(ALICE, c, "v3", after=[c], ts=9_000)
    reply = story.comment(BOB, "saw v3", parent=c, after=[winning])
    story.edit(ALICE, c, "v2", after=[c], ts=8_000)  # concurrent, older: does not win
    assert row(settled(story), reply).parent_edited_after is False


def test_rule7_an_edit_after_close_does_not_flag() -> None:
    story = Story()
    c = story.comment(ALICE, "v1")
    reply = story.comment(BOB, "reply", parent=c)
    story.close()
    story.edit(ALICE, c, "v2 while closed")
    assert row(settled(story), reply).parent_edited_after is False


def test_rule7_top_level_comments_are_never_flagged() -> None:
    story = Story()
    c = story.comment(ALICE, "v1")
    story.edit(ALICE, c, "v2")
    assert row(settled(story), c).parent_edited_after is False


# -- names and operations --------------------------------------------------------------------


def test_view_uses_names_given() -> None:
    story = Story()
    c = story.comment(ALICE)
    state = story.replica.thread(story.thread.id)
    view = state.view({pk(ALICE): "Alice", pk(OWNER): "Owner"})
    assert view.owner_name == "Owner"
    assert row(view, c).author_name == "Alice"
    assert row(state.view(), c).author_name is None


def test_operations_are_listed_in_a_causal_order() -> None:
    story = Story()
    a = story.comment(ALICE)
    story.comment(BOB, parent=a)
    story.edit(ALICE, a, "x")
    story.close()
    state = story.replica.thread(story.thread.id)
    listed = state.operations()
    seen: set[bytes] = set()
    for op in listed:
        assert all(parent in seen for parent in op.parents)
        seen.add(op.id)
    assert len(listed) == len(state)


def test_digest_changes_with_what_is_shown() -> None:
    story = Story()
    c = story.comment(ALICE, "v1")
    digests = {story.view().digest()}
    story.edit(ALICE, c, "v2")
    digests.add(story.view().digest())
    story.react(BOB, c, "+1")
    digests.add(story.view().digest())
    story.hide(OWNER, c)
    digests.add(story.view().digest())
    story.close()
    digests.add(story.view().digest())
    assert len(digests) == 5
    assert all(len(d) == 32 for d in digests)


def test_moderation_is_rejected_for_unknown_action_subject() -> None:
    story = Story()
    assert story.reason(story.moderate(OWNER, ModAction.ADD_MODERATOR, subject=OWNER)) is None


# -- found while writing these tests: cost of rule 7 ----------------------------------------------


def _chain_with_replies_to_first(count: int, *, edited: bool) -> list[Operation]:
    """A thread whose first comment may be edited at once; then ``count`` comments, each seeing
    the one before, every other one a reply to that first comment."""
    key = OWNER
    thread = make_operation(key, ThreadPayload(title="popular"), timestamp_ms=1)
    first = make_operation(
        key, CommentPayload(body="first"), timestamp_ms=2, thread=thread.id, refs=(thread.id,)
    )
    ops = [thread, first]
    if edited:
        ops.append(
            make_operation(
                key,
                EditPayload(body="first, edited"),
                timestamp_ms=3,
                thread=thread.id,
                refs=(first.id,),
            )
        )
    head = ops[-1].id
    for i in range(count):
        parent = first.id if i % 2 else thread.id
        op = make_operation(
            key,
            CommentPayload(body=f"c{i}"),
            timestamp_ms=10 + i,
            thread=thread.id,
            refs=(parent,),
            deps=(head,),
        )
        ops.append(op)
        head = op.id
    return ops


def test_replies_after_an_early_edit_see_it_and_replies_before_do_not() -> None:
    """Rule 7 over a long chain: the edit is in the past of every later reply (one bit test
    each, not a walk of the history: bench_core.py measures the cost)."""
    edited = _chain_with_replies_to_first(400, edited=True)
    replica = Replica()
    replica.merge(edited)
    view = replica.view(edited[0].id)
    replies = [c for c in view.comments if c.depth == 1]
    assert len(replies) == 200
    assert not any(c.parent_edited_after for c in replies)
    # The same replies arriving without the edit in their past are flagged once it lands.
    plain = _chain_with_replies_to_first(400, edited=False)
    late_edit = make_operation(
        OWNER,
        EditPayload(body="changed later"),
        timestamp_ms=10_000,
        thread=plain[0].id,
        refs=(plain[1].id,),
    )
    replica = Replica()
    replica.merge([*plain, late_edit])
    replies = [c for c in replica.view(plain[0].id).comments if c.depth == 1]
    assert replies
    assert all(c.parent_edited_after for c in replies)


def test_activity_is_derived_by_the_thread_state() -> None:
    """Rule 8: comments less retracted ones (a second retraction counts once), and the greatest
    author timestamp of any operation, the thread's own included."""
    story = Story()
    state = story.replica.thread(story.thread.id)
    assert (state.comment_count, state.last_activity_ms) == (0, story.thread.timestamp_ms)
    first = story.comment(ALICE, ts=50_000)
    second = story.comment(BOB, parent=first, ts=40_000)
    assert (state.comment_count, state.last_activity_ms) == (2, 50_000)
    story.retract(ALICE, first, ts=60_000)
    story.retract(ALICE, first, ts=60_001)
    assert state.is_retracted(first.id)
    assert not state.is_retracted(second.id)
    assert not state.is_retracted(b"\x00" * 32)
    assert (state.comment_count, state.last_activity_ms) == (1, 60_001)
    story.close(ts=70_000)
    story.comment(BOB, ts=80_000)  # after the close: suppressed, still counted
    assert (state.comment_count, state.last_activity_ms) == (2, 80_000)
    replayed = story.replay(seed=3).thread(story.thread.id)
    assert (replayed.comment_count, replayed.last_activity_ms) == (2, 80_000)
