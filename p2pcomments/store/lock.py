"""The data dir lock: one process at a time owns a data dir.

Rules:

1. The lock is ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``<data_dir>/lock``; the kernel drops it when
   the holder exits, however it exits (``kill -9`` included), so it never goes stale.
2. The holder writes its pid into the file, so a refused opener can say who holds it.
3. The file is never deleted: deleting a lock file lets two processes lock two different files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from p2pcomments.errors import ConflictError, StoreError

__all__ = ["LOCK_FILE_NAME", "DataDirLock"]

LOCK_FILE_NAME: Final = "lock"


class DataDirLock:
    """An exclusive lock on a data dir, held until `release` (or the process ends)."""

    def __init__(self, data_dir: Path, descriptor: int) -> None:
        self.data_dir = data_dir
        self._descriptor: int | None = descriptor

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        """Lock ``data_dir`` or raise `ConflictError` naming the holder's pid."""
        path = data_dir / LOCK_FILE_NAME
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise StoreError(f"cannot open the lock file {path}: {error}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(descriptor)
            os.close(descriptor)
            who = f"pid {holder}" if holder is not None else "pid unknown"
            raise ConflictError(
                f"another p2pc process ({who}) is using {data_dir}", reason="data-dir-locked"
            ) from None
        except OSError as error:
            os.close(descriptor)
            raise StoreError(f"cannot lock {path}: {error}") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        return cls(data_dir, descriptor)

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    def release(self) -> None:
        """Unlock; idempotent. The pid is left behind, harmlessly: only the flock counts."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)  # closing the last descriptor releases the flock

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(descriptor: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):  # a holder may not have written it yet
        return int(os.pread(descriptor, 32, 0).decode("ascii").strip())
    return None
