"""The wall clock, read in one place. Core never reads it (time is passed in); the Node, the CLI
and the networking layer read it here, so a test or an embedder can see where time comes from."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Final

__all__ = ["LAST_SHOWN_MS", "shown_moment", "wall_clock_ms", "wall_clock_seconds"]

LAST_SHOWN_MS: Final = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z, the last moment `datetime` holds."""


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch: what operations' timestamps count."""
    return time.time_ns() // 1_000_000


def wall_clock_seconds() -> float:
    """Seconds since the Unix epoch (for what is remembered across restarts)."""
    return time.time()


def shown_moment(timestamp_ms: int) -> datetime:
    """The UTC moment of an operation's timestamp, to show it: clamped to what `datetime` holds,
    since a timestamp is anything an author's clock said in [0, 2^63) ms."""
    clamped = min(max(timestamp_ms, 0), LAST_SHOWN_MS)
    return datetime.fromtimestamp(clamped // 1000, tz=UTC).replace(
        microsecond=clamped % 1000 * 1000
    )
