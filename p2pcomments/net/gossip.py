"""GossipSub topics carrying batches of opaque operations (payload format: protocol/SPEC.md §8.4).

`Gossip` sits on a `P2PHost`'s Pubsub. Operations are opaque ``bytes`` here: deciding whether one
is valid belongs to the caller's ``validate_batch`` (core + store), never to this module.

Rules:

1. Outbound coalescing: operations given to `Gossip.publish` within ``coalesce_window`` seconds (or
   until ``max_batch_ops`` are waiting) leave as one pubsub message per topic; a batch that doesn't
   fit ``max_payload_bytes`` is split, in order, into several messages. One `publish` call's
   operations are never reordered.
2. Pacing: before each pubsub publish the publisher waits while any peer's outbound RPC queue holds
   ``queue_high_water`` or more RPCs (py-libp2p drops on a full queue and `publish` returns as if
   all was well). After ``max_queue_wait`` it publishes anyway: one stalled peer (SIGSTOPped,
   saturated) must not stop gossip to all others; it will catch up by sync.
3. Inbound gate: before validation, each forwarder is charged one token per operation the message
   claims; over budget, the message is dropped without a verdict, so the same batch from another
   peer still gets through (and sync repairs the rest).
4. Validation: the topic validator is synchronous and never raises. It returns True for our own
   messages, decodes the payload and calls ``validate_batch(forwarder_peer_id, ops)``. A payload
   that doesn't decode, or a batch the callback rejects, is a strike against the forwarder
   (`P2PHost.report_invalid`). If the callback raises, the message is rejected, the error logged,
   and nobody gets a strike (it is our bug, not the peer's).
5. Because message ids are content hashes and libp2p caches a rejection for 300 s, the verdict of
   ``validate_batch`` must depend on the operations only: an operation whose references are
   missing must be accepted (and held pending), not rejected.
6. Delivery: each accepted batch from another node is passed once to ``on_batch(topic, origin
   peer id, ops)`` (sync or async), batches of one topic in arrival order. Our own messages are
   not delivered back to us. An exception from ``on_batch`` is a bug and stops `Gossip.run`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import trio
from libp2p.abc import ISubscriptionAPI
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from p2pcomments.net.errors import ConfigError, GossipPayloadError
from p2pcomments.net.gossip_payload import (
    MAX_OPS_PER_BATCH,
    MAX_PAYLOAD_BYTES,
    batch_op_count,
    decode_batch,
    encode_batches,
)
from p2pcomments.net.host import P2PHost
from p2pcomments.net.libp2p_workarounds import OUTBOUND_QUEUE_SIZE
from p2pcomments.net.network_statistics import GossipStatistics
from p2pcomments.net.peer_accounting import PeerRateLimiter

__all__ = ["BatchValidator", "Gossip", "GossipConfig", "OnBatch"]

if TYPE_CHECKING:
    # libp2p depends on trio-typing, whose stale `trio-stubs` shadow trio's own annotations for
    # mypy; with them, this is the TaskStatus that `nursery.start` and TASK_STATUS_IGNORED use.
    from trio_typing import TaskStatus

logger = logging.getLogger(__name__)

BatchValidator = Callable[[str, list[bytes]], bool]
"""``validate_batch(forwarder_peer_id, ops) -> bool``: synchronous; True accepts the whole batch."""
OnBatch = Callable[[str, str, list[bytes]], Awaitable[None] | None]
"""``on_batch(topic, origin_peer_id, ops)``: called once per accepted batch from another node."""

_QUEUE_POLL: Final = 0.005


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipConfig:
    coalesce_window: float = 0.025
    """Seconds to wait for more operations before publishing; 0 publishes each call alone."""
    max_batch_ops: int = 500
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    queue_high_water: int = OUTBOUND_QUEUE_SIZE // 4
    max_queue_wait: float = 2.0
    inbound_ops_per_second: float = 2_000.0
    inbound_ops_burst: float = 20_000.0
    publish_buffer: int = 1024
    """`Gossip.publish` calls buffered before `publish` itself waits (backpressure)."""

    def __post_init__(self) -> None:
        if self.coalesce_window < 0 or self.max_queue_wait < 0:
            raise ConfigError("windows must not be negative")
        if not 1 <= self.max_batch_ops <= MAX_OPS_PER_BATCH:
            raise ConfigError(f"max_batch_ops must be in 1..{MAX_OPS_PER_BATCH}")
        if not 0 < self.max_payload_bytes <= MAX_PAYLOAD_BYTES:
            raise ConfigError(f"max_payload_bytes must be in 1..{MAX_PAYLOAD_BYTES}")
        if not 0 < self.queue_high_water <= OUTBOUND_QUEUE_SIZE:
            raise ConfigError(f"queue_high_water must be in 1..{OUTBOUND_QUEUE_SIZE}")


@dataclass(slots=True)
class _Stats:
    published_messages: int = 0
    published_ops: int = 0
    delivered_batches: int = 0
    delivered_ops: int = 0
    accepted: int = 0
    rejected_payload: int = 0
    rejected_by_validator: int = 0
    validator_errors: int = 0
    rate_limited: int = 0
    queue_waits: int = 0
    queue_wait_timeouts: int = 0
    last_rate_limit_log: dict[str, float] = field(default_factory=dict)


class Gossip:
    """Topic subscriptions, batched publishing and validated delivery (module rules 1-6)."""

    def __init__(
        self,
        host: P2PHost,
        *,
        validate_batch: BatchValidator,
        on_batch: OnBatch,
        config: GossipConfig | None = None,
    ) -> None:
        self._host = host
        self._pubsub = host.pubsub
        self._router = host.router
        self._validate_batch = validate_batch
        self._on_batch = on_batch
        self.config = config or GossipConfig()
        self._own_id = ID.from_base58(host.peer_id).to_bytes()
        self._rate = PeerRateLimiter(
            rate=self.config.inbound_ops_per_second, burst=self.config.inbound_ops_burst
        )
        if self._pubsub.inbound_gate is not None:
            raise RuntimeError("this host already has a Gossip")
        self._pubsub.inbound_gate = self._gate
        self._publish_send, self._publish_receive = trio.open_memory_channel[
            tuple[str, tuple[bytes, ...]]
        ](self.config.publish_buffer)
        self._topics: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self._enqueued_calls = 0
        self._flushed_calls = 0
        self._flushed = trio.Event()
        self._stats = _Stats()

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the publisher and the topic readers until cancelled. Needs the host running."""
        if self._nursery is not None:
            raise RuntimeError("Gossip.run is already running")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._publisher)
                nursery.start_soon(self._prune_rate_limits)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._topics.clear()

    # -- topics -----------------------------------------------------------------------------

    async def subscribe(self, topic: str) -> None:
        """Join ``topic``: validate and deliver its batches from now on. Idempotent."""
        if self._nursery is None:
            raise RuntimeError("Gossip.run must be started before subscribing")
        if topic in self._topics:
            return
        if not topic:
            raise ValueError("empty topic name")
        self._pubsub.set_topic_validator(topic, self._validator, False)
        subscription = await self._pubsub.subscribe(topic)
        scope = trio.CancelScope()
        self._topics[topic] = scope
        self._nursery.start_soon(self._read_topic, topic, subscription, scope)

    async def unsubscribe(self, topic: str) -> None:
        """Leave ``topic``. Idempotent."""
        scope = self._topics.pop(topic, None)
        if scope is None:
            return
        scope.cancel()
        await self._pubsub.unsubscribe(topic)
        self._pubsub.remove_topic_validator(topic)

    def subscriptions(self) -> list[str]:
        return sorted(self._topics)

    def topic_peers(self, topic: str) -> list[str]:
        """Peers known to be subscribed to ``topic``."""
        return sorted(p.to_base58() for p in self._pubsub.peer_topics.get(topic, ()))

    def mesh_peers(self, topic: str) -> list[str]:
        """Peers in our GossipSub mesh for ``topic``."""
        return sorted(p.to_base58() for p in self._router.mesh.get(topic, ()))

    # -- publishing -------------------------------------------------------------------------

    async def publish(self, topic: str, ops: Sequence[bytes]) -> None:
        """Queue ``ops`` for ``topic`` (rule 1); waits only when the publish buffer is full.

        Raises ValueError for an operation that is empty, not bytes, or too large for a payload.
        Publishing to a topic we are not subscribed to is allowed (GossipSub fanout).
        """
        batch = tuple(ops)
        if not batch:
            return
        limit = self.config.max_payload_bytes - 6  # array header + bin32 header
        for op in batch:
            if not isinstance(op, bytes) or not op:
                raise ValueError("operations must be non-empty bytes")
            if len(op) > limit:
                raise ValueError(f"an operation of {len(op)} bytes can't fit one gossip payload")
        if not topic:
            raise ValueError("empty topic name")
        self._enqueued_calls += 1
        await self._publish_send.send((topic, batch))

    async def wait_flushed(self) -> None:
        """Return once everything queued by `publish` so far was handed to pubsub."""
        target = self._enqueued_calls
        while self._flushed_calls < target:
            await self._flushed.wait()

    async def _publisher(self) -> None:
        window = self.config.coalesce_window
        while True:
            topic, ops = await self._publish_receive.receive()
            pending: dict[str, list[bytes]] = {topic: list(ops)}
            calls = 1
            count = len(ops)
            with trio.move_on_after(window):
                while count < self.config.max_batch_ops:
                    topic, ops = await self._publish_receive.receive()
                    pending.setdefault(topic, []).extend(ops)
                    calls += 1
                    count += len(ops)
            for pending_topic, pending_ops in pending.items():
                for payload in encode_batches(
                    pending_ops,
                    max_payload_bytes=self.config.max_payload_bytes,
                    max_ops=self.config.max_batch_ops,
                ):
                    await self._wait_for_queue_room()
                    await self._pubsub.publish(pending_topic, payload)
                    self._stats.published_messages += 1
                self._stats.published_ops += len(pending_ops)
            self._flushed_calls += calls
            self._flushed.set()
            self._flushed = trio.Event()

    async def _wait_for_queue_room(self) -> None:
        """Rule 2: py-libp2p has no backpressure, so look at its per-peer queues."""
        high_water = self.config.queue_high_water
        queues = self._pubsub.peer_queues
        if max((len(q) for q in queues.values()), default=0) < high_water:
            return
        self._stats.queue_waits += 1
        with trio.move_on_after(self.config.max_queue_wait):
            # libp2p's RpcQueue has no "drained" event to wait on: poll its length.
            while max((len(q) for q in queues.values()), default=0) >= high_water:  # noqa: ASYNC110
                await trio.sleep(_QUEUE_POLL)
            return
        self._stats.queue_wait_timeouts += 1
        logger.warning(
            "a peer's outbound queue stayed above %d RPCs for %.1f s; publishing anyway",
            high_water,
            self.config.max_queue_wait,
        )

    # -- inbound ----------------------------------------------------------------------------

    def _gate(self, forwarder: ID, msg: rpc_pb2.Message) -> bool:
        """Rule 3 (runs for messages from other peers only, before signature checks)."""
        cost = batch_op_count(msg.data) or 1
        peer_id = forwarder.to_base58()
        now = trio.current_time()
        if self._rate.allow(peer_id, now, cost):
            return True
        self._stats.rate_limited += 1
        last = self._stats.last_rate_limit_log.get(peer_id)
        if last is None or now - last > 10.0:
            self._stats.last_rate_limit_log[peer_id] = now
            logger.warning("%s is over its gossip budget; dropping its messages", peer_id)
        return False

    def _validator(self, forwarder: ID, msg: rpc_pb2.Message) -> bool:
        """Rule 4. A sync pubsub validator that raises brings down the whole node: never raise."""
        try:
            if msg.from_id == self._own_id:
                return True
            peer_id = forwarder.to_base58()
            try:
                ops = decode_batch(msg.data)
            except GossipPayloadError as error:
                self._stats.rejected_payload += 1
                self._host.report_invalid(peer_id, f"bad gossip payload: {error}")
                return False
            try:
                verdict = self._validate_batch(peer_id, ops)
            except Exception:
                self._stats.validator_errors += 1
                logger.exception("validate_batch raised; rejecting the batch")
                return False
            if verdict is not True:
                self._stats.rejected_by_validator += 1
                self._host.report_invalid(peer_id, "gossip batch rejected")
                return False
            self._stats.accepted += 1
            return True
        except Exception:
            logger.exception("gossip validator failed; rejecting the message")
            return False

    async def _read_topic(
        self, topic: str, subscription: ISubscriptionAPI, scope: trio.CancelScope
    ) -> None:
        with scope:
            while True:
                try:
                    msg = await subscription.get()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return  # unsubscribed
                if msg.from_id == self._own_id:
                    continue  # libp2p hands our own publishes to our subscription
                try:
                    ops = decode_batch(msg.data)
                except GossipPayloadError:
                    continue  # unreachable: the validator decoded it already
                self._stats.delivered_batches += 1
                self._stats.delivered_ops += len(ops)
                result = self._on_batch(topic, ID(msg.from_id).to_base58(), ops)
                if inspect.isawaitable(result):
                    await result

    async def _prune_rate_limits(self) -> None:
        while True:
            await trio.sleep(30)
            self._rate.prune(trio.current_time())

    def statistics(self) -> GossipStatistics:
        stats = self._stats
        return GossipStatistics(
            topics=tuple(self.subscriptions()),
            published_messages=stats.published_messages,
            published_ops=stats.published_ops,
            delivered_batches=stats.delivered_batches,
            delivered_ops=stats.delivered_ops,
            accepted=stats.accepted,
            rejected_payload=stats.rejected_payload,
            rejected_by_validator=stats.rejected_by_validator,
            validator_errors=stats.validator_errors,
            rate_limited=stats.rate_limited,
            queue_waits=stats.queue_waits,
            queue_wait_timeouts=stats.queue_wait_timeouts,
            pending_publish_calls=self._enqueued_calls - self._flushed_calls,
        )
