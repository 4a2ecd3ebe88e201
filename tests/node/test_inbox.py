"""The Node's inbox: entries from any source, durable read marks, and the live stream."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from nacl.signing import SigningKey

from p2pcomments.core.inbox import InboxKind
from p2pcomments.core.ops import CommentPayload, Operation, ReactPayload, make_operation
from p2pcomments.errors import StoreError
from p2pcomments.node import Node, open_node
from p2pcomments.store.inbox_marks import INBOX_FILE

from .conftest import FakeClock


def _remote(
    key: SigningKey, clock: FakeClock, thread: Operation, parent: Operation, payload: object
) -> Operation:
    clock.advance(10)
    return make_operation(
        key,
        payload,  # type: ignore[arg-type]
        timestamp_ms=clock(),
        thread=thread.id,
        refs=(parent.id,),
        deps=(parent.id,),
    )


@pytest.mark.trio
async def test_ingested_replies_are_unread_until_marked_and_marks_survive_a_reopen(
    data_dir: Path, clock: FakeClock, stranger: SigningKey
) -> None:
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        thread = await node.create_thread("Mine")
        mine = await node.comment(thread.id, "what do you think?")
        reply = _remote(stranger, clock, thread, mine, CommentPayload(body="yes"))
        like = _remote(stranger, clock, thread, mine, ReactPayload(reaction="👍"))
        await node.ingest([reply.encoded, like.encoded], source="peer")
        inbox = await node.inbox()
        assert [(e.kind, e.id) for e in inbox.entries] == [
            (InboxKind.REACTION, like.id),
            (InboxKind.REPLY, reply.id),
        ]
        assert (inbox.total, inbox.unread, inbox.read) == (2, 2, frozenset())
        assert (await node.inbox(thread_id=thread.id)).unread == 2
        assert await node.mark_inbox_read([reply.id, b"\x00" * 32]) == 1
        assert await node.mark_inbox_read([reply.id]) == 0  # idempotent
    async with open_node(data_dir, clock=clock) as node:
        inbox = await node.inbox(unread_only=True)
        assert [e.id for e in inbox.entries] == [like.id]
        assert (inbox.total, inbox.unread) == (2, 1)
        assert (await node.inbox()).read == frozenset({reply.id})
        assert await node.mark_inbox_read() == 1
        assert (await node.inbox()).unread == 0
        assert (await node.inbox(thread_id=thread.id, limit=0)).unread == 0


@pytest.mark.trio
async def test_the_watch_yields_each_new_entry_once(
    node: Node, clock: FakeClock, stranger: SigningKey
) -> None:
    thread = await node.create_thread("Mine")
    mine = await node.comment(thread.id, "first")
    before = _remote(stranger, clock, thread, mine, CommentPayload(body="before the watch"))
    await node.ingest([before.encoded], source="peer")
    with trio.fail_after(10):
        async with node.watch_inbox() as changes:
            await node.comment(thread.id, "my own: no entry")
            first = _remote(stranger, clock, thread, mine, CommentPayload(body="one"))
            second = _remote(stranger, clock, thread, first, CommentPayload(body="two"))
            again = _remote(stranger, clock, thread, mine, ReactPayload(reaction="🎉"))
            await node.ingest([first.encoded, second.encoded, again.encoded], source="peer")
            got = [(await changes.__anext__()).entry for _ in range(2)]
            assert [(e.kind, e.id) for e in got if e is not None] == [
                (InboxKind.REPLY, first.id),
                (InboxKind.REACTION, again.id),
            ]


@pytest.mark.trio
async def test_a_foreign_inbox_file_is_refused_untouched(node: Node) -> None:
    path = node.data_dir / INBOX_FILE
    path.write_bytes(b"not a database at all, but long enough to be read as one" * 20)
    before = path.read_bytes()
    with pytest.raises(StoreError):
        await node.inbox()
    assert path.read_bytes() == before


@pytest.mark.trio
async def test_a_bulk_arrival_is_listed_once_and_each_entry_yielded_once(
    node: Node, clock: FakeClock, stranger: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    import p2pcomments.node.inbox as node_inbox

    thread = await node.create_thread("Mine")
    mine = await node.comment(thread.id, "first")
    replies = [
        _remote(stranger, clock, thread, mine, CommentPayload(body=f"reply {i}"))
        for i in range(300)
    ]
    listings = []
    real = node_inbox.thread_inbox

    def counted(*args: object, **kwargs: object) -> object:
        listings.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(node_inbox, "thread_inbox", counted)
    with trio.fail_after(20):
        async with node.watch_inbox(max_buffered=1000) as changes:
            await node.ingest([r.encoded for r in replies], source="sync")
            got = [(await changes.__anext__()).entry for _ in range(300)]
    assert [e.id for e in got if e is not None] == [r.id for r in replies]  # oldest first
    assert len(listings) == 1  # one listing for 300 changes of one thread
