"""Which inbox entries (`core.inbox`) this node's user has read: local state, never on the wire.

Rules:

1. The marks live in their own SQLite file, ``inbox.sqlite`` in the data dir, apart from the
   operations (``p2pcomments.sqlite3``): they are this user's, not the network's, and no view
   rebuild, export or sync touches them. Losing the file only makes entries unread again.
2. A mark is (author key, operation id): an entry, once read, stays read. Marking is
   idempotent; a mark for an operation that is no entry (any more) is harmless.
3. Writes are durable when `mark` returns (``synchronous=FULL``). The data dir's lock is held by
   the one process that opened the node, so there is one writer; each call opens, works and
   closes its own connection (marks are rare, small writes), so there is nothing to close.
4. A file that is not ours is refused with `StoreError`, untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Final

from p2pcomments.errors import StoreError

__all__ = ["INBOX_FILE", "InboxMarks"]

INBOX_FILE: Final = "inbox.sqlite"
_APPLICATION_ID: Final = 0x50324942  # "P2IB"
_VERSION: Final = 1
_SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS read_marks (
        author BLOB NOT NULL,
        op BLOB NOT NULL,
        PRIMARY KEY (author, op)
    ) WITHOUT ROWID
"""
_CHUNK: Final = 500


class InboxMarks:
    """The read marks of one data dir (rules 1-4). Methods block: call them in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / INBOX_FILE

    @contextmanager
    def _connection(self, doing: str) -> Iterator[sqlite3.Connection]:
        try:
            with closing(sqlite3.connect(self.path, isolation_level=None, timeout=10)) as db:
                db.execute("PRAGMA synchronous = FULL")
                self._check(db)
                yield db
        except sqlite3.Error as error:
            raise StoreError(f"{self.path}: cannot {doing}: {error}", reason="store") from None

    def _check(self, db: sqlite3.Connection) -> None:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if application_id == 0 and version == 0:
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise StoreError(
                    f"{self.path} is a database of another application",
                    reason="foreign-database",
                )
            db.execute("BEGIN IMMEDIATE")
            db.execute(_SCHEMA)
            db.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {_VERSION}")
            db.execute("COMMIT")
            return
        if application_id != _APPLICATION_ID or version != _VERSION:
            raise StoreError(
                f"{self.path} is not a p2pcomments inbox file (application id"
                f" {application_id:#x}, version {version})",
                reason="foreign-database",
            )

    def read(self, author: bytes) -> set[bytes]:
        """The ids of ``author``'s entries marked read."""
        if not self.path.exists():
            return set()
        with self._connection("read the inbox marks") as db:
            rows = db.execute("SELECT op FROM read_marks WHERE author = ?", (author,)).fetchall()
        return {bytes(op) for (op,) in rows}

    def mark(self, author: bytes, op_ids: Iterable[bytes]) -> None:
        """Mark ``op_ids`` read for ``author`` (rule 2), durably (rule 3)."""
        ids = sorted(set(op_ids))
        if not ids:
            return
        with self._connection("mark inbox entries read") as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for offset in range(0, len(ids), _CHUNK):
                    db.executemany(
                        "INSERT OR IGNORE INTO read_marks (author, op) VALUES (?, ?)",
                        [(author, op_id) for op_id in ids[offset : offset + _CHUNK]],
                    )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
