"""core.thread_state: the edit history a view carries (original and edits, with times) and, for
a reply flagged "parent edited after", the version of its parent it answered (rule 7).

Neither is in the view digest; both must still be the same on every replica, whatever the order
of delivery, so each check runs on the writer's view and on shuffled replays.
"""

from __future__ import annotations

from p2pcomments.core.thread_state import CommentView, EditView, ThreadView

from .story import ALICE, BOB, Story, row

SEEDS = range(6)


def views(story: Story) -> list[ThreadView]:
    """The writer's view and shuffled replays, all with the same digest."""
    result = [story.view(), *(story.replay_view(seed=seed) for seed in SEEDS)]
    assert len({view.digest() for view in result}) == 1
    return result


def history(comment: CommentView) -> list[tuple[int, str]]:
    assert comment.original_body is not None
    return [(comment.timestamp_ms, comment.original_body)] + [
        (edit.timestamp_ms, edit.body) for edit in comment.edits
    ]


def test_the_history_starts_with_the_original_text_and_its_time() -> None:
    story = Story()
    c = story.comment(ALICE, "v1", ts=5_000)
    story.edit(ALICE, c, "v2", ts=6_000)
    story.edit(ALICE, c, "v3", ts=7_000)
    for view in views(story):
        shown = row(view, c)
        assert shown.body == "v3"
        assert history(shown) == [(5_000, "v1"), (6_000, "v2"), (7_000, "v3")]


def test_an_unedited_comment_has_its_original_only() -> None:
    story = Story()
    c = story.comment(ALICE, "only version")
    shown = row(story.view(), c)
    assert shown.original_body == "only version"
    assert shown.edits == ()
    assert shown.answered is None


def test_a_retracted_comment_keeps_no_history() -> None:
    story = Story()
    c = story.comment(ALICE, "regretted")
    story.edit(ALICE, c, "regretted more")
    story.retract(ALICE, c)
    for view in views(story):
        shown = row(view, c)
        assert shown.body is None
        assert shown.original_body is None
        assert shown.edits == ()


def test_the_history_is_outside_the_digest() -> None:
    """Two views that differ only in the original's text would be two different operation sets,
    so the digest already tells them apart; adding the history must not change any digest."""
    story = Story()
    c = story.comment(ALICE, "v1")
    story.edit(ALICE, c, "v2")
    view = story.view()
    import dataclasses

    stripped = dataclasses.replace(
        view,
        comments=tuple(
            dataclasses.replace(comment, original_body=None, answered=None)
            for comment in view.comments
        ),
    )
    assert stripped.digest() == view.digest()


def test_a_reply_before_the_edit_names_the_original_it_answered() -> None:
    story = Story()
    c = story.comment(ALICE, "I like cats", ts=5_000)
    reply = story.comment(BOB, "me too", parent=c)
    story.edit(ALICE, c, "I like dogs")
    for view in views(story):
        shown = row(view, reply)
        assert shown.parent_edited_after is True
        assert shown.answered == EditView(id=c.id, timestamp_ms=5_000, body="I like cats")


def test_a_reply_between_two_edits_names_the_edit_it_saw() -> None:
    story = Story()
    c = story.comment(ALICE, "v1")
    v2 = story.edit(ALICE, c, "v2")
    reply = story.comment(BOB, "answering v2", parent=c)
    story.edit(ALICE, c, "v3")
    for view in views(story):
        shown = row(view, reply)
        assert shown.parent_edited_after is True
        assert shown.answered == EditView(id=v2.id, timestamp_ms=v2.timestamp_ms, body="v2")


def test_of_two_edits_in_its_past_the_reply_answered_the_winning_one() -> None:
    story = Story()
    c = story.comment(ALICE, "v1")
    newer = story.edit(ALICE, c, "newer", after=[c], ts=9_000)
    older = story.edit(ALICE, c, "older", after=[c], ts=8_000)
    reply = story.comment(BOB, "saw both", parent=c, after=[newer, older])
    story.edit(ALICE, c, "latest", ts=10_000)
    for view in views(story):
        assert row(view, reply).answered == EditView(id=newer.id, timestamp_ms=9_000, body="newer")


def test_a_reply_that_saw_the_current_version_names_none() -> None:
    story = Story()
    c = story.comment(ALICE, "v1")
    story.edit(ALICE, c, "v2")
    reply = story.comment(BOB, "saw v2", parent=c)
    for view in views(story):
        shown = row(view, reply)
        assert shown.parent_edited_after is False
        assert shown.answered is None


def test_an_edit_after_close_is_neither_history_nor_answered() -> None:
    story = Story()
    c = story.comment(ALICE, "v1")
    v2 = story.edit(ALICE, c, "v2")
    story.close()
    story.edit(ALICE, c, "while closed")  # suppressed: takes no part
    for view in views(story):
        shown = row(view, c)
        assert [edit.body for edit in shown.edits] == ["v2"]
        assert shown.edits[0].id == v2.id
