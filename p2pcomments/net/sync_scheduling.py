"""When sync runs: on connect, on a timer and on demand, in rounds of sessions.

Rules:

1. Sync runs when a connection opens (the dialling side starts it), every ``sync_interval`` with
   one random connected peer that no session is running with, and on demand (`sync_now`).
2. A round is a session, and more while one ends at a size or time limit having moved
   operations (a large backlog takes several sessions), up to a bound per round.
3. A background round is skipped while a session with the peer is in flight (`sync_slots`
   rule 1); its failure is logged, never raised into the nursery. `sync_now` waits for the
   session in flight, and tries a few times (backing off) when the peer declines as busy.
"""

from __future__ import annotations

import logging
import random
from typing import Final

import trio
from libp2p.peer.id import ID

from p2pcomments.errors import NotFound, P2PCommentsError
from p2pcomments.net.config import NetworkConfig
from p2pcomments.net.host import P2PHost
from p2pcomments.net.service import SyncCounts
from p2pcomments.net.sync_running import SyncRunner
from p2pcomments.net.sync_slots import BUSY, Pair, SyncSlots

__all__ = ["SyncScheduler"]

logger = logging.getLogger(__name__)

# A session that ends at one of these limits (ours or the peer's) after moving operations is
# followed at once by another, up to this many per round (rule 2).
_LIMIT_REASONS: Final = frozenset(
    {"session-bytes", "deadline", "too-many-rounds", "too-many-wants"}
)
_MAX_SESSIONS_PER_ROUND: Final = 16
# How often (and after what first pause, doubling) `sync_now` tries again when the peer is
# still busy (rule 3).
_BUSY_ATTEMPTS: Final = 6
_BUSY_BACKOFF: Final = 0.1
_jitter = random.SystemRandom()


class SyncScheduler:
    """Rules 1-3. `run` is the periodic timer."""

    def __init__(
        self, host: P2PHost, config: NetworkConfig, slots: SyncSlots, runner: SyncRunner
    ) -> None:
        self.config = config
        self._host = host
        self._slots = slots
        self._runner = runner

    async def on_peer_connected(self, peer_id: str) -> None:
        if self.config.sync_on_connect and self._we_dialled(peer_id):
            await self._sync_quietly(peer_id)

    def _we_dialled(self, peer_id: str) -> bool:
        """Whether one of our connections to the peer is outbound (rule 1: the dialler syncs)."""
        try:
            conns = self._host.libp2p_host.get_network().get_connections(ID.from_base58(peer_id))
        except (ValueError, KeyError):
            return False
        return any(getattr(conn.muxed_conn, "is_initiator", False) for conn in conns)

    async def run(self) -> None:
        interval = self.config.sync_interval
        if interval <= 0:
            return
        while True:
            await trio.sleep(interval * _jitter.uniform(0.8, 1.2))
            # A peer a session is running with is being synced already (rule 3).
            peers = [peer for peer in self._host.peers() if not self._slots.busy_with(peer)]
            if peers:
                await self._sync_quietly(_jitter.choice(peers))

    async def _sync_quietly(self, peer_id: str) -> None:
        """A background round, skipped while a session with the peer is in flight (rule 3); its
        failure is logged, never raised into the nursery."""
        try:
            await self.sync_with(peer_id, wait=False)
        except P2PCommentsError as error:  # the store failed, the node is closing...
            logger.warning("sync with %s failed: %s", peer_id, error)

    async def sync_with(self, peer_id: str, *, wait: bool) -> SyncCounts | None:
        """One sync round with ``peer_id``: a session, and more while one ends at a size or time
        limit having moved operations (a large backlog takes several sessions). None when a
        session with the peer is in flight and not ``wait``; with ``wait``, a round the peer
        declines (it is still busy with the last one) is tried again a few times."""
        for attempt in range(_BUSY_ATTEMPTS if wait else 1):
            if attempt:
                await trio.sleep(_BUSY_BACKOFF * 2 ** (attempt - 1))
            async with self._slots.opening(peer_id, wait=wait) as pair:
                if pair is None:
                    return None
                counts = await self._round(peer_id, pair)
            if counts.failed.get(peer_id) != BUSY:
                break
        return counts

    async def _round(self, peer_id: str, pair: Pair) -> SyncCounts:
        received = sent = 0
        for _ in range(_MAX_SESSIONS_PER_ROUND):
            session = await self._runner.initiate(peer_id, pair, reconcile=True, want=())
            result = session.result()
            received += result.ops_received
            sent += result.ops_sent
            error = result.error
            progressed = result.ops_received or result.ops_sent
            if error is None or error.reason not in _LIMIT_REASONS or not progressed:
                break
        return SyncCounts(
            peers_synced=0 if error is not None else 1,
            received=received,
            sent=sent,
            failed={} if error is None else {peer_id: error.reason},
        )

    async def sync_now(self, peer_id: str | None = None) -> SyncCounts:
        """Run a sync round now, with ``peer_id`` or with every connected peer at once, and
        return when it is over (after the session in flight with a peer, if one is). Raises
        `NotFound` when ``peer_id`` is not connected."""
        if peer_id is not None:
            if not self._host.is_connected(peer_id):
                raise NotFound(f"not connected to {peer_id}", reason="peer-not-connected")
            peers = [peer_id]
        else:
            peers = self._host.peers()
        results: list[SyncCounts] = []

        async def one(peer: str) -> None:
            counts = await self.sync_with(peer, wait=True)
            assert counts is not None  # with wait=True, a round always runs
            results.append(counts)

        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(one, peer)
        failed: dict[str, str] = {}
        for counts in results:
            failed.update(counts.failed)
        return SyncCounts(
            peers_synced=sum(c.peers_synced for c in results),
            received=sum(c.received for c in results),
            sent=sum(c.sent for c in results),
            failed=failed,
        )
