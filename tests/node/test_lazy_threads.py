"""A node reads its threads from the store on first use (`core.replica` rule 7,
`node.thread_source`): what it shows does not depend on what is cached, a stored operation
damaged on disk is reported and never served, and a store of schema 1 migrates."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pcomments.core.inbox import author_inbox
from p2pcomments.core.ops import (
    CommentPayload,
    Operation,
    ProfilePayload,
    ThreadPayload,
    claimed_id,
    load_stored_operation,
    make_operation,
)
from p2pcomments.core.replica import Applied, Duplicate, Replica
from p2pcomments.identity import create_identity
from p2pcomments.node import open_node, thread_source
from p2pcomments.store.data_dir import database_path
from p2pcomments.store.op_store import SoundRow
from p2pcomments.store.schema import APPLICATION_ID, MIGRATIONS

from .conftest import FakeClock, count_loads

KEY = SigningKey(b"\x01" * 32)


def _thread_with_comments(title: str, count: int, start_ms: int) -> list[Operation]:
    thread = make_operation(KEY, ThreadPayload(title=title), timestamp_ms=start_ms)
    ops = [thread]
    for index in range(count):
        ops.append(
            make_operation(
                KEY,
                CommentPayload(body=f"{title} comment {index}"),
                timestamp_ms=start_ms + 1 + index,
                thread=thread.id,
                refs=(thread.id,),
                deps=(ops[-1].id,),
            )
        )
    return ops


@pytest.mark.trio
async def test_a_tiny_cache_shows_and_writes_what_memory_holds(
    data_dir: Path, clock: FakeClock
) -> None:
    stored = [op for i in range(4) for op in _thread_with_comments(f"t{i}", 5, 1_000 * i + 1)]
    async with open_node(data_dir, create_identity=True, clock=clock, cache_operations=1) as node:
        await node.ingest([op.encoded for op in stored])
        for summary in node.threads():  # local writes into threads that come and go
            await node.comment(summary.id, "mine")
            clock.advance()
        author = node.author
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        assert node.statistics().operations == len(stored) + 4
        everything = Replica()
        everything.merge(load_stored_operation(raw) for raw, _ in node.store.iter_operations())
        assert set(node.replica.threads) == set(everything.threads)
        for thread_id in everything.threads:
            assert node.thread_view(thread_id).digest() == everything.view(thread_id).digest()
        assert len(node.inbox_entries(KEY.verify_key.encode())) == len(
            author_inbox(everything.threads.values(), KEY.verify_key.encode())
        )
        assert {s.id for s in node.threads()} == set(everything.threads)
        assert node.replica.threads_with_author(author)  # its own comments, through the index


@pytest.mark.trio
async def test_threads_a_batch_needs_are_read_off_the_event_loop(
    data_dir: Path, clock: FakeClock
) -> None:
    """`node.ingest` rule 4: a batch landing in threads not in memory has them read in worker
    threads, and ends exactly as a node holding everything in memory."""
    threads = [_thread_with_comments(f"t{i}", 30, 1_000 * i + 1) for i in range(6)]
    first = [op for ops in threads for op in ops[:20]]
    # The rest interleaved across the threads, in chunks large enough for the pipeline.
    rest = [ops[k] for k in range(20, 31) for ops in threads]
    loop_thread = threading.get_ident()
    readers: list[int] = []
    async with open_node(data_dir, create_identity=True, clock=clock, cache_operations=25) as node:
        await node.ingest([op.encoded for op in first])
        read = node._source.thread_operations

        def spied(thread_id: bytes, *, checked: bytes | None = None) -> list[Operation]:
            readers.append(threading.get_ident())
            return read(thread_id, checked=checked)

        node._source.thread_operations = spied  # type: ignore[method-assign]
        outcomes = await node.ingest([op.encoded for op in rest])
        assert all(isinstance(outcome, Applied) for outcome in outcomes)
        outcomes = await node.ingest([threads[0][-1].encoded, threads[3][5].encoded])
        assert all(isinstance(outcome, Duplicate) for outcome in outcomes)
        node._source.thread_operations = read  # type: ignore[method-assign]
        everything = Replica()
        everything.merge(op for ops in threads for op in ops)
        for thread_id in everything.threads:
            assert node.thread_view(thread_id).digest() == everything.view(thread_id).digest()
        assert node.statistics().operations == everything.operation_count()
    assert readers, "threads were dropped and read back"
    assert loop_thread not in readers


@pytest.mark.trio
async def test_a_damaged_signature_on_disk_is_reported_and_not_served(data_dir: Path) -> None:
    ops = _thread_with_comments("t", 3, 1)
    async with open_node(data_dir, create_identity=True) as node:
        await node.ingest([op.encoded for op in ops])
    victim = ops[3]  # the last comment: nothing depends on it
    flipped = bytearray(victim.encoded)
    flipped[-5] ^= 0x01  # in the signature, which the id does not cover
    with sqlite3.connect(database_path(data_dir)) as connection:
        connection.execute("UPDATE ops SET raw = ? WHERE id = ?", (bytes(flipped), victim.id))
    async with open_node(data_dir) as node:
        view = node.thread_view(ops[0].id)
        assert [c.id for c in view.comments] == [op.id for op in ops[1:3]]
        assert node.get_operation(victim.id) is None
        assert node.statistics().unloadable == 1


@pytest.mark.trio
async def test_many_profiles_checked_in_parts_at_open_keep_their_order_and_lose_the_damaged(
    data_dir: Path,
) -> None:
    """`thread_source.decode_stored` with more than one part's worth (opening checks profiles
    and pending operations on the decode threads side by side): every good one is loaded, in
    order, and a damaged one in any part is counted and left out."""
    count = 2 * thread_source._SPLIT_AT + 7
    profiles = [
        make_operation(
            SigningKey(index.to_bytes(4, "big") * 8),
            ProfilePayload(name=f"reader {index}"),
            timestamp_ms=1_000 + index,
        )
        for index in range(count)
    ]
    async with open_node(data_dir, create_identity=True) as node:
        await node.ingest([op.encoded for op in profiles])
    victims = [profiles[5], profiles[count - 3]]  # one in the first part, one in the last
    damaged_bytes = {_signature_flipped(victim.encoded) for victim in victims}
    with sqlite3.connect(database_path(data_dir)) as connection:
        for victim in victims:
            connection.execute(
                "UPDATE ops SET raw = ? WHERE id = ?",
                (_signature_flipped(victim.encoded), victim.id),
            )
        rows = [raw for (raw,) in connection.execute("SELECT raw FROM ops ORDER BY seq")]
    async with open_node(data_dir, decode_threads=2) as node:
        assert node.statistics().unloadable == 2
        kept = [op for op in profiles if op not in victims]
        assert node.replica.names() == {op.author: op.payload.name for op in kept}  # type: ignore[union-attr]
        # Every row unsealed, so every signature is checked, in three parts.
        unsealed = [SoundRow(claimed_id(raw) or b"", raw, sealed=False) for raw in rows]
        ops, damaged = thread_source.decode_stored(node.store, unsealed, threads=3)
    assert damaged == 2
    assert [op.encoded for op in ops] == [raw for raw in rows if raw not in damaged_bytes]


@pytest.mark.trio
async def test_a_huge_thread_is_checked_in_parts_off_the_loop_in_order(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread of more than two parts' worth (`thread_source._SPLIT_AT`), read for a server
    (`Node.loading`): read in a worker thread, its signatures checked in parts side by side,
    every good operation loaded and a damaged one in a later part left out and counted."""
    monkeypatch.setattr(thread_source, "_SPLIT_AT", 20)
    ops = _thread_with_comments("Popular", 70, 1_000)
    async with open_node(data_dir, create_identity=True) as node:
        await node.ingest([op.encoded for op in ops])
    victim = ops[60]
    with sqlite3.connect(database_path(data_dir)) as connection:
        connection.execute(
            "UPDATE ops SET raw = ? WHERE id = ?", (_signature_flipped(victim.encoded), victim.id)
        )
    async with open_node(data_dir, decode_threads=2, cache_operations=1) as node:
        loads = count_loads(node)
        async with node.loading([ops[0].id, b"\x77" * 32]):  # one not held: skipped
            assert loads == [ops[0].id]
            assert threading.get_ident() not in loads.readers
            assert node.replica.in_memory(ops[0].id) is not None
            view = node.thread_view(ops[0].id)
        # The damaged comment is not loaded, nor the ten after it that depend on it.
        assert node.statistics().unloadable == 1 + 10
        assert node.get_operation(victim.id) is None
        shown = [comment.body for comment in view.comments]
        assert shown[:59] == [op.payload.body for op in ops[1:60]]  # type: ignore[union-attr]
        assert victim.payload.body not in shown  # type: ignore[union-attr]


def _signature_flipped(encoded: bytes) -> bytes:
    flipped = bytearray(encoded)
    flipped[-5] ^= 0x01  # in the signature, which the id does not cover
    return bytes(flipped)


def _count_signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The ids of the stored operations whose signatures thread loads check from now on."""
    checks: list[bytes] = []
    real_check = thread_source.authentic_all

    def counting_check(found: Sequence[Operation]) -> list[bool]:
        checks.extend(op.id for op in found)
        return real_check(found)

    monkeypatch.setattr(thread_source, "authentic_all", counting_check)
    return checks


@pytest.mark.trio
async def test_a_dropped_thread_damaged_while_the_node_runs_is_caught_as_it_reloads(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread dropped from the cache reloads without its signatures checked again while its
    bytes are those verified (sealed rows, `encoded_digest`); one flipped signature bit and that
    row's checksum no longer matches, so its signature is checked and the damage is caught as
    on open."""
    first = _thread_with_comments("a", 3, 1)
    second = _thread_with_comments("b", 3, 1_000)
    checks = _count_signature_checks(monkeypatch)
    async with open_node(data_dir, create_identity=True, cache_operations=1) as node:
        await node.ingest([op.encoded for op in first + second])
        assert first[0].id not in node.replica._cache  # dropped for the second thread
        node.thread_view(first[0].id)  # read back unchanged: not verified again
        node.thread_view(second[0].id)
        assert checks == []
        victim = first[3]
        flipped = bytearray(victim.encoded)
        flipped[-5] ^= 0x01  # in the signature, which the id does not cover
        with sqlite3.connect(database_path(data_dir)) as connection:
            connection.execute("UPDATE ops SET raw = ? WHERE id = ?", (bytes(flipped), victim.id))
        view = node.thread_view(first[0].id)
        assert checks == [victim.id]
        assert [c.id for c in view.comments] == [op.id for op in first[1:3]]
        assert node.get_operation(victim.id) is None
        assert node.statistics().unloadable == 1


@pytest.mark.trio
async def test_unsealed_rows_have_their_signatures_checked_once_then_are_sealed(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows without a checksum (stored before schema 4) or with one that no longer matches are
    checked as they load; the authentic ones are sealed (`OpStore.seal`), so the next load
    checks none of them, and a forged one is never sealed nor loaded."""
    ops = _thread_with_comments("old rows", 4, 1)
    checks = _count_signature_checks(monkeypatch)
    async with open_node(data_dir, create_identity=True) as node:
        await node.ingest([op.encoded for op in ops])
    victim = ops[-1]
    flipped = bytearray(victim.encoded)
    flipped[-5] ^= 0x01  # in the signature
    with sqlite3.connect(database_path(data_dir)) as connection:
        connection.execute("UPDATE ops SET checksum = NULL")
        connection.execute("UPDATE ops SET raw = ? WHERE id = ?", (bytes(flipped), victim.id))
    async with open_node(data_dir) as node:
        view = node.thread_view(ops[0].id)
        assert [c.id for c in view.comments] == [op.id for op in ops[1:-1]]
    assert sorted(checks) == sorted(op.id for op in ops)  # every row, once
    with sqlite3.connect(database_path(data_dir)) as connection:
        unsealed = {
            row[0] for row in connection.execute("SELECT id FROM ops WHERE checksum IS NULL")
        }
    assert unsealed == {victim.id}  # the forged row is never sealed; every other one is
    checks.clear()
    async with open_node(data_dir) as node:
        view = node.thread_view(ops[0].id)
        assert [c.id for c in view.comments] == [op.id for op in ops[1:-1]]
        assert node.statistics().unloadable == 1
    assert checks == [victim.id]  # the sealed ones are not checked again


@pytest.mark.trio
async def test_a_schema_1_store_migrates_with_everything_in_it(data_dir: Path) -> None:
    ops = _thread_with_comments("old", 3, 1)
    pending = make_operation(
        KEY,
        CommentPayload(body="waits"),
        timestamp_ms=50,
        thread=ops[0].id,
        refs=(b"\x09" * 32,),
        deps=(b"\x09" * 32,),
    )
    create_identity(data_dir)
    path = database_path(data_dir)
    connection = sqlite3.connect(path, isolation_level=None)
    try:  # what schema 1 wrote
        for statement in MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute("PRAGMA user_version = 1")
        rows = [(op, 0) for op in ops] + [(pending, 1)]
        for op, state in rows:
            connection.execute(
                "INSERT INTO ops (id, raw, thread, kind, author, timestamp_ms, state)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (op.id, op.encoded, op.thread_id, int(op.kind), op.author, op.timestamp_ms, state),
            )
        connection.execute(
            "INSERT INTO thread_activity VALUES (?, ?, ?)", (ops[0].id, 4, ops[-1].timestamp_ms)
        )
        assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    finally:
        connection.close()
    async with open_node(data_dir) as node:
        assert node.statistics().operations == 4
        assert node.statistics().pending == 1
        assert len(node.thread_view(ops[0].id).comments) == 3
        assert await node.integrity_check() == []
        assert node.store.threads_with_author(KEY.verify_key.encode()) == [ops[0].id]
        # A store from before thread listings (schema 3) is listed from its operations.
        assert [(s.id, s.comment_count) for s in node.threads()] == [(ops[0].id, 3)]
