"""Every py-libp2p 0.8.1 workaround we rely on, in one place, each with what it fixes.

Checked against the installed 0.8.1 source (``libp2p/pubsub/pubsub.py``, ``gossipsub.py``,
``rpc_queue.py``, ``mcache.py``, ``__init__.py``, ``network/swarm.py``). When libp2p is upgraded,
re-check every item here and delete what the new release fixed.

Process-wide (module attributes patched by `apply_process_patches`, idempotent):

1. Outbound RPC queue: ``libp2p.pubsub.pubsub`` builds ``RpcQueue()`` per peer with
   ``OutBoundQueueSize = 32`` entries, rejects on full and only logs at DEBUG, while ``publish()``
   returns as if all was well. There is no constructor argument, so the ``RpcQueue`` name that
   ``pubsub.py`` looks up is replaced with a subclass whose default ``max_size`` is larger.
2. Subscription channel: ``SUBSCRIPTION_CHANNEL_SIZE = 32`` and overflow is dropped with a warning
   ("fail to deliver message to subscription"). Raised; the module global is read at
   ``subscribe()`` time, so it must be patched before subscribing.
3. Message ids: the message cache keys by ``from + seqno`` through the module function
   ``libp2p.pubsub.mcache.default_msg_id_fn`` whatever ``msg_id_constructor`` Pubsub was given, so
   IHAVE ids would not match the ids peers dedup on. Both are set to `content_message_id` (SHA-256
   of the data, with the topic on inbox topics), which also dedups the same batch arriving from
   two publishers.
4. Noisy loggers: per-dial and per-stream errors of normal churn and per-message warnings are
   dropped by `NoisyLogFilter`, which counts what it drops (`suppressed_log_counts`) so a loss
   stays visible in statistics. Without ``LIBP2P_DEBUG`` libp2p logs WARNING and up through
   Python's last-resort handler (stderr), whatever logging the application configured.

Per instance (`build_pubsub`, `noise_only_security`, `yamux_only_muxers`):

5. Spam filter off: ``GossipSub(spam_protection_enabled=True)`` allows 10 messages/s per topic per
   forwarder, counts our own publishes, and drops the excess after it was marked seen, so gossip
   can never repair it. We enforce our own per-peer budget (`HardenedPubsub.inbound_gate`).
6. Heartbeat 1 s (default 120 s: mesh repair every two minutes) and adaptive gossip kept on (off,
   ``recent_message_deliveries`` grows ~45 bytes per message forever: only the adaptive health
   update trims it). But the adaptive code also rewrites ``heartbeat_interval`` to 30-60 s once
   the "network health" score drops below 0.7, which a small mesh (1-3 peers for a target degree
   of 6) always does; `PinnedHeartbeatGossipSub` keeps the interval we asked for.
7. Only ``/meshsub/1.1.0`` is offered: v1.2 costs ~50% more CPU (an IDONTWANT per message) and
   1.1 interoperates with js-libp2p and go-libp2p.
8. Sequence numbers start at ``int(time.time())`` and count up by one per message: a node restarted
   within seconds reuses them, and GossipSub's equivocation check (keyed by from + seqno, whatever
   the message id function) drops its first messages. The counter starts at ``time.time_ns()``.
9. Strict signing stays on (what js-libp2p expects; there is no working unsigned mode between them).
10. Payloads stay under 512 KiB (`gossip_payload.MAX_PAYLOAD_BYTES`), well inside the 1 MiB
    default RPC limit, so neither ``max_message_size`` nor ``max_inbound_rpc_size`` is changed.
11. A peer's bytes must never stop the node. ``Pubsub.push_msg`` runs as a service task: anything
    it raises (a raising validator, a malformed ``key`` in ``signature_validator``) cancels the
    whole Pubsub service. ``Pubsub.stream_handler`` lets protobuf's ``DecodeError`` for a garbage
    RPC escape into the connection's nursery. `HardenedPubsub` catches both for remote input.
12. ``new_host`` offers plaintext, secio and TLS next to Noise, and Mplex next to Yamux; a dialler
    can pick ``/plaintext/2.0.0``, which proves no key possession (peer id spoofing). We pass Noise
    only and Yamux only.

Host and swarm (used by ``host.P2PHost``):

13. The peerstore's expiry task is not started by anyone: `run_peerstore_cleanup`.
14. A dial that fails puts the peer in the swarm's negative cache for 60 s, and libp2p's bootstrap
    gives up after 3 attempts: a peer that starts 10 s late is never reached. Our redial loop
    calls `forget_failed_dial` before each attempt.
15. ``Swarm.close_peer`` awaits each connection's close and then pops the peer's whole entry; a
    connection that arrived meanwhile leaves the table unclosed and stays open at both ends
    forever (seen when a banned peer redials at once). `close_connections` closes connection
    objects one by one instead (each removes only itself).
16. Pubsub and GossipSub must run outside ``async with host.run(...)`` (started before, stopped
    after): nested inside, shutdown under load crashed with "Nursery is closed to new arrivals".
    ``P2PHost.run`` does this; 16 SIGTERMs under 300 msg/s load all exited cleanly.
18. Peer scoring is inert by default (every threshold -inf). `GOSSIP_SCORE_PARAMS` makes a
    message our validator rejects cost its forwarder: the P4 (invalid messages) weight is
    *positive* (the scorer subtracts it), +10 per message, decaying by 1% a heartbeat; below -40
    a peer gets no gossip from us, below -100 it is graylisted (pruned from our meshes, its GRAFTs
    refused): about 10 invalid messages. Honest peers score 0 (P1-P3 weigh nothing).
17. ``Swarm.dial_peer`` starts a dial per address (one or two, at most one per transport class)
    and after each, the last included, waits up to ``_HAPPY_EYEBALLS_DELAY`` (250 ms) for it to
    *fail*, so every connect took 250 ms or more, even to a single address (a joiner's first
    sync, a reconnect after a restart). `apply_process_patches` sets it to 0: the addresses are
    dialled at once, and the swarm closes connections over its per-peer limit itself.
19. ``Swarm.dial_peer`` dials the peerstore's addresses of a peer, but only the first of each
    transport class: of several TCP addresses, one. Identify adds every listen address a peer
    announces (a NAT's private address, a loopback one, an old port), so after a disconnect the
    one TCP address chosen could be an announced one that leads nowhere, or to another peer
    (Noise's peer id check then fails and libp2p clears *all* the peer's addresses), while the
    bootstrap address that worked was never tried again: the fault campaign's partitions
    (``scripts/fault_campaign.py``) left nodes disconnected for good. When libp2p's dial fails,
    `dial_each_address` dials the addresses we chose, in our order, one at a time
    (``Swarm.dial_addr``), until one connects.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from libp2p.abc import IHost, INetConn, INetStream, ISecureTransport
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_new_x25519_key_pair
from libp2p.custom_types import TMuxerClass, TProtocol
from libp2p.network import swarm as libp2p_swarm
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.pubsub import mcache as libp2p_mcache
from libp2p.pubsub import pubsub as libp2p_pubsub
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.rpc_queue import DefaultMaxMessageSize, RpcQueue
from libp2p.pubsub.score import ScoreParams, TopicScoreParams
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from p2pcomments.net.gossip_payload import message_id

__all__ = [
    "DIAL_HEAD_START",
    "GOSSIP_PROTOCOLS",
    "GOSSIP_SCORE_PARAMS",
    "HEARTBEAT_INTERVAL",
    "OUTBOUND_QUEUE_SIZE",
    "SUBSCRIPTION_CHANNEL_SIZE",
    "HardenedPubsub",
    "InboundGate",
    "NoisyLogFilter",
    "PinnedHeartbeatGossipSub",
    "apply_process_patches",
    "build_pubsub",
    "close_connections",
    "content_message_id",
    "dial_each_address",
    "forget_failed_dial",
    "noise_only_security",
    "run_peerstore_cleanup",
    "suppressed_log_counts",
    "yamux_only_muxers",
]

logger = logging.getLogger(__name__)

# (1) RPCs queued per peer before libp2p drops. Our publisher also waits for room (gossip.py), so
# this is headroom for control traffic and IWANT replies, not the pacing mechanism.
OUTBOUND_QUEUE_SIZE: Final = 1024
# (2) Messages buffered between libp2p and our per-topic reader task.
SUBSCRIPTION_CHANNEL_SIZE: Final = 1024
# (6) Seconds; libp2p types it as int.
HEARTBEAT_INTERVAL: Final = 1
# (7)
GOSSIP_PROTOCOLS: Final = (PROTOCOL_ID_V11,)
# (17) Seconds one address's dial gets before the next one's starts.
DIAL_HEAD_START: Final = 0.0

# (4) logger name -> message prefixes to drop. Each line is logged per dial attempt or per message.
_NOISY_MESSAGES: Final[Mapping[str, tuple[str, ...]]] = {
    "libp2p.transport.tcp.tcp": ("Failed to open TCP stream",),
    "libp2p.pubsub.gossipsub": (
        "Equivocation detected",
        "Rate limit exceeded",
        "IHAVE rate limit exceeded",
        "IWANT rate limit exceeded",
    ),
    "libp2p.pubsub.pubsub": ("fail to deliver message to subscription",),
    # A peer going away mid-handshake or mid-stream (normal churn, every shutdown) logs these at
    # ERROR, several lines each; the caller sees the failure as an exception anyway.
    "libp2p.host.basic_host": ("Failed to open stream to peer",),
    "libp2p.protocol_muxer.multiselect_client": ("MultiselectClient handshake",),
    "libp2p.stream_muxer.yamux.yamux": ("Error in handle_incoming for peer",),
}

_patch_lock = threading.Lock()
_patched = False


def content_message_id(msg: rpc_pb2.Message) -> bytes:
    """The GossipSub message id we use everywhere (3): `gossip_payload.message_id`, 32 raw bytes
    (SHA-256 of the message data; of the topic and the data on an inbox topic)."""
    return message_id(list(msg.topicIDs), msg.data)


class _LargeRpcQueue(RpcQueue):
    """``RpcQueue`` with a larger default ``max_size`` (1)."""

    def __init__(
        self, max_size: int = OUTBOUND_QUEUE_SIZE, max_message_size: int = DefaultMaxMessageSize
    ) -> None:
        super().__init__(max_size=max_size, max_message_size=max_message_size)


class NoisyLogFilter(logging.Filter):
    """Drops known-noisy libp2p log records and counts them by prefix (4)."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.dropped: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else str(record.msg)
        for prefix in self.prefixes:
            if message.startswith(prefix):
                self.dropped[prefix] += 1
                return False
        return True


_filters: dict[str, NoisyLogFilter] = {}


def suppressed_log_counts() -> dict[str, int]:
    """How many records each `NoisyLogFilter` prefix has dropped in this process."""
    counts: dict[str, int] = {}
    for log_filter in _filters.values():
        counts.update(log_filter.dropped)
    return counts


def apply_process_patches() -> None:
    """Apply the process-wide patches 1-4 and 17. Idempotent; call before building any Pubsub
    or dialling."""
    global _patched
    with _patch_lock:
        if _patched:
            return
        # pubsub.py looks the class up by this module-global name each time a peer is added.
        libp2p_pubsub.RpcQueue = _LargeRpcQueue  # type: ignore[attr-defined]
        libp2p_pubsub.SUBSCRIPTION_CHANNEL_SIZE = SUBSCRIPTION_CHANNEL_SIZE
        libp2p_mcache.default_msg_id_fn = content_message_id
        libp2p_swarm._HAPPY_EYEBALLS_DELAY = DIAL_HEAD_START
        for name, prefixes in _NOISY_MESSAGES.items():
            log_filter = NoisyLogFilter(prefixes)
            logging.getLogger(name).addFilter(log_filter)
            _filters[name] = log_filter
        _patched = True


class PinnedHeartbeatGossipSub(GossipSub):
    """GossipSub whose adaptive mode may not stretch the heartbeat interval (6)."""

    def _adapt_heartbeat_parameters(self, health: float) -> None:
        self.heartbeat_interval = self.heartbeat_interval_base


InboundGate = Callable[[ID, rpc_pb2.Message], bool]
"""Called for each new (not yet seen) message a peer forwards, before signature and topic
validation. False drops the message *without a verdict*: it is not marked seen, not cached as
invalid and not counted against anyone, so the same message can still arrive from another peer.
libp2p has no such "ignore" outcome of its own. Must not raise and must not block."""


class HardenedPubsub(Pubsub):
    """Pubsub that survives any remote input (11) and offers a pre-validation gate (5)."""

    inbound_gate: InboundGate | None = None

    async def push_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        if msg_forwarder == self.my_id:
            # Our own publish: errors are ours and must surface to the publisher.
            await super().push_msg(msg_forwarder, msg)
            return
        try:
            if self._is_msg_seen(msg):
                return
            gate = self.inbound_gate
            if gate is not None and not gate(msg_forwarder, msg):
                return
            await super().push_msg(msg_forwarder, msg)
        except Exception:
            # A remote message must never cancel the Pubsub service.
            logger.warning(
                "dropped a message from %s: processing it failed", msg_forwarder, exc_info=True
            )

    async def stream_handler(self, stream: INetStream) -> None:
        try:
            await super().stream_handler(stream)
        except Exception as error:
            peer_id = stream.muxed_conn.peer_id
            logger.warning("closing the pubsub stream of %s: %r", peer_id, error)
            try:
                await stream.reset()
            except Exception:
                logger.debug("reset of %s's pubsub stream failed", peer_id, exc_info=True)
            self._handle_dead_peer(peer_id)


GOSSIP_SCORE_PARAMS: Final = ScoreParams(
    p4_invalid_messages=TopicScoreParams(weight=10.0, cap=1000.0, decay=0.99),
    publish_threshold=-80.0,
    gossip_threshold=-40.0,
    graylist_threshold=-100.0,
)
"""Workaround 18: invalid messages cost the forwarder."""


def build_pubsub(host: IHost) -> tuple[HardenedPubsub, PinnedHeartbeatGossipSub]:
    """A Pubsub + GossipSub pair configured with workarounds 5-11 and 18. Run both as services."""
    apply_process_patches()
    router = PinnedHeartbeatGossipSub(
        protocols=list(GOSSIP_PROTOCOLS),
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_interval=HEARTBEAT_INTERVAL,
        adaptive_gossip_enabled=True,
        spam_protection_enabled=False,
        score_params=GOSSIP_SCORE_PARAMS,
    )
    pubsub = HardenedPubsub(
        host,
        router,
        strict_signing=True,
        msg_id_constructor=content_message_id,
    )
    # (8) uint64 on the wire; time_ns() stays below 2**64 until the year 2554.
    pubsub.counter = time.time_ns()
    return pubsub, router


def noise_only_security(key_pair: KeyPair) -> dict[TProtocol, ISecureTransport]:
    """Security options offering Noise and nothing else (12)."""
    noise_key_pair = create_new_x25519_key_pair()
    return {NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=noise_key_pair.private_key)}


def yamux_only_muxers() -> dict[TProtocol, TMuxerClass]:
    """Muxer options offering Yamux and nothing else (12)."""
    return {TProtocol(YAMUX_PROTOCOL_ID): Yamux}


async def run_peerstore_cleanup(host: IHost, interval: int = 300) -> None:
    """Expire peerstore records every ``interval`` seconds, forever (13)."""
    await host.get_peerstore().start_cleanup_task(interval)


def forget_failed_dial(swarm: Swarm, peer_id: ID) -> None:
    """Take ``peer_id`` out of the swarm's 60 s negative dial cache before a redial (14)."""
    swarm.unblock_peer(peer_id)


async def dial_each_address(host: IHost, peer_id: ID, addrs: Sequence[Multiaddr]) -> None:
    """Connect to ``peer_id``: libp2p's own dial first, then, if it failed, each of ``addrs``
    on its own, in order, until one connects (19). Raises the last error when none does."""
    try:
        await host.connect(PeerInfo(peer_id, list(addrs)))
        return
    except Exception as error:  # py-libp2p raises SwarmException, OSError... from deep inside
        if len(addrs) < 2:
            raise
        last = error
    swarm = host.get_network()
    for addr in addrs:
        if swarm.get_connections(peer_id):  # an inbound connection may have arrived meanwhile
            return
        try:
            await swarm.dial_addr(addr, peer_id)
        except Exception as error:  # per address, as above
            last = error
        else:
            return
    raise last


async def close_connections(conns: Iterable[INetConn]) -> None:
    """Close each connection object on its own, never raising (15)."""
    for conn in conns:
        try:
            await conn.close()
        except Exception:
            logger.debug("closing a connection failed", exc_info=True)
