"""End to end over the network: real ``p2pc daemon`` processes on 127.0.0.1, driven through their
HTTP API and CLI as a user would (DESIGN.md §4-§5: convergence, nothing invalid stored or
forwarded, every operation reaches every node after connectivity returns, a thread outlives its
creator's node).

The five-node cluster (A-E; F and G join later) is shared by the first five tests, in file order
(each also runs alone); the other tests start their own daemons. Every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from p2pcomments.core.ops import decode_operation
from p2pcomments.core.textform import TextKind, format_id

from .harness import (
    Cluster,
    Daemon,
    DaemonApi,
    cluster,
    encode_bundle,
    foreign_operations,
    wait_until,
)

pytestmark = [pytest.mark.network]

SITE = "e2e.example"
PARTITION_SITE = "partition.example"
ABUSE_SITE = "abuse.example"

BURST_API_OPS = 200
BURST_IMPORT_OPS = 1_800
BURST_IMPORT_BUNDLES = 9


def site_topic(site: str) -> str:
    return f"p2pc/1/site/{site}"


def report(message: str) -> None:
    """A measured figure, shown with ``pytest -s`` (and in the report of a failing test)."""
    print(f"[e2e] {message}")


def holds_thread(daemon: Daemon, thread: str, operations: int | None = None) -> bool:
    """Whether ``daemon`` holds ``thread`` (with exactly ``operations`` operations, if given)."""
    try:
        view = daemon.api.thread(thread)
    except httpx.HTTPStatusError as error:
        if error.response.status_code == 404:
            return False
        raise
    return operations is None or int(view["operation_count"]) == operations


def wait_thread_converged(
    daemons: list[Daemon], thread: str, operations: int, *, timeout: float
) -> str:
    """Wait until every daemon holds ``thread`` with ``operations`` ops and one digest; it."""

    def converged() -> str | None:
        if not all(holds_thread(d, thread, operations) for d in daemons):
            return None
        digests = {d.api.digest(thread) for d in daemons}
        return digests.pop() if len(digests) == 1 else None

    def describe() -> str:
        rows = []
        for d in daemons:
            try:
                view = d.api.thread(thread)
                rows.append(f"  {d.name}: {view['operation_count']} ops, {view['digest'][:16]}")
            except httpx.HTTPError as error:
                rows.append(f"  {d.name}: {error!r}"[:200])
        return "\n".join(rows)

    return wait_until(
        converged,
        timeout=timeout,
        message=f"{[d.name for d in daemons]} to agree on {thread} ({operations} ops)",
        describe=describe,
    )


# -- the shared five-node cluster ----------------------------------------------------------------


@pytest.fixture(scope="module")
def five(networking: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A bootstrapped by nobody; B, C by A; D by B and C; E by C and D. Losing any one node leaves
    the others connected. Every node follows the site SITE."""
    with cluster(tmp_path_factory.mktemp("five"), name="five") as group:
        a = group.start("A")
        b, c = group.start_wave([("B", [a]), ("C", [a])])
        d = group.start("D", bootstrap=[b, c])
        e = group.start("E", bootstrap=[c, d])
        for node, peers in ((b, [a]), (c, [a]), (d, [b, c]), (e, [c, d])):
            group.wait_connected(node, peers)
        for node in (a, b, c, d, e):
            node.api.follow(site=SITE)
        yield group


def test_a_comment_on_c_is_shown_on_all_five_nodes(five: Cluster) -> None:
    nodes = [five[name] for name in "ABCDE"]
    c = five["C"]
    thread = c.api.create_thread("five nodes", site=SITE)
    started = time.monotonic()
    comment = c.api.comment(thread, "hello from C")

    def everywhere() -> bool:
        return all(holds_thread(node, thread, 2) for node in nodes)

    wait_until(everywhere, timeout=20, interval=0.1, message="the comment on all five nodes")
    elapsed = time.monotonic() - started
    report(f"comment on C visible through the API on all five after {elapsed:.2f} s")

    digest = c.api.digest(thread)
    for node in nodes:
        view = node.cli_json("show", thread)
        assert [row["id"] for row in view["comments"]] == [comment], node.name
        assert view["comments"][0]["body"] == "hello from C"
        assert view["digest"] == digest, node.name
    assert elapsed < 5.0, f"took {elapsed:.2f} s to reach all five nodes"


@dataclass(frozen=True, slots=True, kw_only=True)
class Burst:
    thread: str
    operations: int  # A's operation count once the burst was accepted
    api_rate: float  # ops/s through single POSTs (several clients)
    import_rate: float  # ops/s through POST /api/import


def _post_comments(api_url: str, token: str, thread: str, worker: int, count: int) -> None:
    api = DaemonApi(api_url, token)
    try:
        for n in range(count):
            api.comment(thread, f"burst comment {n} from client {worker}")
    finally:
        api.close()


def _import(api_url: str, token: str, bundle: bytes) -> dict[str, object]:
    api = DaemonApi(api_url, token)
    try:
        return api.import_bundle(bundle)
    finally:
        api.close()


@pytest.fixture(scope="module")
def burst(five: Cluster) -> Burst:
    """2,000 operations on A as fast as its API takes them: 200 comments through POSTs from four
    clients at once, then 1,800 operations by 20 other authors (comments, replies, edits,
    reactions) through POST /api/import, nine bundles from three clients at once."""
    a = five["A"]
    url, token = str(a.api_info["url"]), str(a.api_info["token"])
    thread = a.api.create_thread("burst", site=SITE)

    clients = 4
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(
            pool.map(
                lambda n: _post_comments(url, token, thread, n, BURST_API_OPS // clients),
                range(clients),
            )
        )
    api_rate = BURST_API_OPS / (time.monotonic() - started)

    ops = foreign_operations(thread, BURST_IMPORT_OPS, seed=7)
    size = len(ops) // BURST_IMPORT_BUNDLES
    bundles = [encode_bundle(ops[i : i + size]) for i in range(0, len(ops), size)]
    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda bundle: _import(url, token, bundle), bundles))
    import_rate = BURST_IMPORT_OPS / (time.monotonic() - started)
    for result in results:
        assert result["rejected"] == 0, result
    report(f"burst on A: {api_rate:.0f} ops/s through POSTs, {import_rate:.0f} ops/s by import")
    view = a.api.thread(thread)
    assert view["operation_count"] == 1 + BURST_API_OPS + BURST_IMPORT_OPS
    return Burst(
        thread=thread,
        operations=a.api.operation_count(),
        api_rate=api_rate,
        import_rate=import_rate,
    )


@pytest.mark.slow
def test_a_burst_of_2000_operations_reaches_every_node(five: Cluster, burst: Burst) -> None:
    nodes = [five[name] for name in "ABCDE"]
    started = time.monotonic()
    snapshot = five.wait_converged(nodes, timeout=60)
    report(f"2,000-op burst: five nodes identical {time.monotonic() - started:.1f} s after it")
    assert snapshot.operations >= burst.operations
    assert burst.thread in dict(snapshot.digests)


@pytest.mark.slow
def test_a_late_joiner_gets_every_operation(five: Cluster, burst: Burst) -> None:
    a, e = five["A"], five["E"]
    started = time.monotonic()
    f = five.start("F", bootstrap=[e])
    snapshot = five.wait_converged([a, e, f], timeout=60)
    report(f"late joiner F: identical to A and E {time.monotonic() - started:.1f} s after start")
    assert snapshot.operations >= burst.operations
    assert f.api.digest(burst.thread) == a.api.digest(burst.thread)
    assert e.peer_id in f.api.peer_ids()


@pytest.mark.slow
def test_a_restarted_node_catches_up_both_ways(five: Cluster) -> None:
    """E goes down; others write meanwhile and E writes offline (through the CLI, on its store);
    E comes back on its port with no bootstrap address, only the peers it remembers (C and D),
    and F (bootstrapped to E alone) dials it again: every node converges."""
    a, c, e = five["A"], five["C"], five["E"]
    thread = a.api.create_thread("restart", site=SITE)
    wait_thread_converged(five.running(), thread, 1, timeout=20)
    assert e.stop() == 0

    for n in range(5):
        a.api.comment(thread, f"A while E is down {n}")
        c.api.comment(thread, f"C while E is down {n}")
    offline = e.cli_json("comment", thread, "--body", "E, written offline")
    started = time.monotonic()
    e.restart(bootstrap=(), same_port=True)
    wait_thread_converged(five.running(), thread, 12, timeout=30)
    report(f"restarted E: every node identical {time.monotonic() - started:.1f} s after restart")
    assert a.api.get(f"/api/comments/{offline['id']}")["body"] == "E, written offline"


@pytest.mark.slow
def test_a_thread_outlives_its_creators_node(five: Cluster) -> None:
    b = five["B"]
    thread = b.api.create_thread("takedown", site=SITE)
    own = [b.api.comment(thread, f"B says {n}") for n in range(3)]
    b.api.reply(own[0], "B answers itself")
    others = [node for node in five.running() if node is not b]
    wait_thread_converged([b, *others], thread, 5, timeout=20)
    creator = b.api.thread(thread)["owner"]
    creators_ops = set(b.api.export(thread))
    assert len(creators_ops) == 5

    b.kill()
    c, d, e = five["C"], five["D"], five["E"]
    c.api.comment(thread, "C, after B is gone")
    d.api.reply(own[1], "D answers B, who is gone")
    e.api.comment(thread, "E, after B is gone")
    survivors = five.running()
    assert b not in survivors
    digest = wait_thread_converged(survivors, thread, 8, timeout=30)

    started = time.monotonic()
    g = five.start("G", bootstrap=[d])
    wait_thread_converged([d, g], thread, 8, timeout=60)
    report(f"new node G got the orphaned thread {time.monotonic() - started:.1f} s after start")
    assert g.api.digest(thread) == digest

    exported = g.api.export(thread)
    assert set(exported) == set(d.api.export(thread))
    ops = [decode_operation(raw, verify=True) for raw in exported]  # every signature checked
    assert len(ops) == 8
    assert creators_ops <= set(exported)
    thread_op = next(op for op in ops if format_id(TextKind.THREAD, op.id) == thread)
    assert format_id(TextKind.KEY, thread_op.author) == creator
    shown = g.cli_json("show", thread)
    assert shown["owner"] == creator
    assert {row["body"] for row in shown["comments"]} >= {"B says 0", "B answers itself"}


@pytest.mark.slow
def test_a_node_back_on_a_new_port_finds_the_peers_that_had_dialled_it(
    networking: None, tmp_path: Path
) -> None:
    """Peers that dialled us are remembered too (identify's addresses end in /p2p/<id>; those
    were once refused), so P, back on a new port, finds Q, which only knows P's old address."""
    with cluster(tmp_path, name="new-port") as group:
        p = group.start("P")
        q = group.start("Q", bootstrap=[p])  # Q knows P's old address only
        group.wait_connected(p, [q])
        time.sleep(3)  # identify has told P where Q listens; P's housekeeping had its ticks
        p.restart(bootstrap=())
        group.wait_connected(p, [q], timeout=10)


# -- partition and heal ------------------------------------------------------------------------


@pytest.mark.slow
def test_two_groups_writing_apart_converge_once_connected(networking: None, tmp_path: Path) -> None:
    with cluster(tmp_path, name="partition") as group:
        p1, q1 = group.start_wave([("P1", []), ("Q1", [])])
        p2, q2 = group.start_wave([("P2", [p1]), ("Q2", [q1])])
        group.wait_connected(p2, [p1])
        group.wait_connected(q2, [q1])
        nodes = [p1, p2, q1, q2]
        for node in (p1, p2):
            node.api.follow(site=PARTITION_SITE)
        for node in (q1, q2):  # the CLI way
            node.cli_json("follow", PARTITION_SITE)
        identity = q1.cli_json("id")
        assert identity["peer_id"] == q1.peer_id
        assert q1.multiaddr in identity["multiaddrs"]

        # History both sides had before the split: a thread, moved to Q1 as a bundle.
        thread = p1.api.create_thread("partitioned", site=PARTITION_SITE)
        first = p1.api.comment(thread, "before the split")
        imported = q1.api.import_bundle(encode_bundle(p1.api.export(thread)))
        assert imported["rejected"] == 0, imported
        wait_thread_converged(nodes, thread, 2, timeout=20)

        # Apart: each side writes to the shared thread and opens a thread of its own.
        for n in range(10):
            p1.api.comment(thread, f"P1 apart {n}")
            q1.api.comment(thread, f"Q1 apart {n}")
        p2.api.reply(first, "P2 apart")
        q2.api.reply(first, "Q2 apart")
        p_thread = p2.api.create_thread("P side", site=PARTITION_SITE)
        q_thread = q2.api.create_thread("Q side", site=PARTITION_SITE)
        # A thread reaches the other node of its group by gossip a few ms later: wait for it.
        wait_thread_converged([p1, p2], p_thread, 1, timeout=20)
        wait_thread_converged([q1, q2], q_thread, 1, timeout=20)
        p1.api.comment(p_thread, "on the P side")
        q1.api.comment(q_thread, "on the Q side")
        p_side = group.wait_converged([p1, p2], timeout=30)
        q_side = group.wait_converged([q1, q2], timeout=30)
        assert p_side != q_side
        assert p1.api.peer_ids() == {p2.peer_id}
        assert q1.api.peer_ids() == {q2.peer_id}

        # Heal through the CLI, as a user would.
        started = time.monotonic()
        q1.cli_json("connect", p2.multiaddr)
        healed = group.wait_converged(nodes, timeout=30)
        report(f"partition healed: four nodes identical {time.monotonic() - started:.1f} s later")
        assert {thread, p_thread, q_thread} <= set(dict(healed.digests))
        assert p2.peer_id in {str(peer["peer_id"]) for peer in q1.cli_json("peers")["peers"]}
        counts = q1.cli_json("sync")  # a round on demand, once everything is there: nothing moves
        assert counts["peers_synced"] >= 1, counts
        assert counts["received"] == 0, counts
        assert p1.api.thread(thread)["operation_count"] == 2 + 20 + 2


# -- a misbehaving peer --------------------------------------------------------------------------


def _evil_bodies(daemon: Daemon) -> list[str]:
    """Bodies of every comment and edit held on ``daemon`` that a bad peer wrote."""
    from p2pcomments.core.ops import CommentPayload, EditPayload

    found = []
    for raw in daemon.api.export():
        op = decode_operation(raw, verify=False)
        if isinstance(op.payload, CommentPayload | EditPayload) and "evil-" in op.payload.body:
            found.append(op.payload.body[:40])
    return found


def _network_statistics(daemon: Daemon) -> dict[str, int]:
    """The integer counters of ``statistics.network`` (the contract's six among them)."""
    network = daemon.api.statistics()["network"]
    return {k: v for k, v in network.items() if isinstance(v, int) and not isinstance(v, bool)}


def _wait_banned(honest: Daemon, bad_peer_id: str, banned_before: int) -> None:
    def gone() -> bool:
        banned = _network_statistics(honest)["banned_peers"]
        return banned > banned_before and bad_peer_id not in honest.api.peer_ids()

    wait_until(
        gone,
        timeout=20,
        message=f"{honest.name} to ban and disconnect {bad_peer_id}",
        describe=lambda: f"{honest.name}: {honest.api.network()}",
    )


@pytest.mark.slow
def test_a_misbehaving_peer_is_contained(networking: None, tmp_path: Path) -> None:
    with cluster(tmp_path, name="abuse") as group:
        x = group.start("X")
        y = group.start("Y", bootstrap=[x])  # never connected to the bad peer
        group.wait_connected(y, [x])
        for node in (x, y):
            node.api.follow(site=ABUSE_SITE)
        thread = x.api.create_thread("under attack", site=ABUSE_SITE)
        victim_comment = x.api.comment(thread, "an honest comment")
        victim = x.api.thread(thread)["owner"]
        wait_thread_converged([x, y], thread, 2, timeout=20)

        bad = group.misbehaving_peer(x, site_topic(ABUSE_SITE))
        sent: list[dict[str, object]] = []

        def attach(rotate: bool = True) -> str:
            """Drop the bad peer's identity (banned by now) for a fresh one; its peer id."""
            mark = len(bad.events)
            if rotate:
                bad.send("rotate")
            listening = bad.wait_event("listening", after=mark, timeout=60)
            bad.wait_event("connected", after=mark, timeout=30)
            mesh = bad.command("wait_mesh", "mesh", timeout=30, seconds=20)
            assert mesh["ok"], f"{x.name} never grafted the bad peer: {mesh}"
            return str(listening["peer_id"])

        # Identity 1: one valid comment first (the path bad peer -> X -> Y works, by gossip),
        # then bad signatures: forged, and an impersonation of the thread's owner.
        first = attach(rotate=False)
        y_gossip_before = _network_statistics(y)["gossip_ops_in"]
        control = bad.command("valid", "published", thread=thread, body="valid, from the bad peer")
        assert control["sent"] == 1
        control_id = str(control["ids"][0])
        wait_until(
            lambda: holds_thread(y, thread, 3),
            timeout=20,
            message="the bad peer's valid comment on Y",
        )
        assert y.api.get(f"/api/comments/{control_id}")["body"] == "valid, from the bad peer"
        assert _network_statistics(y)["gossip_ops_in"] > y_gossip_before, "not by gossip"

        banned = _network_statistics(x)["banned_peers"]
        sent.append(bad.command("forged", "published", thread=thread, count=2))
        sent.append(
            bad.command(
                "impersonate", "published", thread=thread, victim=victim, comment=victim_comment
            )
        )
        sent.append(bad.command("mixed", "published", thread=thread))
        _wait_banned(x, first, banned)

        # Identity 2: non-canonical and oversized operations.
        second = attach()
        assert second != first
        banned = _network_statistics(x)["banned_peers"]
        sent.append(bad.command("noncanonical", "published", thread=thread))
        sent.append(bad.command("oversized", "published", thread=thread))
        _wait_banned(x, second, banned)

        # Identity 3: payloads that are not batches at all.
        third = attach()
        banned = _network_statistics(x)["banned_peers"]
        sent.append(bad.command("garbage", "published", count=7))
        _wait_banned(x, third, banned)
        # X forwarded none of it: Y's validator never had anything to reject.
        assert _network_statistics(y)["rejected_from_peers"] == 0

        # Identity 4: an edit of someone else's comment (valid in itself, refused in context),
        # then junk on the sync protocol.
        attach()
        sent.append(
            bad.command("unauthorised_edit", "published", thread=thread, comment=victim_comment)
        )
        outcome = bad.command("sync_garbage", "sync_garbage", timeout=60)
        report(f"sync garbage: {outcome['results']}")

        # Honest traffic still flows, both ways.
        honest = [x.api.comment(thread, f"X after the attack {n}") for n in range(3)]
        honest += [y.api.comment(thread, f"Y after the attack {n}") for n in range(3)]
        digest = wait_thread_converged([x, y], thread, 3 + len(honest), timeout=30)
        assert x.running
        assert y.running

        # Nothing the bad peer sent is stored or shown, anywhere.
        bad_ids = {str(i) for event in sent for i in event["ids"]}  # type: ignore[attr-defined]
        for node in (x, y):
            assert _evil_bodies(node) == [], node.name
            assert node.api.statistics()["pending"] == 0
            for op_id in bad_ids:
                if op_id.startswith("cmt_"):
                    response = node.api.http.get(f"/api/comments/{op_id}")
                    assert response.status_code == 404, (node.name, op_id, response.text)
            view = node.api.thread(thread)
            assert view["digest"] == digest
            shown = {row["id"]: row for row in view["comments"]}
            assert shown[victim_comment]["body"] == "an honest comment"
            assert not shown[victim_comment]["edited"]
        stats = _network_statistics(x)
        report(f"X network statistics after the attack: {stats}")
        assert stats["rejected_from_peers"] >= 3 * 5
        assert stats["banned_peers"] >= 3
        assert first not in x.api.peer_ids()
