"""How complete a thread is here: what a reader needs to trust what they see, per thread.

Rules:

1. *Verified* operations are the thread's applied ones: each had its signature checked and passed
   every validity rule before it was applied (`core.thread_state` rule 1-2). *Pending* ones are
   held, signed and valid so far, but wait for operations they reference (each names what it
   misses). *Held* is verified plus pending: "57 of 57 operations verified" is verified of held.
2. *Rejected* operations are never stored (`store.op_store` rule 1), so what is known of them is
   what this node saw since it opened: a `RejectionLog` keeps, per thread, the count and the most
   recent `RejectionLog.keep` of them with their reason code and message. An operation is
   counted once, however often peers send it again. An operation is counted
   under the thread it names only once it decoded with a valid signature (a forged one names no
   thread anyone signed for); the node-wide count of rejections has the others too.
3. Everything here is a value computed from what the replica holds and the log; nothing is a
   clock read: the log is told when (``at_ms``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from p2pcomments.core.ops import Kind, Operation
from p2pcomments.core.replica import Rejected

__all__ = [
    "PendingOperation",
    "RejectedOperation",
    "RejectionLog",
    "ThreadCompleteness",
    "thread_completeness",
]

DEFAULT_KEEP: Final = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingOperation:
    id: bytes
    kind: Kind
    missing: tuple[bytes, ...]  # sorted


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedOperation:
    id: bytes
    reason: str  # the spec's reason code
    message: str
    at_ms: int  # when this node rejected it


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadCompleteness:
    """One thread's completeness here (rules 1-2). ``rejected`` holds the most recent rejections
    (newest last); ``rejected_count`` counts every one since ``rejections_since_ms``."""

    thread: bytes
    verified: int
    pending: tuple[PendingOperation, ...]
    rejected: tuple[RejectedOperation, ...]
    rejected_count: int
    rejections_since_ms: int

    @property
    def held(self) -> int:
        return self.verified + len(self.pending)

    @property
    def complete(self) -> bool:
        """Nothing held waits: every operation held here is verified."""
        return not self.pending


class RejectionLog:
    """Rejections seen since ``since_ms``, per thread, bounded (rule 2)."""

    def __init__(self, *, since_ms: int, keep: int = DEFAULT_KEEP) -> None:
        self.since_ms = since_ms
        self.keep = keep
        self._recent: dict[bytes, deque[RejectedOperation]] = {}
        self._counts: dict[bytes, int] = {}
        self._seen: set[bytes] = set()  # 32 bytes each, as the replica keeps of every rejection

    def record(self, op: Operation, rejected: Rejected, *, at_ms: int) -> None:
        """Note that ``op`` (decoded, its signature valid) was rejected as ``rejected`` says."""
        thread_id = op.thread_id
        if thread_id is None or rejected.op_id in self._seen:
            return  # a profile belongs to no thread; a rejection is counted once
        self._seen.add(rejected.op_id)
        recent = self._recent.get(thread_id)
        if recent is None:
            recent = self._recent[thread_id] = deque(maxlen=self.keep)
        recent.append(
            RejectedOperation(
                id=rejected.op_id, reason=rejected.reason, message=rejected.message, at_ms=at_ms
            )
        )
        self._counts[thread_id] = self._counts.get(thread_id, 0) + 1

    def of(self, thread_id: bytes) -> tuple[tuple[RejectedOperation, ...], int]:
        """The most recent rejections in ``thread_id`` (oldest first), and how many in all."""
        return tuple(self._recent.get(thread_id, ())), self._counts.get(thread_id, 0)


def thread_completeness(
    thread_id: bytes,
    *,
    verified: int,
    pending: Iterable[tuple[Operation, Iterable[bytes]]],
    log: RejectionLog,
) -> ThreadCompleteness:
    """The completeness of ``thread_id`` from its applied count, the replica's pending operations
    (each with what it misses; those of other threads are skipped) and the log."""
    waiting = sorted(
        (
            PendingOperation(id=op.id, kind=op.kind, missing=tuple(sorted(missing)))
            for op, missing in pending
            if op.thread == thread_id
        ),
        key=lambda item: item.id,
    )
    rejected, count = log.of(thread_id)
    return ThreadCompleteness(
        thread=thread_id,
        verified=verified,
        pending=tuple(waiting),
        rejected=rejected,
        rejected_count=count,
        rejections_since_ms=log.since_ms,
    )
