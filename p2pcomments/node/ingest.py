"""The Node's ingest pipeline: operations from outside (gossip, sync, import) in, outcomes out.

Rules:

1. `Node.ingest` never raises for bad input: each item gets an outcome (core's Applied,
   Duplicate, Pending, Rejected). Signatures are checked in worker threads (in parallel for large
   batches); what core accepts (applied or pending) is committed in one job; nothing rejected is
   stored. Operations released from pending are marked applied (or, if rejected, removed) in
   that same job.
2. Ingest applies in memory before committing (core decides what waits and what is released). If
   that commit fails, memory is ahead of disk, so the node refuses every further write
   (`node_state` rule 1); reads keep working.
3. What a chunk made applied is announced once its commit has landed, chunk by chunk, in order.
4. The threads a chunk needs that are not in memory (`core.replica` rule 7) are read, checked and
   built in worker threads before it is applied (`core.replica` rule 8), one installed per loop
   step, and kept in memory until it is: reading a thread of a thousand operations from the
   store costs tens of milliseconds, and a chunk can need a hundred of them
   (scripts/bench_loop.py).
5. Calls of more than a few items (`_INLINE_DECODE`) apply one after another, in the order they
   were made, each while its later chunks still verify; smaller ones apply at once, between
   chunks. A call started with ``nursery.start`` reports started once its place in that order
   is taken, so a stream of calls keeps the decode threads busy across calls: the next call
   verifies while this one applies its last chunk and commits (scripts/bench_store.py).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Final

import trio

from p2pcomments.core.ops import Operation, claimed_id, decode_operations
from p2pcomments.core.replica import Applied, Outcome, Pending, Rejected, ThreadLoad
from p2pcomments.errors import DecodeError, InvalidOperation, StoreError
from p2pcomments.node import listings
from p2pcomments.node.node_state import NodeState
from p2pcomments.store.op_store import OpState, WriteBatch, WriteTicket

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # what mypy sees behind trio.TASK_STATUS_IGNORED (server.py)

__all__ = ["DECODE_CHUNK", "Ingest", "chunk_size"]

_INLINE_DECODE: Final = 4  # batches this small are decoded without a thread hop
DECODE_CHUNK: Final = 250  # operations per pipeline step (one thread hop and one commit job)
# Chunks of a call large enough to give every decode thread two of this many: each chunk costs
# a thread hop, a commit job and its bookkeeping, and 1,000-op calls on 2 threads ingested
# 5-9% faster in 500-op chunks than in 250 (scripts/bench_store.py --cores-only).
_LARGE_CHUNK: Final = 2 * DECODE_CHUNK
EVICT_STEP: Final = 5_000  # operations dropped from memory per loop step (rule 4)
_DECODE_AHEAD: Final = 2  # chunks being decoded or waiting to be applied, per decode thread


def _decode_all(
    blobs: Sequence[bytes], held: Callable[[bytes], Operation | None]
) -> list[Operation | Rejected]:
    """Decode and verify each item; a bad one becomes a `Rejected` (rule 1). An item whose
    exact bytes are held already (``held`` looks up an id) is that operation, neither decoded
    nor verified again: applying it reports it `Duplicate`, as for any copy."""
    known_ops: list[Operation | None] = []
    fresh: list[bytes] = []
    fresh_ids: list[bytes | None] = []
    for data in blobs:
        op_id = claimed_id(data)
        known = held(op_id) if op_id is not None else None
        if known is not None and known.encoded == data:
            known_ops.append(known)
        else:
            known_ops.append(None)
            fresh.append(data)
            fresh_ids.append(op_id)
    decoded = iter(zip(fresh, decode_operations(fresh, fresh_ids), strict=True))
    results: list[Operation | Rejected] = []
    for known in known_ops:
        if known is not None:
            results.append(known)
            continue
        data, op = next(decoded)
        if isinstance(op, InvalidOperation):
            # A DecodeError: not an operation, so no id of its own; otherwise it parsed.
            op_id = _undecodable_id(data) if isinstance(op, DecodeError) else claimed_id(data)
            assert op_id is not None
            results.append(Rejected(op_id=op_id, reason=op.reason, message=op.message))
        else:
            results.append(op)
    return results


def chunk_size(items: int, decode_threads: int) -> int:
    """The operations per pipeline step of a call of ``items``: `DECODE_CHUNK`, or twice that
    when every decode thread still gets a chunk (each step has a cost of its own)."""
    return _LARGE_CHUNK if items >= _LARGE_CHUNK * decode_threads else DECODE_CHUNK


def _undecodable_id(data: bytes) -> bytes:
    """Bytes that don't decode have no operation id; report the SHA-256 of the bytes instead, so
    every `Rejected.op_id` is 32 bytes and names what was sent."""
    return hashlib.sha256(bytes(data)).digest()


class Ingest(NodeState):
    """The ingest methods of `Node` (rules 1-3)."""

    async def ingest(
        self,
        encoded_ops: Sequence[bytes],
        *,
        source: str = "local",
        task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> list[Outcome]:
        """Decode, verify, apply and durably store operations from outside (network, import).

        Returns one outcome per item, in order, as it stands when the call returns: an item that
        waited but was released by a later item of the same call reads Applied. When it returns,
        every item reported Applied, Pending or Duplicate is durable (a Duplicate another call is
        still committing included). Never raises for bad input; raises `StoreError` only when
        storing fails (then see rule 2).

        Large batches go through a pipeline: chunks are verified in worker threads ahead of this
        task, which applies finished chunks in order and queues each chunk's commit at once, so
        verifying, applying and committing overlap. If the call is cancelled, what was applied
        is still committed and announced before the cancellation goes on.

        Started with ``nursery.start``, a call of more than a few items reports started once its
        place in the order of applying is taken (rule 5), a smaller one once every item is
        applied and its commit queued: a caller with a stream of batches can start the next one
        then, which verifies while this one applies and commits, and still applies after it.
        """
        self._check_writable()
        blobs = list(encoded_ops)
        outcomes: list[Outcome] = []
        position: dict[bytes, int] = {}
        committing: deque[tuple[WriteTicket, list[Operation]]] = deque()
        try:
            if len(blobs) <= _INLINE_DECODE:
                # `peek`, not `get`: a copy of an operation whose thread is not in memory is
                # checked again rather than its thread loaded here, on the loop (rule 4).
                decoded = _decode_all(blobs, self.replica.peek)
                async with self._threads_in_memory(decoded):
                    self._check_writable()
                    committing.append(self._apply_chunk(decoded, outcomes, position))
                task_status.started()
            else:
                await self._decode_and_apply(
                    blobs, source, outcomes, position, committing, task_status
                )
        except BaseException:
            await self._settle(committing, source, raise_errors=False)
            raise
        await self._settle(committing, source, raise_errors=True)
        return outcomes

    async def ingest_verified(
        self, ops: Sequence[Operation], *, source: str = "local"
    ) -> list[Outcome]:
        """`ingest` for operations the caller has already decoded *and* whose signatures it has
        checked (the gossip validator does both before it accepts a message), so no signature is
        checked twice. Outcomes, durability and announcements are as for `ingest`.

        Only code that verified every signature itself may call this: an operation passed here
        unverified would be stored and served as if its author had signed it.
        """
        self._check_writable()
        outcomes: list[Outcome] = []
        committing: deque[tuple[WriteTicket, list[Operation]]] = deque()
        decoded: list[Operation | Rejected] = list(ops)
        try:
            async with self._threads_in_memory(decoded):
                self._check_writable()
                committing.append(self._apply_chunk(decoded, outcomes, {}))
        except BaseException:
            await self._settle(committing, source, raise_errors=False)
            raise
        await self._settle(committing, source, raise_errors=True)
        return outcomes

    async def _decode_and_apply(
        self,
        blobs: list[bytes],
        source: str,
        outcomes: list[Outcome],
        position: dict[bytes, int],
        committing: deque[tuple[WriteTicket, list[Operation]]],
        task_status: TaskStatus[None],
    ) -> None:
        size = chunk_size(len(blobs), self._decode_threads)
        chunks = [blobs[start : start + size] for start in range(0, len(blobs), size)]
        decoded: list[list[Operation | Rejected]] = [[] for _ in chunks]
        ready = [trio.Event() for _ in chunks]

        in_order = iter(range(len(chunks)))
        # Bounds the chunks decoding or decoded but not yet applied (and so memory): workers
        # further ahead only take CPU and the GIL from applying and committing, which is what
        # the caller waits for.
        ahead = trio.Semaphore(self._decode_threads * _DECODE_AHEAD)

        async def decode_in_order() -> None:
            # Signature checks run in C without the GIL, so chunks verify in parallel; the
            # workers share one iterator, so chunks are taken in the order they are applied.
            for index in in_order:
                await ahead.acquire()
                decoded[index] = await trio.to_thread.run_sync(
                    # `peek`: memory only, safe beside this task applying (no store reads)
                    _decode_all,
                    chunks[index],
                    self.replica.peek,
                    limiter=self._decode_limiter,
                )
                ready[index].set()

        queued = [trio.Event() for _ in chunks]

        async def announce_as_committed() -> None:
            # Watchers hear of each chunk as soon as its commit lands, not only once the next
            # chunk has been decoded. This task alone pops `committing` while the nursery runs,
            # so its head is always chunk `index`.
            for index in range(len(chunks)):
                await queued[index].wait()
                ticket = committing[0][0]
                await ticket.wait_settled()
                if not ticket.committed:  # a failed commit stays queued for `_settle` to raise
                    return
                applied = committing.popleft()[1]
                await self._saved(applied)
                self._changes.announce(applied, source)

        stream_open = False  # the last chunk queued told the writer that more follow
        turn = self._apply_order.join()
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(self._decode_threads):
                    nursery.start_soon(decode_in_order)
                nursery.start_soon(announce_as_committed)
                task_status.started()
                await self._apply_order.wait_turn(turn)
                for index in range(len(chunks)):
                    await ready[index].wait()
                    self._check_writable()  # the node may have failed or closed meanwhile
                    # The chunks of one call share a transaction (`OpStore.enqueue`): fewer
                    # commits write each page they dirty in the store fewer times.
                    stream_open = index + 1 < len(chunks)
                    async with self._threads_in_memory(decoded[index]):
                        self._check_writable()
                        committing.append(
                            self._apply_chunk(
                                decoded[index], outcomes, position, more_follows=stream_open
                            )
                        )
                    queued[index].set()
                    decoded[index] = []
                    ahead.release()
                # Everything is applied and queued: `_settle` waits for and announces the rest.
                nursery.cancel_scope.cancel()
        finally:
            self._apply_order.leave(turn)
            if stream_open:  # stopped between chunks: a barrier commits what is queued now
                with contextlib.suppress(StoreError):  # then nothing is queued: nothing waits
                    committing.append((self.store.enqueue(WriteBatch()), []))

    @contextlib.asynccontextmanager
    async def _threads_in_memory(
        self, decoded: Sequence[Operation | Rejected]
    ) -> AsyncIterator[None]:
        """Rule 4: while the block runs, every thread ``decoded`` names that is held is in
        memory, and stays there (pinned); those that were not are read in worker threads."""
        replica = self.replica
        ops = [item for item in decoded if not isinstance(item, Rejected)]
        wanted = replica.threads_to_load(ops)
        if not wanted:  # the common case (gossip, a thread being written to): no checkpoint
            yield
            return
        with contextlib.ExitStack() as pins:
            # Those in memory too: loading the others must not push them out.
            for thread_id in dict.fromkeys(op.thread for op in ops):
                if thread_id is not None:
                    pins.enter_context(replica.pinned(thread_id))
            loads = [replica.claim_load(thread_id) for thread_id in wanted]
            try:
                await self._read_and_install(loads)
            finally:
                for load in loads:  # cancelled before it was installed: nothing is lost
                    replica.abandon_load(load)
            yield

    async def _read_and_install(self, loads: list[ThreadLoad]) -> None:
        """Read ``loads`` in worker threads, at most one per decode thread at a time, and
        install each on the loop as it is read, in order, one per step."""
        read = [trio.Event() for _ in loads]

        async def read_one(index: int) -> None:
            await trio.to_thread.run_sync(
                loads[index].read, self._source, limiter=self._decode_limiter
            )
            read[index].set()

        async with trio.open_nursery() as nursery:
            for index in range(len(loads)):
                nursery.start_soon(read_one, index)
            for index, load in enumerate(loads):
                await read[index].wait()  # a checkpoint even when it is set: one per step
                self.replica.install_load(load)

    def _apply_chunk(
        self,
        decoded: list[Operation | Rejected],
        outcomes: list[Outcome],
        position: dict[bytes, int],
        *,
        more_follows: bool = False,
    ) -> tuple[WriteTicket, list[Operation]]:
        """Apply one decoded chunk and queue its commit, with no checkpoint in between (so a
        cancellation can't leave applied operations without a queued commit). Returns the
        commit's ticket and the operations it makes applied, to announce once it is settled."""
        fresh: dict[bytes, tuple[Operation, OpState]] = {}
        promote: list[Operation] = []
        discard: list[bytes] = []
        applied: list[Operation] = []
        rejected = 0
        refused: list[tuple[Operation, Rejected]] = []
        apply = self.replica.apply
        for item in decoded:
            if isinstance(item, Rejected):
                outcomes.append(item)
                rejected += 1
                continue
            result = apply(item)
            outcome = result.outcome
            if isinstance(outcome, Applied):
                fresh[item.id] = (item, OpState.APPLIED)
                applied.append(item)
            elif isinstance(outcome, Pending):
                fresh[item.id] = (item, OpState.PENDING)
                position[item.id] = len(outcomes)
            elif isinstance(outcome, Rejected):
                rejected += 1
                refused.append((item, outcome))
            outcomes.append(outcome)
            for released, released_outcome in result.released:
                released_id = released.id
                if isinstance(released_outcome, Applied):
                    applied.append(released)
                    if released_id in fresh:
                        fresh[released_id] = (released, OpState.APPLIED)
                    else:  # stored as pending by an earlier commit
                        promote.append(released)
                else:
                    rejected += 1
                    refused.append((released, released_outcome))
                    if released_id in fresh:
                        del fresh[released_id]
                    else:
                        discard.append(released_id)
                if released_id in position:  # it waited earlier in this very call
                    outcomes[position.pop(released_id)] = released_outcome
        self._rejected += rejected
        if refused:
            now_ms = self._clock()
            for op, why in refused:
                self._rejections.record(op, why, at_ms=now_ms)
        batch = WriteBatch(
            insert=list(fresh.values()),
            promote=promote,
            discard=discard,
            listings=listings.changed(self.replica, applied),
        )
        try:
            return self.store.enqueue(batch, more_follows=more_follows), applied
        except BaseException as error:  # applied in memory but never to be committed: rule 2
            self._failure = error
            raise

    async def _saved(self, applied: list[Operation]) -> None:
        """`Replica.saved`, dropping what it lets go a slice per step (rule 4): after a chunk
        that needed a hundred threads loaded, that many leave the cache."""
        replica = self.replica
        replica.saved(applied, evict=False)
        with trio.CancelScope(shield=True):  # memory is bounded even for a cancelled caller
            while replica.evict(EVICT_STEP):
                await trio.lowlevel.checkpoint()

    async def _settle(
        self,
        committing: deque[tuple[WriteTicket, list[Operation]]],
        source: str,
        *,
        raise_errors: bool,
    ) -> None:
        """Wait for queued commits in order and announce what each made applied (rule 3). A
        failed commit means memory is ahead of disk: the node stops taking writes (rule 2)."""
        failure: BaseException | None = None
        for ticket, applied in committing:
            try:
                await ticket.wait()
            except Exception as error:  # recorded for rule 2, raised below
                self._failure = failure = failure or error
                continue
            await self._saved(applied)
            self._changes.announce(applied, source)
        if failure is not None and raise_errors:
            raise failure
