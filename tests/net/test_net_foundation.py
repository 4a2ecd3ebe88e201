"""The networking foundation across real OS processes on 127.0.0.1 (scripts/net_probe.py).

Each test starts 2-3 probe processes (the `probes` fixture kills them by PID whatever happens) and
drives them through JSON lines. Measured figures are printed: ``pytest -s`` shows them.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

pytestmark = [pytest.mark.network, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ops(probe: Any, tag: str, expected: int, timeout: float) -> set[str]:
    deadline = time.monotonic() + timeout
    while True:
        ops = set(probe.received_ops(tag))
        if len(ops) >= expected or time.monotonic() > deadline:
            return ops
        time.sleep(0.05)


def _event_time(probe: Any, event: str, **match: str) -> float:
    found = probe.wait_for(
        lambda e: e["event"] == event and all(e.get(k) == v for k, v in match.items()),
        10,
        event,
    )
    return float(found["t"])


def test_burst_of_separate_messages_reaches_every_process_and_echo_round_trips(probes):
    # a is the hub; b and c only know a. a publishes each batch as its own pubsub message
    # (coalescing off) so py-libp2p's queues see the whole burst.
    a = probes.start("a", "--coalesce-ms", "0")
    a.wait_listening()
    b = probes.start("b", "--bootstrap", a.multiaddr)
    c = probes.start("c", "--bootstrap", a.multiaddr, "--coalesce-ms", "25")
    b.wait_listening()
    c.wait_listening()
    b.wait_connected_to(a.peer_id, 15)
    c.wait_connected_to(a.peer_id, 15)
    connect_ms = (_event_time(b, "peer_connected") - _event_time(b, "listening")) * 1000
    a.send(cmd="wait_topic_peers", count=2)
    a.wait_for(lambda e: e["event"] == "topic_peers", 15, "topic peers")

    a.send(cmd="publish", count=200, rate=0, ops_per_batch=1, op_size=200, tag="burst")
    published = a.wait_for(lambda e: e["event"] == "published", 30, "published")
    start = float(published["t"]) - float(published["seconds"])
    got_b = _wait_ops(b, "burst", 200, 20)
    got_c = _wait_ops(c, "burst", 200, 20)
    last = max(float(e["t"]) for p in (b, c) for e in p.snapshot() if e["event"] == "batch")
    print(
        f"\nburst: b {len(got_b)}/200, c {len(got_c)}/200, published in "
        f"{published['seconds']:.3f} s, all delivered {last - start:.3f} s after the first publish;"
        f" b connected {connect_ms:.0f} ms after listening"
    )
    assert len(got_b) == 200
    assert len(got_c) == 200

    # Coalescing: c's 300 one-op publishes leave as a few pubsub messages, all delivered.
    c.send(cmd="publish", count=300, rate=0, ops_per_batch=1, op_size=100, tag="coalesced")
    c.wait_for(lambda e: e["event"] == "published", 30, "published")
    assert len(_wait_ops(a, "coalesced", 300, 20)) == 300
    assert len(_wait_ops(b, "coalesced", 300, 20)) == 300
    c_stats = c.stats()["gossip"]
    assert c_stats["published_messages"] < 30, c_stats

    b.send(cmd="echo", peer_id=a.peer_id, payload="hello over a framed stream")
    reply = b.wait_for(lambda e: e["event"] == "echo_reply", 15, "echo reply")
    print(f"echo: open {reply.get('open_ms')} ms, round trip {reply.get('rtt_ms')} ms")
    assert reply["ok"], reply
    assert reply["payload"] == "hello over a framed stream"

    stats = {name: p.stats() for name, p in (("a", a), ("b", b), ("c", c))}
    for name, found in stats.items():
        print(f"{name}: rss {found['rss_kb'] // 1024} MiB, cpu {found['cpu_s']} s")
        assert found["gossip"]["rejected_payload"] == 0
    for probe in (a, b, c):
        assert probe.stop() == 0
        assert probe.snapshot()[-1]["event"] == "stopped"


def test_killed_and_restarted_node_keeps_its_peer_id_and_its_first_messages_are_forwarded(probes):
    # Line b -> a -> c. A restarted node whose pubsub sequence numbers restart where the old ones
    # were (py-libp2p default: int(time.time())) has its first messages dropped by the hub as
    # "equivocation" (same from + seqno, other data), so c would miss them.
    a = probes.start("a")
    a.wait_listening()
    c = probes.start("c", "--bootstrap", a.multiaddr)
    b = probes.start("b", "--bootstrap", a.multiaddr, "--coalesce-ms", "0")
    c.wait_listening()
    b.wait_listening()
    b.wait_connected_to(a.peer_id, 15)
    c.wait_connected_to(a.peer_id, 15)
    a.send(cmd="wait_topic_peers", count=2)
    a.wait_for(lambda e: e["event"] == "topic_peers", 15, "topic peers")
    b.send(cmd="publish", count=20, tag="before")
    b.wait_for(lambda e: e["event"] == "published", 15, "published")
    assert len(_wait_ops(c, "before", 20, 10)) == 20
    old_peer_id = b.peer_id

    # kill -9: no shutdown code runs, so this also shows peers.json was written while running.
    stop_started = time.time()
    b.kill()
    # No --bootstrap this time: it must find a through its remembered peers.
    b2 = probes.start("b", "--coalesce-ms", "0", data_dir=b.data_dir)
    b2.wait_listening()
    assert b2.peer_id == old_peer_id
    b2.wait_connected_to(a.peer_id, 15)
    listening = _event_time(b2, "listening")
    connected = _event_time(b2, "peer_connected", peer_id=a.peer_id)
    print(
        f"\nrestart: SIGKILL to listening {listening - stop_started:.2f} s (process start), "
        f"listening to reconnected {(connected - listening) * 1000:.0f} ms"
    )
    b2.send(cmd="wait_topic_peers", count=1)
    b2.wait_for(lambda e: e["event"] == "topic_peers", 15, "topic peers")
    b2.send(cmd="publish", count=20, tag="after")
    b2.wait_for(lambda e: e["event"] == "published", 15, "published")
    assert len(_wait_ops(a, "after", 20, 10)) == 20
    assert len(_wait_ops(c, "after", 20, 10)) == 20
    assert a.stats()["host"]["suppressed_logs"].get("Equivocation detected", 0) == 0


LATE_DIAL_FAILURES = 4  # failed dials of the absent bootstrap peer before it starts


def test_node_whose_bootstrap_peer_starts_late_still_connects(probes, tmp_path):
    from libp2p.peer.id import ID

    from p2pcomments.net.host import load_or_create_identity

    late_dir = tmp_path / "late"
    late_id = ID.from_pubkey(load_or_create_identity(late_dir).public_key).to_base58()
    port = _free_port()
    late_addr = f"/ip4/127.0.0.1/tcp/{port}/p2p/{late_id}"

    early = probes.start("early", "--bootstrap", late_addr, "--redial-max-delay", "3")
    early.wait_listening()
    # It keeps redialling the absent peer (counted, not slept for), and reaches nobody.
    deadline = time.monotonic() + 30
    while early.stats()["host"]["dial_failures"] < LATE_DIAL_FAILURES:
        assert time.monotonic() < deadline, "the early node stopped redialling"
        time.sleep(0.2)
    assert not [e for e in early.snapshot() if e["event"] == "peer_connected"]
    late = probes.start("late", "--listen", f"/ip4/127.0.0.1/tcp/{port}", data_dir=late_dir)
    late.wait_listening()
    assert late.peer_id == late_id
    early.wait_connected_to(late_id, 15)
    waited = _event_time(early, "peer_connected", peer_id=late_id) - _event_time(late, "listening")
    stats = early.stats()["host"]
    print(
        f"\nlate bootstrap: connected {waited:.2f} s after it started listening, "
        f"{stats['dial_attempts']} dial attempts"
    )
    assert waited < 10.0  # backoff capped at 3 s (+20% jitter) plus one dial, on a busy box
