"""View tables: derived from table ``ops``, kept current on every write, rebuildable from scratch.

Rules:

1. A view holds nothing that is not a function of the *applied* rows of ``ops``; `rebuild_views`
   recomputes every view from them and must leave exactly what incremental upkeep would have.
2. Upkeep runs inside the writer's transaction, so a view is never ahead of or behind the ops it
   summarises after a crash.

Views: ``thread_activity`` (per thread: applied operations and the greatest author timestamp),
which lets tools list what a store holds without decoding every operation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

__all__ = ["ACTIVITY_OF_OPS", "STALE_ACTIVITY", "add_applied", "rebuild_views"]

# What ``thread_activity`` holds, computed from ``ops`` (rule 1): rebuilding and checking agree.
ACTIVITY_OF_OPS = """
    SELECT threads.id, count(*), max(ops.timestamp_ms) FROM ops
    JOIN threads ON threads.key = ops.thread WHERE ops.state = 0 GROUP BY threads.id
"""
# Rows of ``thread_activity`` that disagree with ``ops`` (for `OpStore.integrity_check`).
STALE_ACTIVITY = f"""
    SELECT count(*) FROM (
        {ACTIVITY_OF_OPS}
        EXCEPT SELECT thread, operations, last_activity_ms FROM thread_activity
        UNION ALL
        SELECT thread, operations, last_activity_ms FROM thread_activity
        EXCEPT {ACTIVITY_OF_OPS}
    )
"""  # noqa: S608 - built of our own constants, no input

_UPSERT_ACTIVITY = """
    INSERT INTO thread_activity (thread, operations, last_activity_ms) VALUES {rows}
    ON CONFLICT (thread) DO UPDATE SET
        operations = operations + excluded.operations,
        last_activity_ms = max(last_activity_ms, excluded.last_activity_ms)
"""
# Threads per upsert statement: one statement step for many threads, so the writer re-takes the
# GIL once per statement rather than once per thread (see `op_store._INSERT_ROWS`).
_UPSERT_ROWS = 256


def add_applied(connection: sqlite3.Connection, rows: Iterable[tuple[bytes | None, int]]) -> None:
    """Account for newly applied operations, given as (thread id or None, timestamp_ms) rows that
    were really added (not ignored duplicates)."""
    totals: dict[bytes, list[int]] = {}
    for thread, timestamp_ms in rows:
        if thread is None:
            continue
        entry = totals.get(thread)
        if entry is None:
            totals[thread] = [1, timestamp_ms]
        else:
            entry[0] += 1
            if timestamp_ms > entry[1]:
                entry[1] = timestamp_ms
    entries = [(thread, n, last) for thread, (n, last) in totals.items()]
    for offset in range(0, len(entries), _UPSERT_ROWS):
        part = entries[offset : offset + _UPSERT_ROWS]
        placeholders = ", ".join(["(?, ?, ?)"] * len(part))
        connection.execute(
            _UPSERT_ACTIVITY.format(rows=placeholders), [v for row in part for v in row]
        )


def rebuild_views(connection: sqlite3.Connection) -> None:
    """Recompute every view from the applied operations (rule 1). Call inside a transaction."""
    connection.execute("DELETE FROM thread_activity")
    connection.execute(
        "INSERT INTO thread_activity (thread, operations, last_activity_ms)" + ACTIVITY_OF_OPS
    )
