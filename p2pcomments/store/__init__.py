"""Persistence: signed operations in SQLite (WAL), one group-committing writer, views rebuildable
from the operations, schema migrations, and the data dir lock. See `op_store` for the rules."""

from p2pcomments.store.data_dir import DATABASE_FILE_NAME, database_path, open_store
from p2pcomments.store.lock import DataDirLock
from p2pcomments.store.op_store import (
    OpState,
    OpStore,
    StoreStatistics,
    ThreadActivity,
    WriteBatch,
    WriteTicket,
)
from p2pcomments.store.schema import SCHEMA_VERSION

__all__ = [
    "DATABASE_FILE_NAME",
    "SCHEMA_VERSION",
    "DataDirLock",
    "OpState",
    "OpStore",
    "StoreStatistics",
    "ThreadActivity",
    "WriteBatch",
    "WriteTicket",
    "database_path",
    "open_store",
]
