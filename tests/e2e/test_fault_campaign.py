"""The fault harness in CI (issue 13): one short schedule of every fault kind on five daemons,
and a full disk under one daemon, end to end. The long campaign is ``scripts/fault_campaign.py``.

Both need root (network namespaces, a tmpfs mount), as CI has; elsewhere they are skipped with
the reason."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .fault_harness import Disk, Fault, FaultCluster, Schedule, run_schedule
from .harness import Cluster, Daemon, encode_bundle, foreign_operations, wait_until
from .netns import namespaces_available

pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.fixture
def root_only() -> None:
    why_not = namespaces_available()
    if why_not is not None:
        pytest.skip(why_not)


def test_one_schedule_of_every_fault_loses_nothing_acknowledged(
    networking: None, root_only: None, tmp_path: Path
) -> None:
    schedule = Schedule(
        7,
        10.0,
        (
            Fault("partition", ("A", "B"), 0.5, 4.0),
            Fault("kill", ("C",), 1.0, 3.0),
            Fault("pause", ("D",), 2.0, 3.0),
            Fault("disk-full", ("E",), 2.5, 5.0),
            Fault("link", ("A", "E"), 6.0, 2.0),
        ),
    )
    with FaultCluster(tmp_path / "faults") as cluster:
        cluster.start()
        result = run_schedule(cluster, schedule, skew_dir=tmp_path / "skew", converge_timeout=90)
    print(
        f"[faults] {dict(result.faults)} + clock skew; {result.acknowledged} acknowledged,"
        f" {sum(result.lost.values())} lost; converged {result.convergence_seconds:.1f} s after"
        f" healing; refused: {dict(result.refusals)}; restarts: {dict(result.exits)}"
    )
    assert set(result.faults) == {"partition", "kill", "pause", "disk-full", "link"}
    assert result.acknowledged > 20
    assert result.lost == dict.fromkeys(cluster.names, 0)
    assert result.integrity == dict.fromkeys(cluster.names, "ok")


@pytest.fixture
def disk(root_only: None, tmp_path: Path) -> Iterator[Disk]:
    disk = Disk(tmp_path / "disk")
    try:
        yield disk
    finally:
        disk.close()


def _comment(daemon: Daemon, thread: str, body: str) -> httpx.Response:
    return httpx.post(
        f"{daemon.api_info['url']}/api/threads/{thread}/comments",
        json={"body": body},
        headers={"Authorization": f"Bearer {daemon.api_info['token']}"},
        timeout=30,
    )


def test_a_full_disk_refuses_writes_clearly_and_loses_nothing(
    networking: None, disk: Disk, tmp_path: Path
) -> None:
    with Cluster(tmp_path / "cluster", name="disk") as group:
        daemon = Daemon("full", disk.mount_point / "data", group.log_dir)
        group.daemons["full"] = daemon
        daemon.init()
        daemon.start().wait_ready()
        thread = daemon.api.create_thread("a full disk")
        acknowledged = [thread] + [daemon.api.comment(thread, f"before {n}") for n in range(3)]

        disk.fill()
        # A local write is committed before memory sees it: refused whole, with 507.
        statuses = []
        for n in range(20):
            response = _comment(daemon, thread, f"while full {n}")
            statuses.append(response.status_code)
            if response.status_code == 201:  # still fitted in pages SQLite already had
                acknowledged.append(str(response.json()["id"]))
                continue
            assert response.status_code == 507, response.text
            assert response.json()["error"]["code"] == "disk-full"
            assert "the disk is full" in response.json()["error"]["message"]
            break
        assert 507 in statuses, statuses
        cli = daemon.cli("comment", thread, "--body", "from the CLI while full")
        assert cli.returncode == 5, cli.stderr
        assert cli.stderr.startswith("p2pc: ")
        assert "the disk is full" in cli.stderr
        assert "Traceback" not in cli.stderr

        disk.free()  # space is back: the same daemon writes again, no restart needed
        acknowledged.append(daemon.api.comment(thread, "after the space came back"))

        # Operations from outside are applied in memory before their commit: when that commit
        # fails, the daemon stops (daemon rule 4) and says why; restarted, it has all it
        # acknowledged.
        disk.fill()
        bundle = encode_bundle(foreign_operations(thread, 400, seed=3))
        response = daemon.api.http.post(
            "/api/import", content=bundle, headers={"Content-Type": "application/x-ndjson"}
        )
        assert response.status_code == 507, response.text
        assert daemon.process is not None
        daemon.process.wait(timeout=30)
        assert daemon.process.returncode == 5
        last = daemon.stderr_tail(3)
        assert "p2pc: stopped: a write to" in last, last
        assert "once the disk has space" in last, last
        # Started again while the disk is still full, it says so (not "cannot listen").
        daemon.start()
        daemon.process.wait(timeout=60)
        assert daemon.process.returncode == 5
        last = daemon.stderr_tail(1)
        assert "the disk is full" in last, last
        assert "cannot listen" not in last, last
        disk.free()
        daemon.start().wait_ready()
        held = {_hex(op) for op in daemon.api.export()}
        assert {_raw(op) for op in acknowledged} <= held
        daemon.stop()
        integrity = subprocess.run(
            ["sqlite3", str(daemon.data_dir / "operations.sqlite3"), "PRAGMA integrity_check"],
            capture_output=True,
            text=True,
            check=False,
        )
        if integrity.returncode == 0:
            assert integrity.stdout.strip() == "ok"
        report = daemon.cli_json("repair")
        assert report.get("problems", []) == [], json.dumps(report)
        wait_until(lambda: not daemon.running, timeout=5, message="stopped")


def _hex(data: bytes) -> str:
    from p2pcomments.core.ops import claimed_id

    op_id = claimed_id(data)
    assert op_id is not None
    return op_id.hex()


def _raw(text_id: str) -> str:
    from p2pcomments.core.textform import parse_id

    return parse_id(text_id).hex()
