"""The network service of a Node: gossip, set-reconciliation sync and discovery on py-libp2p.

``await nursery.start(NodeNetwork(node, config).run)`` starts it; cancelling that task stops it.
It owns a `P2PHost` (identity, listening, bootstrap/remembered/mDNS peers with redial, strikes and
bans), a `Gossip` (topics, batches, the pubsub validator) and the sync stream protocol
(`core.sync_protocol` driven over `streams.FramedStream`). Validity is core's: this module decides
what to ask, send and whom to blame, never what is true.

Rules:

1. Topics: the node joins the topic of every thread and site it follows (`p2pcomments.follows`);
   writing in a thread follows it. A followed thread's topic is its site's when it has one.
2. Publishing: operations this node applied from its own writes or an import (it learned them
   first) are gossiped, batched per topic; operations learned by gossip are forwarded by
   GossipSub itself and those learned by sync are not gossiped (sync brought them, sync spreads
   them). Profiles go to every joined topic. An applied-operations subscription that lagged
   loses some of them for gossip only: sync repairs that.
3. Validation (the pubsub validator; synchronous, never raises): every operation of a batch must
   decode canonically and carry its author's signature; an operation whose thread and parents are
   all applied here must also pass core's thread rules. One that references something not here is
   *accepted* and held pending (libp2p caches a rejection per message for minutes, and the
   verdict must be the same on every node). Anything else rejects the whole message, which counts
   against the forwarder. Operations already held with the same bytes are not verified again,
   and verified ones are handed to `Node.ingest_verified`, so no signature is checked twice.
4. Pending operations (from gossip or sync) make us fetch what they miss from the peer that sent
   them: a sync session with only a WANT, gathered for `NetworkConfig.fetch_delay`, each id tried
   at most `NetworkConfig.max_fetch_attempts` times (then the periodic sync finds it).
5. Sync runs when a connection opens (the dialling side starts it), every ``sync_interval`` with
   one random connected peer that no session is running with, and on demand
   (`NodeNetwork.sync_now`). Its item set is a snapshot of the store's applied operations,
   shared by sessions while nothing new is applied.
6. One session per peer pair (SPEC §9.4), whichever side opened it: a session is in flight from
   the moment it is decided (before its snapshot is built) until everything it received is
   ingested. Meanwhile we open none with that peer (background rounds skip it, `sync_now` and
   fetches wait) and decline one it opens with ERROR ``busy``, except when both sides opened
   at once, the peer has not answered ours yet and its peer id (bytes) is smaller than ours:
   then its session goes on and ours is declined. Across peers, we run one reconciling session
   at a time (a sketch or WANT_ALL asks for what it lacks without naming every id in full), and
   an id one of our sessions asked for is not asked of another peer (nor fetched) until that
   session is over; if it did not bring it, it is fetched then.
7. A peer's fault in sync (a protocol violation, an operation core rejects) is a strike against it
   (`P2PHost.report_invalid`); enough strikes disconnect and ban it. Timeouts, closed streams,
   declined sessions and limits reached are not faults. Nothing a peer sends raises out of a
   handler or a task.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import trio
from libp2p.peer.id import ID

from p2pcomments.core.ops import Kind, Operation, decode_operation, verify_operation
from p2pcomments.core.reconcile import SortedItems
from p2pcomments.core.replica import Duplicate, Outcome, Pending, Rejected, Replica
from p2pcomments.core.sync_protocol import (
    PROTOCOL_ID,
    SyncError,
    SyncLimits,
    SyncSession,
    encode_error,
)
from p2pcomments.errors import ConflictError, InvalidOperation, NotFound, P2PCommentsError
from p2pcomments.follows import FollowList, site_topic, thread_topic
from p2pcomments.net.errors import NetError, StreamProtocolError
from p2pcomments.net.gossip import Gossip, GossipConfig
from p2pcomments.net.host import HostConfig, P2PHost
from p2pcomments.net.interface import (
    NetworkConfig,
    PeerSummary,
    SyncCounts,
    default_listen_addrs,
    remove_network_file,
    write_network_file,
)
from p2pcomments.net.peer_accounting import PeerRateLimiter
from p2pcomments.net.streams import FramedStream, open_framed_stream, serve_framed

if TYPE_CHECKING:
    # libp2p depends on trio-typing, whose stale `trio-stubs` shadow trio's own annotations for
    # mypy; with them, this is the TaskStatus that `nursery.start` and TASK_STATUS_IGNORED use.
    from trio_typing import TaskStatus

    from p2pcomments.node import AppliedBatch, Node

__all__ = ["NodeNetwork", "open_network"]

logger = logging.getLogger(__name__)

# Sources of applied batches that are not gossiped by us (rule 2).
_NOT_PUBLISHED: Final = frozenset({"gossip", "sync"})
_SYNC_FRAME_TIMEOUT: Final = 30.0
_ERROR_FLUSH_SECONDS: Final = 1.0
_MAX_FETCH_IDS: Final = 10_000  # ids per targeted fetch session
_MAX_TRACKED_ATTEMPTS: Final = 100_000
# OPS frames received but not yet ingested, per session (each at most our max_frame_bytes), and
# the most operations handed to one `Node.ingest` call: frames that queued up while the last call
# ran go together, since each call ends by waiting for its last commit and starts by waiting for
# its first chunk's signatures, and fewer calls leave fewer such gaps in a catch-up.
_INGEST_AHEAD: Final = 8
_MAX_INGEST_BATCH: Final = 5_000
# A session that ends at one of these limits (ours or the peer's) after moving operations is
# followed at once by another, up to this many per round.
_LIMIT_REASONS: Final = frozenset(
    {"session-bytes", "deadline", "too-many-rounds", "too-many-wants"}
)
_MAX_SESSIONS_PER_ROUND: Final = 16
# Rule 6: the ERROR reason of a declined session; how long a decline may take; how often (and
# after what first pause, doubling) `sync_now` tries again when the peer is still busy.
_BUSY: Final = "busy"
_DECLINE_SECONDS: Final = 5.0
_BUSY_ATTEMPTS: Final = 6
_BUSY_BACKOFF: Final = 0.1
# Gossip batching (rule 2): at most one publish per this many seconds while busy, or per the
# bulk interval after a publish of at least _BULK_OPS operations (an import: every pubsub message
# and every ingest call it makes costs each node a fixed share of CPU, so bulk traffic goes in
# fewer, larger messages); at most this many operations per publish call, and per message (a
# receiver's validator checks a whole message at once, ~60 us per operation, on its event loop).
_PUBLISH_INTERVAL: Final = 0.025
_BULK_OPS: Final = 100
_BULK_INTERVAL: Final = 0.15
_MAX_PUBLISH_BATCH: Final = 2_000
_MAX_MESSAGE_OPS: Final = 1_000
_jitter = random.SystemRandom()


@dataclass(slots=True)
class _Stats:
    gossip_batches_in: int = 0
    gossip_ops_in: int = 0
    gossip_ops_applied: int = 0
    gossip_rejected_batches: int = 0
    published_ops: int = 0
    published_lagged: int = 0
    sync_rounds: int = 0
    sync_initiated: int = 0
    sync_served: int = 0
    sync_equal: int = 0
    sync_failed: int = 0
    sync_violations: int = 0
    sync_declined: int = 0
    sync_refused: int = 0
    sync_ops_received: int = 0
    sync_ops_duplicate: int = 0
    sync_ops_sent: int = 0
    sync_bytes_received: int = 0
    sync_bytes_sent: int = 0
    fetch_sessions: int = 0
    fetch_ids_requested: int = 0
    rejected_from_peers: int = 0
    last_sync_error: str = ""


class _ReplicaOps:
    """`core.sync_protocol.OpSource` over the replica in memory (every op's bytes are there)."""

    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    def get_encoded(self, op_ids: Sequence[bytes]) -> Mapping[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        get = self._replica.get
        for op_id in op_ids:
            op = get(op_id)
            if op is not None:
                found[op_id] = op.encoded
        return found


class _InitiatorOps(_ReplicaOps):
    """The `OpSource` of a session we open, keeping track of what our sessions ask for (rule 6).

    An initiator asks its `OpSource` which of the ids reconciliation found it needs are held
    here after all, and asks the peer for the rest. So an id not held is *asked* from that
    moment (counted in ``asked``, shared by our sessions, until `release`); one that another
    session of ours has asked already is answered as held, with empty bytes, so no second peer
    is asked for it, and listed in `left_to_others`. Those empty bytes are never sent: such an
    id is not an item here, and a session only sends its items.
    """

    def __init__(self, replica: Replica, asked: Counter[bytes]) -> None:
        super().__init__(replica)
        self._asked_by_all = asked
        self._asked: set[bytes] = set()
        self.left_to_others: set[bytes] = set()

    def get_encoded(self, op_ids: Sequence[bytes]) -> Mapping[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        get = self._replica.get
        asked_by_all, asked = self._asked_by_all, self._asked
        for op_id in op_ids:
            op = get(op_id)
            if op is not None:
                found[op_id] = op.encoded
            elif op_id in asked:
                continue
            elif asked_by_all[op_id]:
                found[op_id] = b""
                self.left_to_others.add(op_id)
            else:
                asked.add(op_id)
                asked_by_all[op_id] += 1
        return found

    def ask(self, op_ids: Iterable[bytes]) -> None:
        """Count ids the session asks for without asking us (a targeted fetch) as asked."""
        for op_id in op_ids:
            if op_id not in self._asked:
                self._asked.add(op_id)
                self._asked_by_all[op_id] += 1

    def release(self) -> None:
        """The session is over and what it received ingested: nothing of it is asked any more."""
        asked_by_all = self._asked_by_all
        for op_id in self._asked:
            if asked_by_all[op_id] <= 1:
                del asked_by_all[op_id]
            else:
                asked_by_all[op_id] -= 1
        self._asked.clear()


@dataclass(slots=True)
class _Pair:
    """The sync sessions in flight between us and one peer (rule 6): normally one, two only
    while both sides' simultaneous sessions are being sorted out."""

    outgoing: bool = False
    """We opened one (a round or a fetch), from before its snapshot until it is ingested."""
    answered: bool = False
    """The peer answered one we opened with its HELLO (it serves it)."""
    incoming: int = 0
    """Sessions the peer opened that we serve."""
    idle: trio.Event = field(default_factory=trio.Event)
    """Set once nothing is in flight with the peer any more."""


def _declined(session: SyncSession) -> bool:
    error = session.error
    return error is not None and error.from_peer and error.reason == _BUSY


def _peer_id_bytes(peer_id: str) -> bytes:
    return ID.from_base58(peer_id).to_bytes()


class NodeNetwork:
    """One Node on the network (module rules 1-7)."""

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
        self._gossip = Gossip(
            self._host,
            validate_batch=self._validate_batch,
            on_batch=self._on_gossip_batch,
            # We batch ourselves (`_publish_applied`), without delaying a lone operation.
            config=GossipConfig(coalesce_window=0, max_batch_ops=_MAX_MESSAGE_OPS),
        )
        serve_framed(
            self._host,
            PROTOCOL_ID,
            self._serve_sync,
            max_frame_size=self.sync_limits.max_frame_bytes,
            frame_timeout=_SYNC_FRAME_TIMEOUT,
            max_streams_per_peer=config.max_sync_streams_per_peer,
        )
        self._ops = _ReplicaOps(node.replica)
        self._sync_rate = PeerRateLimiter(
            rate=config.sync_ops_per_second, burst=config.sync_ops_burst
        )
        self._verified: OrderedDict[bytes, tuple[Operation, str]] = OrderedDict()
        self._peer_id_bytes = _peer_id_bytes(self._host.peer_id)
        self._pairs: dict[str, _Pair] = {}  # peers a session is in flight with (rule 6)
        self._asked: Counter[bytes] = Counter()  # id → our sessions in flight that asked for it
        self._reconciling = trio.Lock()  # held by the one reconciling session we run (rule 6)
        self._fetch_wanted: dict[str, set[bytes]] = {}
        self._fetch_attempts: dict[bytes, int] = {}
        self._fetch_wakeup = trio.Event()
        self._snapshot: SortedItems | None = None
        self._snapshot_count = -1
        self._snapshot_lock = trio.Lock()
        self._topics_lock = trio.Lock()
        self._connected_since: dict[str, int] = {}
        self._stats = _Stats()
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

    # -- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the host, join the followed topics, and serve until cancelled.

        ``task_status.started()`` once listening and subscribed; ``network.json`` exists from then
        until the service stops.
        """
        if self._running:
            raise RuntimeError("a NodeNetwork runs once")
        self._running = True
        self._follow_authored_threads()
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._host.run)
                await nursery.start(self._gossip.run)
                await nursery.start(self._publish_applied)
                await self._refresh_subscriptions()
                nursery.start_soon(self._periodic_sync)
                nursery.start_soon(self._fetch_loop)
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

    # -- follows and topics (rule 1) -----------------------------------------------------------

    def _follow_authored_threads(self) -> None:
        """Threads this author wrote in while the network was off are followed too."""
        author = self.node.author
        try:
            for thread_id, state in self.node.replica.threads.items():
                if any(op.author == author for op in state.ops.values()):
                    self.follows.follow_automatically(thread_id, state.payload.site)
        except OSError as error:
            logger.warning("can't save %s: %s", self.follows.path, error)

    def _thread_topic(self, thread_id: bytes) -> str:
        state = self.node.replica.threads.get(thread_id)
        site = state.payload.site if state is not None else None
        return site_topic(site) if site is not None else thread_topic(thread_id)

    def _wanted_topics(self) -> set[str]:
        follows = self.follows.follows
        topics = {site_topic(site) for site in follows.sites}
        topics.update(self._thread_topic(thread_id) for thread_id in follows.threads)
        return topics

    async def _refresh_subscriptions(self) -> None:
        async with self._topics_lock:
            wanted = self._wanted_topics()
            joined = set(self._gossip.subscriptions())
            for topic in sorted(wanted - joined):
                await self._gossip.subscribe(topic)
            for topic in sorted(joined - wanted):
                await self._gossip.unsubscribe(topic)

    async def follow(self, *, thread: bytes | None = None, site: str | None = None) -> bool:
        """Follow a thread or a site and join its topic; return whether anything changed.
        Raises ValueError for a malformed site and OSError when the file can't be written."""
        changed = self.follows.follow(thread=thread, site=site)
        if changed and self._running:
            await self._refresh_subscriptions()
        return changed

    async def unfollow(self, *, thread: bytes | None = None, site: str | None = None) -> bool:
        """Stop following a thread or a site and leave its topic unless something else needs it."""
        changed = self.follows.unfollow(thread=thread, site=site)
        if changed and self._running:
            await self._refresh_subscriptions()
        return changed

    # -- publishing (rule 2) --------------------------------------------------------------------

    async def _publish_applied(
        self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Rule 2, with adaptive batching: an operation after a quiet spell leaves at once (the
        lowest latency), while under load what arrives within `_PUBLISH_INTERVAL` of the last
        publish (`_BULK_INTERVAL` after a bulk one) waits and leaves with it, so a burst becomes
        few large messages per topic."""
        with self.node.subscribe_applied() as batches:
            task_status.started()
            last_publish = -math.inf
            hold = _PUBLISH_INTERVAL
            while True:
                try:
                    first = await batches.receive()
                except trio.EndOfChannel:
                    return  # the node is closing
                received = [first]
                count = len(first.ops)
                with trio.move_on_at(last_publish + hold):
                    while count < _MAX_PUBLISH_BATCH:
                        batch = await batches.receive()
                        received.append(batch)
                        count += len(batch.ops)
                while count < _MAX_PUBLISH_BATCH:  # and whatever else is ready now
                    try:
                        batch = batches.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    received.append(batch)
                    count += len(batch.ops)
                if await self._publish(received):
                    last_publish = trio.current_time()
                    hold = _BULK_INTERVAL if count >= _BULK_OPS else _PUBLISH_INTERVAL

    async def _publish(self, batches: list[AppliedBatch]) -> bool:
        """Publish what ``batches`` hold for gossip, grouped by topic; whether anything went."""
        by_topic: dict[str, list[bytes]] = {}
        for batch in batches:
            if batch.lagged:
                self._stats.published_lagged += 1
                logger.info("gossip fell behind the node; sync will spread what it missed")
            if self._note_follows(batch.ops, local=batch.source == "local"):
                await self._refresh_subscriptions()
            if batch.source in _NOT_PUBLISHED:
                continue
            for op in batch.ops:
                for topic in self._topics_of(op):
                    by_topic.setdefault(topic, []).append(op.encoded)
        for topic, encoded in by_topic.items():
            await self._gossip.publish(topic, encoded)
            self._stats.published_ops += len(encoded)
        return bool(by_topic)

    def _note_follows(self, ops: Iterable[Operation], *, local: bool) -> bool:
        """Follow what we write in (rule 1); True if the topics to join may have changed."""
        changed = False
        followed_threads = self.follows.follows.threads
        for op in ops:
            if op.kind is Kind.THREAD and op.id in followed_threads:
                changed = True  # a followed thread arrived: its site decides its topic
            if not local:
                continue
            thread_id = op.thread_id
            if thread_id is not None:
                state = self.node.replica.threads.get(thread_id)
                site = state.payload.site if state is not None else None
                try:
                    changed |= self.follows.follow_automatically(thread_id, site)
                except OSError as error:
                    logger.warning("can't save %s: %s", self.follows.path, error)
        return changed

    def _topics_of(self, op: Operation) -> list[str]:
        thread_id = op.thread_id
        if thread_id is None:  # a profile: names show in every thread we take part in
            return self._gossip.subscriptions()
        return [self._thread_topic(thread_id)]

    # -- gossip in (rule 3) ---------------------------------------------------------------------

    def _validate_batch(self, forwarder: str, ops: list[bytes]) -> bool:
        """The pubsub validator: synchronous, never raises (Gossip also guards it)."""
        replica = self.node.replica
        accepted: list[tuple[bytes, Operation]] = []
        verified = self._verified
        for data in ops:
            if data in verified:  # another message brought it: checked already
                continue
            try:
                op = decode_operation(data, verify=False)
            except InvalidOperation as error:
                return self._reject_batch(forwarder, error.reason)
            held = replica.get(op.id)
            if held is not None and held.encoded == data:
                continue
            try:
                verify_operation(op)  # a page thread is authentic unsigned
            except InvalidOperation as error:
                return self._reject_batch(forwarder, error.reason)
            reason = replica.verdict(op)  # core's rule, replica rule 5
            if reason is not None:
                return self._reject_batch(forwarder, reason)
            accepted.append((data, op))
        for data, op in accepted:
            verified[data] = (op, forwarder)
        while len(verified) > self.config.verified_cache_size:
            verified.popitem(last=False)
        return True

    def _reject_batch(self, forwarder: str, reason: str) -> bool:
        # Gossip gives the forwarder its strike when we return False.
        self._stats.gossip_rejected_batches += 1
        self._stats.rejected_from_peers += 1
        logger.info("rejected a gossip batch from %s: %s", forwarder, reason)
        return False

    async def _on_gossip_batch(self, topic: str, origin: str, ops: list[bytes]) -> None:
        self._stats.gossip_batches_in += 1
        self._stats.gossip_ops_in += len(ops)
        verified: list[Operation] = []
        unverified: list[bytes] = []
        sender = origin
        for data in ops:
            entry = self._verified.pop(data, None)
            if entry is not None:
                verified.append(entry[0])
                sender = entry[1]
                continue
            unverified.append(data)
        outcomes: list[Outcome] = []
        try:
            if verified:
                outcomes += await self.node.ingest_verified(verified, source="gossip")
            # Held already (the validator skipped those), or evicted from the cache: ingest
            # checks what is not held, and reports what is as Duplicate.
            if unverified:
                outcomes += await self.node.ingest(unverified, source="gossip")
        except P2PCommentsError as error:  # the store failed or the node is closing: not a peer's
            logger.warning("could not store a gossip batch: %s", error)
            return
        self._stats.gossip_ops_applied += sum(
            1 for o in outcomes if not isinstance(o, Rejected | Duplicate)
        )
        if not self._host.is_connected(sender):
            sender = origin
        self._after_ingest(sender, outcomes, blame=False)

    def _after_ingest(self, peer: str, outcomes: Sequence[Outcome], *, blame: bool) -> None:
        """Fetch what pending operations miss (rule 4); blame the peer for rejected ones."""
        missing: set[bytes] = set()
        rejected = 0
        for outcome in outcomes:
            if isinstance(outcome, Pending):
                missing |= outcome.missing
            elif isinstance(outcome, Rejected):
                rejected += 1
        if rejected and blame:
            self._stats.rejected_from_peers += rejected
            self._host.report_invalid(peer, f"{rejected} invalid operations in sync")
        if missing:
            self._request_fetch(peer, missing)

    # -- targeted fetch (rule 4) ----------------------------------------------------------------

    def _request_fetch(self, peer: str, ids: Iterable[bytes]) -> None:
        wanted = self._fetch_wanted.setdefault(peer, set())
        limit = self.config.max_fetch_attempts
        for op_id in ids:
            if self._fetch_attempts.get(op_id, 0) < limit:
                wanted.add(op_id)
        if not wanted:
            del self._fetch_wanted[peer]
            return
        self._fetch_wakeup.set()

    def _defer_fetch(self, peer: str, ids: Iterable[bytes]) -> None:
        """Ask again later, not counted as an attempt: woken when a session ends (rule 6)."""
        self._fetch_wanted.setdefault(peer, set()).update(ids)

    async def _fetch_loop(self) -> None:
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
                    coming = [i for i in missing if i in self._asked]
                    if coming:  # another session of ours asked for them: see what it brings
                        self._defer_fetch(peer, coming)
                    still = [i for i in missing if i not in self._asked]
                    if not still:
                        continue
                    if not self._host.is_connected(peer):
                        peers = self._host.peers()
                        if not peers:
                            continue
                        peer = _jitter.choice(peers)
                    if peer in self._pairs:  # a session with it is moving operations already
                        self._defer_fetch(peer, still)
                        continue
                    for op_id in still:
                        self._fetch_attempts[op_id] = self._fetch_attempts.get(op_id, 0) + 1
                    nursery.start_soon(self._fetch_from, peer, still[:_MAX_FETCH_IDS])

    async def _fetch_from(self, peer: str, ids: list[bytes]) -> None:
        try:
            async with self._opening(peer, wait=False) as pair:
                if pair is None:  # a session with it began meanwhile
                    self._defer_fetch(peer, ids)
                    return
                self._stats.fetch_sessions += 1
                self._stats.fetch_ids_requested += len(ids)
                session = await self._initiate(peer, pair, reconcile=False, want=ids)
            if _declined(session):
                self._request_fetch(peer, ids)  # counted as an attempt: a peer may stay busy
        except P2PCommentsError as error:
            logger.warning("fetching from %s failed: %s", peer, error)

    # -- sync (rules 5-7) -----------------------------------------------------------------------

    async def _items(self) -> SortedItems:
        """The item snapshot sessions reconcile, rebuilt only after something was applied."""
        async with self._snapshot_lock:
            count = self.node.replica.operation_count()
            if self._snapshot is not None and self._snapshot_count == count:
                return self._snapshot
            store = self.node.store
            # Read from SQLite in a worker thread: the event loop keeps serving meanwhile.
            items = await trio.to_thread.run_sync(lambda: SortedItems(store.iter_applied_keys()))
            if len(items) >= count:
                # Otherwise an ingest was applied in memory but not yet committed: don't keep a
                # snapshot that would stay behind until the next change.
                self._snapshot, self._snapshot_count = items, count
            return items

    async def _on_peer_connected(self, peer_id: str) -> None:
        self._connected_since[peer_id] = _wall_clock_ms()
        if self.config.sync_on_connect and self._we_dialled(peer_id):
            await self._sync_quietly(peer_id)

    async def _on_peer_disconnected(self, peer_id: str) -> None:
        self._connected_since.pop(peer_id, None)
        self._sync_rate.forget(peer_id)

    def _we_dialled(self, peer_id: str) -> bool:
        """Whether one of our connections to the peer is outbound (rule 5: the dialler syncs)."""
        try:
            conns = self._host.libp2p_host.get_network().get_connections(ID.from_base58(peer_id))
        except (ValueError, KeyError):
            return False
        return any(getattr(conn.muxed_conn, "is_initiator", False) for conn in conns)

    async def _periodic_sync(self) -> None:
        interval = self.config.sync_interval
        if interval <= 0:
            return
        while True:
            await trio.sleep(interval * _jitter.uniform(0.8, 1.2))
            # A peer a session is running with is being synced already (rule 6).
            peers = [peer for peer in self._host.peers() if peer not in self._pairs]
            if peers:
                await self._sync_quietly(_jitter.choice(peers))

    async def _sync_quietly(self, peer_id: str) -> None:
        """A background round, skipped while a session with the peer is in flight (rule 6); its
        failure is logged, never raised into the nursery."""
        try:
            await self._sync_with(peer_id, wait=False)
        except P2PCommentsError as error:  # the store failed, the node is closing...
            logger.warning("sync with %s failed: %s", peer_id, error)

    # -- one session per peer pair (rule 6)

    @asynccontextmanager
    async def _opening(self, peer_id: str, *, wait: bool) -> AsyncIterator[_Pair | None]:
        """Hold the pair's slot for sessions we open. When a session with the peer is in flight
        already: wait for its end, or (``wait`` False) yield None and hold nothing."""
        while (pair := self._pairs.get(peer_id)) is not None:
            if not wait:
                yield None
                return
            await pair.idle.wait()
        pair = self._pairs[peer_id] = _Pair(outgoing=True)
        try:
            yield pair
        finally:
            pair.outgoing = False
            self._release(peer_id, pair)

    def _admits(self, peer_id: str, pair: _Pair | None) -> bool:
        """Whether to serve a session the peer opens now (rule 6's tie-break)."""
        if pair is None:
            return True
        if pair.incoming or not pair.outgoing or pair.answered:
            return False
        return _peer_id_bytes(peer_id) < self._peer_id_bytes

    def _release(self, peer_id: str, pair: _Pair) -> None:
        if pair.outgoing or pair.incoming:
            return
        if self._pairs.get(peer_id) is pair:
            del self._pairs[peer_id]
        pair.idle.set()
        if self._fetch_wanted:
            self._fetch_wakeup.set()

    async def _decline(self, stream: FramedStream) -> None:
        """Rule 6: the peer speaks first (its HELLO); the answer is ERROR ``busy``."""
        self._stats.sync_refused += 1
        with trio.move_on_after(_DECLINE_SECONDS):
            try:
                await stream.read_frame()
                await stream.write_frame(encode_error(_BUSY))
            except NetError as error:
                logger.debug("declining a session of %s: %s", stream.peer_id, error)

    # -- rounds and sessions

    async def _sync_with(self, peer_id: str, *, wait: bool) -> SyncCounts | None:
        """One sync round with ``peer_id``: a session, and more while one ends at a size or time
        limit having moved operations (a large backlog takes several sessions). None when a
        session with the peer is in flight and not ``wait``; with ``wait``, a round the peer
        declines (it is still busy with the last one) is tried again a few times."""
        for attempt in range(_BUSY_ATTEMPTS if wait else 1):
            if attempt:
                await trio.sleep(_BUSY_BACKOFF * 2 ** (attempt - 1))
            async with self._opening(peer_id, wait=wait) as pair:
                if pair is None:
                    return None
                counts = await self._round(peer_id, pair)
            if counts.failed.get(peer_id) != _BUSY:
                break
        return counts

    async def _round(self, peer_id: str, pair: _Pair) -> SyncCounts:
        received = sent = 0
        for _ in range(_MAX_SESSIONS_PER_ROUND):
            session = await self._initiate(peer_id, pair, reconcile=True, want=())
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
        `NotFound` when ``peer_id`` is not connected and `ConflictError` when the network is not
        running."""
        if not self._running:
            raise ConflictError("the network is not running", reason="network-off")
        if peer_id is not None:
            if not self._host.is_connected(peer_id):
                raise NotFound(f"not connected to {peer_id}", reason="peer-not-connected")
            peers = [peer_id]
        else:
            peers = self._host.peers()
        results: list[SyncCounts] = []

        async def one(peer: str) -> None:
            counts = await self._sync_with(peer, wait=True)
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

    async def _initiate(
        self, peer_id: str, pair: _Pair, *, reconcile: bool, want: Sequence[bytes]
    ) -> SyncSession:
        """Open a sync stream to ``peer_id`` and run one session as initiator (``pair`` is the
        slot it holds, rule 6)."""
        ops = _InitiatorOps(self.node.replica, self._asked)
        ops.ask(want)
        try:
            if reconcile:
                # Rule 6 across peers needs each id in full before it is asked for; a sketch
                # (short ids) or WANT_ALL (none) asks without that, so two reconciling sessions
                # of ours would both fetch what both peers hold. They run one at a time.
                async with self._reconciling:
                    session = await self._run_initiator(
                        peer_id, pair, ops, reconcile=True, want=want
                    )
            else:
                session = await self._run_initiator(peer_id, pair, ops, reconcile=False, want=want)
        finally:
            ops.release()
            if self._fetch_wanted:
                self._fetch_wakeup.set()  # what waited for this session's ids may go now
        # What we left to another session and it did not bring: fetch it now (rule 6).
        left = [i for i in ops.left_to_others if self.node.replica.get(i) is None]
        if left:
            self._request_fetch(peer_id, left)
        return session

    async def _run_initiator(
        self,
        peer_id: str,
        pair: _Pair,
        ops: _InitiatorOps,
        *,
        reconcile: bool,
        want: Sequence[bytes],
    ) -> SyncSession:
        items = await self._items()
        session = SyncSession(
            items,
            ops,
            initiator=True,
            now=trio.current_time(),
            limits=self.sync_limits,
            reconcile=reconcile,
            want=want,
        )
        self._stats.sync_initiated += 1
        try:
            async with open_framed_stream(
                self._host,
                peer_id,
                PROTOCOL_ID,
                max_frame_size=self.sync_limits.max_frame_bytes,
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
        pair = self._pairs.get(peer)
        if not self._admits(peer, pair):
            await self._decline(stream)
            return
        if pair is None:
            pair = self._pairs[peer] = _Pair()
        pair.incoming += 1  # before the snapshot: building it can take a while
        try:
            items = await self._items()
            session = SyncSession(
                items, self._ops, initiator=False, now=trio.current_time(), limits=self.sync_limits
            )
            self._stats.sync_served += 1
            await self._drive(stream, session, None)
        finally:
            pair.incoming -= 1
            self._release(peer, pair)
        self._account(peer, session)

    async def _drive(self, stream: FramedStream, session: SyncSession, pair: _Pair | None) -> None:
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
        pair: _Pair | None,
    ) -> None:
        """Carry frames between the session and the stream until it is over (the protocol is
        half-duplex: write everything we have, then read one frame)."""
        peer = stream.peer_id
        try:
            with trio.move_on_at(session.deadline):
                while True:
                    while (frame := session.next_frame()) is not None:
                        await stream.write_frame(frame)
                    if session.done:
                        return
                    data = await stream.read_frame()
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

    async def _ingest_received(
        self, peer: str, received: trio.MemoryReceiveChannel[tuple[bytes, ...]]
    ) -> None:
        async with received:
            async for first in received:
                ops = list(first)
                while len(ops) < _MAX_INGEST_BATCH:
                    try:
                        ops += received.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._charge(peer, len(ops))
                outcomes = await self.node.ingest(ops, source="sync")
                # Held already: gossip (or a session with another peer) brought it meanwhile.
                self._stats.sync_ops_duplicate += sum(
                    1 for outcome in outcomes if isinstance(outcome, Duplicate)
                )
                self._after_ingest(peer, outcomes, blame=True)

    async def _charge(self, peer: str, cost: int) -> None:
        """Per-peer ops/s budget for sync: over it, we read more slowly (rule 5 of the config)."""
        cost = min(cost, int(self.config.sync_ops_burst))
        # A token bucket refills with time, not on an event: sleep for about the deficit.
        while not self._sync_rate.allow(peer, trio.current_time(), cost):  # noqa: ASYNC110
            await trio.sleep(min(1.0, cost / self.config.sync_ops_per_second))

    def _account(self, peer: str, session: SyncSession) -> None:
        result = session.result()
        stats = self._stats
        stats.sync_ops_received += result.ops_received
        stats.sync_ops_sent += result.ops_sent
        stats.sync_bytes_received += result.bytes_received
        stats.sync_bytes_sent += result.bytes_sent
        error = result.error
        if error is None:
            stats.sync_rounds += 1
            stats.sync_equal += result.equal
            return
        if _declined(session):
            stats.sync_declined += 1
            return
        stats.sync_failed += 1
        stats.last_sync_error = error.reason
        if error.peer_fault:
            stats.sync_violations += 1
            stats.rejected_from_peers += 1
            self._host.report_invalid(peer, f"sync: {error.reason}")
        logger.info("sync with %s ended early: %s (%s)", peer, error.reason, error.message)

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
                    connected_since_ms=self._connected_since.get(peer_id, _wall_clock_ms()),
                )
            )
        return summaries

    def counters(self) -> dict[str, int]:
        """The numeric counters (``GET /api/statistics`` → ``network``); the first six are the
        API contract's."""
        stats = self._stats
        banned = self._host.statistics()["banned_peers"]
        return {
            "peers": len(self._host.peers()),
            "gossip_batches_in": stats.gossip_batches_in,
            "gossip_ops_in": stats.gossip_ops_in,
            "sync_rounds": stats.sync_rounds,
            "rejected_from_peers": stats.rejected_from_peers,
            "banned_peers": banned if isinstance(banned, int) else 0,
            "gossip_ops_applied": stats.gossip_ops_applied,
            "gossip_rejected_batches": stats.gossip_rejected_batches,
            "published_ops": stats.published_ops,
            "published_lagged": stats.published_lagged,
            "sync_initiated": stats.sync_initiated,
            "sync_served": stats.sync_served,
            "sync_equal": stats.sync_equal,
            "sync_failed": stats.sync_failed,
            "sync_violations": stats.sync_violations,
            "sync_declined": stats.sync_declined,
            "sync_refused": stats.sync_refused,
            "sync_ops_received": stats.sync_ops_received,
            "sync_ops_duplicate": stats.sync_ops_duplicate,
            "sync_ops_sent": stats.sync_ops_sent,
            "sync_bytes_received": stats.sync_bytes_received,
            "sync_bytes_sent": stats.sync_bytes_sent,
            "fetch_sessions": stats.fetch_sessions,
            "fetch_ids_requested": stats.fetch_ids_requested,
        }

    def statistics(self) -> dict[str, Any]:
        """Everything: `counters`, the topics joined, the host's and gossip's own statistics."""
        return {
            **self.counters(),
            "last_sync_error": self._stats.last_sync_error,
            "topics": self._gossip.subscriptions(),
            "host": self._host.statistics(),
            "gossip": self._gossip.statistics(),
        }

    def describe(self) -> dict[str, Any]:
        """The JSON of ``GET /api/network``."""
        return {
            "peer_id": self.peer_id,
            "multiaddrs": self.multiaddrs(),
            "peers": [peer.to_json() for peer in self.peers()],
            "follows": self.follows.follows.to_json(),
            "statistics": self.statistics(),
        }


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


def _wall_clock_ms() -> int:
    # Wall clock for what people read (connected since); trio's clock is monotonic.
    return time.time_ns() // 1_000_000
