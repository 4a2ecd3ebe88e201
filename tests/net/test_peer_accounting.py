"""Pure tests of the per-peer accounting rules (p2pcomments/net/peer_accounting.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcomments.net.peer_accounting import BanList, PeerRateLimiter, StrikeCounter, TokenBucket


def test_bucket_starts_full_and_refills_at_rate_up_to_burst() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    assert all(bucket.try_take(0.0) for _ in range(5))
    assert not bucket.try_take(0.0)
    assert not bucket.try_take(0.05)  # half a token
    assert bucket.try_take(0.1)
    assert bucket.available(100.0) == 5  # never above burst


def test_refused_take_changes_nothing_and_oversized_cost_never_succeeds() -> None:
    bucket = TokenBucket(rate=1, burst=3)
    assert not bucket.try_take(0.0, cost=4)
    assert bucket.available(0.0) == 3
    assert bucket.try_take(0.0, cost=3)
    assert not bucket.try_take(0.5, cost=1)
    assert bucket.available(0.5) == pytest.approx(0.5)


def test_time_going_backwards_does_not_mint_tokens() -> None:
    bucket = TokenBucket(rate=1, burst=2)
    assert bucket.try_take(10.0, cost=2)
    assert not bucket.try_take(5.0)
    assert bucket.available(10.0) == 0


@given(
    rate=st.floats(0.1, 1000),
    burst=st.floats(1, 1000),
    steps=st.lists(st.tuples(st.floats(0, 10), st.floats(0, 50)), max_size=50),
)
def test_bucket_never_grants_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: float, steps: list[tuple[float, float]]
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst)
    now = 0.0
    granted = 0.0
    for delta, cost in steps:
        now += delta
        if bucket.try_take(now, cost):
            granted += cost
        assert 0 <= bucket.available(now) <= burst + 1e-9
    assert granted <= burst + rate * now + 1e-6


def test_rate_limiter_is_per_peer_and_prunes_full_buckets() -> None:
    limiter = PeerRateLimiter(rate=1, burst=2)
    assert limiter.allow("a", 0.0, 2)
    assert not limiter.allow("a", 0.0)
    assert limiter.allow("b", 0.0, 2)
    limiter.prune(1.0)
    assert len(limiter) == 2  # half-refilled buckets still carry information
    limiter.prune(2.0)
    assert len(limiter) == 0


def test_strikes_ban_at_threshold_inside_the_window_only() -> None:
    strikes = StrikeCounter(max_strikes=3, window=60)
    assert not strikes.strike("p", 0)
    assert not strikes.strike("p", 30)
    assert strikes.count("p", 30) == 2
    assert not strikes.strike("p", 70)  # the strike at 0 has left the window
    assert strikes.strike("p", 71)
    assert strikes.count("p", 71) == 0  # cleared once reported
    assert not strikes.strike("q", 71)
    strikes.prune(200)
    assert strikes.count("q", 200) == 0


def test_ban_list_expires_and_never_shortens() -> None:
    bans = BanList()
    assert bans.ban("p", 0, 100) == 100
    assert bans.ban("p", 10, 20) == 100  # a shorter ban does not shorten the current one
    assert bans.is_banned("p", 99.9)
    assert not bans.is_banned("p", 100)
    assert bans.banned(50) == ["p"]
    assert bans.prune(100) == ["p"]
    assert len(bans) == 0
    bans.ban("q", 0, 5)
    bans.unban("q")
    assert not bans.is_banned("q", 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: TokenBucket(rate=0, burst=1),
        lambda: TokenBucket(rate=1, burst=0),
        lambda: PeerRateLimiter(rate=-1, burst=1),
        lambda: StrikeCounter(max_strikes=0, window=1),
        lambda: BanList().ban("p", 0, 0),
    ],
)
def test_nonsense_parameters_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]
