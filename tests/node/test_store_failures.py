"""When the disk fails: a local write leaves memory unchanged; a failed ingest commit stops the
node from taking writes, since memory is then ahead of disk (node rule 4)."""

from __future__ import annotations

import sqlite3

import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import ThreadPayload, make_operation
from p2pcomments.errors import StoreError
from p2pcomments.node import Node
from p2pcomments.store import op_store
from p2pcomments.store.op_store import WriteBatch

from .conftest import FakeClock


def _break_the_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(connection: sqlite3.Connection, batch: WriteBatch, *_: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(op_store, "_apply_batch", failing)


@pytest.mark.trio
async def test_a_failed_local_write_changes_nothing(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = await node.create_thread("Before")
    _break_the_disk(monkeypatch)
    with pytest.raises(StoreError, match="disk I/O error") as caught:
        await node.comment(thread.id, "lost")
    assert str(node.store.path) in str(caught.value)
    assert node.replica.operation_count() == 1
    monkeypatch.undo()
    await node.comment(thread.id, "the node still works")  # memory never got ahead of disk


@pytest.mark.trio
async def test_a_failed_ingest_commit_stops_writes_until_reopened(
    node: Node, stranger: SigningKey, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = await node.create_thread("Mine")
    theirs = make_operation(stranger, ThreadPayload(title="Theirs"), timestamp_ms=clock())
    _break_the_disk(monkeypatch)
    with pytest.raises(StoreError, match="disk I/O error"):
        await node.ingest([theirs.encoded])
    monkeypatch.undo()
    with pytest.raises(StoreError, match="reopen") as caught:
        await node.comment(mine.id, "refused")
    assert caught.value.reason == "store-failed"
    with pytest.raises(StoreError, match="reopen"):
        await node.ingest([theirs.encoded])
    assert node.thread_view(mine.id).title == "Mine"  # reads keep working
