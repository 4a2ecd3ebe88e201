"""Two real ``p2pc daemon`` processes on 127.0.0.1: one bootstraps to the other, a comment posted
through one's HTTP API shows on the other (gossip), a backlog reaches a late starter (sync on
connect), ``p2pc sync``/``peers``/``id`` work through the daemon. Every process is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

pytestmark = [pytest.mark.network]

P2PC = Path(sys.executable).with_name("p2pc")
SITE = "two.example"
T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], *, timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class Daemon:
    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith("P2PC_")}
        subprocess.run(
            [str(P2PC), "--data-dir", str(data_dir), "init"],
            env=env,
            check=True,
            capture_output=True,
        )
        self.log = (data_dir / "daemon.log").open("wb")
        command = [str(P2PC), "daemon", "--data-dir", str(data_dir), "--api", "127.0.0.1:0"]
        command += ["--listen", "/ip4/127.0.0.1/tcp/0", "--sync-interval", "1", *args]
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True
        )
        self.env = env

        def ready() -> tuple[dict[str, Any], dict[str, Any]] | None:
            assert self.process.poll() is None, (data_dir / "daemon.log").read_text()
            api, network = read_json(data_dir / "api.json"), read_json(data_dir / "network.json")
            if api.get("pid") == network.get("pid") == self.process.pid:
                return api, network
            return None

        self.api_info, self.network_info = wait_for(ready, timeout=30, what="the daemon")
        self.http = httpx.Client(
            base_url=self.api_info["url"],
            headers={"Authorization": f"Bearer {self.api_info['token']}"},
            timeout=60,
        )

    @property
    def multiaddr(self) -> str:
        return str(self.network_info["multiaddrs"][0])

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def operation_count(self, thread: str) -> int:
        response = self.http.get(f"/api/threads/{thread}")
        return 0 if response.status_code == 404 else int(response.json()["operation_count"])

    def total_operations(self) -> int:
        return int(self.http.get("/api/statistics").json()["operations"])

    def cli(self, *args: str) -> Any:
        result = subprocess.run(
            [str(P2PC), "--data-dir", str(self.data_dir), "--json", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def stop(self) -> int:
        """SIGTERM by PID, SIGKILL if it lingers; the exit code."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.wait(10)

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.http.close()
        self.log.close()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    try:
        yield started
    finally:
        for daemon in started:
            daemon.kill()


def test_two_daemons_gossip_and_sync(tmp_path: Path, daemons: list[Daemon]) -> None:
    a = Daemon(tmp_path / "a")
    daemons.append(a)
    # A backlog on A before B exists: 400 operations (gossiped to nobody: A has no peers).
    thread = a.post("/api/threads", {"title": "two processes", "site": SITE})["id"]
    for n in range(399):
        a.post(f"/api/threads/{thread}/comments", {"body": f"backlog {n}"})

    started = time.monotonic()
    b = Daemon(tmp_path / "b", "--bootstrap", a.multiaddr)
    daemons.append(b)
    wait_for(lambda: b.operation_count(thread) == 400, timeout=30, what="the backlog on B")
    print(f"\n[net] B started and synced 400 ops in {time.monotonic() - started:.2f} s")

    b.post("/api/follows", {"site": SITE})
    peers = b.cli("peers")["peers"]
    assert [p["peer_id"] for p in peers] == [a.network_info["peer_id"]]
    identity = b.cli("id")
    assert identity["peer_id"] == b.network_info["peer_id"]
    assert identity["multiaddrs"] == b.network_info["multiaddrs"]

    # Gossip: a comment on A shows on B (best of a few, after the mesh has formed).
    time.sleep(1.5)
    delays, posts = [], []
    for n in range(5):
        started = time.monotonic()
        a.post(f"/api/threads/{thread}/comments", {"body": f"live {n}"})
        posts.append(time.monotonic() - started)
        # /api/statistics is cheap to poll (a thread's view of 400 comments is not).
        wait_for(lambda n=n: b.total_operations() == 401 + n, timeout=10, what="gossip")
        delays.append(time.monotonic() - started)
    print(
        f"[net] post on A -> visible on B: {', '.join(f'{1000 * d:.0f}' for d in delays)} ms"
        f" (the POST itself: {', '.join(f'{1000 * d:.0f}' for d in posts)} ms; latency is"
        " measured by scripts/bench_net.py, not asserted here)"
    )
    statistics = b.http.get("/api/statistics").json()["network"]
    assert statistics["gossip_ops_in"] >= 5
    assert statistics["sync_rounds"] >= 1

    # On demand, through the CLI: nothing left to move.
    counts = b.cli("sync")
    assert counts == {"peers_synced": 1, "received": 0, "sent": 0, "failed": {}}
    said = subprocess.run(
        [str(P2PC), "--data-dir", str(b.data_dir), "sync"],
        env=b.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert said.stdout.strip() == "already in agreement with 1 peer: nothing to receive or send"

    digest_a = a.http.get(f"/api/threads/{thread}").json()["digest"]
    assert b.http.get(f"/api/threads/{thread}").json()["digest"] == digest_a

    # A clean stop removes network.json; B notices and keeps running.
    assert a.stop() == 0
    assert not (a.data_dir / "network.json").exists()
    wait_for(lambda: not b.cli("peers")["peers"], timeout=10, what="B to see A gone")
    assert b.process.poll() is None


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PC_")}
    return subprocess.run(
        [str(P2PC), "--data-dir", str(data_dir), "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_follows_offline_and_network_commands_without_a_network(tmp_path: Path) -> None:
    data_dir = tmp_path / "offline"
    assert run_cli(data_dir, "init").returncode == 0
    followed = json.loads(run_cli(data_dir, "follow", "Blog.Example").stdout)
    assert followed["sites"] == ["Blog.Example"]
    assert followed["changed"] is True
    assert json.loads(run_cli(data_dir, "follows").stdout)["sites"] == ["Blog.Example"]
    result = run_cli(data_dir, "sync")
    assert result.returncode == 1
    assert json.loads(result.stderr)["error"]["code"] == "network-off"
    assert json.loads(run_cli(data_dir, "id").stdout)["peer_id"] is None  # never networked

    # A daemon without networking: the API answers, the network endpoints say it is off, and
    # follows still work through it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PC_")}
    process = subprocess.Popen(
        [str(P2PC), "daemon", "--data-dir", str(data_dir), "--api", "127.0.0.1:0", "--no-network"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        api = wait_for(
            lambda: (
                read_json(data_dir / "api.json").get("pid") == process.pid
                and read_json(data_dir / "api.json")
            ),
            timeout=30,
            what="the API",
        )
        assert not (data_dir / "network.json").exists()
        response = httpx.get(f"{api['url']}/api/network")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "network-off"
        assert "network" not in httpx.get(f"{api['url']}/api/statistics").json()
        unfollowed = json.loads(run_cli(data_dir, "unfollow", "Blog.Example").stdout)
        assert unfollowed["sites"] == []
        assert unfollowed["unfollowed"]["sites"] == ["Blog.Example"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
