"""Five real daemons, every link through a proxy the harness controls, and faults (issue 13).

`FaultCluster` starts ``p2pc daemon`` processes (the `harness.Daemon` helpers) each in its own
network namespace (`netns`): alone on its loopback, a daemon reaches another only through the
`tcp_proxy.Proxy` of their link, so cutting that proxy is a real partition. How the routes are
made, and why nothing can bypass them:

- Each daemon listens on 127.0.0.1:`P2P_PORT` and serves its API on 127.0.0.1:`API_PORT` *inside
  its namespace* (the same ports in every namespace: nothing else is there).
- For every pair i < j, one proxy listens on 127.0.0.1 in i's namespace and connects into j's;
  i has it as a ``--bootstrap`` address (redialled forever, backoff capped at 10 s), j has no
  route to i at all: the one TCP connection carries both directions.
- Identify, ``peers.json`` and ``network.json`` only ever name 127.0.0.1:`P2P_PORT`, which in the
  dialler's own namespace is the dialler itself (its peer id does not match, so libp2p drops
  the connection at the Noise handshake): no learned address leads anywhere.
- The harness reaches each API through one more proxy (never cut) from its own namespace; the
  CLI is run inside the daemon's namespace, so it finds the daemon as a user's would.

Faults: `Fault` kinds ``partition`` (every link across a random split cut, then restored),
``link`` (one link), ``kill`` (SIGKILL, restarted later), ``pause`` (SIGSTOP, SIGCONT),
``disk-full`` (the disk node's data dir is a small tmpfs; a file fills it, and is removed to
give the space back) and clock skew (two writers whose clocks are 20 years behind and ahead,
always on). Writers (`ApiWriter`, `CliWriter`, `SkewedWriter`) keep writing through all of it;
every operation acknowledged (HTTP 201 with its id, ``p2pc --json comment`` exiting 0 with its
id, an import answered ``applied``) is recorded in `Acknowledged`. `check` then heals everything
and verifies what issue 13 asks: every acknowledged operation on every node, identical view
digests, ``PRAGMA integrity_check`` ok on every store, and how long convergence took.

Rules:

1. Every process, namespace, proxy and mount made here is undone by `FaultCluster.close`,
   whatever happened; processes are stopped by PID (`harness` rule 1).
2. A daemon that exits on its own (the node stops when its store failed, e.g. a full disk) is
   restarted by the harness's supervisor, as systemd's ``Restart=on-failure`` would; each such
   exit is counted with its code in `FaultCluster.exits`.
3. Waits are bounded (`harness.wait_until`); randomness comes from the schedule's seed only.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from .harness import Cluster, Daemon, NodeSnapshot, wait_until
from .netns import NetworkNamespace
from .tcp_proxy import Proxy

__all__ = [
    "API_PORT",
    "P2P_PORT",
    "Acknowledged",
    "CheckResult",
    "Fault",
    "FaultCluster",
    "Schedule",
    "random_schedule",
    "run_schedule",
]

P2P_PORT: Final = 4001
API_PORT: Final = 8765
SITE: Final = "faults.example"
SKEW_MS: Final = 20 * 365 * 24 * 3600 * 1000  # 20 years
DISK_BYTES: Final = 64 * 1024 * 1024
WRITE_TIMEOUT: Final = 3.0
FAULT_KINDS: Final = ("partition", "link", "kill", "pause", "disk-full")

# -- what was acknowledged -------------------------------------------------------------------


class Acknowledged:
    """Every operation some node acknowledged to a writer, with who acknowledged it and how."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ids: dict[str, str] = {}  # operation id (hex) -> "node/via"
        self.refusals: Counter[str] = Counter()  # why a write was not acknowledged

    def record(self, op_id: str | bytes, where: str) -> None:
        """``op_id``: the id as the API and CLI print it (``cmt_…``), or its bytes."""
        from p2pcomments.core.textform import parse_id

        raw = op_id if isinstance(op_id, bytes) else parse_id(op_id)
        with self._lock:
            self.ids[raw.hex()] = where

    def refused(self, why: str) -> None:
        with self._lock:
            self.refusals[why] += 1

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self.ids)


# -- daemons ---------------------------------------------------------------------------------


class FaultDaemon(Daemon):
    """A `Daemon` in its own namespace, whose API the harness reaches through ``api_proxy``."""

    def __init__(self, name: str, data_dir: Path, log_dir: Path, namespace: NetworkNamespace):
        super().__init__(
            name,
            data_dir,
            log_dir,
            sync_interval=1.0,
            extra_args=("--api", f"127.0.0.1:{API_PORT}"),  # argparse: the last --api wins
            preexec=namespace.enter,
        )
        self.namespace = namespace
        self.listen = f"/ip4/127.0.0.1/tcp/{P2P_PORT}"
        self.api_proxy = Proxy(f"api-{name}", target_port=API_PORT, target_ns=namespace)
        self.lock = threading.RLock()  # held while the harness changes this daemon's state
        self.down = False  # killed by the schedule (not restarted by the supervisor)
        self.paused = False

    def wait_ready(self, timeout: float = 60.0) -> FaultDaemon:
        super().wait_ready(timeout)
        # The address in api.json is inside the namespace; from here it is the proxy's.
        self.api_info = {**self.api_info, "url": f"http://127.0.0.1:{self.api_proxy.port}"}
        return self

    @property
    def usable(self) -> bool:
        return self.running and not self.paused and bool(self.api_info)


@dataclass
class Disk:
    """A small tmpfs holding one daemon's data dir, which `fill` fills up and `free` frees."""

    mount_point: Path
    filler: Path = field(init=False)

    def __post_init__(self) -> None:
        self.mount_point.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                f"size={DISK_BYTES},mode=0700",
                "tmpfs",
                str(self.mount_point),
            ],
            check=True,
            capture_output=True,
        )
        self.filler = self.mount_point / "filler"

    def fill(self) -> None:
        """Write until the file system says ENOSPC, to the last page (unbuffered: a buffered
        file would fail again on close)."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 12, 1):
                block = b"\0" * size
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, block)
        finally:
            os.close(fd)

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.mount_point)], check=False, capture_output=True)


class FaultCluster:
    """Five daemons A-E, fully meshed through proxies; E's data dir is on a small tmpfs."""

    def __init__(self, root: Path, *, names: Sequence[str] = ("A", "B", "C", "D", "E")) -> None:
        self.root = root
        self.cluster = Cluster(root, name="faults")
        self.names = list(names)
        self.daemons: dict[str, FaultDaemon] = {}
        self.links: dict[tuple[str, str], Proxy] = {}
        self.disk_node = self.names[-1]
        self.disk: Disk | None = None
        self.exits: Counter[int] = Counter()  # rule 2: exit codes of daemons that stopped
        self._namespaces: list[NetworkNamespace] = []
        self._stop_supervisor = threading.Event()
        self._supervisor: threading.Thread | None = None

    def __enter__(self) -> FaultCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getitem__(self, name: str) -> FaultDaemon:
        return self.daemons[name]

    # -- starting

    def start(self) -> None:
        from p2pcomments.net.peer_key import IDENTITY_FILE, peer_id_of_data_dir

        peer_ids: dict[str, str] = {}
        for name in self.names:
            namespace = NetworkNamespace(name)
            self._namespaces.append(namespace)
            if name == self.disk_node:
                self.disk = Disk(self.root / f"{name}-disk")
                data_dir = self.disk.mount_point / "data"
            else:
                data_dir = self.root / name
            daemon = FaultDaemon(name, data_dir, self.cluster.log_dir, namespace)
            self.daemons[name] = daemon
            self.cluster.daemons[name] = daemon  # its close and log tails cover ours
            daemon.init()
            # The peer key made here rather than at the first start, so every bootstrap address
            # (which names the peer id) is known before any daemon starts.
            key = data_dir / IDENTITY_FILE
            key.write_bytes(os.urandom(32))
            key.chmod(0o600)
            peer_ids[name] = str(peer_id_of_data_dir(data_dir))
        for i, low in enumerate(self.names):
            for high in self.names[i + 1 :]:
                proxy = Proxy(
                    f"{low}-{high}",
                    target_port=P2P_PORT,
                    listen_ns=self.daemons[low].namespace,
                    target_ns=self.daemons[high].namespace,
                )
                self.links[(low, high)] = proxy
                self.daemons[low].bootstrap += (
                    f"/ip4/127.0.0.1/tcp/{proxy.port}/p2p/{peer_ids[high]}",
                )
        for daemon in self.daemons.values():
            daemon.start()
        for daemon in self.daemons.values():
            daemon.wait_ready()
        for daemon in self.daemons.values():
            daemon.api.follow(site=SITE)
        for daemon in self.daemons.values():
            self.wait_connected(daemon, timeout=60)
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._supervisor.start()

    def wait_connected(self, daemon: FaultDaemon, timeout: float) -> None:
        others = {d.peer_id for d in self.daemons.values() if d is not daemon}
        wait_until(
            lambda: others <= daemon.api.peer_ids(),
            timeout=timeout,
            message=f"{daemon.name} connected to all four others",
            describe=lambda: f"peers: {daemon.api.peer_ids()}",
        )

    def _supervise(self) -> None:
        """Rule 2."""
        while not self._stop_supervisor.wait(0.5):
            for daemon in self.daemons.values():
                with daemon.lock:
                    if daemon.down or daemon.running or daemon.process is None:
                        continue
                    self.exits[daemon.process.returncode] += 1
                    try:
                        daemon.start().wait_ready(timeout=30)
                    except AssertionError:
                        continue  # exited again (the disk is still full): next round

    # -- faults

    def cut(self, links: Sequence[tuple[str, str]]) -> None:
        for link in links:
            self.links[link].cut()

    def restore(self, links: Sequence[tuple[str, str]]) -> None:
        for link in links:
            self.links[link].restore()

    def partition_links(self, side: set[str]) -> list[tuple[str, str]]:
        return [(a, b) for (a, b) in self.links if (a in side) != (b in side)]

    def kill(self, name: str) -> None:
        daemon = self.daemons[name]
        with daemon.lock:
            daemon.down = True
            daemon.kill()

    def revive(self, name: str) -> None:
        daemon = self.daemons[name]
        with daemon.lock:
            daemon.down = False
            if not daemon.running:
                daemon.start()
        # Outside the lock: the supervisor may restart it meanwhile if it exits again.
        with contextlib.suppress(AssertionError):
            daemon.wait_ready(timeout=30)

    def pause(self, name: str) -> None:
        daemon = self.daemons[name]
        with daemon.lock:
            if daemon.running:
                os.kill(daemon.pid, signal.SIGSTOP)
                daemon.paused = True

    def resume(self, name: str) -> None:
        daemon = self.daemons[name]
        with daemon.lock:
            if daemon.paused and daemon.running:
                os.kill(daemon.pid, signal.SIGCONT)
            daemon.paused = False

    def heal(self) -> None:
        """Every link restored, every node running and resumed, the disk's space back."""
        for proxy in self.links.values():
            proxy.restore()
        if self.disk is not None:
            self.disk.free()
        for name in self.names:
            self.resume(name)
            self.revive(name)

    # -- checking

    def wait_converged(self, timeout: float) -> NodeSnapshot:
        """Wait until all five hold the same operations, none pending, with identical view
        digests; the snapshot. Counts are polled (cheap, so the polling does not slow what it
        measures); digests of every thread are compared once the counts agree."""
        daemons = list(self.daemons.values())
        for daemon in daemons:
            wait_until(lambda d=daemon: d.usable, timeout=60, message=f"{daemon.name} running")

        def converged() -> NodeSnapshot | None:
            counts = [d.api.statistics() for d in daemons]
            if len({c["operations"] for c in counts}) != 1 or any(c["pending"] for c in counts):
                return None
            snapshots = [d.api.snapshot() for d in daemons]
            return snapshots[0] if all(s == snapshots[0] for s in snapshots) else None

        return wait_until(
            converged,
            timeout=timeout,
            interval=0.1,
            message="the five daemons to converge",
            describe=lambda: str({d.name: d.api.statistics().get("operations") for d in daemons}),
        )

    def held_ids(self, daemon: FaultDaemon) -> set[str]:
        """The ids (hex) of every operation ``daemon`` holds, from its export."""
        from p2pcomments.core.ops import claimed_id

        ids = (claimed_id(data) for data in daemon.api.export())
        return {op_id.hex() for op_id in ids if op_id is not None}

    def integrity(self) -> dict[str, str]:
        """``PRAGMA integrity_check`` of every store, read-only, beside the running daemons."""
        from p2pcomments.store.data_dir import database_path

        results = {}
        for name, daemon in self.daemons.items():
            path = database_path(daemon.data_dir)
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                rows = connection.execute("PRAGMA integrity_check").fetchall()
            finally:
                connection.close()
            results[name] = "; ".join(str(row[0]) for row in rows)
        return results

    def close(self) -> None:
        """Rule 1."""
        self._stop_supervisor.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=30)
        for daemon in self.daemons.values():
            with contextlib.suppress(ProcessLookupError, RuntimeError):
                if daemon.running:
                    os.kill(daemon.pid, signal.SIGCONT)  # a stopped process ignores SIGTERM
        self.cluster.close()
        for proxy in self.links.values():
            proxy.close()
        for daemon in self.daemons.values():
            daemon.api_proxy.close()
        if self.disk is not None:
            self.disk.close()
        for namespace in self._namespaces:
            namespace.close()


# -- writers ---------------------------------------------------------------------------------


@dataclass
class Writer:
    """Writes comments on the schedule's threads through some node, until told to stop."""

    name: str
    cluster: FaultCluster
    threads: list[str]
    acknowledged: Acknowledged
    rng: random.Random
    interval: float = 0.1
    stop: threading.Event = field(default_factory=threading.Event)
    written: int = 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.write_one()
            except Exception as error:  # a writer records and goes on: faults make writes fail
                self.acknowledged.refused(f"{self.name}: {type(error).__name__}")
            self.stop.wait(self.interval)

    def write_one(self) -> None:
        raise NotImplementedError

    def body(self) -> str:
        self.written += 1
        return f"{self.name} writes {self.written}"


class ApiWriter(Writer):
    """Through one daemon's HTTP API (``POST /api/threads/T/comments``)."""

    def __init__(self, daemon: FaultDaemon, *args: Any, **kwargs: Any) -> None:
        super().__init__(f"api-{daemon.name}", *args, **kwargs)
        self.daemon = daemon

    def write_one(self) -> None:
        info = dict(self.daemon.api_info)
        if not self.daemon.usable or not info:
            self.acknowledged.refused(f"{self.name}: node down")
            self.stop.wait(0.2)
            return
        response = httpx.post(
            f"{info['url']}/api/threads/{self.rng.choice(self.threads)}/comments",
            json={"body": self.body()},
            headers={"Authorization": f"Bearer {info['token']}"},
            timeout=WRITE_TIMEOUT,
        )
        if response.status_code == 201:
            self.acknowledged.record(str(response.json()["id"]), f"{self.daemon.name}/api")
        else:
            self.acknowledged.refused(f"{self.name}: HTTP {response.status_code}")


class CliWriter(Writer):
    """``p2pc --json comment T BODY`` on one daemon's data dir (its daemon, or the data dir when
    the daemon is down), inside its namespace."""

    def __init__(self, daemon: FaultDaemon, *args: Any, **kwargs: Any) -> None:
        super().__init__(f"cli-{daemon.name}", *args, **kwargs)
        self.daemon = daemon

    def write_one(self) -> None:
        if self.daemon.paused:
            self.stop.wait(0.2)
            return
        result = self.daemon.cli(
            "--json", "comment", self.rng.choice(self.threads), "--body", self.body(), timeout=20
        )
        if result.returncode == 0:
            self.acknowledged.record(
                str(json.loads(result.stdout)["id"]), f"{self.daemon.name}/cli"
            )
        else:
            self.acknowledged.refused(f"{self.name}: exit {result.returncode}")


class SkewedWriter(Writer):
    """An author whose clock is ``skew_ms`` off, writing through a node of its own opened with
    that clock (``open_node(clock=...)``); each operation is handed to a random running daemon
    (``POST /api/import``) until one answers ``applied``. It holds the threads it was given
    (imported from a daemon first) and, with ``own_thread``, opens one of its own: its comments
    and that thread carry timestamps 20 years off."""

    def __init__(self, name: str, data_dir: Path, skew_ms: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(name, *args, **kwargs)
        self.data_dir = data_dir
        self.skew_ms = skew_ms
        self.ready = threading.Event()
        self.own_thread: str | None = None

    def run(self) -> None:
        import trio

        trio.run(self._main)

    async def _main(self) -> None:
        import trio

        from p2pcomments.clock import wall_clock_ms
        from p2pcomments.core.textform import TextKind, format_id, parse_id
        from p2pcomments.node import open_node

        async with open_node(
            self.data_dir,
            create_identity=True,
            clock=lambda: wall_clock_ms() + self.skew_ms,
        ) as node:
            for thread in self.threads:
                await node.ingest(
                    await trio.to_thread.run_sync(self._export, thread), source="import"
                )
            thread_op = await node.create_thread(f"{self.name}'s thread", site=SITE)
            await trio.to_thread.run_sync(self._hand_over, thread_op.encoded)
            self.own_thread = format_id(TextKind.THREAD, thread_op.id)
            self.ready.set()
            threads = [*self.threads, self.own_thread]
            while not self.stop.is_set():
                target = parse_id(self.rng.choice(threads))
                try:
                    op = await node.comment(target, self.body())
                    await trio.to_thread.run_sync(self._hand_over, op.encoded)
                except Exception as error:  # recorded; the writer goes on
                    self.acknowledged.refused(f"{self.name}: {type(error).__name__}")
                await trio.sleep(self.interval)

    def _export(self, thread: str) -> list[bytes]:
        def export() -> list[bytes] | None:
            for daemon in self._usable():
                return daemon.api.export(thread)
            return None

        return wait_until(export, timeout=60, message=f"{self.name} to fetch {thread}")

    def _usable(self) -> list[FaultDaemon]:
        daemons = [d for d in self.cluster.daemons.values() if d.usable]
        self.rng.shuffle(daemons)
        return daemons

    def _hand_over(self, encoded: bytes) -> None:
        """Until a daemon answers applied (or it was there already), or the writer stops."""
        from p2pcomments.api.bundle import encode_bundle
        from p2pcomments.core.ops import claimed_id

        op_id = claimed_id(encoded)
        assert op_id is not None
        while not self.stop.is_set():
            for daemon in self._usable():
                info = dict(daemon.api_info)
                try:
                    response = httpx.post(
                        f"{info['url']}/api/import",
                        content=encode_bundle([encoded]),
                        headers={
                            "Authorization": f"Bearer {info['token']}",
                            "Content-Type": "application/x-ndjson",
                        },
                        timeout=WRITE_TIMEOUT,
                    )
                except (httpx.HTTPError, KeyError):
                    self.acknowledged.refused(f"{self.name}: unreachable")
                    continue
                if response.status_code == 200 and (
                    response.json().get("applied") or response.json().get("duplicate")
                ):
                    self.acknowledged.record(op_id, f"{daemon.name}/import")
                    return
                self.acknowledged.refused(f"{self.name}: import {response.status_code}")
            self.stop.wait(0.2)


@contextlib.contextmanager
def writing(writers: Sequence[Writer]) -> Iterator[None]:
    threads = [threading.Thread(target=w.run, name=w.name, daemon=True) for w in writers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for w in writers:
            w.stop.set()
        for thread in threads:
            thread.join(timeout=60)


# -- schedules -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: ``kind`` on ``target`` from ``start`` s into the schedule, for ``seconds``."""

    kind: str
    target: tuple[str, ...]
    start: float
    seconds: float

    def describe(self) -> str:
        return f"{self.kind} {'/'.join(self.target)} at {self.start:.1f} s for {self.seconds:.1f} s"


@dataclass(frozen=True, slots=True)
class Schedule:
    seed: int
    seconds: float  # how long writers write
    faults: tuple[Fault, ...]


def random_schedule(seed: int, names: Sequence[str], *, seconds: float = 20.0) -> Schedule:
    """3-5 faults of random kinds, targets, starts and lengths inside ``seconds`` (rule 3)."""
    rng = random.Random(seed)
    faults = []
    for _ in range(rng.randint(3, 5)):
        kind = rng.choice(FAULT_KINDS)
        start = rng.uniform(0.0, seconds * 0.7)
        length = rng.uniform(1.0, min(8.0, seconds - start))
        if kind == "partition":
            side = rng.sample(list(names), rng.randint(1, 2))
            target = tuple(sorted(side))
        elif kind == "link":
            low, high = sorted(rng.sample(list(names), 2))
            target = (low, high)
        elif kind == "disk-full":
            target = (names[-1],)
        else:
            target = (rng.choice(list(names)),)
        faults.append(Fault(kind, target, start, length))
    return Schedule(seed, seconds, tuple(sorted(faults, key=lambda f: f.start)))


@dataclass
class CheckResult:
    schedule: Schedule
    faults: Counter[str]
    acknowledged: int
    lost: dict[str, int]  # node -> acknowledged operations it lacks
    convergence_seconds: float
    operations: int
    integrity: dict[str, str]
    refusals: Counter[str]
    exits: Counter[int]

    @property
    def ok(self) -> bool:
        return not any(self.lost.values()) and all(v == "ok" for v in self.integrity.values())


def _apply(cluster: FaultCluster, fault: Fault, begin: bool) -> None:
    if fault.kind == "partition":
        links = cluster.partition_links(set(fault.target))
        (cluster.cut if begin else cluster.restore)(links)
    elif fault.kind == "link":
        (cluster.cut if begin else cluster.restore)([(fault.target[0], fault.target[1])])
    elif fault.kind == "kill":
        (cluster.kill if begin else cluster.revive)(fault.target[0])
    elif fault.kind == "pause":
        (cluster.pause if begin else cluster.resume)(fault.target[0])
    elif fault.kind == "disk-full":
        assert cluster.disk is not None
        cluster.disk.fill() if begin else cluster.disk.free()
    else:
        raise ValueError(f"no fault kind {fault.kind!r}")


def _conflicts(fault: Fault, active: list[Fault]) -> bool:
    """A node already killed or paused, or a disk already full, is left to that fault."""
    if fault.kind == "disk-full":  # one filler file: the first to end would free it
        return any(f.kind == "disk-full" for f in active)
    if fault.kind not in ("kill", "pause"):
        return False
    return any(f.kind in ("kill", "pause") and f.target == fault.target for f in active)


def run_schedule(
    cluster: FaultCluster,
    schedule: Schedule,
    *,
    skew_dir: Path,
    converge_timeout: float = 180.0,
    log: Callable[[str], None] = lambda line: None,
) -> CheckResult:
    """Two new threads, writers through the API of A, B and C, the CLI of D, and two skewed
    authors; the faults at their times; then heal, and check (module docstring)."""
    rng = random.Random(schedule.seed)
    acknowledged = Acknowledged()
    exits_before = Counter(cluster.exits)
    opener = cluster[rng.choice(cluster.names)]
    threads = [
        opener.api.create_thread(f"schedule {schedule.seed} thread {n}", site=SITE)
        for n in range(2)
    ]
    for thread_id in threads:
        acknowledged.record(thread_id, f"{opener.name}/api")
    for daemon in cluster.daemons.values():
        wait_until(
            lambda d=daemon: all(d.api.thread(t) for t in threads),
            timeout=60,
            message=f"{daemon.name} to hold the new threads",
        )
    names = cluster.names
    writers: list[Writer] = [
        ApiWriter(cluster[n], cluster, threads, acknowledged, random.Random(rng.random()))
        for n in names[:3]
    ]
    writers.append(
        CliWriter(cluster[names[3]], cluster, threads, acknowledged, random.Random(rng.random()))
    )
    skewed = [
        SkewedWriter(
            f"{label}-{schedule.seed}",
            skew_dir / f"{label}-{schedule.seed}",
            offset,
            cluster,
            threads,
            acknowledged,
            random.Random(rng.random()),
            interval=0.3,
        )
        for label, offset in (("past", -SKEW_MS), ("future", SKEW_MS))
    ]
    injected: Counter[str] = Counter()
    with writing([*writers, *skewed]):
        for writer in skewed:
            if not writer.ready.wait(60):
                raise AssertionError(f"{writer.name} did not start")
        begin = time.monotonic()
        events = sorted(
            [(f.start, True, f) for f in schedule.faults]
            + [(f.start + f.seconds, False, f) for f in schedule.faults],
            key=lambda e: e[0],
        )
        active: list[Fault] = []
        for at, starting, fault in events:
            delay = begin + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the schedule's clock: faults start and end at their times
            if starting:
                if _conflicts(fault, active):
                    continue
                active.append(fault)
                injected[fault.kind] += 1
                log(f"  + {fault.describe()}")
            elif fault in active:
                active.remove(fault)
            else:
                continue
            _apply(cluster, fault, starting)
        rest = begin + schedule.seconds - time.monotonic()
        if rest > 0:
            time.sleep(rest)  # writers go on writing until the schedule's end
    healed = time.monotonic()
    cluster.heal()
    snapshot = cluster.wait_converged(timeout=converge_timeout)
    converged = time.monotonic()
    acked = acknowledged.snapshot()
    lost = {}
    for name, daemon in cluster.daemons.items():
        held = cluster.held_ids(daemon)
        lost[name] = sum(1 for op_id in acked if op_id not in held)
    return CheckResult(
        schedule=schedule,
        faults=injected,
        acknowledged=len(acked),
        lost=lost,
        convergence_seconds=converged - healed,
        operations=snapshot.operations,
        integrity=cluster.integrity(),
        refusals=acknowledged.refusals,
        exits=cluster.exits - exits_before,
    )
