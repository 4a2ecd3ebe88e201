#!/usr/bin/env python3
"""Network benchmark: real ``p2pc daemon`` processes on 127.0.0.1, measured from outside.

    .venv/bin/python scripts/bench_net.py [--quick] [--nodes 8] [--keep]

One run, five parts, one summary table at the end (figure, target, verdict):

(a) propagation: one publisher posts comments through its API at a steady rate (20 ops/s for
    20 s) to a thread all ``--nodes`` daemons follow; each daemon's ``GET /api/events`` stream is
    read in this process and timestamped on arrival. Latency = arrival at a daemon minus arrival
    of the same operation on the publisher's own stream (both seen the same way, so the SSE cost
    cancels out). Periodic sync is off (``--sync-interval 3600``) so gossip loss is visible:
    loss = (operation, daemon) pairs missing 5 s after the last post.
(b) throughput: N pre-signed operations by other authors pushed into the publisher through
    ``POST /api/import`` (the API's bulk path: single POSTs top out far below 1,000/s), gossiped in
    batches; ops/s = N / (time until every daemon holds all N). If gossip alone stalls, a sync
    round is requested on the lagging daemons and the figure says so.
(c) reconciliation, in-process (sans-IO `core.sync_protocol.SyncSession`, no network): two
    stores of 100,000 operations differing by 1% and by 0.01% (half of the difference on each
    side), synced with the sketch (SPEC §9.7) and with range reconciliation only (§9.6); bytes
    exchanged (frames and length prefixes, both ways) / bytes of the missing operations, round
    trips, seconds, CPU of each side, and the naive "send every id" figure (`bench_reconcile`).
(d) late joiner: a fresh daemon bootstrapped to one peer syncs everything held there; its ops/s
    next to raw PyNaCl verify/s (one thread, measured in this run on the same operations).
(e) idle: RSS and CPU of every daemon over 60 s of quiet, from /proc/<pid>/stat and status,
    next to a fresh daemon with no data and no peers.

``--quick`` shortens everything (8 s of posting, 5,000 ops, 20,000-op stores, 10 s idle).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.e2e.harness import (  # noqa: E402  (the repository root is on sys.path only now)
    Cluster,
    Daemon,
    DaemonApi,
    cluster,
    encode_bundle,
    foreign_operations,
    wait_until,
)

SITE = "bench.example"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# -- results -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    part: str
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None


@dataclass(slots=True)
class Results:
    rows: list[Row] = field(default_factory=list)

    def add(
        self, part: str, metric: str, value: str, target: str = "", ok: bool | None = None
    ) -> None:
        self.rows.append(Row(part, metric, value, target, ok))
        verdict = "" if ok is None else ("  ok" if ok else "  MISSED")
        print(f"  {metric}: {value}" + (f"  (target {target})" if target else "") + verdict)

    def table(self) -> str:
        headers = ("part", "metric", "value", "target", "")
        cells = [
            (
                r.part,
                r.metric,
                r.value,
                r.target,
                "" if r.ok is None else ("ok" if r.ok else "MISS"),
            )
            for r in self.rows
        ]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


# -- server-sent events --------------------------------------------------------------------------


class EventReader(threading.Thread):
    """Reads one daemon's ``GET /api/events`` and records when each operation id first arrived
    (``time.monotonic()``). A daemon thread: it ends when the daemon closes the stream."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__(name=f"sse-{daemon.name}", daemon=True)
        self.url = str(daemon.api_info["url"]) + "/api/events"
        self.name_ = daemon.name
        self.arrivals: dict[str, float] = {}
        self.lagged = 0
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        timeout = httpx.Timeout(10.0, read=None)
        try:
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream("GET", self.url) as response,
            ):
                event = ""
                for line in response.iter_lines():
                    now = time.monotonic()
                    if line.startswith(": watching"):
                        self.ready.set()
                    elif line.startswith("event: "):
                        event = line[7:]
                        if event == "lagged":
                            self.lagged += 1
                    elif line.startswith("id: ") and event == "operation":
                        self.arrivals.setdefault(line[4:], now)
        except (httpx.HTTPError, OSError) as error:
            self.error = error
        finally:
            self.ready.set()


def start_readers(daemons: Sequence[Daemon]) -> list[EventReader]:
    readers = [EventReader(d) for d in daemons]
    for reader in readers:
        reader.start()
    for reader in readers:
        if not reader.ready.wait(15) or reader.error is not None:
            raise RuntimeError(f"event stream of {reader.name_} failed: {reader.error!r}")
    return readers


# -- /proc ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def cpu_snapshot(daemons: Sequence[Daemon]) -> dict[str, float]:
    return {d.name: cpu_seconds(d.pid) for d in daemons if d.running}


def print_cpu(before: Mapping[str, float], daemons: Sequence[Daemon], per: int, unit: str) -> None:
    """CPU each daemon spent since ``before``: seconds, and ms per ``unit`` (``per`` of them)."""
    after = cpu_snapshot(daemons)
    spent = {name: after[name] - before[name] for name in before if name in after}
    cells = ", ".join(f"{name} {seconds:.1f}" for name, seconds in spent.items())
    total = sum(spent.values())
    print(f"  CPU s per daemon: {cells}; total {total:.1f} s = {total / per * 1000:.2f} ms/{unit}")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the cluster ---------------------------------------------------------------------------------


def start_cluster(group: Cluster, nodes: int, seed: int) -> list[Daemon]:
    """node0 (the publisher); nodes 1-3 bootstrap to node0; the rest to two of nodes 1-3, so
    most daemons are two hops from the publisher. Periodic sync off (3600 s)."""
    rng = random.Random(seed)
    publisher = group.start("node0", sync_interval=3600)
    first = group.start_wave(
        [(f"node{i}", [publisher]) for i in range(1, min(nodes, 4))], sync_interval=3600
    )
    rest_specs: list[tuple[str, Sequence[Daemon | str]]] = [
        (f"node{i}", rng.sample(first, min(2, len(first)))) for i in range(4, nodes)
    ]
    rest = group.start_wave(rest_specs, sync_interval=3600) if rest_specs else []
    daemons = [publisher, *first, *rest]
    for daemon in daemons:
        wanted = {address.rsplit("/p2p/", 1)[-1] for address in daemon.bootstrap}
        wait_until(
            partial(_connected_to, daemon, wanted),
            timeout=30,
            message=f"{daemon.name} connected to its bootstrap peers",
        )
    for daemon in daemons:
        daemon.api.follow(site=SITE)
    return daemons


def _connected_to(daemon: Daemon, peer_ids: set[str]) -> bool:
    return peer_ids <= daemon.api.peer_ids()


def wait_all_hold(
    daemons: Sequence[Daemon], thread: str, operations: int, timeout: float = 60.0
) -> None:
    def held() -> bool:
        return all(d.api.thread(thread)["operation_count"] >= operations for d in daemons)

    wait_until(held, timeout=timeout, interval=0.25, message=f"every daemon to hold {operations}")


# -- (a) propagation -----------------------------------------------------------------------------


def part_a(
    results: Results, daemons: Sequence[Daemon], thread: str, rate: float, seconds: float
) -> None:
    section(f"(a) propagation: {rate:g} ops/s for {seconds:g} s, {len(daemons)} daemons")
    publisher, receivers = daemons[0], daemons[1:]
    readers = start_readers(daemons)
    total = round(rate * seconds)
    url, token = str(publisher.api_info["url"]), str(publisher.api_info["token"])
    clients = threading.local()

    def post(n: int) -> tuple[str, float, float]:
        api: DaemonApi | None = getattr(clients, "api", None)
        if api is None:
            api = clients.api = DaemonApi(url, token)
        sent = time.monotonic()
        op_id = api.comment(thread, f"steady comment {n}")
        return op_id, sent, time.monotonic()

    futures: list[Future[tuple[str, float, float]]] = []
    cpu_before = cpu_snapshot(daemons)
    started = time.monotonic()
    late = 0
    with ThreadPoolExecutor(4) as pool:
        for n in range(total):
            due = started + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.05:
                late += 1
            futures.append(pool.submit(post, n))
        posted = [f.result() for f in futures]
    elapsed = time.monotonic() - started
    print_cpu(cpu_before, daemons, total, "op")
    time.sleep(5.0)  # grace: anything not here by now is lost to gossip

    own = readers[0].arrivals
    latencies: list[float] = []
    per_op_worst: list[float] = []
    missing = 0
    for op_id, sent, _ in posted:
        origin = own.get(op_id, sent)
        worst = 0.0
        for reader in readers[1:]:
            arrived = reader.arrivals.get(op_id)
            if arrived is None:
                missing += 1
                continue
            latency = arrived - origin
            latencies.append(latency)
            worst = max(worst, latency)
        per_op_worst.append(worst)
    for reader, daemon in zip(readers[1:], receivers, strict=True):
        mine = [
            reader.arrivals[op_id] - own.get(op_id, sent)
            for op_id, sent, _ in posted
            if op_id in reader.arrivals
        ]
        peers = len(daemon.api.peer_ids())
        p50, p90, p99 = (percentile(mine, q) * 1000 for q in (0.5, 0.9, 0.99))
        print(
            f"  {daemon.name} ({peers} peers): p50 {p50:.0f} ms, p90 {p90:.0f} ms, "
            f"p99 {p99:.0f} ms, {len(mine)}/{len(posted)} arrived"
        )
    pairs = len(posted) * len(receivers)
    post_ms = [(done - sent) * 1000 for _, sent, done in posted]
    print(
        f"  posted {total} ops in {elapsed:.1f} s ({total / elapsed:.1f}/s, {late} late); "
        f"POST p50 {percentile(post_ms, 0.5):.0f} ms; SSE lagged events: "
        f"{sum(r.lagged for r in readers)}"
    )
    p50 = percentile(latencies, 0.5) * 1000
    p99 = percentile(latencies, 0.99) * 1000
    results.add("a", "latency p50 (ms), publisher -> each daemon", f"{p50:.1f}")
    results.add("a", "latency p99 (ms)", f"{p99:.1f}", "< 250", p99 < 250)
    results.add(
        "a", "latency max (ms)", f"{max(latencies, default=float('nan')) * 1000:.1f}", "", None
    )
    results.add(
        "a",
        "latency to the last daemon, p50/p99 (ms)",
        f"{percentile(per_op_worst, 0.5) * 1000:.1f} / {percentile(per_op_worst, 0.99) * 1000:.1f}",
    )
    results.add(
        "a",
        "loss before sync (op, daemon) pairs",
        f"{missing}/{pairs} ({missing / pairs:.2%})",
        "0",
        missing == 0,
    )


# -- (b) throughput ------------------------------------------------------------------------------


class CountPoller(threading.Thread):
    """Polls every daemon's operation count (with its own HTTP clients) until each holds
    ``count`` more than its baseline; records when each got there."""

    def __init__(self, daemons: Sequence[Daemon], count: int) -> None:
        super().__init__(name="count-poller", daemon=True)
        self.apis = {
            d.name: DaemonApi(str(d.api_info["url"]), str(d.api_info["token"])) for d in daemons
        }
        self.baseline = {name: api.operation_count() for name, api in self.apis.items()}
        self.count = count
        self.progress: dict[str, int] = dict.fromkeys(self.apis, 0)
        self.reached: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set() and len(self.reached) < len(self.apis):
                for name, api in self.apis.items():
                    if name in self.reached:
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        have = api.operation_count() - self.baseline[name]
                        self.progress[name] = have
                        if have >= self.count:
                            self.reached[name] = time.monotonic()
                self.stop.wait(0.2)
        finally:
            for api in self.apis.values():
                api.close()


def part_b(results: Results, daemons: Sequence[Daemon], thread: str, count: int) -> None:
    section(f"(b) throughput: {count:,} ops imported into the publisher, {len(daemons)} daemons")
    publisher = daemons[0]
    print("  signing the operations (not timed)...", flush=True)
    ops = foreign_operations(thread, count, authors=50, seed=11)
    bundle_ops = 1_000
    bundles = [encode_bundle(ops[i : i + bundle_ops]) for i in range(0, len(ops), bundle_ops)]
    poller = CountPoller(daemons, count)
    cpu_before = cpu_snapshot(daemons)
    importer = DaemonApi(
        str(publisher.api_info["url"]), str(publisher.api_info["token"]), timeout=300
    )
    started = time.monotonic()
    poller.start()
    rejected = 0
    try:
        for bundle in bundles:
            rejected += int(importer.import_bundle(bundle)["rejected"])
    finally:
        importer.close()
    accepted = time.monotonic()
    print(f"  the publisher took all {count:,} in {accepted - started:.1f} s", flush=True)

    deadline = accepted + 120
    stalled_since, last_total, synced = time.monotonic(), -1, False
    while len(poller.reached) < len(daemons) and time.monotonic() < deadline:
        total = sum(poller.progress.values())
        if total != last_total:
            last_total, stalled_since = total, time.monotonic()
        elif time.monotonic() - stalled_since > 10 and not synced:
            lagging = [d for d in daemons if d.name not in poller.reached]
            print(f"  gossip stalled at {poller.progress}; a sync round on {len(lagging)} daemons")
            for daemon in lagging:
                with contextlib.suppress(httpx.HTTPError):
                    daemon.api.sync()
            synced = True
        time.sleep(0.2)
    poller.stop.set()
    poller.join(10)
    print_cpu(cpu_before, daemons, count, "op")
    complete = len(poller.reached) == len(daemons)
    done = max(poller.reached.values(), default=time.monotonic())
    rate = count / (done - started)
    results.add(
        "b",
        "publisher import rate (ops/s, POST /api/import)",
        f"{count / (accepted - started):,.0f}",
    )
    label = f"ops/s until all {len(daemons)} daemons hold them" + (
        " (after a sync)" if synced else ""
    )
    results.add(
        "b",
        label,
        f"{rate:,.0f}" if complete else f"incomplete {poller.progress}",
        ">= 1,000 by gossip",
        complete and not synced and rate >= 1_000,
    )
    slowest = sorted(poller.reached.items(), key=lambda item: item[1])
    if slowest:
        first_name, first_at = slowest[0]
        print(
            f"  first complete: {first_name} after {first_at - started:.1f} s; last: "
            f"{slowest[-1][0]} after {slowest[-1][1] - started:.1f} s"
        )
    if rejected:
        results.add("b", "operations the import rejected", str(rejected), "0", False)
    if complete:
        digests = {d.api.digest(thread) for d in daemons}
        same = len(digests) == 1
        results.add(
            "b", "identical view digests on all daemons", "yes" if same else "NO", "yes", same
        )


# -- (c) reconciliation, in-process --------------------------------------------------------------


def part_c(results: Results, n: int, seed: int) -> None:
    """Sketch mode, range mode and naive on the same two stores (`bench_reconcile`)."""
    from bench_reconcile import make_stores, sync_once

    section(f"(c) reconciliation of two {n:,}-operation stores, in-process (sans-IO)")
    for difference in (0.01, 0.0001):
        stores = make_stores(n, difference, seed)
        missing_ops = len(stores.a_only) + len(stores.b_only)
        missing = stores.missing_bytes
        label = f"{difference:.2%}"
        for sketch in (True, False):
            figures = sync_once(stores, sketch=sketch)
            ratio = figures.exchanged / missing
            checked = sketch and difference == 0.01
            results.add(
                "c",
                f"{label} {figures.mode}: bytes exchanged / bytes of the {missing_ops:,} "
                "missing ops",
                f"{ratio:.3f} ({figures.exchanged:,} / {missing:,})",
                "<= 1.15" if checked else "",
                (ratio <= 1.15) if checked else None,
            )
            results.add(
                "c",
                f"{label} {figures.mode}: overhead per missing op (B), mean op size (B)",
                f"{(figures.exchanged - missing) / missing_ops:.0f}, {missing / missing_ops:.0f}",
            )
            results.add(
                "c",
                f"{label} {figures.mode}: round trips, frames, seconds, CPU s (init., resp.)",
                f"{figures.round_trips}, {figures.frames}, {figures.seconds:.2f}, "
                f"{figures.cpu_initiator:.2f}, {figures.cpu_responder:.2f}",
            )
            results.add(
                "c",
                f"{label} {figures.mode}: both sides got exactly what they lacked",
                "yes" if figures.correct else "NO",
                "yes",
                figures.correct,
            )
        naive = stores.naive_bytes
        results.add(
            "c",
            f"{label}: naive 'send all ids' bytes (ratio)",
            f"{naive:,} ({naive / missing:.2f})",
        )


# -- (d) late joiner -----------------------------------------------------------------------------


def raw_verify_rate(ops: Sequence[bytes]) -> float:
    """Signatures checked per second, one thread, raw PyNaCl (libsodium)."""
    from nacl.bindings import crypto_sign_open

    from p2pcomments.core.ops import OP_SIGNING_DOMAIN, decode_operation

    decoded = [decode_operation(raw, verify=False) for raw in ops]
    started = time.perf_counter()
    for op in decoded:
        crypto_sign_open(op.signature + OP_SIGNING_DOMAIN + op.id, op.author)
    return len(decoded) / (time.perf_counter() - started)


def part_d(results: Results, group: Cluster, source: Daemon) -> Daemon:
    expected = source.api.operation_count()
    section(f"(d) late joiner: a new daemon syncs {expected:,} ops from {source.name}")
    started = time.monotonic()
    joiner = group.add("joiner", bootstrap=[source], sync_interval=30)
    joiner.wait_ready()
    ready = time.monotonic()
    cpu_before = cpu_snapshot([source, joiner])
    wait_until(
        lambda: joiner.api.operation_count() >= expected,
        timeout=600,
        interval=0.1,
        message=f"the joiner to hold {expected} operations",
    )
    done = time.monotonic()
    print_cpu(cpu_before, [source, joiner], expected, "op")
    rate = expected / (done - ready)
    print(
        f"  process start to listening {ready - started:.1f} s; listening to complete "
        f"{done - ready:.1f} s",
        flush=True,
    )
    # A session's counters move when it ends, just after its last operations were stored.
    wait_until(
        lambda: joiner.api.statistics()["network"]["sync_rounds"] >= 1,
        timeout=30,
        interval=0.1,
        message="the joiner's first sync round to end",
    )
    network = joiner.api.statistics()["network"]
    moved = (
        "sync_rounds",
        "sync_ops_received",
        "sync_ops_duplicate",
        "sync_refused",
        "fetch_sessions",
        "fetch_ids_requested",
    )
    print("  joiner: " + ", ".join(f"{key} {network.get(key)}" for key in moved))
    verify = raw_verify_rate(source.api.export())
    results.add("d", f"catch-up ops/s ({expected:,} ops, from listening)", f"{rate:,.0f}")
    results.add("d", "raw PyNaCl verify/s (1 thread, same ops)", f"{verify:,.0f}")
    results.add(
        "d", "catch-up / raw verify", f"{rate / verify:.2f}", ">= 0.6", rate / verify >= 0.6
    )
    return joiner


# -- (e) idle ------------------------------------------------------------------------------------


def part_e(
    results: Results, group: Cluster, daemons: Sequence[Daemon], joiner: Daemon, seconds: float
) -> None:
    section(f"(e) idle: {len(daemons) + 2} daemons over {seconds:g} s")
    empty = group.start("empty", sync_interval=30)  # no data, no peers: the baseline
    time.sleep(3)  # let the last sync rounds and writes finish
    watched = [*daemons, joiner, empty]
    before = {d.name: cpu_seconds(d.pid) for d in watched}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu = {d.name: (cpu_seconds(d.pid) - before[d.name]) / elapsed * 100 for d in watched}
    rss = {d.name: rss_mib(d.pid) for d in watched}
    names = [d.name for d in daemons]
    results.add(
        "e",
        "idle CPU % of a core: cluster median / max",
        f"{statistics.median(cpu[n] for n in names):.2f} / {max(cpu[n] for n in names):.2f}",
    )
    results.add(
        "e",
        "idle RSS MiB: cluster median / max",
        f"{statistics.median(rss[n] for n in names):.0f} / {max(rss[n] for n in names):.0f}",
    )
    results.add(
        "e",
        "joiner (sync every 30 s, 1 peer): CPU % / RSS MiB",
        f"{cpu[joiner.name]:.2f} / {rss[joiner.name]:.0f}",
    )
    results.add(
        "e",
        "empty daemon (no data, no peers): CPU % / RSS MiB",
        f"{cpu[empty.name]:.2f} / {rss[empty.name]:.0f}",
    )


# -- main ----------------------------------------------------------------------------------------


def warm_up(daemons: Sequence[Daemon], thread: str) -> None:
    """A few comments until every daemon shows them: the gossip mesh is formed."""
    publisher = daemons[0]
    for n in range(5):
        publisher.api.comment(thread, f"warm-up {n}")
        time.sleep(0.3)
    try:
        wait_all_hold(daemons, thread, 6, timeout=30)
    except AssertionError as error:
        print(f"  warm-up incomplete by gossip ({error}); a sync round everywhere")
        for daemon in daemons:
            daemon.api.sync()
        wait_all_hold(daemons, thread, 6, timeout=30)


@contextlib.contextmanager
def bench_cluster(keep: bool) -> Iterator[Cluster]:
    with cluster(name="bench", keep=keep) as group:
        yield group
    if keep:
        print(f"\ndata dirs and logs kept in {group.root}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0, help="(a) ops/s")
    parser.add_argument("--seconds", type=float, default=None, help="(a) duration")
    parser.add_argument("--ops", type=int, default=None, help="(b) operations")
    parser.add_argument("--reconcile-n", type=int, default=None, help="(c) store size")
    parser.add_argument("--idle", type=float, default=None, help="(e) seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip", default="", help="parts to skip, e.g. 'ce'")
    parser.add_argument("--keep", action="store_true", help="keep data dirs and logs")
    args = parser.parse_args()
    seconds = args.seconds or (8.0 if args.quick else 20.0)
    count = args.ops or (5_000 if args.quick else 20_000)
    store = args.reconcile_n or (20_000 if args.quick else 100_000)
    idle = args.idle or (10.0 if args.quick else 60.0)
    load = os.getloadavg()
    print(
        f"bench_net: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} at start; "
        f"{args.nodes} daemons{' (quick)' if args.quick else ''}"
    )
    results = Results()
    if "c" not in args.skip:
        part_c(results, store, args.seed)
    if set("abde") <= set(args.skip):  # nothing needs daemons
        print(f"\n== summary (load average at end {os.getloadavg()[0]:.2f})")
        print(results.table())
        return 0
    with bench_cluster(args.keep) as group:
        section(f"starting {args.nodes} daemons")
        started = time.monotonic()
        daemons = start_cluster(group, args.nodes, args.seed)
        print(f"  up and connected in {time.monotonic() - started:.1f} s", flush=True)
        thread = daemons[0].api.create_thread("bench", site=SITE)
        warm_up(daemons, thread)
        if "a" not in args.skip:
            part_a(results, daemons, thread, args.rate, seconds)
        if "b" not in args.skip:
            part_b(results, daemons, thread, count)
        joiner = None
        if "d" not in args.skip:
            joiner = part_d(results, group, daemons[-1])
        if "e" not in args.skip and joiner is not None:
            part_e(results, group, daemons, joiner, idle)
        failed_logs = [d for d in group.daemons.values() if d.process and not d.running]
        for daemon in failed_logs:
            print(f"\n{daemon.name} exited early:\n{daemon.stderr_tail()}")
    print(f"\n== summary (load average at end {os.getloadavg()[0]:.2f})")
    print(results.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
