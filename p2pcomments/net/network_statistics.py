"""What the network service counts: a mutable tally inside, frozen values out (trio's
``statistics()`` convention: named fields, no dicts to probe with ``isinstance``).

Rules:

1. Every counter only grows while the service runs; `NetworkCounters` is a snapshot of them.
2. The first six fields of `NetworkCounters` are the API contract's (``GET /api/statistics`` →
   ``network``); the API translates these values to JSON, the network never builds it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Tally"]


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
