"""Ingest: what peers send is decoded, verified, checked and stored, or refused as data."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgpack
import pytest
import trio
import trio.testing
from nacl.signing import SigningKey

from p2pcomments.core import ops as ops_module
from p2pcomments.core.ops import (
    MAX_OPERATION_BYTES,
    CommentPayload,
    EditPayload,
    Operation,
    ThreadPayload,
    make_operation,
)
from p2pcomments.core.replica import Applied, Duplicate, Outcome, Pending, Rejected
from p2pcomments.node import Node, open_node
from p2pcomments.node import ingest as node_module
from p2pcomments.store import op_store
from p2pcomments.store.op_store import OpState

from .conftest import FakeClock

if TYPE_CHECKING:
    from trio_typing import TaskStatus


def _thread(key: SigningKey, at: int) -> Operation:
    return make_operation(key, ThreadPayload(title="Remote"), timestamp_ms=at)


def _comment(key: SigningKey, parent: Operation, thread: Operation, at: int) -> Operation:
    return make_operation(
        key,
        CommentPayload(body=f"reply at {at}"),
        timestamp_ms=at,
        thread=thread.id,
        refs=(parent.id,),
        deps=(parent.id,),
    )


def _chain(key: SigningKey, clock: FakeClock, comments: int) -> list[Operation]:
    """A thread and ``comments`` comments, each replying to the one before."""
    thread = _thread(key, clock())
    ops = [thread]
    for index in range(comments):
        ops.append(_comment(key, ops[-1], thread, clock() + 1 + index))
    return ops


def _forged(op: Operation) -> bytes:
    """The same operation with one bit of its signature flipped."""
    data = bytearray(op.encoded)
    data[-1] ^= 0x01
    return bytes(data)


def _non_canonical(op: Operation) -> bytes:
    """A valid msgpack encoding of the same fields that is not the canonical one (a 32-bit
    integer where 1 byte would do)."""
    fields = list(msgpack.unpackb(op.encoded, raw=False))
    rest: bytes = b"".join(msgpack.packb(f, use_bin_type=True) for f in fields[1:])
    version = b"\xce" + int(fields[0]).to_bytes(4, "big")
    return b"\x99" + version + rest


@pytest.mark.trio
async def test_bad_bytes_are_rejected_not_raised_and_not_stored(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = _thread(stranger, clock())
    good = _comment(stranger, thread, thread, clock() + 1)
    oversized = b"\x99" + b"\x00" * (MAX_OPERATION_BYTES + 1)
    truncated = good.encoded[:-10]
    batch = [
        _forged(thread),
        _non_canonical(thread),
        oversized,
        truncated,
        b"",
        b"\xc1garbage",
        msgpack.packb({"not": "an operation"}),
    ]
    outcomes = await node.ingest(batch, source="test")
    assert all(isinstance(outcome, Rejected) for outcome in outcomes)
    reasons = [outcome.reason for outcome in outcomes]  # type: ignore[union-attr]
    assert reasons[0] == "bad-signature"
    assert reasons[1] == "non-canonical"
    assert reasons[2] == "oversize"
    assert all(len(outcome.op_id) == 32 for outcome in outcomes)
    assert outcomes[0].op_id == thread.id  # a decodable forgery is named by its real id
    assert node.store.count() == 0
    assert node.replica.operation_count() == 0
    assert node.statistics().rejected == len(batch)


@pytest.mark.trio
async def test_a_large_mixed_batch_is_verified_in_parallel_and_reported_in_order(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    ops = _chain(stranger, clock, 600)
    blobs = [op.encoded for op in ops]
    forged_at = {100, 350, 599}
    for index in forged_at:
        blobs[index] = _forged(ops[index])
    outcomes = await node.ingest(blobs)
    for index, outcome in enumerate(outcomes):
        if index in forged_at:
            assert isinstance(outcome, Rejected)
            assert outcome.reason == "bad-signature"
        elif index < 100:
            assert isinstance(outcome, Applied)
        else:
            # Everything after the first forgery hangs from it: it waits for a valid copy.
            assert isinstance(outcome, Pending), index
    assert node.store.count(OpState.APPLIED) == 100
    assert node.store.count(OpState.PENDING) == 600 - 100 - 2


@pytest.mark.trio
async def test_pending_operations_persist_and_apply_when_their_parent_arrives(
    data_dir: Path, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = _thread(stranger, clock())
    parent = _comment(stranger, thread, thread, clock() + 1)
    child = _comment(stranger, parent, thread, clock() + 2)
    grandchild = _comment(stranger, child, thread, clock() + 3)

    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        outcomes = await node.ingest([thread.encoded, grandchild.encoded, child.encoded])
        assert isinstance(outcomes[0], Applied)
        assert isinstance(outcomes[1], Pending)
        assert isinstance(outcomes[2], Pending)
        assert outcomes[2].missing == frozenset({parent.id})
        assert node.store.count(OpState.PENDING) == 2
        assert node.statistics().pending == 2

    async with open_node(data_dir, clock=clock) as node:
        assert node.statistics().pending == 2
        assert node.get_operation(grandchild.id) == grandchild
        with trio.fail_after(5):
            async with node.watch(thread.id) as changes:
                outcomes = await node.ingest([parent.encoded])
                assert isinstance(outcomes[0], Applied)
                seen = [(await changes.__anext__()).op_id for _ in range(3)]
        assert set(seen) == {parent.id, child.id, grandchild.id}
        assert len(node.thread_view(thread.id).comments) == 3
        assert node.store.count(OpState.PENDING) == 0
        assert node.store.count(OpState.APPLIED) == 4
        assert node.store.integrity_check() == []

    async with open_node(data_dir, clock=clock) as node:
        assert node.statistics().pending == 0
        assert len(node.thread_view(thread.id).comments) == 3


@pytest.mark.trio
async def test_an_operation_released_in_the_same_call_reads_applied(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = _thread(stranger, clock())
    first = _comment(stranger, thread, thread, clock() + 1)
    second = _comment(stranger, first, thread, clock() + 2)
    outcomes = await node.ingest([second.encoded, first.encoded, thread.encoded])
    assert [type(o) for o in outcomes] == [Applied, Applied, Applied]
    assert node.store.count(OpState.APPLIED) == 3
    again = await node.ingest([thread.encoded, second.encoded, second.encoded])
    assert [type(o) for o in again] == [Duplicate, Duplicate, Duplicate]
    assert node.store.count() == 3


@pytest.mark.trio
async def test_pending_operations_that_turn_out_invalid_are_removed(
    data_dir: Path, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = _thread(stranger, clock())
    comment = _comment(stranger, thread, thread, clock() + 1)
    # An edit by someone else than the comment's author is invalid; a reply to it waits on it.
    intruder = SigningKey(b"\x09" * 32)
    bad_edit = make_operation(
        intruder,
        EditPayload(body="hijacked"),
        timestamp_ms=clock() + 2,
        thread=thread.id,
        refs=(comment.id,),
        deps=(comment.id,),
    )
    follower = make_operation(
        stranger,
        CommentPayload(body="after the edit"),
        timestamp_ms=clock() + 3,
        thread=thread.id,
        refs=(comment.id,),
        deps=(bad_edit.id,),
    )
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        await node.ingest([thread.encoded, follower.encoded, bad_edit.encoded])
        assert node.store.count(OpState.PENDING) == 2
    async with open_node(data_dir, clock=clock) as node:
        outcomes = await node.ingest([comment.encoded])
        assert isinstance(outcomes[0], Applied)
        assert node.get_operation(bad_edit.id) is None
        assert node.store.count(OpState.PENDING) == 0
        assert node.store.fetch_raw([bad_edit.id, follower.id]) == {}
        assert node.statistics().rejected == 2
        assert node.store.integrity_check() == []


@pytest.mark.trio
async def test_export_is_causal_and_ingests_in_one_pass(
    node: Node, tmp_path: Path, clock: FakeClock
) -> None:
    thread = await node.create_thread("Exported")
    comment = await node.comment(thread.id, "one")
    await node.reply(comment.id, "two")
    await node.edit(comment.id, "one, edited")
    await node.set_profile("Exporter")
    everything = node.export_operations()
    assert len(everything) == 5
    async with open_node(tmp_path / "other", create_identity=True, clock=clock) as other:
        outcomes = await other.ingest(everything)
        assert all(isinstance(o, Applied) for o in outcomes)  # causal order: nothing waited
        assert other.thread_view(thread.id).digest() == node.thread_view(thread.id).digest()
        assert other.export_operations(thread.id) == node.export_operations(thread.id)


@pytest.mark.trio
async def test_a_duplicate_is_reported_only_once_its_first_copy_is_durable(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = _thread(stranger, clock())
    gate = threading.Event()

    def hold(connection: object) -> None:
        gate.wait(5)

    # Hold the writer so that the first ingest's commit stays queued.
    node.store._submit(hold, lambda error: None)
    results: dict[str, list[Outcome]] = {}

    async def ingest(name: str) -> None:
        results[name] = await node.ingest([thread.encoded])

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ingest, "first")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ingest, "second")
            await trio.testing.wait_all_tasks_blocked()
            assert results == {}  # the duplicate waits for the first copy's commit
            gate.set()
    assert isinstance(results["first"][0], Applied)
    assert isinstance(results["second"][0], Duplicate)
    assert node.store.count() == 1


@pytest.mark.trio
async def test_operations_released_across_pipeline_chunks_read_applied(
    data_dir: Path, stranger: SigningKey, clock: FakeClock
) -> None:
    ops = _chain(stranger, clock, 700)
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        outcomes = await node.ingest([op.encoded for op in reversed(ops)])
        assert all(isinstance(outcome, Applied) for outcome in outcomes)
        assert [outcome.op_id for outcome in outcomes] == [op.id for op in reversed(ops)]
        assert node.store.count(OpState.APPLIED) == len(ops)
        assert node.store.integrity_check() == []
    async with open_node(data_dir, clock=clock) as node:
        assert node.statistics().operations == len(ops)
        assert node.statistics().pending == 0


@pytest.mark.trio
async def test_a_cancelled_ingest_commits_what_it_applied(
    data_dir: Path, stranger: SigningKey, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = _chain(stranger, clock, 3000)
    thread = ops[0]
    # Only the first chunk decodes until the test has cancelled; the others wait in their worker
    # threads, so the cancellation always lands mid-ingest however fast this machine is.
    later_chunks = threading.Event()
    real_decode_all = node_module._decode_all

    def gated_decode_all(
        blobs: Sequence[bytes], held: Callable[[bytes], Operation | None]
    ) -> list[Operation | Rejected]:
        if blobs[0] != thread.encoded:
            later_chunks.wait(10)
        return real_decode_all(blobs, held)

    monkeypatch.setattr(node_module, "_decode_all", gated_decode_all)
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        with node.subscribe_applied() as batches, trio.fail_after(10):
            announced = 0
            async with trio.open_nursery() as nursery:

                async def ingest_all() -> None:
                    await node.ingest([op.encoded for op in ops])
                    pytest.fail("the ingest was not cancelled")  # pragma: no cover

                nursery.start_soon(ingest_all)
                announced += len((await batches.receive()).ops)  # the first chunk committed
                nursery.cancel_scope.cancel()
                later_chunks.set()  # let the waiting worker threads finish
            while True:
                try:
                    announced += len(batches.receive_nowait().ops)
                except trio.WouldBlock:
                    break
        held = node.replica.operation_count()
        assert 0 < held < len(ops)
        assert announced == held  # everything applied was committed and announced
        assert node.store.count(OpState.APPLIED) == held  # memory and disk agree
    async with open_node(data_dir, clock=clock) as node:
        assert node.statistics().operations == held


@pytest.mark.trio
async def test_the_chunks_of_one_call_share_one_commit(
    data_dir: Path, stranger: SigningKey, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(op_store, "FOLLOW_SECONDS", 30.0)  # a chunk always waits for the next
    ops = _chain(stranger, clock, 3 * node_module.DECODE_CHUNK)
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        before = node.store.statistics().commits
        with trio.fail_after(20):  # the last chunk commits at once: no 30 s wait
            outcomes = await node.ingest([op.encoded for op in ops])
        assert all(isinstance(outcome, Applied) for outcome in outcomes)
        assert node.store.statistics().commits == before + 1
        assert node.store.count(OpState.APPLIED) == len(ops)


@pytest.mark.trio
async def test_an_ingest_cancelled_between_chunks_does_not_keep_its_commit_waiting(
    data_dir: Path, stranger: SigningKey, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(op_store, "FOLLOW_SECONDS", 30.0)
    ops = _chain(stranger, clock, 3 * node_module.DECODE_CHUNK)
    thread = ops[0]
    later_chunks = threading.Event()
    real_decode_all = node_module._decode_all

    def gated_decode_all(
        blobs: Sequence[bytes], held: Callable[[bytes], Operation | None]
    ) -> list[Operation | Rejected]:
        if blobs[0] != thread.encoded:
            later_chunks.wait(10)
        return real_decode_all(blobs, held)

    monkeypatch.setattr(node_module, "_decode_all", gated_decode_all)
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        with trio.fail_after(10):  # well below the 30 s the open transaction would wait
            async with trio.open_nursery() as nursery:
                nursery.start_soon(node.ingest, [op.encoded for op in ops])
                while node.replica.operation_count() == 0:  # noqa: ASYNC110 - no event for it
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
                later_chunks.set()  # let the waiting worker threads finish
        held = node.replica.operation_count()
        assert held == node_module.chunk_size(len(ops), node._decode_threads)
        assert node.store.count(OpState.APPLIED) == held


@pytest.mark.trio
async def test_a_started_ingest_reports_once_applied_and_commits_behind(
    data_dir: Path, stranger: SigningKey, clock: FakeClock
) -> None:
    """A call of a few items reports started once applied; its commit is still queued."""
    ops = _chain(stranger, clock, 3)
    gate = threading.Event()
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        node.store._submit(lambda connection: gate.wait(5), lambda error: None)  # hold the writer
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                await nursery.start(node.ingest, [op.encoded for op in ops])
                assert node.replica.operation_count() == len(ops)  # applied, in order
                assert node.store.count() == 0  # and still committing
                gate.set()
        assert node.store.count(OpState.APPLIED) == len(ops)


@pytest.mark.trio
async def test_started_ingests_apply_in_the_order_they_started_whichever_verifies_first(
    data_dir: Path, stranger: SigningKey, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 5: a large call reports started once its place is taken, before it is applied, so
    the next one verifies meanwhile; that next one waits for its turn to apply, even when its
    signatures are checked first. A chain split in two: applied out of order, the second
    half's first operation would wait (Pending) for the first half."""
    ops = _chain(stranger, clock, 1200)
    first, second = [op.encoded for op in ops[:600]], [op.encoded for op in ops[600:]]
    first_verifies = threading.Event()
    second_chunks_verified: list[int] = []
    real_decode_all = node_module._decode_all

    def gated_decode_all(
        blobs: Sequence[bytes], held: Callable[[bytes], Operation | None]
    ) -> list[Operation | Rejected]:
        if blobs[0] == first[0]:  # the first call's first chunk (its others verify meanwhile)
            first_verifies.wait(10)
            return real_decode_all(blobs, held)
        if blobs[0] in first:
            return real_decode_all(blobs, held)
        decoded = real_decode_all(blobs, held)
        second_chunks_verified.append(len(blobs))
        return decoded

    monkeypatch.setattr(node_module, "_decode_all", gated_decode_all)
    outcomes: dict[str, list[Outcome]] = {}

    async def ingest(
        name: str, blobs: list[bytes], task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        outcomes[name] = await node.ingest(blobs, task_status=task_status)

    async with open_node(data_dir, create_identity=True, clock=clock, decode_threads=2) as node:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(ingest, "first", first)
                assert node.replica.operation_count() == 0  # started, not applied
                await nursery.start(ingest, "second", second)
                while sum(second_chunks_verified) < len(second):  # noqa: ASYNC110 - no event
                    await trio.sleep(0.01)
                await trio.sleep(0.05)
                assert node.replica.operation_count() == 0  # verified, waiting for its turn
                first_verifies.set()
        assert all(isinstance(outcome, Applied) for outcome in outcomes["first"])
        assert all(isinstance(outcome, Applied) for outcome in outcomes["second"])
        assert node.store.count(OpState.APPLIED) == len(ops)


@pytest.mark.trio
async def test_held_bytes_are_duplicates_without_a_second_signature_check(
    data_dir: Path, stranger: SigningKey, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = _chain(stranger, clock, 300)
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        checked: list[bytes] = []
        real_open = ops_module._crypto_sign_open  # every signature check ends in this call...

        def counting_open(m: object, mlen: object, signed: bytes, size: int, pk: bytes) -> int:
            checked.append(signed[-32:])  # the signed message ends with the operation id
            result: int = real_open(m, mlen, signed, size, pk)
            return result

        monkeypatch.setattr(ops_module, "_crypto_sign_open", counting_open)
        real_open_all = ops_module._open_all  # or a whole chunk's, in one call

        def counting_open_all(
            address: int, sha512: int, signed: bytes, size: int, keys: bytes, min_uses: int
        ) -> bytes:
            checked.extend(signed[end - 32 : end] for end in range(size, len(signed) + 1, size))
            assert real_open_all is not None
            return real_open_all(address, sha512, signed, size, keys, min_uses)

        monkeypatch.setattr(ops_module, "_open_all", counting_open_all)
        await node.ingest([op.encoded for op in ops])
        assert sorted(checked) == sorted(op.id for op in ops)  # each checked once, when new
        checked.clear()
        again = await node.ingest([op.encoded for op in ops])
        assert all(isinstance(outcome, Duplicate) for outcome in again)
        assert checked == []
        # Same claimed id, other bytes (a forged signature): checked, and refused.
        forged = ops[5].encoded[:-1] + bytes([ops[5].encoded[-1] ^ 1])
        (outcome,) = await node.ingest([forged])
        assert isinstance(outcome, Rejected)
        assert outcome.reason == "bad-signature"
        assert checked == [ops[5].id]
