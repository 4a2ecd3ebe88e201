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
