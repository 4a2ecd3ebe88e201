"""Benchmark a big blog on one node (issue 14): daemon ready, `p2pc show` of one thread, idle RSS
and bytes on disk, at 1,000,000 operations (10,000 threads of 100), each beside a reference
measured in the same run.

Usage: .venv/bin/python scripts/bench_scale.py [--ops 1000000] [--threads 10000]
       .venv/bin/python scripts/bench_scale.py --small     (100,000 operations, 1,000 threads)

The data dir is built once and cached under /tmp (keyed by the parameters and the schema
version): operations are signed in a process pool, threads are written through `OpStore` as a
blog receives them (500 threads active at a time, their comments interleaved), and the store is
closed (checkpointed), not vacuumed. Comment bodies follow a long-tailed size mix (median ~180
characters, a few near 4,000). Then, timed:

- daemon ready: `p2pc daemon` started until api.json and network.json name it; reference: the
  same daemon on an empty data dir.
- show: `p2pc show <thread>` through that daemon, on a thread not loaded yet; reference: the
  same command's floor, `p2pc show` of a one-operation thread on the empty daemon.
- the thread list: `p2pc threads` (every thread) through that daemon, beside the same command
  on the empty daemon; `Node.threads()` in process after open, beside reading the store's
  ``thread_activity`` rows; and, at build, making the listings of a store without them (what
  the daemon does in the background after an upgrade from schema 2; `node.listings`).
- the first `thread_view` of a cold thread in process (read, decode, verify, apply), beside
  reading its rows alone; and cold open in process beside reading every row (what opening
  did before the store was read a thread at a time).
- RSS of the idle daemon holding everything, beside the idle daemon on the empty data dir.
- `p2pc export --all -o FILE` through the daemon (a bundle, then `--format json`): seconds,
  the daemon's peak RSS before and after, the CLI's own peak RSS, beside the file's size (an
  export larger than memory).
- bytes on disk per operation, beside the mean canonical size (and dbstat's split).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nacl.signing
import trio

from p2pcomments.core.ops import (
    OP_SIGNING_DOMAIN,
    CommentPayload,
    Operation,
    ThreadPayload,
    load_stored_operation,
    make_operation,
)
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.node import open_node
from p2pcomments.store.data_dir import database_path
from p2pcomments.store.op_store import OpState, OpStore, WriteBatch
from p2pcomments.store.schema import SCHEMA_VERSION

P2PC = Path(sys.executable).with_name("p2pc")
CACHE_ROOT = Path("/tmp/p2pc-bench-scale")
ACTIVE_THREADS = 500  # threads receiving comments at the same time while the store is written
AUTHORS = 200
SEED = 14
WORDS = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "that",
    "it",
    "is",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "this",
    "be",
    "at",
    "by",
    "not",
    "but",
    "from",
    "or",
    "have",
    "an",
    "they",
    "which",
    "one",
    "you",
    "were",
    "all",
    "we",
    "there",
    "can",
    "more",
    "if",
    "no",
    "out",
    "so",
    "said",
    "what",
    "up",
    "its",
    "about",
    "into",
    "than",
    "them",
    "only",
    "some",
    "could",
    "new",
    "other",
    "time",
    "like",
    "then",
    "now",
    "peer",
    "thread",
    "reply",
    "node",
    "store",
]
READY_TIMEOUT = 120.0


def _body(rng: random.Random) -> str:
    # A long tail: most comments are a sentence or two, a few are essays.
    size = min(3900, max(12, int(rng.lognormvariate(math.log(180), 0.9))))
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size].strip()


def _sign_thread(args: tuple[int, int]) -> list[bytes]:
    """Thread ``index`` with ``comments`` comments, signed (runs in a worker process)."""
    index, comments = args
    rng = random.Random(SEED * 1_000_003 + index)
    keys = [
        nacl.signing.SigningKey(bytes([1 + i % 250, 1 + i // 250]) * 16) for i in range(AUTHORS)
    ]
    clock = 1_700_000_000_000 + index * 60_000
    thread = make_operation(
        keys[index % AUTHORS],
        ThreadPayload(title=f"Post {index}", url=f"https://blog.example/{index}"),
        timestamp_ms=clock,
    )
    ops = [thread]
    ids: list[bytes] = []
    head = thread.id
    for _ in range(comments):
        clock += rng.randrange(1, 600_000)
        parent = rng.choice(ids[-30:]) if ids and rng.random() < 0.5 else thread.id
        op = make_operation(
            keys[rng.randrange(AUTHORS)],
            CommentPayload(body=_body(rng)),
            timestamp_ms=clock,
            thread=thread.id,
            refs=(parent,),
            deps=frozenset({head}),
        )
        ops.append(op)
        ids.append(op.id)
        head = op.id
    return [op.encoded for op in ops]


def _interleaved(threads: list[list[bytes]], rng: random.Random) -> Iterator[bytes]:
    """The threads' operations as they would arrive: each thread in order, threads mixed."""
    cursors = [0] * len(threads)
    live = list(range(len(threads)))
    while live:
        slot = rng.randrange(len(live))
        index = live[slot]
        yield threads[index][cursors[index]]
        cursors[index] += 1
        if cursors[index] == len(threads[index]):
            live[slot] = live[-1]
            live.pop()


def build(data_dir: Path, ops: int, thread_count: int) -> None:
    per_thread = ops // thread_count - 1
    started = time.perf_counter()
    trio.run(_init_identity, data_dir)
    rng = random.Random(SEED)
    written = 0
    with OpStore.open(database_path(data_dir)) as store, ProcessPoolExecutor() as pool:
        for first in range(0, thread_count, ACTIVE_THREADS):
            wave = range(first, min(thread_count, first + ACTIVE_THREADS))
            threads = list(pool.map(_sign_thread, [(i, per_thread) for i in wave], chunksize=10))
            batch: list[tuple[Operation, OpState]] = []
            for raw in _interleaved(threads, rng):
                batch.append((load_stored_operation(raw), OpState.APPLIED))
                if len(batch) == 5_000:
                    store.write_blocking(WriteBatch(insert=batch))
                    written += len(batch)
                    batch = []
            if batch:
                store.write_blocking(WriteBatch(insert=batch))
                written += len(batch)
            print(
                f"  {written:,} operations written ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    # Written through the store alone, the data dir has no thread listings, like one from before
    # them (schema 3): the daemon makes them in the background after open, as after an upgrade.
    first_list = trio.run(_make_listings_seconds, data_dir)
    print(f"  thread listings made ({first_list:.1f} s)", flush=True)
    (data_dir / "bench-complete").write_text(json.dumps({"ops": written, "first_list": first_list}))


async def _make_listings_seconds(data_dir: Path) -> float:
    """Open, make every thread's listing (what the daemon does after open on a store without
    them) and wait until they are saved."""
    async with open_node(data_dir) as node:
        started = time.perf_counter()
        await node.make_missing_listings()
        await node.store.write(WriteBatch())
        return time.perf_counter() - started


async def _init_identity(data_dir: Path) -> None:
    async with open_node(data_dir, create_identity=True):
        pass


# -- measuring ---------------------------------------------------------------------------------


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PC_")}
    env["P2PC_HOME"] = str(data_dir)
    return env


def _status_mb(pid: int, field: str) -> float:
    """A memory field of /proc/PID/status (VmRSS, VmHWM) in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1]) / 1024


def _read_json(path: Path) -> dict[str, object]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class Daemon:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        for name in ("api.json", "network.json"):
            (data_dir / name).unlink(missing_ok=True)
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                str(P2PC),
                "daemon",
                "--data-dir",
                str(data_dir),
                "--api",
                "127.0.0.1:0",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--sync-interval",
                "3600",
            ],
            env=_environment(data_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = started + READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"the daemon on {data_dir} exited with {self.process.returncode}")
            pid = self.process.pid
            if (
                _read_json(data_dir / "api.json").get("pid") == pid
                and _read_json(data_dir / "network.json").get("pid") == pid
            ):
                break
            if time.perf_counter() > deadline:
                self.stop()
                raise SystemExit(f"the daemon on {data_dir} was not ready in {READY_TIMEOUT} s")
            time.sleep(0.01)
        self.ready_seconds = time.perf_counter() - started

    def rss_mb(self, field: str = "VmRSS") -> float:
        return _status_mb(self.process.pid, field)

    def export_all(self, output: Path, form: str = "bundle") -> tuple[float, float]:
        """`p2pc export --all --format form -o output` through this daemon: seconds, and the
        CLI's peak RSS in MB: its own VmHWM, read while it runs (wait4's ru_maxrss would be at
        least this process's, which Linux carries through exec)."""
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(P2PC), "export", "--all", "--format", form, "-o", str(output)],
            env=_environment(self.data_dir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = 0.0
        while process.poll() is None:
            with contextlib.suppress(OSError, StopIteration):  # gone between poll and read
                peak = max(peak, _status_mb(process.pid, "VmHWM"))
            time.sleep(0.05)
        if process.returncode != 0:
            raise SystemExit(f"p2pc export --all exited with {process.returncode}")
        return time.perf_counter() - started, peak

    def show_seconds(self, thread_id: bytes) -> float:
        return self._cli_seconds("show", format_id(TextKind.THREAD, thread_id))

    def threads_seconds(self) -> float:
        return self._cli_seconds("threads")

    def _cli_seconds(self, *args: str) -> float:
        started = time.perf_counter()
        subprocess.run(
            [str(P2PC), *args],
            env=_environment(self.data_dir),
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - started

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _thread_ids(data_dir: Path, count: int) -> list[bytes]:
    """``count`` thread ids spread over the store (none loaded yet by anything)."""
    with OpStore.open(database_path(data_dir)) as store:
        held = store.held_thread_ids()
    step = max(1, len(held) // count)
    return held[::step][:count]


def _rows_seconds(path: Path) -> tuple[float, int, int]:
    """Reading every row's bytes (what opening did before): seconds, rows, canonical bytes."""
    connection = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        rows = 0
        total = 0
        for (raw,) in connection.execute("SELECT raw FROM ops"):
            rows += 1
            total += len(raw)
        return time.perf_counter() - started, rows, total
    finally:
        connection.close()


VERIFY_SAMPLE = 20_000  # stored operations whose signatures `_verify_seconds` times


def _verify_seconds(path: Path, rows: int) -> float:
    """Seconds PyNaCl alone would take to check ``rows`` stored signatures on 2 threads (a
    sample of them timed, scaled): the floor for anything that checks every stored operation
    on this machine right now, such as an export."""
    connection = sqlite3.connect(path)
    try:
        sample = [
            load_stored_operation(raw)
            for (raw,) in connection.execute("SELECT raw FROM ops LIMIT ?", (VERIFY_SAMPLE,))
        ]
    finally:
        connection.close()

    def check(ops: list[Operation]) -> None:
        for op in ops:
            nacl.signing.VerifyKey(op.author).verify(OP_SIGNING_DOMAIN + op.id, op.signature)

    with ThreadPoolExecutor(2) as pool:
        started = time.perf_counter()
        list(pool.map(check, [sample[0::2], sample[1::2]]))
        return (time.perf_counter() - started) * rows / len(sample)


def _table_bytes(path: Path) -> dict[str, int]:
    connection = sqlite3.connect(path)
    try:
        return dict(
            connection.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        )
    except sqlite3.OperationalError:  # a SQLite built without dbstat
        return {}
    finally:
        connection.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class InProcess:
    opened: float  # open_node
    listed: float  # the first Node.threads(), every thread
    listed_threads: int
    activity_read: float  # reading thread_activity (the reference for the list)
    first_view: float  # median first thread_view of a cold thread
    thread_read: float  # median raw read of its rows
    comments: int


async def _in_process(data_dir: Path, threads: list[bytes]) -> InProcess:
    started = time.perf_counter()
    async with open_node(data_dir) as node:
        opened = time.perf_counter() - started
        tick = time.perf_counter()
        activity = node.store.thread_activity()
        activity_read = time.perf_counter() - tick
        tick = time.perf_counter()
        listed = node.threads()
        listed_seconds = time.perf_counter() - tick
        assert len(listed) == len(activity)
        views: list[float] = []
        reads: list[float] = []
        comments = 0
        for thread_id in threads:
            tick = time.perf_counter()
            node.store.thread_raw(thread_id)
            reads.append(time.perf_counter() - tick)
        for thread_id in threads:
            tick = time.perf_counter()
            comments = len(node.thread_view(thread_id).comments)
            views.append(time.perf_counter() - tick)
    return InProcess(
        opened=opened,
        listed=listed_seconds,
        listed_threads=len(listed),
        activity_read=activity_read,
        first_view=statistics.median(views),
        thread_read=statistics.median(reads),
        comments=comments,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=10_000)
    parser.add_argument("--small", action="store_true", help="100,000 operations, 1,000 threads")
    args = parser.parse_args()
    if args.small:
        args.ops, args.threads = 100_000, 1_000
    data_dir = CACHE_ROOT / f"ops{args.ops}-threads{args.threads}-seed{SEED}-schema{SCHEMA_VERSION}"
    if not (data_dir / "bench-complete").exists():
        print(f"building {data_dir} (once; signing in {os.cpu_count()} processes)...", flush=True)
        if data_dir.exists():
            subprocess.run(["rm", "-rf", str(data_dir)], check=True)
        data_dir.mkdir(parents=True)
        build(data_dir, args.ops, args.threads)
    empty_dir = CACHE_ROOT / f"empty-schema{SCHEMA_VERSION}"
    if not (empty_dir / "bench-complete").exists():
        empty_dir.mkdir(parents=True, exist_ok=True)
        trio.run(_init_identity, empty_dir)
        with OpStore.open(database_path(empty_dir)) as store:
            one = make_operation(
                nacl.signing.SigningKey(b"\x07" * 32),
                ThreadPayload(title="one", url=None),
                timestamp_ms=1_700_000_000_000,
            )
            store.write_blocking(WriteBatch(insert=[(one, OpState.APPLIED)]))
        (empty_dir / "bench-complete").write_text("1")
    database = database_path(data_dir)
    size = database.stat().st_size
    wal = database.with_name(database.name + "-wal")
    size += wal.stat().st_size if wal.exists() else 0

    read_all, rows, canonical = _rows_seconds(database)
    split = _table_bytes(database)
    sample = _thread_ids(data_dir, 6)
    measured = trio.run(_in_process, data_dir, sample[:3])
    built = _read_json(data_dir / "bench-complete")

    empty_daemon = Daemon(empty_dir)
    try:
        empty_ready = empty_daemon.ready_seconds
        time.sleep(2.0)
        empty_rss = empty_daemon.rss_mb()
        [empty_thread] = _thread_ids(empty_dir, 1)
        floor_show = statistics.median(empty_daemon.show_seconds(empty_thread) for _ in range(3))
        floor_list = statistics.median(empty_daemon.threads_seconds() for _ in range(3))
    finally:
        empty_daemon.stop()
    daemon = Daemon(data_dir)
    try:
        ready = daemon.ready_seconds
        time.sleep(2.0)
        idle_rss = daemon.rss_mb()
        shows = [daemon.show_seconds(thread_id) for thread_id in sample[3:]]
        lists = [daemon.threads_seconds() for _ in range(3)]
        after_rss = daemon.rss_mb()
        before_export_peak = daemon.rss_mb("VmHWM")
        bundle = CACHE_ROOT / "export.jsonl"
        exported, cli_peak = daemon.export_all(bundle)
        export_peak = daemon.rss_mb("VmHWM")
        bundle_mb = bundle.stat().st_size / 2**20
        bundle.unlink()
        document = CACHE_ROOT / "export.json"
        json_seconds, json_cli_peak = daemon.export_all(document, "json")
        json_peak = daemon.rss_mb("VmHWM")
        document_mb = document.stat().st_size / 2**20
        document.unlink()
    finally:
        daemon.stop()
    verify_seconds = _verify_seconds(database, rows)

    print(f"\n{rows:,} operations in {args.threads:,} threads ({data_dir})")
    line = "{:<52}{:>12}   {}"
    print(
        line.format(
            "daemon ready (p2pc daemon until api/network.json)",
            f"{ready:.2f} s",
            f"empty data dir {empty_ready:.2f} s: {ready / empty_ready:.2f}x",
        )
    )
    print(
        line.format(
            "p2pc show, a cold thread via the daemon (median 3)",
            f"{statistics.median(shows):.2f} s",
            f"1-op thread on the empty daemon {floor_show:.2f} s:"
            f" {statistics.median(shows) / floor_show:.2f}x",
        )
    )
    print(
        line.format(
            f"p2pc threads, all {measured.listed_threads:,} (median 3)",
            f"{statistics.median(lists):.2f} s",
            f"1 thread on the empty daemon {floor_list:.2f} s:"
            f" {statistics.median(lists) / floor_list:.2f}x",
        )
    )
    print(
        line.format(
            "open_node in process",
            f"{measured.opened * 1000:.0f} ms",
            f"reading every row {read_all * 1000:.0f} ms: {measured.opened / read_all:.3f}x",
        )
    )
    print(
        line.format(
            "Node.threads() in process, after open",
            f"{measured.listed * 1000:.0f} ms",
            f"reading thread_activity {measured.activity_read * 1000:.0f} ms:"
            f" {measured.listed / measured.activity_read:.1f}x",
        )
    )
    first_list = built.get("first_list")
    if isinstance(first_list, float):
        print(
            line.format(
                "  listings made in the background (at build: upgrade)",
                f"{first_list:.1f} s",
                f"reading every row {read_all:.1f} s: {first_list / read_all:.1f}x",
            )
        )
    print(
        line.format(
            f"first thread_view of a cold thread ({measured.comments} comments)",
            f"{measured.first_view * 1000:.1f} ms",
            f"reading its rows {measured.thread_read * 1000:.1f} ms:"
            f" {measured.first_view / measured.thread_read:.1f}x",
        )
    )
    print(
        line.format(
            "RSS of the idle daemon",
            f"{idle_rss:.0f} MB",
            f"idle daemon, empty data dir {empty_rss:.0f} MB: +{idle_rss - empty_rss:.0f} MB",
        )
    )
    print(line.format("  after the shows", f"{after_rss:.0f} MB", ""))
    print(
        line.format(
            "p2pc export --all, through the daemon",
            f"{exported:.1f} s",
            f"the bundle {bundle_mb:,.0f} MB; every signature checked on 2 threads alone"
            f" {verify_seconds:.1f} s: {exported / verify_seconds:.2f}x",
        )
    )
    print(
        line.format(
            "  daemon peak RSS, before / after the export",
            f"{export_peak:.0f} MB",
            f"{before_export_peak:.0f} MB before: +{export_peak - before_export_peak:.0f} MB",
        )
    )
    print(line.format("  the CLI's peak RSS", f"{cli_peak:.0f} MB", f"bundle {bundle_mb:,.0f} MB"))
    print(
        line.format(
            "p2pc export --all --format json, the daemon",
            f"{json_seconds:.1f} s",
            f"the document {document_mb:,.0f} MB",
        )
    )
    print(
        line.format(
            "  daemon / CLI peak RSS",
            f"{json_peak:.0f} MB",
            f"CLI {json_cli_peak:.0f} MB (daemon idle {idle_rss:.0f} MB)",
        )
    )
    print(
        line.format(
            "bytes on disk per operation",
            f"{size / rows:.0f} B",
            f"mean canonical size {canonical / rows:.0f} B: {size / canonical:.2f}x",
        )
    )
    if split:
        parts = ", ".join(
            f"{name} {value / rows:.0f}"
            for name, value in sorted(split.items(), key=lambda kv: -kv[1])
            if value / rows >= 1
        )
        print(f"  per operation by table/index (dbstat): {parts}")


if __name__ == "__main__":
    main()
