"""Invariant 3: acknowledged means durable. A real writer process is SIGKILLed at random moments
(during start-up, migration, loading, or mid-commit); every id it reported as acknowledged must
be in the database afterwards, and the database must pass its integrity check."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from p2pcomments.store.data_dir import database_path
from p2pcomments.store.op_store import OpStore

WRITER = Path(__file__).with_name("durability_writer.py")
ROUNDS = 20


def _run_and_kill(data_dir: Path, rng: random.Random) -> tuple[set[bytes], int, str]:
    """Start the writer and SIGKILL it: in one round out of four at a blind moment of its
    start-up, otherwise at a random moment after its first acknowledgement. Returns the
    acknowledged ids, its exit status and its stderr."""
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdout is not None
    first = b""
    try:
        if rng.random() < 0.25:
            time.sleep(rng.uniform(0.0, 0.5))
        else:
            first = writer.stdout.readline()  # b"" if it died: then the status tells why
            time.sleep(rng.uniform(0.0, 0.3))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
        # Read the rest through the same buffered reader as `first`: communicate() reads the raw
        # pipe and would skip what readline() had already buffered beyond the first line.
        output = writer.stdout.read()
        assert writer.stderr is not None
        errors = writer.stderr.read()
    finally:
        if writer.poll() is None:  # only if something above failed: never leave it running
            os.kill(writer.pid, signal.SIGKILL)
            writer.communicate(timeout=10)
    # Only whole lines were acknowledged: a line cut by the kill is not counted.
    lines = (first + output).split(b"\n")[:-1]
    acknowledged = {bytes.fromhex(line.decode("ascii")) for line in lines}
    return acknowledged, writer.returncode, errors.decode("utf-8", "replace")


def test_acknowledged_operations_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    data_dir = tmp_path / "node"
    acknowledged: set[bytes] = set()
    rounds_with_acks = 0
    for _ in range(ROUNDS):
        ids, status, errors = _run_and_kill(data_dir, rng)
        assert status == -signal.SIGKILL, f"the writer died by itself ({status}):\n{errors}"
        acknowledged |= ids
        rounds_with_acks += bool(ids)

    assert rounds_with_acks >= ROUNDS // 2, "too few rounds got far enough to write"
    with OpStore.open(database_path(data_dir)) as store:
        assert store.integrity_check() == []
        found = store.fetch_raw(acknowledged)
        lost = acknowledged - found.keys()
        assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged operations were lost"
        assert store.count() >= len(acknowledged)
