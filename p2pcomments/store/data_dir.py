"""A data dir's store: where the database lives in it, and opening it under the data dir lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from p2pcomments.store.lock import DataDirLock
from p2pcomments.store.op_store import OpStore

__all__ = ["DATABASE_FILE_NAME", "database_path", "open_store"]

DATABASE_FILE_NAME: Final = "operations.sqlite3"


def database_path(data_dir: Path) -> Path:
    return data_dir / DATABASE_FILE_NAME


@contextmanager
def open_store(data_dir: Path) -> Iterator[OpStore]:
    """Lock ``data_dir`` and open its store, without loading anything into memory.

    For maintenance that must work even when the operations can't be loaded (``p2pc repair``:
    `OpStore.integrity_check`, `OpStore.rebuild_views`). Raises `ConflictError` when another
    process holds the data dir, `StoreError` when the database is unusable.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with DataDirLock.acquire(data_dir), OpStore.open(database_path(data_dir)) as store:
        yield store
