"""The wall clock, read in one place. Core never reads it (time is passed in); the Node, the CLI
and the networking layer read it here, so a test or an embedder can see where time comes from."""

from __future__ import annotations

import time

__all__ = ["wall_clock_ms", "wall_clock_seconds"]


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch: what operations' timestamps count."""
    return time.time_ns() // 1_000_000


def wall_clock_seconds() -> float:
    """Seconds since the Unix epoch (for what is remembered across restarts)."""
    return time.time()
