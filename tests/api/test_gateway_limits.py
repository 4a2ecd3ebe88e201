"""The gateway's token buckets and batch counting, with time passed in (no clock, no sleeps)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcomments.api.gateway import GatewayLimits, TokenBucket, _batch_count, _Clients, client_of
from p2pcomments.net.gossip_payload import encode_batch


def test_a_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=4.0, tokens=4.0, updated=100.0)
    assert [bucket.take(1, 100.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.0]
    assert bucket.take(1, 100.0) == pytest.approx(0.5)  # one token comes in 0.5 s
    assert bucket.take(1, 100.5) == 0.0
    assert bucket.take(3, 100.5) == pytest.approx(1.5)  # refused: nothing is taken
    assert bucket.take(2, 101.5) == 0.0
    assert bucket.take(100, 1000.0) == 0.0  # more than the capacity costs the capacity


@given(st.lists(st.tuples(st.floats(0, 10), st.integers(1, 5)), max_size=50))
def test_a_bucket_never_grants_more_than_burst_plus_rate_times_time(
    steps: list[tuple[float, int]],
) -> None:
    bucket = TokenBucket(rate=3.0, capacity=5.0, tokens=5.0, updated=0.0)
    now = 0.0
    granted = 0
    for delay, count in steps:
        now += delay
        if bucket.take(count, now) == 0.0:
            granted += min(count, 5)
        assert 0.0 <= bucket.tokens <= 5.0
    assert granted <= 5 + 3.0 * now + 1e-6


def test_a_batch_is_counted_from_its_header() -> None:
    assert _batch_count(encode_batch([b"a"] * 3)) == 3
    assert _batch_count(encode_batch([b"a"] * 300)[:3]) == 300
    assert _batch_count(b"") is None
    assert _batch_count(b"\xc4\x01a") is None


def test_idle_clients_are_forgotten() -> None:
    clients = _Clients(GatewayLimits(requests_per_minute=60, request_burst=2))
    first = clients.get("192.0.2.1", now=0.0)
    first.requests.take(2, 0.0)
    clients.get("192.0.2.2", now=0.0)
    clients.forget_idle(now=1.0)  # .1 is refilling still; .2 never spent anything
    assert set(clients.by_address) == {"192.0.2.1"}
    clients.forget_idle(now=3.0)
    assert clients.by_address == {}


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="ops_per_minute"):
        GatewayLimits(ops_per_minute=0)


def test_behind_a_proxy_the_client_is_the_last_forwarded_address() -> None:
    scope = {
        "client": ("10.0.0.2", 51000),  # the proxy
        "headers": [(b"x-forwarded-for", b"198.51.100.7, 203.0.113.9")],
    }
    assert client_of(scope, trust_forwarded_for=True) == "203.0.113.9"
    # Not trusted: what anyone can write in a header changes nothing.
    assert client_of(scope, trust_forwarded_for=False) == "10.0.0.2"
    assert client_of({"client": None, "headers": []}, trust_forwarded_for=True) == "unknown"
    assert client_of({"client": ("10.0.0.2", 1), "headers": []}, trust_forwarded_for=True) == (
        "10.0.0.2"
    )
