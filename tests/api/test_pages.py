"""The thread page at /t/{thread}, in process: each edited comment's whole history, the version a
reply answered, and the thread's completeness line; everything from an operation escaped."""

from __future__ import annotations

from nacl.signing import SigningKey

from p2pcomments.api.pages import thread_page
from p2pcomments.core.completeness import RejectionLog, thread_completeness
from p2pcomments.core.ops import CommentPayload, EditPayload, ThreadPayload, make_operation
from p2pcomments.core.replica import Replica


def _edited_thread() -> tuple[Replica, bytes]:
    owner = SigningKey.generate()
    thread = make_operation(owner, ThreadPayload(title="T"), timestamp_ms=1_700_000_000_000)
    comment = make_operation(
        owner,
        CommentPayload(body="<b>first</b> words"),
        timestamp_ms=1_700_000_060_000,
        thread=thread.id,
        refs=(thread.id,),
    )
    reply = make_operation(
        owner,
        CommentPayload(body="a reply"),
        timestamp_ms=1_700_000_120_000,
        thread=thread.id,
        refs=(comment.id,),
    )
    edit = make_operation(
        owner,
        EditPayload(body="second words"),
        timestamp_ms=1_700_000_180_000,
        thread=thread.id,
        refs=(comment.id,),
        deps=frozenset({reply.id}),
    )
    replica = Replica()
    replica.merge([thread, comment, reply, edit])
    return replica, thread.id


def test_an_edited_comment_shows_every_version_with_its_time() -> None:
    replica, thread_id = _edited_thread()
    page = thread_page(replica.view(thread_id))
    assert "history: 2 versions" in page
    assert "&lt;b&gt;first&lt;/b&gt; words" in page  # the original, escaped
    assert "<b>first</b>" not in page
    assert "2023-11-14 22:14 UTC</time> (original)" in page
    assert "2023-11-14 22:16 UTC</time><div class='body'>second words" in page


def test_a_reply_to_an_edited_parent_shows_the_version_it_answered() -> None:
    replica, thread_id = _edited_thread()
    page = thread_page(replica.view(thread_id))
    assert "answered an earlier version of its parent (its original," in page
    assert "<blockquote class='body'>&lt;b&gt;first&lt;/b&gt; words</blockquote>" in page


def test_the_completeness_line_is_on_the_page_with_the_whole_digest() -> None:
    replica, thread_id = _edited_thread()
    view = replica.view(thread_id)
    completeness = thread_completeness(
        thread_id,
        verified=len(replica.threads[thread_id]),
        pending=(),
        log=RejectionLog(since_ms=0),
    )
    page = thread_page(view, completeness)
    digest = view.digest().hex()
    assert (
        f"<p class='meta completeness' title='view digest {digest}'>4 of 4 operations verified,"
        f" none pending, digest {digest[:16]}…</p>"
    ) in page
    assert "completeness" not in thread_page(view)


def test_the_page_lists_what_is_pending_or_rejected_and_why() -> None:
    from p2pcomments.core.replica import Rejected
    from p2pcomments.core.textform import TextKind, format_id

    replica, thread_id = _edited_thread()
    stranger = SigningKey.generate()
    absent = make_operation(
        stranger,
        CommentPayload(body="absent"),
        timestamp_ms=1,
        thread=thread_id,
        refs=(thread_id,),
    )
    waiting = make_operation(
        stranger, CommentPayload(body="<w>"), timestamp_ms=2, thread=thread_id, refs=(absent.id,)
    )
    replica.apply(waiting)
    log = RejectionLog(since_ms=0)
    log.record(
        waiting,
        Rejected(op_id=absent.id, reason="not-author", message="<only> the author"),
        at_ms=3,
    )
    completeness = thread_completeness(
        thread_id,
        verified=len(replica.threads[thread_id]),
        pending=[(waiting, replica.pending[waiting.id])],
        log=log,
    )
    page = thread_page(replica.view(thread_id), completeness)
    assert "<summary>what is pending or rejected here</summary>" in page
    assert (
        f"<li>pending <code>{format_id(TextKind.COMMENT, waiting.id)}</code> (comment): waits for"
        f" <code>{format_id(TextKind.OPERATION, absent.id)}</code></li>"
    ) in page
    assert "not-author: &lt;only&gt; the author</li>" in page
    assert "pending or rejected" not in thread_page(
        replica.view(thread_id),
        thread_completeness(thread_id, verified=4, pending=(), log=RejectionLog(since_ms=0)),
    )
