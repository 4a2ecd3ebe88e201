"""Real ``p2pc daemon`` processes on 127.0.0.1 with networking, for the end-to-end tests and
``scripts/bench_net.py``.

Each daemon is the installed entry point (``p2pc`` next to ``sys.executable``) run as its own OS
process on its own temporary data dir (``p2pc init`` first), with
``--api 127.0.0.1:0 --listen /ip4/127.0.0.1/tcp/0`` and the bootstrap addresses given. It is ready
once it has written ``api.json`` and ``network.json`` naming its pid.

Rules:

1. Every process started here is tracked by PID and stopped by PID (SIGTERM, then SIGKILL after a
   timeout) when its `Cluster` closes, whatever happened; an ``atexit`` hook kills any survivor.
   Nothing is ever killed by name.
2. Only 127.0.0.1: the API, the listen addresses and every multiaddr handed around.
3. Every wait is bounded (`wait_until`); a timeout raises `AssertionError` saying what was awaited
   and what was last seen.
4. A daemon's stdout and stderr go to files in its cluster's directory; `Cluster.log_tails` gives
   the end of each (the e2e conftest attaches them to a failing test's report).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import httpx

__all__ = [
    "P2PC",
    "Cluster",
    "Daemon",
    "DaemonApi",
    "MisbehavingPeer",
    "NodeSnapshot",
    "cli_environment",
    "cluster",
    "daemon_has_networking",
    "decode_bundle_ops",
    "encode_bundle",
    "foreign_operations",
    "open_clusters",
    "wait_until",
]

P2PC: Final = Path(sys.executable).with_name("p2pc")
START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 15.0
LOOPBACK_LISTEN: Final = "/ip4/127.0.0.1/tcp/0"
# Bytecode cached outside the tree, as tests/api does: every command would otherwise compile the
# package again where the environment says PYTHONDONTWRITEBYTECODE.
PYCACHE: Final = Path(tempfile.gettempdir()) / "p2pcomments-test-pycache"

T = TypeVar("T")

# -- waiting -------------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.2,
    message: str = "condition",
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy (at most ``timeout`` s); that value.

    An exception from ``predicate`` counts as "not yet" (a daemon may be busy or restarting) and is
    reported if the wait times out. On timeout, `AssertionError` names ``message`` and the result
    of ``describe()`` (what was last seen).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    last_value: object = None
    while True:
        try:
            value = predicate()
        except (httpx.HTTPError, OSError, ValueError, KeyError, AssertionError) as error:
            last_error = error
        else:
            if value:
                return value
            last_value = value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    details = [f"timed out after {timeout:.1f} s waiting for {message}"]
    if last_error is not None:
        details.append(f"last error: {last_error!r}")
    else:
        details.append(f"last value: {last_value!r}"[:2000])
    if describe is not None:
        with contextlib.suppress(Exception):
            details.append(describe())
    raise AssertionError("\n".join(details))


# -- processes -----------------------------------------------------------------------------------

_live_pids: set[int] = set()
_live_lock = threading.Lock()


def _track(pid: int) -> None:
    with _live_lock:
        _live_pids.add(pid)


def _untrack(pid: int) -> None:
    with _live_lock:
        _live_pids.discard(pid)


@atexit.register
def _kill_survivors() -> None:
    """Last resort (rule 1): SIGKILL every process we started and did not reap."""
    with _live_lock:
        pids = list(_live_pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def cli_environment(data_dir: Path) -> dict[str, str]:
    """The environment of a ``p2pc`` process on ``data_dir``: no inherited P2PC_* settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("P2PC_") and key not in ("PYTHONWARNINGS", "PYTHONDONTWRITEBYTECODE")
    }
    env["P2PC_HOME"] = str(data_dir)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def daemon_has_networking() -> bool:
    """Whether the installed ``p2pc daemon`` has the networking options (--listen, --bootstrap)."""
    try:
        result = subprocess.run(
            [str(P2PC), "daemon", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--listen" in result.stdout and "--bootstrap" in result.stdout


def decode_bundle_ops(bundle: bytes) -> list[bytes]:
    """The operations of a bundle (JSON lines of hex), without checking them."""
    from p2pcomments.api.bundle import decode_bundle

    return decode_bundle(bundle)


# -- the API -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSnapshot:
    """What two converged nodes agree on: the operation count and every thread's view digest."""

    operations: int
    pending: int
    digests: tuple[tuple[str, str], ...]  # (thread id, digest), sorted by thread id


class DaemonApi:
    """A small client for one daemon's HTTP API (writes carry the token)."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        self.url = url
        self.token = token
        self.http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> Any:
        response = self.http.get(path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(path, json=body if body is not None else {})
        if response.is_error:
            raise httpx.HTTPStatusError(
                f"POST {path} -> {response.status_code}: {response.text[:500]}",
                request=response.request,
                response=response,
            )
        return response.json()

    # -- writes

    def create_thread(self, title: str, *, url: str | None = None, site: str | None = None) -> str:
        op = self.post("/api/threads", {"title": title, "url": url, "site": site})
        return str(op["id"])

    def comment(self, thread: str, body: str) -> str:
        return str(self.post(f"/api/threads/{thread}/comments", {"body": body})["id"])

    def reply(self, comment: str, body: str) -> str:
        return str(self.post(f"/api/comments/{comment}/replies", {"body": body})["id"])

    def import_bundle(self, bundle: bytes) -> dict[str, Any]:
        response = self.http.post(
            "/api/import", content=bundle, headers={"Content-Type": "application/x-ndjson"}
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def follow(self, *, thread: str | None = None, site: str | None = None) -> Any:
        body = {"thread": thread} if thread is not None else {"site": site}
        return self.post("/api/follows", body)

    def connect(self, multiaddr: str) -> Any:
        return self.post("/api/network/connect", {"multiaddr": multiaddr})

    def sync(self, peer_id: str | None = None) -> dict[str, Any]:
        body = {} if peer_id is None else {"peer_id": peer_id}
        result: dict[str, Any] = self.post("/api/network/sync", body)
        return result

    # -- reads

    def thread(self, thread: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/api/threads/{thread}")
        return result

    def threads(self) -> list[dict[str, Any]]:
        return list(self.get("/api/threads")["threads"])

    def statistics(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/api/statistics")
        return result

    def network(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/api/network")
        return result

    def peer_ids(self) -> set[str]:
        return {str(peer["peer_id"]) for peer in self.network()["peers"]}

    def export(self, thread: str | None = None) -> list[bytes]:
        path = "/api/export" if thread is None else f"/api/threads/{thread}/export"
        response = self.http.get(path)
        response.raise_for_status()
        return decode_bundle_ops(response.content)

    def operation_count(self) -> int:
        return int(self.statistics()["operations"])

    def digest(self, thread: str) -> str:
        return str(self.thread(thread)["digest"])

    def snapshot(self) -> NodeSnapshot:
        statistics = self.statistics()
        digests = sorted((str(t["id"]), self.digest(str(t["id"]))) for t in self.threads())
        return NodeSnapshot(
            operations=int(statistics["operations"]),
            pending=int(statistics["pending"]),
            digests=tuple(digests),
        )


# -- daemons -------------------------------------------------------------------------------------


class Daemon:
    """One ``p2pc daemon`` process on its own data dir (module rules 1-4)."""

    def __init__(
        self,
        name: str,
        data_dir: Path,
        log_dir: Path,
        *,
        bootstrap: Sequence[str] = (),
        sync_interval: float = 1.0,
        extra_args: Sequence[str] = (),
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.data_dir = data_dir
        # Run in the child between fork and exec, for the daemon and its CLI commands alike
        # (the fault harness enters the daemon's network namespace there).
        self.preexec = preexec
        self.bootstrap = tuple(bootstrap)
        self.sync_interval = sync_interval
        self.extra_args = tuple(extra_args)
        self.listen = LOOPBACK_LISTEN
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.api_info: dict[str, Any] = {}
        self.network_info: dict[str, Any] = {}
        self._api: DaemonApi | None = None

    def __repr__(self) -> str:
        return f"<Daemon {self.name} pid={self.pid if self.process else None}>"

    # -- life cycle

    def init(self) -> None:
        """``p2pc init`` on the data dir (an author key without passphrase)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        result = self.cli("init")
        if result.returncode != 0:
            raise AssertionError(f"p2pc init failed for {self.name}: {result.stderr}")

    def command(self) -> list[str]:
        args = [
            str(P2PC),
            "daemon",
            "--data-dir",
            str(self.data_dir),
            "--api",
            "127.0.0.1:0",
            "--listen",
            self.listen,
            "--sync-interval",
            f"{self.sync_interval:g}",
        ]
        for address in self.bootstrap:
            args += ["--bootstrap", address]
        return args + list(self.extra_args)

    def start(self) -> Daemon:
        """Start the process (it is not ready yet: see `wait_ready`)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.api_info = {}
        self.network_info = {}
        if self._api is not None:
            self._api.close()
            self._api = None
        # Append: a restarted daemon keeps its earlier output in the same file.
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            err.write(
                f"=== start {time.strftime('%H:%M:%S')} {' '.join(self.command())}\n".encode()
            )
            err.flush()
            self.process = subprocess.Popen(
                self.command(),
                env=cli_environment(self.data_dir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # a Ctrl-C in the test's terminal goes to pytest only
                preexec_fn=self.preexec,
            )
        self.started_at = time.monotonic()
        _track(self.process.pid)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Daemon:
        """Wait until ``api.json`` and ``network.json`` both name this process."""

        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise _Exited(f"{self.name} exited with {code}:\n{self.stderr_tail()}")
            api = _read_json(self.data_dir / "api.json")
            network = _read_json(self.data_dir / "network.json")
            if api.get("pid") != self.pid or network.get("pid") != self.pid:
                return False
            if not network.get("multiaddrs"):
                return False
            self.api_info, self.network_info = api, network
            return True

        try:
            wait_until(
                ready,
                timeout=timeout,
                interval=0.05,
                message=f"{self.name} to write api.json and network.json",
                describe=lambda: self.stderr_tail(),
            )
        except _Exited as error:
            raise AssertionError(str(error)) from None
        return self

    def restart(self, *, bootstrap: Sequence[str] | None = None, same_port: bool = False) -> Daemon:
        """Stop (SIGTERM) if running, start again on the same data dir, wait until ready.

        ``bootstrap`` replaces the bootstrap addresses (``()``: only remembered peers). With
        ``same_port`` it listens where it listened before (as a daemon with a configured port
        does), else on a new free port.
        """
        if same_port:
            self.listen = self.multiaddr.split("/p2p/")[0]
        self.stop()
        if bootstrap is not None:
            self.bootstrap = tuple(bootstrap)
        return self.start().wait_ready()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process.pid

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited after ``timeout``; the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        _untrack(process.pid)
        self._close_api()
        return process.returncode

    def kill(self) -> None:
        """``kill -9`` by PID, and reap it."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)
        _untrack(process.pid)
        self._close_api()

    def _close_api(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- addresses and API

    @property
    def peer_id(self) -> str:
        return str(self.network_info["peer_id"])

    @property
    def multiaddr(self) -> str:
        """The first loopback multiaddr, with ``/p2p/<peer id>``."""
        addresses = [str(a) for a in self.network_info["multiaddrs"]]
        for address in addresses:
            if address.startswith("/ip4/127.0.0.1/"):
                return address
        return addresses[0]

    @property
    def api(self) -> DaemonApi:
        if self._api is None:
            if not self.api_info:
                raise RuntimeError(f"{self.name} is not ready")
            self._api = DaemonApi(str(self.api_info["url"]), str(self.api_info["token"]))
        return self._api

    # -- the CLI on this data dir

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(P2PC), *args],
            env=cli_environment(self.data_dir),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=self.preexec,
        )

    def cli_json(self, *args: str, timeout: float = 60.0) -> Any:
        """``p2pc --json ARGS`` against this data dir (its running daemon, if any); its JSON."""
        result = self.cli("--json", *args, timeout=timeout)
        if result.returncode != 0 or "Traceback" in result.stderr:
            raise AssertionError(
                f"p2pc --json {' '.join(args)} on {self.name} exited {result.returncode}: "
                f"{result.stderr[-2000:]}"
            )
        return json.loads(result.stdout)

    # -- diagnostics

    def stderr_tail(self, lines: int = 40) -> str:
        return _tail(self.stderr_path, lines)

    def stdout_tail(self, lines: int = 10) -> str:
        return _tail(self.stdout_path, lines)


class _Exited(Exception):
    """The daemon exited while we waited for it to become ready."""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} is missing)"
    return "\n".join(text.splitlines()[-lines:])


class Cluster:
    """The daemons of one scenario, under one temporary directory; closing stops them all."""

    def __init__(self, root: Path | None = None, *, name: str = "cluster") -> None:
        if root is None:
            root = Path(tempfile.mkdtemp(prefix=f"p2pc-{name}-"))
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_dir = root / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self.daemons: dict[str, Daemon] = {}
        self.peers: list[MisbehavingPeer] = []
        self._closed = False
        _open_clusters.append(self)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getitem__(self, name: str) -> Daemon:
        return self.daemons[name]

    def add(
        self,
        name: str,
        *,
        bootstrap: Iterable[Daemon | str] = (),
        sync_interval: float = 1.0,
        extra_args: Sequence[str] = (),
    ) -> Daemon:
        """Create (``p2pc init``) and start a daemon; not waited for: see `wait_ready`."""
        if name in self.daemons:
            raise ValueError(f"there is already a daemon {name}")
        addresses = [b.multiaddr if isinstance(b, Daemon) else b for b in bootstrap]
        daemon = Daemon(
            name,
            self.root / name,
            self.log_dir,
            bootstrap=addresses,
            sync_interval=sync_interval,
            extra_args=extra_args,
        )
        self.daemons[name] = daemon
        daemon.init()
        return daemon.start()

    def start(
        self,
        name: str,
        *,
        bootstrap: Iterable[Daemon | str] = (),
        sync_interval: float = 1.0,
        extra_args: Sequence[str] = (),
        timeout: float = START_TIMEOUT,
    ) -> Daemon:
        """`add` and wait until ready."""
        daemon = self.add(
            name, bootstrap=bootstrap, sync_interval=sync_interval, extra_args=extra_args
        )
        return daemon.wait_ready(timeout)

    def start_wave(
        self,
        specs: Sequence[tuple[str, Sequence[Daemon | str]]],
        *,
        sync_interval: float = 1.0,
        extra_args: Sequence[str] = (),
        timeout: float = START_TIMEOUT,
    ) -> list[Daemon]:
        """Start several daemons at once, ``(name, bootstrap)`` each, and wait for all."""
        started = [
            self.add(name, bootstrap=boot, sync_interval=sync_interval, extra_args=extra_args)
            for name, boot in specs
        ]
        for daemon in started:
            daemon.wait_ready(timeout)
        return started

    def running(self) -> list[Daemon]:
        return [d for d in self.daemons.values() if d.running]

    def wait_connected(self, daemon: Daemon, peers: Iterable[Daemon], timeout: float = 30) -> None:
        """Wait until ``daemon`` lists every one of ``peers`` as connected."""
        wanted = {peer.peer_id for peer in peers}
        wait_until(
            lambda: wanted <= daemon.api.peer_ids(),
            timeout=timeout,
            message=f"{daemon.name} to be connected to {sorted(p.name for p in peers)}",
            describe=lambda: f"{daemon.name} peers: {sorted(daemon.api.peer_ids())}",
        )

    def wait_converged(
        self,
        daemons: Sequence[Daemon],
        *,
        operations: int | None = None,
        timeout: float = 60.0,
        interval: float = 0.5,
    ) -> NodeSnapshot:
        """Wait until every one of ``daemons`` holds the same operations (``operations`` of them,
        if given), none pending, with identical view digests for every thread; the snapshot.

        Operation counts are polled first (cheap); the digests are compared once they agree.
        """

        def counts() -> list[int]:
            return [d.api.operation_count() for d in daemons]

        def converged() -> NodeSnapshot | None:
            seen = counts()
            target = operations if operations is not None else max(seen)
            if any(count != target for count in seen):
                return None
            snapshots = [d.api.snapshot() for d in daemons]
            if all(s == snapshots[0] for s in snapshots) and snapshots[0].pending == 0:
                return snapshots[0]
            return None

        def describe() -> str:
            rows = []
            for d in daemons:
                try:
                    stats = d.api.statistics()
                    rows.append(
                        f"  {d.name}: operations={stats.get('operations')} "
                        f"pending={stats.get('pending')} network={stats.get('network')}"
                    )
                except (httpx.HTTPError, OSError) as error:
                    rows.append(f"  {d.name}: {error!r}")
            return "per node:\n" + "\n".join(rows)

        names = ", ".join(d.name for d in daemons)
        return wait_until(
            converged,
            timeout=timeout,
            interval=interval,
            message=f"{names} to converge" + (f" on {operations} ops" if operations else ""),
            describe=describe,
        )

    def misbehaving_peer(self, target: Daemon, topic: str) -> MisbehavingPeer:
        """Start ``scripts/misbehaving_peer.py`` against ``target`` on ``topic``."""
        peer = MisbehavingPeer(
            self.root / f"bad-peer-{len(self.peers) + 1}",
            self.log_dir / f"bad-peer-{len(self.peers) + 1}.err",
            connect=target.multiaddr,
            topic=topic,
        )
        self.peers.append(peer)
        return peer

    def log_tails(self, lines: int = 30) -> str:
        """The end of every daemon's stderr, for a failure report."""
        parts = []
        for daemon in self.daemons.values():
            state = "running" if daemon.running else "stopped"
            pid = daemon.process.pid if daemon.process else None
            parts.append(f"--- {daemon.name} (pid {pid}, {state}) {daemon.stderr_path}")
            parts.append(daemon.stderr_tail(lines))
        for peer in self.peers:
            parts.append(f"--- misbehaving peer (pid {peer.process.pid}) {peer.stderr_path}")
            parts.append(_tail(peer.stderr_path, lines))
        return "\n".join(parts)

    def close(self) -> None:
        """Stop every daemon: SIGTERM to all at once, then SIGKILL stragglers (rule 1)."""
        if self._closed:
            return
        self._closed = True
        for peer in self.peers:
            peer.close()
        for daemon in self.daemons.values():
            if daemon.running and daemon.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(daemon.process.pid, signal.SIGTERM)
        for daemon in self.daemons.values():
            try:
                daemon.stop()
            except (subprocess.TimeoutExpired, OSError):
                daemon.kill()
        with contextlib.suppress(ValueError):
            _open_clusters.remove(self)


_open_clusters: list[Cluster] = []


def open_clusters() -> list[Cluster]:
    """Clusters not closed yet (for failure reports)."""
    return list(_open_clusters)


@contextlib.contextmanager
def cluster(
    root: Path | None = None, *, name: str = "cluster", keep: bool = False
) -> Iterator[Cluster]:
    """A `Cluster` closed on exit, whatever happens inside. Without ``root`` it lives in a new
    temporary directory, removed afterwards unless ``keep``."""
    group = Cluster(root, name=name)
    try:
        yield group
    finally:
        group.close()
        if root is None and not keep:
            shutil.rmtree(group.root, ignore_errors=True)


# -- a misbehaving peer -------------------------------------------------------------------------

MISBEHAVING_PEER: Final = Path(__file__).resolve().parents[2] / "scripts" / "misbehaving_peer.py"


class MisbehavingPeer:
    """``scripts/misbehaving_peer.py`` as a process: JSON commands in, JSON events out."""

    def __init__(self, data_dir: Path, stderr_path: Path, *, connect: str, topic: str) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(MISBEHAVING_PEER),
                "--data-dir",
                str(data_dir),
                "--connect",
                connect,
                "--topic",
                topic,
            ],
            env={**cli_environment(data_dir), "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        _track(self.process.pid)
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                with self._lock:
                    self.events.append(event)

    def send(self, cmd: str, **fields: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        self.process.stdin.flush()

    def wait_event(self, name: str, *, after: int = 0, timeout: float = 30.0) -> dict[str, Any]:
        """The first event called ``name`` at index ``after`` or later in `events`."""

        def find() -> dict[str, Any] | None:
            if self.process.poll() is not None and not self._reader.is_alive():
                with self._lock:
                    if not any(e.get("event") == name for e in self.events[after:]):
                        raise _Exited(f"the bad peer exited: {_tail(self.stderr_path, 30)}")
            with self._lock:
                for event in self.events[after:]:
                    if event.get("event") == name:
                        return event
            return None

        try:
            return wait_until(
                find,
                timeout=timeout,
                interval=0.05,
                message=f"bad peer event {name!r}",
                describe=lambda: f"events: {self.events[after:]}\n{_tail(self.stderr_path, 20)}",
            )
        except _Exited as error:
            raise AssertionError(str(error)) from None

    def command(self, cmd: str, reply: str, *, timeout: float = 30.0, **fields: Any) -> Any:
        """Send a command and wait for the event it answers with."""
        with self._lock:
            mark = len(self.events)
        self.send(cmd, **fields)
        return self.wait_event(reply, after=mark, timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.send("quit")
            with contextlib.suppress(OSError, ValueError):
                assert self.process.stdin is not None
                self.process.stdin.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        _untrack(self.process.pid)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


# -- signed operations by other authors ----------------------------------------------------------


def foreign_operations(
    thread: str, count: int, *, authors: int = 20, start_ms: int | None = None, seed: int = 1
) -> list[bytes]:
    """``count`` valid operations on ``thread`` by ``authors`` fresh keys, in causal order:
    top-level comments, replies (to earlier comments), edits by the author and reactions."""
    import random

    from nacl.signing import SigningKey

    from p2pcomments.core.ops import (
        CommentPayload,
        EditPayload,
        Operation,
        ReactPayload,
        make_operation,
    )
    from p2pcomments.core.textform import TextKind, parse_id

    rng = random.Random(seed)
    thread_id = parse_id(thread, expect=frozenset({TextKind.THREAD}))
    keys = [SigningKey(rng.randbytes(32)) for _ in range(authors)]
    timestamp = start_ms if start_ms is not None else time.time_ns() // 1_000_000
    comments: list[tuple[Operation, SigningKey]] = []
    result: list[bytes] = []
    for n in range(count):
        timestamp += 1
        key = keys[n % authors]
        choice = rng.random()
        if not comments or choice < 0.45:
            op = make_operation(
                key,
                CommentPayload(body=f"comment {n} " + "lorem ipsum " * rng.randrange(1, 20)),
                timestamp_ms=timestamp,
                thread=thread_id,
                refs=(thread_id,),
            )
            comments.append((op, key))
        elif choice < 0.8:
            parent, _ = rng.choice(comments)
            op = make_operation(
                key,
                CommentPayload(body=f"reply {n} to {parent.id.hex()[:8]}"),
                timestamp_ms=timestamp,
                thread=thread_id,
                refs=(parent.id,),
            )
            comments.append((op, key))
        elif choice < 0.9:
            target, author_key = rng.choice(comments)
            op = make_operation(
                author_key,
                EditPayload(body=f"edited {n}"),
                timestamp_ms=timestamp,
                thread=thread_id,
                refs=(target.id,),
            )
        else:
            target, _ = rng.choice(comments)
            op = make_operation(
                key,
                ReactPayload(reaction=rng.choice(["+1", "heart", "laugh"])),
                timestamp_ms=timestamp,
                thread=thread_id,
                refs=(target.id,),
            )
        result.append(op.encoded)
    return result


def encode_bundle(ops: Iterable[bytes]) -> bytes:
    from p2pcomments.api.bundle import encode_bundle as encode

    return encode(ops)
