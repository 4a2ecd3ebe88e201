"""Running sync sessions: the item snapshot, opening and serving the stream, driving the
sans-IO `core.sync_protocol.SyncSession` over it, and ingesting what it brings.

Rules:

1. A session's item set is a snapshot of the store's applied operations, shared by sessions
   while nothing new is applied.
2. The protocol is half-duplex: we write every frame the session has, then read one. Received
   operations are ingested by a second task a few frames behind, so reading and verifying the
   next frame overlaps with storing the last, two calls at a time (the next verifies while the
   last applies: `node.ingest` rule 5); a session is over once all of them are ingested.
3. A peer's fault in sync (a protocol violation, an operation core rejects) is a strike against
   it (`P2PHost.report_invalid`); enough strikes disconnect and ban it. Timeouts, closed streams,
   declined sessions and limits reached are not faults. Nothing a peer sends raises out of a
   handler or a task.
4. A peer may hand us ``NetworkConfig.sync_ops_per_second`` operations (bursts up to
   ``sync_ops_burst``); over that we read more slowly.
5. The loop stays live: what is O(items) runs in worker threads (the snapshot and its
   fingerprint; the coded symbols of a sketch, `core.sync_protocol` rule 8).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import trio

from p2pcomments.core.reconcile import INFINITY, MIN_BOUND, SortedItems
from p2pcomments.core.replica import Duplicate
from p2pcomments.core.sync_protocol import (
    PROTOCOL_ID,
    SyncError,
    SyncLimits,
    SyncSession,
    encode_error,
)
from p2pcomments.net.config import NetworkConfig
from p2pcomments.net.errors import NetError, StreamProtocolError
from p2pcomments.net.fetcher import Fetcher
from p2pcomments.net.host import P2PHost
from p2pcomments.net.network_statistics import Tally
from p2pcomments.net.peer_accounting import PeerRateLimiter
from p2pcomments.net.streams import FramedStream, open_framed_stream, serve_framed
from p2pcomments.net.sync_slots import BUSY, InitiatorOps, Pair, ReplicaOps, SyncSlots, declined

if TYPE_CHECKING:
    from trio_typing import TaskStatus

    from p2pcomments.node import Node
    from p2pcomments.store.op_store import OpStore

__all__ = ["SyncRunner"]

logger = logging.getLogger(__name__)

_SYNC_FRAME_TIMEOUT: Final = 30.0
_ERROR_FLUSH_SECONDS: Final = 1.0
# OPS frames received but not yet ingested, per session (each at most our max_frame_bytes), and
# the most operations handed to one `Node.ingest` call: frames that queued up while the last call
# ran go together, since each call ends by waiting for its last commit and starts by waiting for
# its first chunk's signatures, and fewer calls leave fewer such gaps in a catch-up.
_INGEST_AHEAD: Final = 8
_MAX_INGEST_BATCH: Final = 5_000
_INGEST_CALLS_IN_FLIGHT: Final = 2  # one applying and committing, the next verifying
_DECLINE_SECONDS: Final = 5.0  # how long declining a session may take (`sync_slots` rule 1)


def _snapshot(store: OpStore) -> SortedItems:
    """The applied items, read in a worker thread with their whole-set fingerprint (what every
    session starts with: O(items) prefix sums) computed there too, not on the event loop."""
    items = SortedItems(store.iter_applied_keys())
    items.fingerprint(MIN_BOUND, INFINITY)
    return items


class SyncRunner:
    """Rules 1-5. Registers the sync protocol's handler on the host when built."""

    def __init__(
        self,
        node: Node,
        host: P2PHost,
        config: NetworkConfig,
        limits: SyncLimits,
        *,
        slots: SyncSlots,
        fetcher: Fetcher,
        tally: Tally,
    ) -> None:
        self.node = node
        self.config = config
        self.limits = limits
        self._host = host
        self._slots = slots
        self._fetcher = fetcher
        self._tally = tally
        self._ops = ReplicaOps(node.replica)
        self._sync_rate = PeerRateLimiter(
            rate=config.sync_ops_per_second, burst=config.sync_ops_burst
        )
        # The coded symbols we encode for each peer as responder (SPEC §9.7): a budget.
        self._sketch_budget = PeerRateLimiter(
            rate=config.sketch_symbols_per_second, burst=config.sketch_symbols_burst
        )
        self._snapshot: SortedItems | None = None
        self._snapshot_count = -1
        self._snapshot_lock = trio.Lock()
        serve_framed(
            host,
            PROTOCOL_ID,
            self._serve_sync,
            max_frame_size=limits.max_frame_bytes,
            frame_timeout=_SYNC_FRAME_TIMEOUT,
            max_streams_per_peer=config.max_sync_streams_per_peer,
        )

    def forget(self, peer_id: str) -> None:
        """The peer disconnected: drop its rate budget (its sketch budget stays until refilled:
        reconnecting must not reset it)."""
        self._sync_rate.forget(peer_id)
        self._sketch_budget.prune(trio.current_time())

    async def items(self) -> SortedItems:
        """The item snapshot sessions reconcile, rebuilt only after something was applied."""
        async with self._snapshot_lock:
            count = self.node.replica.operation_count()
            if self._snapshot is not None and self._snapshot_count == count:
                return self._snapshot
            store = self.node.store
            # Read from SQLite in a worker thread: the event loop keeps serving meanwhile.
            items = await trio.to_thread.run_sync(_snapshot, store)
            if len(items) >= count:
                # Otherwise an ingest was applied in memory but not yet committed: don't keep a
                # snapshot that would stay behind until the next change.
                self._snapshot, self._snapshot_count = items, count
            return items

    async def initiate(
        self, peer_id: str, pair: Pair, *, reconcile: bool, want: Sequence[bytes]
    ) -> SyncSession:
        """Open a sync stream to ``peer_id`` and run one session as initiator (``pair`` is the
        slot it holds, `sync_slots` rule 1)."""
        ops = self._slots.initiator_ops(self.node.replica)
        ops.ask(want)
        try:
            if reconcile:
                # `sync_slots` rule 2 needs each id in full before it is asked for; a sketch
                # (short ids) or WANT_ALL (none) asks without that, so two reconciling sessions
                # of ours would both fetch what both peers hold. They run one at a time.
                async with self._slots.reconciling:
                    session = await self._run_initiator(
                        peer_id, pair, ops, reconcile=True, want=want
                    )
            else:
                session = await self._run_initiator(peer_id, pair, ops, reconcile=False, want=want)
        finally:
            ops.release()
            self._fetcher.wake_if_wanted()  # what waited for this session's ids may go now
        # What we left to another session and it did not bring: fetch it now (`sync_slots` 2).
        left = [i for i in ops.left_to_others if self.node.replica.get(i) is None]
        if left:
            self._fetcher.request(peer_id, left)
        return session

    async def _run_initiator(
        self,
        peer_id: str,
        pair: Pair,
        ops: InitiatorOps,
        *,
        reconcile: bool,
        want: Sequence[bytes],
    ) -> SyncSession:
        items = await self.items()
        session = SyncSession(
            items,
            ops,
            initiator=True,
            now=trio.current_time(),
            limits=self.limits,
            reconcile=reconcile,
            want=want,
        )
        self._tally.sync_initiated += 1
        try:
            async with open_framed_stream(
                self._host,
                peer_id,
                PROTOCOL_ID,
                max_frame_size=self.limits.max_frame_bytes,
                frame_timeout=_SYNC_FRAME_TIMEOUT,
            ) as stream:
                await self._drive(stream, session, pair)
        except NetError as error:  # could not open the stream (dial failed, banned)
            session.abort(SyncError(str(error), reason=error.reason))
        self._account(peer_id, session)
        return session

    async def _serve_sync(self, stream: FramedStream) -> None:
        """A peer's sync session, as responder (registered with `serve_framed`)."""
        peer = stream.peer_id
        pair = self._slots.admit(peer)  # before the snapshot: building it can take a while
        if pair is None:
            await self._decline(stream)
            return
        try:
            items = await self.items()
            now = trio.current_time()
            allowance = int(self._sketch_budget.available(peer, now))
            limits = self.limits
            if allowance < limits.max_sketch_symbols:
                limits = dataclasses.replace(limits, max_sketch_symbols=allowance)
            session = SyncSession(items, self._ops, initiator=False, now=now, limits=limits)
            self._tally.sync_served += 1
            try:
                await self._drive(stream, session, None)
            finally:  # what it encoded is charged, however the session ended
                served = session.sketch_symbols_served
                if served:
                    self._sketch_budget.allow(peer, trio.current_time(), min(served, allowance))
        finally:
            self._slots.end_incoming(peer, pair)
        self._account(peer, session)

    async def _drive(self, stream: FramedStream, session: SyncSession, pair: Pair | None) -> None:
        """Run ``session`` over ``stream`` to its end. Received operations are ingested by a
        second task, a few frames behind the conversation, so reading and verifying the next
        frame overlaps with storing the last; this returns once all of them are ingested.
        ``pair`` is the slot of a session we opened: it learns when the peer answers."""
        send, receive = trio.open_memory_channel[tuple[bytes, ...]](_INGEST_AHEAD)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._ingest_received, stream.peer_id, receive)
            async with send:
                await self._converse(stream, session, send, pair)

    async def _converse(
        self,
        stream: FramedStream,
        session: SyncSession,
        received: trio.MemorySendChannel[tuple[bytes, ...]],
        pair: Pair | None,
    ) -> None:
        """Carry frames between the session and the stream until it is over (the protocol is
        half-duplex: write everything we have, then read one frame)."""
        peer = stream.peer_id
        try:
            with trio.move_on_at(session.deadline):
                while True:
                    while (frame := await self._next_frame(session)) is not None:
                        await stream.write_frame(frame)
                    if session.done:
                        return
                    data = await stream.read_frame()
                    if session.frame_is_costly(data):  # coded symbols: O(items), rule 5
                        await trio.to_thread.run_sync(session.prepare_frame, data)
                    session.receive_frame(data, now=trio.current_time())
                    if pair is not None and session.error is None:
                        pair.answered = True  # its HELLO came: the peer took our session
                    while (event := session.next_event()) is not None:
                        await received.send(event.ops)
            session.handle_timer(trio.current_time())
            with trio.move_on_after(_ERROR_FLUSH_SECONDS):  # tell the peer why, if it listens
                while (frame := session.next_frame()) is not None:
                    await stream.write_frame(frame)
        except NetError as error:
            session.abort(
                SyncError(
                    f"the stream with {peer} failed: {error}",
                    reason=error.reason,
                    peer_fault=isinstance(error, StreamProtocolError),
                )
            )

    @staticmethod
    async def _next_frame(session: SyncSession) -> bytes | None:
        """`session.next_frame`, in a worker thread when it reads operations from the store (an
        OPS frame, ~500 random reads: tens of milliseconds) and the source is the replica's own
        (a session we serve: `ReplicaOps` reads memory and the store only; an initiator's source
        keeps books shared with our other sessions, on the loop)."""
        if not session.initiator and session.next_frame_reads_operations():
            return await trio.to_thread.run_sync(session.next_frame)
        return session.next_frame()

    async def _ingest_received(
        self, peer: str, received: trio.MemoryReceiveChannel[tuple[bytes, ...]]
    ) -> None:
        # The next call starts once the last has its place in the order of applying (`ingest`
        # rule 5), so its signatures are checked while the last applies and commits.
        in_flight = trio.Semaphore(_INGEST_CALLS_IN_FLIGHT)
        async with received, trio.open_nursery() as nursery:
            async for first in received:
                ops = list(first)
                while len(ops) < _MAX_INGEST_BATCH:
                    try:
                        ops += received.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._charge(peer, len(ops))
                await in_flight.acquire()
                await nursery.start(self._ingest_batch, peer, ops, in_flight)

    async def _ingest_batch(
        self,
        peer: str,
        ops: list[bytes],
        in_flight: trio.Semaphore,
        task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            outcomes = await self.node.ingest(ops, source="sync", task_status=task_status)
        finally:
            in_flight.release()
        # Held already: gossip (or a session with another peer) brought it meanwhile.
        self._tally.sync_ops_duplicate += sum(
            1 for outcome in outcomes if isinstance(outcome, Duplicate)
        )
        self._fetcher.after_ingest(peer, outcomes, blame=True)

    async def _charge(self, peer: str, cost: int) -> None:
        """Per-peer ops/s budget for sync: over it, we read more slowly (rule 4)."""
        cost = min(cost, int(self.config.sync_ops_burst))
        # A token bucket refills with time, not on an event: sleep for about the deficit.
        while not self._sync_rate.allow(peer, trio.current_time(), cost):  # noqa: ASYNC110
            await trio.sleep(min(1.0, cost / self.config.sync_ops_per_second))

    def _account(self, peer: str, session: SyncSession) -> None:
        result = session.result()
        stats = self._tally
        stats.sync_ops_received += result.ops_received
        stats.sync_ops_sent += result.ops_sent
        stats.sync_bytes_received += result.bytes_received
        stats.sync_bytes_sent += result.bytes_sent
        error = result.error
        if error is None:
            stats.sync_rounds += 1
            stats.sync_equal += result.equal
            return
        if declined(session):
            stats.sync_declined += 1
            return
        stats.sync_failed += 1
        stats.last_sync_error = error.reason
        if error.peer_fault:
            stats.sync_violations += 1
            stats.rejected_from_peers += 1
            self._host.report_invalid(peer, f"sync: {error.reason}")
        logger.info("sync with %s ended early: %s (%s)", peer, error.reason, error.message)

    async def _decline(self, stream: FramedStream) -> None:
        """`sync_slots` rule 1: the peer speaks first (its HELLO); the answer is ERROR ``busy``."""
        self._tally.sync_refused += 1
        with trio.move_on_after(_DECLINE_SECONDS):
            try:
                await stream.read_frame()
                await stream.write_frame(encode_error(BUSY))
            except NetError as error:
                logger.debug("declining a session of %s: %s", stream.peer_id, error)
