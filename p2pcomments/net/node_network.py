"""The network service of a Node: gossip, set-reconciliation sync and discovery on py-libp2p.

``await nursery.start(NodeNetwork(node, config).run)`` starts it; cancelling that task stops it.
Validity is core's: the network decides what to ask, send and whom to blame, never what is true.
`NodeNetwork` wires its parts together, each in its own module with its own rules:

- `p2pcomments.net.host.P2PHost`: identity, listening, bootstrap/remembered/mDNS peers with
  redial, strikes and bans; `p2pcomments.net.gossip.Gossip`: topics, batches, the validator hook.
- `topics`: which topics to join (follows); `publisher`: gossip out; `gossip_intake`: the
  validator and gossip in; `fetcher`: fetching what pending operations miss;
  `sync_slots`: which sessions may run (one per peer pair); `sync_running`: running a session;
  `sync_scheduling`: when sync runs (on connect, on a timer, on demand).

Rules:

1. A `NodeNetwork` runs once; while it runs, ``node.network`` is it and ``network.json`` in the
   data dir names it (written once it listens and has joined its topics, removed when it stops).
2. Nothing a peer sends raises out of a handler or a task (each part says how it is handled).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio
from libp2p.peer.id import ID

from p2pcomments.clock import wall_clock_ms
from p2pcomments.core.sync_protocol import SyncLimits
from p2pcomments.errors import ConflictError
from p2pcomments.follows import FollowList
from p2pcomments.net.config import NetworkConfig, default_listen_addrs
from p2pcomments.net.fetcher import Fetcher
from p2pcomments.net.gossip import Gossip, GossipConfig
from p2pcomments.net.gossip_intake import GossipIntake
from p2pcomments.net.host import HostConfig, P2PHost
from p2pcomments.net.network_file import remove_network_file, write_network_file
from p2pcomments.net.network_statistics import NetworkCounters, NetworkStatistics, Tally
from p2pcomments.net.publisher import MAX_MESSAGE_OPS, Publisher
from p2pcomments.net.service import NetworkDescription, PeerSummary, SyncCounts
from p2pcomments.net.sync_running import SyncRunner
from p2pcomments.net.sync_scheduling import SyncScheduler
from p2pcomments.net.sync_slots import SyncSlots
from p2pcomments.net.topics import Topics

if TYPE_CHECKING:
    # libp2p depends on trio-typing, whose stale `trio-stubs` shadow trio's own annotations for
    # mypy; with them, this is the TaskStatus that `nursery.start` and TASK_STATUS_IGNORED use.
    from trio_typing import TaskStatus

    from p2pcomments.node import Node

__all__ = ["NodeNetwork", "open_network"]

logger = logging.getLogger(__name__)


class NodeNetwork:
    """One Node on the network (module rules 1-2, and those of its parts)."""

    def __init__(
        self,
        node: Node,
        config: NetworkConfig | None = None,
        *,
        sync_limits: SyncLimits | None = None,
    ) -> None:
        self.node = node
        self.config = config = config or NetworkConfig()
        self.sync_limits = sync_limits or SyncLimits()
        self.follows = FollowList.load(node.data_dir)
        self._host = P2PHost(
            HostConfig(
                data_dir=node.data_dir,
                listen_addrs=config.listen_addrs or default_listen_addrs(),
                bootstrap_addrs=config.bootstrap_addrs,
                enable_mdns=config.enable_mdns,
                max_invalid_strikes=config.max_invalid_strikes,
                strike_window=config.strike_window,
                ban_duration=config.ban_duration,
            ),
            on_peer_connected=self._on_peer_connected,
            on_peer_disconnected=self._on_peer_disconnected,
        )
        self._tally = Tally()
        self._slots = SyncSlots(self._host.peer_id, on_release=self._session_released)
        self._fetcher = Fetcher(node, self._host, config, self._slots, self._tally)
        self._intake = GossipIntake(node, self._host, config, self._fetcher, self._tally)
        self._gossip = Gossip(
            self._host,
            validate_batch=self._intake.validate_batch,
            on_batch=self._intake.on_batch,
            # We batch ourselves (`publisher`), without delaying a lone operation.
            config=GossipConfig(coalesce_window=0, max_batch_ops=MAX_MESSAGE_OPS),
        )
        self._runner = SyncRunner(
            node,
            self._host,
            config,
            self.sync_limits,
            slots=self._slots,
            fetcher=self._fetcher,
            tally=self._tally,
        )
        self._scheduler = SyncScheduler(self._host, config, self._slots, self._runner)
        self._topics = Topics(node, self.follows, self._gossip)
        self._publisher = Publisher(node, self._gossip, self._topics, self._tally)
        self._connected_since: dict[str, int] = {}
        self._running = False

    # -- identity ---------------------------------------------------------------------------

    @property
    def peer_id(self) -> str:
        return self._host.peer_id

    @property
    def host(self) -> P2PHost:
        return self._host

    @property
    def gossip(self) -> Gossip:
        return self._gossip

    def multiaddrs(self) -> list[str]:
        """Full dialable multiaddrs (``…/p2p/<peer id>``) once listening."""
        suffix = f"/p2p/{self.peer_id}"
        return [a if a.endswith(suffix) else a + suffix for a in self._host.multiaddrs()]

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the host, join the followed topics, and serve until cancelled.

        ``task_status.started()`` once listening and subscribed; ``network.json`` exists from then
        until the service stops.
        """
        if self._running:
            raise RuntimeError("a NodeNetwork runs once")
        self._running = True
        self._topics.follow_authored_threads()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._host.run)
                await nursery.start(self._gossip.run)
                await nursery.start(self._publisher.run)
                await self._topics.refresh()
                nursery.start_soon(self._scheduler.run)
                nursery.start_soon(self._fetcher.run, self._runner.initiate)
                write_network_file(
                    self.node.data_dir, peer_id=self.peer_id, multiaddrs=self.multiaddrs()
                )
                logger.info("network up: %s", " ".join(self.multiaddrs()))
                self.node.network = self
                task_status.started()
                await trio.sleep_forever()
        finally:
            if self.node.network is self:
                self.node.network = None
            remove_network_file(self.node.data_dir)

    # -- follows (`topics`) ------------------------------------------------------------------

    async def follow(self, *, thread: bytes | None = None, site: str | None = None) -> bool:
        """Follow a thread or a site and join its topic; return whether anything changed.
        Raises ValueError for a malformed site and OSError when the file can't be written."""
        changed = self.follows.follow(thread=thread, site=site)
        if changed and self._running:
            await self._topics.refresh()
        return changed

    async def unfollow(self, *, thread: bytes | None = None, site: str | None = None) -> bool:
        """Stop following a thread or a site and leave its topic unless something else needs it."""
        changed = self.follows.unfollow(thread=thread, site=site)
        if changed and self._running:
            await self._topics.refresh()
        return changed

    # -- sync (`sync_scheduling`) --------------------------------------------------------------

    async def _on_peer_connected(self, peer_id: str) -> None:
        self._connected_since[peer_id] = wall_clock_ms()
        await self._scheduler.on_peer_connected(peer_id)

    async def _on_peer_disconnected(self, peer_id: str) -> None:
        self._connected_since.pop(peer_id, None)
        self._runner.forget(peer_id)

    def _session_released(self) -> None:
        self._fetcher.wake_if_wanted()

    async def sync_now(self, peer_id: str | None = None) -> SyncCounts:
        """Run a sync round now, with ``peer_id`` or with every connected peer at once, and
        return when it is over (after the session in flight with a peer, if one is). Raises
        `NotFound` when ``peer_id`` is not connected and `ConflictError` when the network is not
        running."""
        if not self._running:
            raise ConflictError("the network is not running", reason="network-off")
        return await self._scheduler.sync_now(peer_id)

    # -- peers and statistics -------------------------------------------------------------------

    async def connect(self, multiaddr: str) -> str:
        """Dial a peer (``/…/p2p/<peer id>``), keep redialling it, return its peer id. Raises
        ValueError for a malformed address, `PeerBanned` or `DialError`."""
        return await self._host.connect(multiaddr)

    def peers(self) -> list[PeerSummary]:
        peerstore = self._host.libp2p_host.get_peerstore()
        summaries = []
        for peer_id in self._host.peers():
            try:
                addrs = tuple(str(a) for a in peerstore.addrs(ID.from_base58(peer_id)))
            except (KeyError, ValueError):  # nothing known (yet) for it
                addrs = ()
            summaries.append(
                PeerSummary(
                    peer_id=peer_id,
                    addrs=addrs,
                    connected_since_ms=self._connected_since.get(peer_id, wall_clock_ms()),
                )
            )
        return summaries

    def counters(self) -> NetworkCounters:
        """The numeric counters (``GET /api/statistics`` → ``network``)."""
        tally = self._tally
        return NetworkCounters(
            peers=len(self._host.peers()),
            gossip_batches_in=tally.gossip_batches_in,
            gossip_ops_in=tally.gossip_ops_in,
            sync_rounds=tally.sync_rounds,
            rejected_from_peers=tally.rejected_from_peers,
            banned_peers=self._host.statistics().banned_peers,
            gossip_ops_applied=tally.gossip_ops_applied,
            gossip_rejected_batches=tally.gossip_rejected_batches,
            published_ops=tally.published_ops,
            published_lagged=tally.published_lagged,
            sync_initiated=tally.sync_initiated,
            sync_served=tally.sync_served,
            sync_equal=tally.sync_equal,
            sync_failed=tally.sync_failed,
            sync_violations=tally.sync_violations,
            sync_declined=tally.sync_declined,
            sync_refused=tally.sync_refused,
            sync_ops_received=tally.sync_ops_received,
            sync_ops_duplicate=tally.sync_ops_duplicate,
            sync_ops_sent=tally.sync_ops_sent,
            sync_bytes_received=tally.sync_bytes_received,
            sync_bytes_sent=tally.sync_bytes_sent,
            fetch_sessions=tally.fetch_sessions,
            fetch_ids_requested=tally.fetch_ids_requested,
        )

    def statistics(self) -> NetworkStatistics:
        """Everything: `counters`, the topics joined, the host's and gossip's own statistics."""
        return NetworkStatistics(
            counters=self.counters(),
            last_sync_error=self._tally.last_sync_error,
            topics=tuple(self._gossip.subscriptions()),
            host=self._host.statistics(),
            gossip=self._gossip.statistics(),
        )

    def describe(self) -> NetworkDescription:
        """What ``GET /api/network`` shows (the API makes its JSON)."""
        return NetworkDescription(
            peer_id=self.peer_id,
            multiaddrs=tuple(self.multiaddrs()),
            peers=tuple(self.peers()),
            follows=self.follows.follows,
            statistics=self.statistics(),
        )


@asynccontextmanager
async def open_network(
    node: Node, config: NetworkConfig | None = None
) -> AsyncIterator[NodeNetwork]:
    """Run ``node``'s network for the duration of the block, for embedders::

        async with open_node(path) as node, open_network(node, NetworkConfig(...)) as network:
            print(network.multiaddrs())

    Leaving the block stops it (cancellation); ``node.network`` is set inside the block.
    """
    network = NodeNetwork(node, config)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        try:
            yield network
        finally:
            nursery.cancel_scope.cancel()
