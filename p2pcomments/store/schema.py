"""The database schema, its versions, and recognising a file as ours.

Rules:

1. ``PRAGMA user_version`` is the schema version: the number of `MIGRATIONS` applied. Migration
   ``i`` (0-based) takes version ``i`` to ``i + 1``; each runs in its own transaction together with
   the version bump, so a crash leaves the file at one version or the next, never between.
2. Migrations are append-only: a released step is never edited, a change is a new step.
3. ``PRAGMA application_id`` is `APPLICATION_ID` from version 1 on. A file is refused, untouched,
   when it is not SQLite, carries another application id, has tables but no version (some other
   program's database), or has a version newer than this code knows.
4. Table ``ops`` is the truth: every stored operation's canonical bytes. Every other table is a view
   that `core` could recompute from ``ops`` (`p2pcomments.store.views` rebuilds them), except
   ``threads`` and ``authors``, which only name the integer keys ``ops`` uses for 32-byte ids
   (a key is never reused or renumbered). ``thread_listings`` is a view only `core` can compute
   (it needs the thread state): each row says how many operations it was made from, and counts
   only while ``thread_activity`` says as many (`p2pcomments.store.views` rule 3).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from p2pcomments.errors import StoreError

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "check_ownership", "migrate"]

APPLICATION_ID: Final = 0x50325043  # "P2PC"

Migration = Sequence[str]

MIGRATIONS: Final[tuple[Migration, ...]] = (
    # 0 → 1: the operation log, its reconciliation index, and the per-thread activity view.
    (
        """
        CREATE TABLE ops (
            seq INTEGER PRIMARY KEY,         -- insertion order
            id BLOB NOT NULL UNIQUE,         -- SHA-256 of the unsigned canonical form
            raw BLOB NOT NULL,               -- the canonical signed bytes
            thread BLOB,                     -- the thread id (its own for a thread), NULL: profile
            kind INTEGER NOT NULL,
            author BLOB NOT NULL,
            timestamp_ms INTEGER NOT NULL,
            state INTEGER NOT NULL CHECK (state IN (0, 1))  -- 0 applied, 1 pending
        )
        """,
        # Range-based reconciliation walks applied operations by (timestamp, id); the index
        # covers the query, so the walk never touches the wide rows.
        "CREATE INDEX ops_applied_by_time ON ops (timestamp_ms, id) WHERE state = 0",
        """
        CREATE TABLE thread_activity (
            thread BLOB PRIMARY KEY,
            operations INTEGER NOT NULL,     -- applied operations of the thread, itself included
            last_activity_ms INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        f"PRAGMA application_id = {APPLICATION_ID}",
    ),
    # 1 → 2: a store that is read a thread at a time (issue 14). Thread and author ids become
    # small integer keys into tables of their own (32 bytes a row each before), rows of one
    # thread are found through an index on that key, pending rows through a partial index, and
    # the threads an author wrote in through (author, thread).
    (
        "CREATE TABLE threads (key INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE)",
        "CREATE TABLE authors (key INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE)",
        """
        INSERT INTO threads (id) SELECT thread FROM ops WHERE thread IS NOT NULL
        GROUP BY thread ORDER BY min(seq)
        """,
        "INSERT INTO authors (id) SELECT author FROM ops GROUP BY author ORDER BY min(seq)",
        """
        CREATE TABLE ops_keyed (
            seq INTEGER PRIMARY KEY,         -- insertion order
            id BLOB NOT NULL UNIQUE,         -- SHA-256 of the unsigned canonical form
            raw BLOB NOT NULL,               -- the canonical signed bytes
            thread INTEGER,                  -- threads.key (its own for a thread), NULL: profile
            kind INTEGER NOT NULL,
            author INTEGER NOT NULL,         -- authors.key
            timestamp_ms INTEGER NOT NULL,
            state INTEGER NOT NULL CHECK (state IN (0, 1))  -- 0 applied, 1 pending
        )
        """,
        """
        INSERT INTO ops_keyed (seq, id, raw, thread, kind, author, timestamp_ms, state)
        SELECT o.seq, o.id, o.raw, t.key, o.kind, a.key, o.timestamp_ms, o.state
        FROM ops AS o LEFT JOIN threads AS t ON t.id = o.thread JOIN authors AS a ON a.id = o.author
        ORDER BY o.seq
        """,
        "DROP TABLE ops",
        "ALTER TABLE ops_keyed RENAME TO ops",
        "CREATE INDEX ops_applied_by_time ON ops (timestamp_ms, id) WHERE state = 0",
        "CREATE INDEX ops_by_thread ON ops (thread)",
        "CREATE INDEX ops_by_author ON ops (author, thread)",
        "CREATE INDEX ops_pending ON ops (state) WHERE state = 1",
    ),
    # 2 → 3: what a thread list shows of each thread, so listing a large store does not load
    # every thread (issue 14). Starts empty: rows are written as threads change or are listed.
    (
        """
        CREATE TABLE thread_listings (
            thread BLOB PRIMARY KEY,
            operations INTEGER NOT NULL,     -- made from this many applied operations (rule 4)
            title TEXT NOT NULL,
            url TEXT,
            site TEXT,
            owner BLOB NOT NULL,
            comments INTEGER NOT NULL,       -- comments less retracted ones
            last_activity_ms INTEGER NOT NULL,
            closed INTEGER NOT NULL,
            rules INTEGER NOT NULL,          -- 1: it holds rule operations (SPEC §11)
            created_ms INTEGER NOT NULL      -- the thread operation's timestamp
        ) WITHOUT ROWID
        """,
    ),
    # 3 → 4: each row's CRC-32 of ``raw``, written with the row (whose signature was checked
    # before it was stored), so a thread loaded again checks its bytes are those stored instead
    # of every signature (node.thread_source rule 1). Rows from before stay NULL until a load has
    # checked their signatures and seals them (`OpStore.seal`).
    ("ALTER TABLE ops ADD COLUMN checksum INTEGER",),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)


def _pragma_int(connection: sqlite3.Connection, name: str) -> int:
    row = connection.execute(f"PRAGMA {name}").fetchone()
    return int(row[0])


def check_ownership(
    connection: sqlite3.Connection, path: Path, *, known_version: int = SCHEMA_VERSION
) -> int:
    """Rule 3: raise `StoreError` unless the file is empty or ours at a version we know; returns
    its version. Reads only, so a foreign file is left exactly as it was."""
    version = _pragma_int(connection, "user_version")
    application_id = _pragma_int(connection, "application_id")
    if application_id not in (0, APPLICATION_ID):
        raise StoreError(
            f"{path} is a database of another application (application_id {application_id:#x}),"
            " not a p2pcomments store",
            reason="foreign-database",
        )
    if version < 0:  # user_version is a signed field: only damage makes it negative
        raise StoreError(
            f"{path} is damaged: its schema version reads {version}", reason="corrupt-database"
        )
    if version == 0:
        tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise StoreError(
                f"{path} is a SQLite database of another application (it has tables but no"
                " p2pcomments schema version)",
                reason="foreign-database",
            )
        return 0
    if application_id != APPLICATION_ID:
        raise StoreError(
            f"{path} is a SQLite database of another application (schema version {version}"
            " without the p2pcomments application id)",
            reason="foreign-database",
        )
    if version > known_version:
        raise StoreError(
            f"{path} has schema version {version}, newer than this p2pcomments knows"
            f" ({known_version}): upgrade p2pcomments to open it",
            reason="schema-too-new",
        )
    return version


def migrate(
    connection: sqlite3.Connection,
    path: Path,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Bring the database to ``len(migrations)`` (rule 1); returns the version it started at.

    ``connection`` must be in autocommit mode (``isolation_level=None``): each step manages its own
    transaction. The caller holds the data dir lock, so nobody migrates concurrently.
    """
    start = check_ownership(connection, path, known_version=len(migrations))
    for target in range(start + 1, len(migrations) + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in migrations[target - 1]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {target}")
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    return start
