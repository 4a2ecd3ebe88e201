"""The mapping from records to operations, without a node: determinism, nesting, closing."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pcomments.core.ops import EntryKind, Operation
from p2pcomments.core.replica import Applied, Replica
from p2pcomments.core.thread_state import ThreadView
from p2pcomments.importers.plan import ImportOptions, ImportPlan
from p2pcomments.importers.records import (
    CommentStatus,
    ImportedComment,
    ImportedPost,
    ParsedExport,
)

KEY = SigningKey(b"\x05" * 32)
URL = "https://blog.example/post"
T0 = 1_327_400_000_000  # 24 Jan 2012


def post(*, closed: bool = False) -> ImportedPost:
    return ImportedPost(original_id="1", url=URL, title="A post", timestamp_ms=T0, closed=closed)


def comment(
    original_id: str,
    parent: str | None = None,
    *,
    at: int = 0,
    status: CommentStatus = CommentStatus.APPROVED,
    body: str | None = None,
) -> ImportedComment:
    return ImportedComment(
        post_id="1",
        original_id=original_id,
        parent_id=parent,
        author_name=f"author {original_id}",
        author_url=None,
        timestamp_ms=T0 + 1000 * (at or int(original_id)),
        body=f"comment {original_id}" if body is None else body,
        entry_kind=EntryKind.COMMENT,
        status=status,
    )


def plan(
    entries: Sequence[ImportedPost | ImportedComment], options: ImportOptions | None = None
) -> tuple[ImportPlan, list[Operation]]:
    export = ParsedExport(source="wordpress", entries=iter(entries))
    built = ImportPlan(export, KEY, options or ImportOptions())
    return built, list(built.operations())


def view_of(ops: Sequence[Operation]) -> ThreadView:
    replica = Replica()
    for op in ops:
        assert isinstance(replica.apply(op).outcome, Applied), op
    [thread_id] = replica.threads
    return replica.view(thread_id)


def originals(view: ThreadView) -> list[tuple[int, str]]:
    return [(c.depth, c.provenance.original_id) for c in view.comments if c.provenance]


def test_same_records_make_the_same_bytes() -> None:
    entries = [post(closed=True), comment("1"), comment("2", "1"), comment("3")]
    first = [op.encoded for op in plan(entries)[1]]
    assert first == [op.encoded for op in plan(entries)[1]]


def test_an_updated_export_adds_only_the_new_comments() -> None:
    old = [post(), comment("1"), comment("3", "1"), comment("5")]
    new = [post(), comment("1"), comment("2", "1"), comment("3", "1"), comment("4"), comment("5")]
    before = {op.id for op in plan(old)[1]}
    after = {op.id for op in plan(new)[1]}
    assert before <= after
    assert len(after - before) == 2


def test_a_reply_before_its_parent_waits_for_it() -> None:
    built, ops = plan([post(), comment("2", "1"), comment("3", "2"), comment("1")])
    assert originals(view_of(ops)) == [(0, "1"), (1, "2"), (2, "3")]
    assert built.tally.orphans == 0


def test_orphans_go_to_the_top_level_and_are_counted() -> None:
    entries = [
        post(),
        comment("1"),
        comment("2", "99"),
        comment("3", "2"),
        comment("4", "5"),
        comment("5", status=CommentStatus.SPAM),
    ]
    built, ops = plan(entries)
    assert originals(view_of(ops)) == [(0, "1"), (0, "2"), (1, "3"), (0, "4")]
    assert built.tally.orphans == 2  # 2 (parent not in the export), 4 (parent is spam)
    assert built.tally.skipped == {"spam": 1}


def test_included_spam_keeps_its_replies_under_it() -> None:
    entries = [post(), comment("4", "5"), comment("5", status=CommentStatus.SPAM)]
    built, ops = plan(entries, ImportOptions(include_spam=True))
    assert originals(view_of(ops)) == [(0, "5"), (1, "4")]
    assert built.tally.imported_by_status == {"spam": 1}


def test_empty_and_oversized_bodies_are_left_out() -> None:
    entries = [post(), comment("1", body="   "), comment("2", body="x" * 40_000)]
    built, ops = plan(entries)
    assert built.tally.skipped == {"empty": 1, "too-long": 1}
    assert originals(view_of(ops)) == []


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=60), st.integers(min_value=0, max_value=5))
def test_a_closed_post_is_closed_after_every_comment(top_level: int, replies: int) -> None:
    entries: list[ImportedPost | ImportedComment] = [post(closed=True)]
    for index in range(1, top_level + 1):
        entries.append(comment(str(index)))
        entries.extend(comment(f"{index}.{r}", str(index), at=index) for r in range(replies))
    built, ops = plan(entries)
    view = view_of(ops)
    assert view.closed
    assert len(view.comments) == top_level * (1 + replies)
    assert not any(c.after_close for c in view.comments)
    assert built.tally.closed_threads == 1
    assert view.title == "A post"


def test_a_comment_held_already_is_not_imported_twice() -> None:
    # The first export had 1 and its reply 2; in the updated one, 1 was deleted at the source
    # and 2 edited: 2 would become another operation (top level, new body). The held one stands.
    _, first_ops = plan([post(), comment("1"), comment("2", "1"), comment("3", "2")])
    held = {
        op.payload.provenance.original_id: op.id
        for op in first_ops  # type: ignore[union-attr]
        if getattr(op.payload, "provenance", None)
    }
    updated = [post(), comment("2", "1", body="edited at the source"), comment("3", "2")]
    export = ParsedExport(source="wordpress", entries=iter(updated))
    again = ImportPlan(export, KEY, ImportOptions(), known=lambda thread, source: held)
    new_ops = list(again.operations())
    assert {op.id for op in new_ops} <= {op.id for op in first_ops}
    assert again.tally.skipped == {"already-imported": 1}


def test_a_grouped_export_that_repeats_a_post_loses_no_comment() -> None:
    other = ImportedPost(
        original_id="2", url=URL + "/other", title="B", timestamp_ms=T0, closed=False
    )
    entries = [post(), comment("1"), other, post(), comment("2", "1"), comment("3")]
    export = ParsedExport(source="wordpress", entries=iter(entries), grouped=True)
    built = ImportPlan(export, KEY, ImportOptions())
    ops = list(built.operations())
    assert built.tally.imported == {"comments": 3}
    first = [op for op in ops if ops[0].id in (op.id, op.thread)]
    assert sorted(originals(view_of(first))) == [(0, "1"), (0, "2"), (0, "3")]
    assert built.tally.orphans == 1  # 2's parent was read with the post's first occurrence
