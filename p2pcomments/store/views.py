"""View tables: derived from table ``ops``, kept current on every write, rebuildable from scratch.

Rules:

1. A view holds nothing that is not a function of the *applied* rows of ``ops``; `rebuild_views`
   recomputes every view from them and must leave exactly what incremental upkeep would have.
2. Upkeep runs inside the writer's transaction, so a view is never ahead of or behind the ops it
   summarises after a crash.
3. ``thread_listings`` (`core.thread_state.ThreadListing`, what a thread list shows) needs the
   thread state, which only `core` has: the node writes a row with the operations that change
   the thread, or after computing it anew. A row counts only while ``thread_activity`` holds as
   many operations for its thread as it was made from (the set only grows, so the same count is
   the same set); any other row is stale and ignored. Rebuilding empties the table.

Views: ``thread_activity`` (per thread: applied operations and the greatest author timestamp),
which lets tools list what a store holds without decoding every operation; ``thread_listings``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from p2pcomments.core.thread_state import ThreadListing

__all__ = [
    "ACTIVITY_OF_OPS",
    "STALE_ACTIVITY",
    "THREADS_WITHOUT_LISTING",
    "add_applied",
    "read_listings",
    "rebuild_views",
    "save_listings",
]

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


_SAVE_LISTING = """
    INSERT OR REPLACE INTO thread_listings (thread, operations, title, url, site, owner, comments,
        last_activity_ms, closed, rules, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# The rows that count (rule 3): made from as many operations as their thread holds.
_CURRENT_LISTINGS = """
    SELECT l.thread, l.operations, l.title, l.url, l.site, l.owner, l.comments,
        l.last_activity_ms, l.closed, l.rules, l.created_ms
    FROM thread_listings AS l JOIN thread_activity AS a
        ON a.thread = l.thread AND a.operations = l.operations
"""


# The threads held without a row that counts.
THREADS_WITHOUT_LISTING = """
    SELECT a.thread FROM thread_activity AS a LEFT JOIN thread_listings AS l
        ON l.thread = a.thread AND l.operations = a.operations
    WHERE l.thread IS NULL ORDER BY a.thread
"""


def save_listings(connection: sqlite3.Connection, listings: Sequence[ThreadListing]) -> None:
    """Write (or replace) the rows of ``listings`` (rule 3)."""
    connection.executemany(
        _SAVE_LISTING,
        [
            (
                t.id,
                t.operations,
                t.title,
                t.url,
                t.site,
                t.owner,
                t.comment_count,
                t.last_activity_ms,
                int(t.closed),
                int(t.has_rules),
                t.timestamp_ms,
            )
            for t in listings
        ],
    )


def read_listings(connection: sqlite3.Connection) -> dict[bytes, ThreadListing]:
    """The rows of ``thread_listings`` that count (rule 3), by thread id. A row whose columns
    are not of their types (damage) does not count either: the thread is listed anew."""
    found: dict[bytes, ThreadListing] = {}
    for row in connection.execute(_CURRENT_LISTINGS):
        thread, operations, title, url, site, owner, comments, last_ms, closed, rules, created = row
        if not (
            isinstance(thread, bytes)
            and isinstance(owner, bytes)
            and isinstance(title, str)
            and isinstance(url, str | None)
            and isinstance(site, str | None)
            and all(type(n) is int for n in (operations, comments, last_ms, closed, rules, created))
        ):
            continue
        found[thread] = ThreadListing(
            id=thread,
            title=title,
            url=url,
            site=site,
            owner=owner,
            comment_count=comments,
            last_activity_ms=last_ms,
            closed=bool(closed),
            has_rules=bool(rules),
            timestamp_ms=created,
            operations=operations,
        )
    return found


def rebuild_views(connection: sqlite3.Connection) -> None:
    """Recompute every view from the applied operations (rule 1); ``thread_listings`` is
    emptied, for the node to compute again (rule 3). Call inside a transaction."""
    connection.execute("DELETE FROM thread_listings")
    connection.execute("DELETE FROM thread_activity")
    connection.execute(
        "INSERT INTO thread_activity (thread, operations, last_activity_ms)" + ACTIVITY_OF_OPS
    )
