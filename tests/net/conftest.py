"""Real `scripts/net_probe.py` processes on 127.0.0.1, driven through JSON lines.

Every process started through the `probes` fixture is killed (by PID) when the test ends, whatever
happened in it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).resolve().parents[2] / "scripts" / "net_probe.py"

Event = dict[str, Any]


class ProbeProcess:
    """One probe process: its stdout events are collected by a reader thread."""

    def __init__(self, data_dir: Path, args: list[str], log_path: Path) -> None:
        self.data_dir = data_dir
        self.args = args
        self._log = log_path.open("ab")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, str(PROBE), "--data-dir", str(data_dir), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.events: list[Event] = []
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.listening: Event | None = None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.events.append(event)
        self._queue.put(None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float, what: str = "event"
    ) -> Event:
        """The first event (past or future) matching ``predicate``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.snapshot():
                if predicate(event):
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {what} from probe {self.pid} in {timeout} s; "
                    f"exit={self.process.poll()} last events={self.snapshot()[-5:]}"
                )
            time.sleep(0.02)

    def wait_listening(self, timeout: float = 20.0) -> Event:
        self.listening = self.wait_for(lambda e: e["event"] == "listening", timeout, "listening")
        return self.listening

    @property
    def peer_id(self) -> str:
        assert self.listening is not None
        return str(self.listening["peer_id"])

    @property
    def multiaddr(self) -> str:
        assert self.listening is not None
        return str(self.listening["multiaddrs"][0])

    def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        self.process.stdin.flush()

    def wait_connected_to(self, peer_id: str, timeout: float) -> Event:
        return self.wait_for(
            lambda e: e["event"] == "peer_connected" and e["peer_id"] == peer_id,
            timeout,
            f"connection to {peer_id}",
        )

    def stats(self, timeout: float = 10.0) -> Event:
        count = sum(1 for e in self.snapshot() if e["event"] == "stats")
        self.send(cmd="stats")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.snapshot() if e["event"] == "stats"]
            if len(found) > count:
                return found[-1]
            time.sleep(0.02)
        raise AssertionError(f"no stats from probe {self.pid}")

    def received_ops(self, tag: str | None = None) -> list[str]:
        ops = [op for e in self.snapshot() if e["event"] == "batch" for op in e["ops"]]
        if tag is None:
            return ops
        return [op for op in ops if op.split(":")[1] == tag]

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited after ``timeout``; returns the exit code."""
        if self.process.poll() is None:
            with _suppress_lookup():
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reader.join(5)
        self._log.close()
        return self.process.wait()

    def kill(self) -> None:
        if self.process.poll() is None:
            with _suppress_lookup():
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


class _suppress_lookup:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        return isinstance(exc, ProcessLookupError)


class Probes:
    """Starts probe processes and remembers them all for cleanup."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[ProbeProcess] = []

    def start(self, name: str, *args: str, data_dir: Path | None = None) -> ProbeProcess:
        directory = data_dir or self.tmp_path / name
        probe = ProbeProcess(directory, ["--label", name, *args], self.tmp_path / f"{name}.log")
        self.started.append(probe)
        return probe

    def kill_all(self) -> None:
        for probe in self.started:
            try:
                probe.kill()
            finally:
                probe._log.close()


@pytest.fixture
def probes(tmp_path: Path) -> Iterator[Probes]:
    started = Probes(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()
