"""What the network service counts: a mutable tally inside, frozen values out (trio's
``statistics()`` convention: named fields, no dicts to probe with ``isinstance``).

Rules:

1. Every counter only grows while the service runs; `NetworkCounters` is a snapshot of them.
2. The first six fields of `NetworkCounters` are the API contract's (``GET /api/statistics`` →
   ``network``); the API translates these values to JSON, the network never builds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["GossipStatistics", "HostStatistics", "NetworkCounters", "NetworkStatistics", "Tally"]


@dataclass(slots=True)
class Tally:
    """The running counts of one `NodeNetwork`, shared by its parts."""

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


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkCounters:
    """The numeric counters of a `NodeNetwork` (rule 2: the first six are the API contract's)."""

    peers: int
    gossip_batches_in: int
    gossip_ops_in: int
    sync_rounds: int
    rejected_from_peers: int
    banned_peers: int
    gossip_ops_applied: int
    gossip_rejected_batches: int
    published_ops: int
    published_lagged: int
    sync_initiated: int
    sync_served: int
    sync_equal: int
    sync_failed: int
    sync_violations: int
    sync_declined: int
    sync_refused: int
    sync_ops_received: int
    sync_ops_duplicate: int
    sync_ops_sent: int
    sync_bytes_received: int
    sync_bytes_sent: int
    fetch_sessions: int
    fetch_ids_requested: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostStatistics:
    """`P2PHost.statistics`: its peers, dials, bans and py-libp2p's queues."""

    peer_id: str
    connected_peers: int
    redial_targets: int
    remembered_peers: int
    banned_peers: int
    bans: int
    refused_banned: int
    dial_attempts: int
    dial_failures: int
    connection_events_dropped: int
    max_outbound_queue: int
    suppressed_logs: Mapping[str, int]
    """Log records each noisy py-libp2p logger had dropped (`libp2p_workarounds`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipStatistics:
    """`Gossip.statistics`: topics joined, messages out and in, and what the validator did."""

    topics: tuple[str, ...]
    published_messages: int
    published_ops: int
    delivered_batches: int
    delivered_ops: int
    accepted: int
    rejected_payload: int
    rejected_by_validator: int
    validator_errors: int
    rate_limited: int
    queue_waits: int
    queue_wait_timeouts: int
    pending_publish_calls: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkStatistics:
    """`NodeNetwork.statistics`: its counters, the topics joined and its parts' statistics."""

    counters: NetworkCounters
    last_sync_error: str
    topics: tuple[str, ...]
    host: HostStatistics
    gossip: GossipStatistics
