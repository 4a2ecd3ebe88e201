"""The data dir lock, within a process and across processes (kill -9 included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from p2pcomments.errors import ConflictError
from p2pcomments.store.lock import LOCK_FILE_NAME, DataDirLock

HOLDER = """
import sys, time
from pathlib import Path
from p2pcomments.store.lock import DataDirLock
lock = DataDirLock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(60)
"""


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    lock = DataDirLock.acquire(tmp_path)
    assert (tmp_path / LOCK_FILE_NAME).read_text().strip() == str(os.getpid())
    with pytest.raises(ConflictError) as caught:
        DataDirLock.acquire(tmp_path)
    assert str(caught.value) == f"another p2pc process (pid {os.getpid()}) is using {tmp_path}"
    lock.release()
    lock.release()  # idempotent
    with DataDirLock.acquire(tmp_path) as again:
        assert again.held
    assert not again.held


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConflictError, match=f"pid {holder.pid}"):
            DataDirLock.acquire(tmp_path)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        with DataDirLock.acquire(tmp_path) as lock:
            assert lock.held
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
