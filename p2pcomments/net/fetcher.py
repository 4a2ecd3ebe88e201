"""Targeted fetch: what pending operations miss is asked of the peer that sent them.

Rules:

1. Pending operations (from gossip or sync) make us fetch what they miss from the peer that sent
   them: a sync session with only a WANT, gathered for `NetworkConfig.fetch_delay`, each id tried
   at most `NetworkConfig.max_fetch_attempts` times (then the periodic sync finds it).
2. An id one of our sessions has asked for is not fetched until that session is over
   (`sync_slots` rule 2); a peer a session is running with is not sent a fetch meanwhile; both
   wait, without counting as an attempt, until a session ends.
3. Operations a peer sent by sync that core rejects count against it (`P2PHost.report_invalid`);
   by gossip, the validator has blamed the forwarder already. An operation refused as ``unpaid``
   (SPEC §11.6) does not: the peer may have held it from before its thread's difficulty was set.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final, Protocol

import trio

from p2pcomments.core.replica import Outcome, Pending, Rejected
from p2pcomments.core.sync_protocol import SyncSession
from p2pcomments.errors import P2PCommentsError
from p2pcomments.net.config import NetworkConfig
from p2pcomments.net.host import P2PHost
from p2pcomments.net.network_statistics import Tally
from p2pcomments.net.sync_slots import Pair, SyncSlots, declined

if TYPE_CHECKING:
    from p2pcomments.node import Node

__all__ = ["Fetcher", "Initiate"]

logger = logging.getLogger(__name__)

_MAX_FETCH_IDS: Final = 10_000  # ids per targeted fetch session
_MAX_TRACKED_ATTEMPTS: Final = 100_000
_jitter = random.SystemRandom()


class Initiate(Protocol):
    """`SyncRunner.initiate`: run one session we open with a peer."""

    async def __call__(
        self, peer_id: str, pair: Pair, *, reconcile: bool, want: Sequence[bytes]
    ) -> SyncSession: ...


class Fetcher:
    """Rules 1-3. `run` is the fetch loop; it opens sessions with the ``initiate`` it is given."""

    def __init__(
        self, node: Node, host: P2PHost, config: NetworkConfig, slots: SyncSlots, tally: Tally
    ) -> None:
        self.node = node
        self.config = config
        self._host = host
        self._slots = slots
        self._tally = tally
        self._fetch_wanted: dict[str, set[bytes]] = {}
        self._fetch_attempts: dict[bytes, int] = {}
        self._fetch_wakeup = trio.Event()

    def wake_if_wanted(self) -> None:
        """A session ended: what waited for it may be fetched now (rule 2)."""
        if self._fetch_wanted:
            self._fetch_wakeup.set()

    def after_ingest(self, peer: str, outcomes: Sequence[Outcome], *, blame: bool) -> None:
        """Fetch what pending operations miss (rule 1); blame the peer for rejected ones."""
        missing: set[bytes] = set()
        rejected = 0
        for outcome in outcomes:
            if isinstance(outcome, Pending):
                missing |= outcome.missing
            elif isinstance(outcome, Rejected) and outcome.reason != "unpaid":
                rejected += 1
        if rejected and blame:
            self._tally.rejected_from_peers += rejected
            self._host.report_invalid(peer, f"{rejected} invalid operations in sync")
        if missing:
            self.request(peer, missing)

    def request(self, peer: str, ids: Iterable[bytes]) -> None:
        wanted = self._fetch_wanted.setdefault(peer, set())
        limit = self.config.max_fetch_attempts
        for op_id in ids:
            if self._fetch_attempts.get(op_id, 0) < limit:
                wanted.add(op_id)
        if not wanted:
            del self._fetch_wanted[peer]
            return
        self._fetch_wakeup.set()

    def defer(self, peer: str, ids: Iterable[bytes]) -> None:
        """Ask again later, not counted as an attempt: woken when a session ends (rule 2)."""
        self._fetch_wanted.setdefault(peer, set()).update(ids)

    async def run(self, initiate: Initiate) -> None:
        while True:
            await self._fetch_wakeup.wait()
            self._fetch_wakeup = trio.Event()
            await trio.sleep(self.config.fetch_delay)  # gather what a burst leaves pending
            requests, self._fetch_wanted = self._fetch_wanted, {}
            if len(self._fetch_attempts) > _MAX_TRACKED_ATTEMPTS:
                self._fetch_attempts.clear()
            async with trio.open_nursery() as nursery:
                for peer, ids in requests.items():
                    missing = sorted(i for i in ids if self.node.replica.get(i) is None)
                    coming = [i for i in missing if i in self._slots.asked]
                    if coming:  # another session of ours asked for them: see what it brings
                        self.defer(peer, coming)
                    still = [i for i in missing if i not in self._slots.asked]
                    if not still:
                        continue
                    if not self._host.is_connected(peer):
                        peers = self._host.peers()
                        if not peers:
                            continue
                        peer = _jitter.choice(peers)
                    if self._slots.busy_with(
                        peer
                    ):  # a session with it is moving operations already
                        self.defer(peer, still)
                        continue
                    for op_id in still:
                        self._fetch_attempts[op_id] = self._fetch_attempts.get(op_id, 0) + 1
                    nursery.start_soon(self._fetch_from, initiate, peer, still[:_MAX_FETCH_IDS])

    async def _fetch_from(self, initiate: Initiate, peer: str, ids: list[bytes]) -> None:
        try:
            async with self._slots.opening(peer, wait=False) as pair:
                if pair is None:  # a session with it began meanwhile
                    self.defer(peer, ids)
                    return
                self._tally.fetch_sessions += 1
                self._tally.fetch_ids_requested += len(ids)
                session = await initiate(peer, pair, reconcile=False, want=ids)
            if declined(session):
                self.request(peer, ids)  # counted as an attempt: a peer may stay busy
        except P2PCommentsError as error:
            logger.warning("fetching from %s failed: %s", peer, error)
