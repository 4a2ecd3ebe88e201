"""Node reads for a reader: a thread's completeness (verified, pending, rejected and why), ids
found by a prefix, and threads found by their page's URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pcomments.core.id_prefix import IdPrefix, read_prefix
from p2pcomments.core.ops import CommentPayload, EditPayload, ThreadPayload, make_operation
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.errors import PageUrlError
from p2pcomments.node import Node, open_node

from .conftest import FakeClock

pytestmark = pytest.mark.trio


async def test_completeness_counts_verified_pending_and_rejected_with_reasons(
    node: Node, clock: FakeClock, stranger: SigningKey
) -> None:
    thread = await node.create_thread("Mine")
    mine = await node.comment(thread.id, "my words")
    opened_at = clock.now
    clock.advance(1000)
    missing = make_operation(
        stranger,
        CommentPayload(body="never arrives"),
        timestamp_ms=clock.now,
        thread=thread.id,
        refs=(mine.id,),
    )
    waiting = make_operation(
        stranger,
        CommentPayload(body="waits"),
        timestamp_ms=clock.now + 1,
        thread=thread.id,
        refs=(missing.id,),
    )
    forged_edit = make_operation(
        stranger,
        EditPayload(body="not yours"),
        timestamp_ms=clock.now + 2,
        thread=thread.id,
        refs=(mine.id,),
    )
    await node.ingest([waiting.encoded, forged_edit.encoded, forged_edit.encoded])
    completeness = node.thread_completeness(thread.id)
    assert completeness.verified == 2
    assert completeness.held == 3
    [pending] = completeness.pending
    assert (pending.id, pending.missing) == (waiting.id, (missing.id,))
    assert completeness.rejected_count == 1  # sent twice, rejected once
    [rejected] = completeness.rejected
    assert (rejected.id, rejected.reason, rejected.at_ms) == (
        forged_edit.id,
        "not-author",
        clock.now,
    )
    assert completeness.rejections_since_ms == opened_at

    await node.ingest([missing.encoded])
    completeness = node.thread_completeness(thread.id)
    assert (completeness.verified, completeness.held, completeness.pending) == (4, 4, ())


async def test_a_prefix_finds_the_ids_of_its_kind(node: Node) -> None:
    thread = await node.create_thread("T")
    comments = [await node.comment(thread.id, f"c{n}") for n in range(30)]
    for comment in comments[:3]:
        text = format_id(TextKind.COMMENT, comment.id)
        prefix = read_prefix(text[:12])
        assert prefix is not None
        assert await node.ids_with_prefix(prefix) == [comment.id]
        # a comment is no thread: the same characters under thr_ find nothing
        assert await node.ids_with_prefix(IdPrefix(kind=TextKind.THREAD, chars=prefix.chars)) == []
        # op_ names any operation
        assert await node.ids_with_prefix(
            IdPrefix(kind=TextKind.OPERATION, chars=prefix.chars)
        ) == [comment.id]
    everything = IdPrefix(kind=TextKind.OPERATION, chars="")
    assert len(await node.ids_with_prefix(everything, limit=100)) == 31
    assert len(await node.ids_with_prefix(everything, limit=5)) == 5


async def test_threads_are_found_by_their_page_url_in_normal_form(node: Node) -> None:
    post = await node.create_thread("Post", url="https://Blog.example:443/2024/post/?utm_source=x")
    await node.create_thread("Other", url="https://blog.example/2024/other")
    await node.create_thread("No page")
    found = node.threads(url="https://blog.example/2024/post")
    assert [summary.id for summary in found] == [post.id]
    assert node.threads(url="https://blog.example/nothing") == []
    assert len(node.threads()) == 3
    with pytest.raises(PageUrlError):
        node.threads(url="ftp://blog.example/")


async def test_the_data_dir_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_node(Path("relative"), create_identity=True) as opened:
        assert opened.data_dir == tmp_path / "relative"
        assert opened.statistics().data_dir == str(tmp_path / "relative")


async def test_a_prefix_lookup_pages_through_the_index(node: Node, stranger: SigningKey) -> None:
    thread = make_operation(stranger, ThreadPayload(title="Big"), timestamp_ms=1)
    comments = [
        make_operation(
            stranger,
            CommentPayload(body=f"{n}"),
            timestamp_ms=2 + n,
            thread=thread.id,
            refs=(thread.id,),
        )
        for n in range(600)
    ]
    await node.ingest([thread.encoded, *(c.encoded for c in comments)])
    everything = IdPrefix(kind=TextKind.COMMENT, chars="")
    found = await node.ids_with_prefix(everything, limit=1000)
    assert found == sorted(c.id for c in comments)  # the thread is not a comment
