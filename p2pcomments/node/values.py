"""The values the Node hands out: thread summaries, changes, applied batches, statistics."""

from __future__ import annotations

from dataclasses import dataclass

from p2pcomments.core.ops import Kind, Operation

__all__ = ["AppliedBatch", "NodeStatistics", "ThreadChange", "ThreadSummary"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadSummary:
    """One line of the thread list. ``comment_count`` counts comments, retracted ones excluded;
    ``last_activity_ms`` is the greatest author timestamp among the thread's operations."""

    id: bytes
    title: str
    url: str | None
    site: str | None
    owner: bytes
    owner_name: str | None
    comment_count: int
    last_activity_ms: int
    closed: bool
    timestamp_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadChange:
    """An operation was applied (and committed). ``thread_id`` is None for a profile change, which
    every watcher hears because it renames authors everywhere. ``lagged`` means changes were
    dropped because the watcher fell behind: re-read the view; ``op_id`` and ``kind`` are None."""

    thread_id: bytes | None
    op_id: bytes | None
    kind: Kind | None
    lagged: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedBatch:
    """Operations newly applied by one write or ingest call, in causal order, for the networking
    layer to gossip. ``source`` is the ``source`` given to `Node.ingest` (``"local"`` for this
    node's own writes). ``lagged`` means earlier batches were dropped because the subscriber fell
    behind; set reconciliation has to make up for them."""

    ops: tuple[Operation, ...]
    source: str
    lagged: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatistics:
    operations: int  # applied operations held
    threads: int
    pending: int  # operations waiting for operations they reference
    rejected: int  # operations refused by ingest since open
    data_dir: str
    author: bytes
    profiles: int
    watchers: int
    applied_subscribers: int
    database_bytes: int
    store_commits: int  # transactions since open; fewer than writes under load (group commit)
    load_seconds: float  # time to load the store into memory at open
    unloadable: int  # stored operations that did not decode or apply at open (see the log)
