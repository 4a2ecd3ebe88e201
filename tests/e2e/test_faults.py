"""Faults with real daemons (issue 13, a first schedule): three nodes, writers writing through
their own node's API all along, while nodes are killed (SIGKILL) and restarted and paused
(SIGSTOP) and resumed (SIGCONT). A checker then verifies, after the faults: every operation any
node acknowledged (201 with its id) is on every node, the view digests are identical, and each
store passes SQLite's integrity check."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from .harness import Cluster, Daemon, cluster, wait_until

pytestmark = [pytest.mark.network, pytest.mark.slow]

SITE = "faults.example"


@dataclass
class Writer:
    """Comments on one thread through one daemon's API, until told to stop; what was
    acknowledged is recorded. A write that fails or times out (the node is down or paused) is
    not acknowledged, and is tried again."""

    daemon: Daemon
    thread: str
    acknowledged: list[str] = field(default_factory=list)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        count = 0
        while not self.stop.is_set():
            info = dict(self.daemon.api_info)
            if not info or not self.daemon.running:
                self.failures += 1
                self.stop.wait(0.1)
                continue
            body = f"{self.daemon.name} writes {count}"
            try:
                response = httpx.post(
                    f"{info['url']}/api/threads/{self.thread}/comments",
                    json={"body": body},
                    headers={"Authorization": f"Bearer {info['token']}"},
                    timeout=3.0,
                )
            except httpx.HTTPError:
                self.failures += 1
                continue
            if response.status_code == 201:
                self.acknowledged.append(str(response.json()["id"]))
                count += 1
            else:
                self.failures += 1
            self.stop.wait(0.05)


@contextlib.contextmanager
def writing(daemons: list[Daemon], thread: str) -> Iterator[list[Writer]]:
    writers = [Writer(daemon, thread) for daemon in daemons]
    threads = [threading.Thread(target=w.run, name=f"writer-{w.daemon.name}") for w in writers]
    for t in threads:
        t.start()
    try:
        yield writers
    finally:
        for w in writers:
            w.stop.set()
        for t in threads:
            t.join(timeout=30)


def wait_written(writers: list[Writer], more: int) -> None:
    """Wait until every running writer has had ``more`` further writes acknowledged."""
    targets = {id(w): len(w.acknowledged) + more for w in writers if w.daemon.running}
    wait_until(
        lambda: all(len(w.acknowledged) >= targets[id(w)] for w in writers if id(w) in targets),
        timeout=60,
        message=f"{more} more acknowledged writes per running node",
        describe=lambda: str({w.daemon.name: len(w.acknowledged) for w in writers}),
    )


def pause(daemon: Daemon, seconds: float) -> None:
    os.kill(daemon.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)  # the fault itself: a node that does not run for a while
    finally:
        os.kill(daemon.pid, signal.SIGCONT)


@pytest.fixture
def three(networking: None, tmp_path: Path) -> Iterator[Cluster]:
    with cluster(tmp_path / "faults", name="faults") as group:
        a = group.start("A")
        b, c = group.start_wave([("B", [a]), ("C", [a])])
        for node, peers in ((b, [a]), (c, [a])):
            group.wait_connected(node, peers)
        for node in (a, b, c):
            node.api.follow(site=SITE)
        yield group


def test_kills_and_pauses_while_writing_lose_nothing_acknowledged(three: Cluster) -> None:
    a, b, c = three["A"], three["B"], three["C"]
    thread = a.api.create_thread("faults", site=SITE)
    for node in (b, c):
        wait_until(lambda node=node: node.api.thread(thread), timeout=30, message="the thread")
    started = time.monotonic()
    faults = []
    with writing([a, b, c], thread) as writers:
        wait_written(writers, 3)
        b.kill()  # power cut: acknowledged writes must have been durable
        faults.append("SIGKILL B")
        wait_written(writers, 3)
        b.restart()
        faults.append("restart B")
        wait_written(writers, 3)
        pause(c, 3.0)
        faults.append("SIGSTOP/SIGCONT C 3 s")
        wait_written(writers, 3)
        a.kill()
        faults.append("SIGKILL A")
        pause(b, 2.0)
        faults.append("SIGSTOP/SIGCONT B 2 s")
        a.restart(bootstrap=[b.multiaddr, c.multiaddr])
        faults.append("restart A")
        wait_written(writers, 3)
    acknowledged = {op_id for w in writers for op_id in w.acknowledged}
    healed = time.monotonic()
    snapshot = three.wait_converged([a, b, c], timeout=120)
    converged = time.monotonic()
    for node in (a, b, c):
        held = {op.hex() for op in _ids(node)}
        missing = [op for op in acknowledged if _raw_id(op) not in held]
        assert not missing, f"{node.name} lacks {len(missing)} acknowledged operations"
    for node in (a, b, c):
        node.stop()
        report = node.cli_json("repair")
        assert report.get("problems", []) == [], report
    print(
        f"[faults] {', '.join(faults)}; {len(acknowledged)} acknowledged writes"
        f" ({sum(w.failures for w in writers)} failed attempts), 0 lost;"
        f" {snapshot.operations} operations, identical digests {converged - healed:.1f} s"
        f" after the last fault ({healed - started:.0f} s of faults)"
    )


def _ids(node: Daemon) -> list[bytes]:
    from p2pcomments.core.ops import claimed_id

    ids = [claimed_id(data) for data in node.api.export()]
    return [i for i in ids if i is not None]


def _raw_id(text_id: str) -> str:
    from p2pcomments.core.textform import parse_id

    return parse_id(text_id).hex()
