"""Per-peer accounting: rate limits, invalid-message strikes and a ban list with expiry.

Pure bookkeeping, no I/O: every method that depends on time takes ``now`` (seconds on any
monotonic clock the caller picks, e.g. ``trio.current_time()``), so the rules are testable without
sleeping and the same object works in a simulation.

Rules:

1. A `TokenBucket` starts full (``burst`` tokens) and refills at ``rate`` tokens per second, never
   above ``burst``. Taking ``cost`` tokens succeeds only when all of them are there; a refused take
   changes nothing. A cost larger than ``burst`` can never succeed.
2. `PeerRateLimiter` keeps one bucket per peer, created on first use; buckets idle long enough to be
   full again are dropped by `prune`, so memory follows active peers, not every peer ever seen.
3. `StrikeCounter` counts a peer's invalid messages inside a sliding window; the strike that brings
   the count to ``max_strikes`` returns True (the caller then bans) and clears the peer's record.
4. `BanList` holds a peer until its expiry; banning an already banned peer extends the ban to the
   later expiry, never shortens it. Expired entries read as not banned and are dropped by `prune`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from p2pcomments.net.errors import ConfigError

__all__ = ["BanList", "PeerRateLimiter", "StrikeCounter", "TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` stored (rule 1)."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst <= 0:
            raise ConfigError("rate and burst must be positive")
        self.tokens = self.burst

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now

    def try_take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if all are available; return whether it did."""
        if cost < 0:
            raise ValueError("cost must not be negative")
        self._refill(now)
        if cost > self.tokens:
            return False
        self.tokens -= cost
        return True

    def available(self, now: float) -> float:
        """Tokens available at ``now``."""
        self._refill(now)
        return self.tokens

    def is_full(self, now: float) -> bool:
        return self.available(now) >= self.burst


class PeerRateLimiter:
    """One `TokenBucket` per peer (rule 2)."""

    def __init__(self, *, rate: float, burst: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ConfigError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, peer_id: str, now: float, cost: float = 1.0) -> bool:
        """Charge ``cost`` to ``peer_id``; False means over its rate (nothing was charged)."""
        bucket = self._buckets.get(peer_id)
        if bucket is None:
            bucket = self._buckets[peer_id] = TokenBucket(rate=self.rate, burst=self.burst)
        return bucket.try_take(now, cost)

    def available(self, peer_id: str, now: float) -> float:
        """What ``peer_id`` may still be charged at ``now`` (a full bucket for a new peer)."""
        bucket = self._buckets.get(peer_id)
        return self.burst if bucket is None else bucket.available(now)

    def forget(self, peer_id: str) -> None:
        self._buckets.pop(peer_id, None)

    def prune(self, now: float) -> None:
        """Drop the buckets that have refilled completely (they carry no information)."""
        for peer_id in [p for p, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[peer_id]

    def __len__(self) -> int:
        return len(self._buckets)


class StrikeCounter:
    """Invalid-message strikes per peer in a sliding window (rule 3)."""

    def __init__(self, *, max_strikes: int, window: float) -> None:
        if max_strikes < 1 or window <= 0:
            raise ConfigError("max_strikes must be >= 1 and window > 0")
        self.max_strikes = max_strikes
        self.window = window
        self._strikes: dict[str, deque[float]] = {}

    def strike(self, peer_id: str, now: float) -> bool:
        """Record one invalid message from ``peer_id``; True when it reaches ``max_strikes``."""
        times = self._strikes.setdefault(peer_id, deque())
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.max_strikes:
            del self._strikes[peer_id]
            return True
        return False

    def count(self, peer_id: str, now: float) -> int:
        times = self._strikes.get(peer_id)
        if times is None:
            return 0
        return sum(1 for t in times if t > now - self.window)

    def forget(self, peer_id: str) -> None:
        self._strikes.pop(peer_id, None)

    def prune(self, now: float) -> None:
        for peer_id in list(self._strikes):
            times = self._strikes[peer_id]
            while times and times[0] <= now - self.window:
                times.popleft()
            if not times:
                del self._strikes[peer_id]


class BanList:
    """Peers refused until an expiry time (rule 4)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def ban(self, peer_id: str, now: float, duration: float) -> float:
        """Ban ``peer_id`` for ``duration`` seconds from ``now``; return the expiry in force."""
        if duration <= 0:
            raise ConfigError("duration must be positive")
        until = max(self._until.get(peer_id, now), now + duration)
        self._until[peer_id] = until
        return until

    def unban(self, peer_id: str) -> None:
        self._until.pop(peer_id, None)

    def is_banned(self, peer_id: str, now: float) -> bool:
        until = self._until.get(peer_id)
        return until is not None and now < until

    def expires_at(self, peer_id: str) -> float | None:
        return self._until.get(peer_id)

    def prune(self, now: float) -> list[str]:
        """Drop expired bans; return the peers whose ban just ended."""
        ended = [p for p, until in self._until.items() if now >= until]
        for peer_id in ended:
            del self._until[peer_id]
        return ended

    def banned(self, now: float) -> list[str]:
        return [p for p, until in self._until.items() if now < until]

    def __len__(self) -> int:
        return len(self._until)
