"""The operation store: signed operations in one SQLite file (WAL), one writer, many readers.

Rules:

1. Table ``ops`` is append-only truth: a row is only ever added, moved from pending to applied, or
   (when an operation it waited for turns out invalid) removed while pending. Nothing that
   `core` did not accept is stored. The one other removal is ``p2pc repair``'s (`remove_rows`):
   a row damaged on disk, no longer the bytes that were verified, after it was saved elsewhere.
2. One writer: a dedicated thread owns the write connection and takes jobs from a queue. Everything
   queued when it wakes is committed in **one** transaction (group commit), each job inside its own
   savepoint so one job's failure does not undo another's. A job queued with ``more_follows`` (a
   chunk of a bulk ingest that is not its last) keeps the transaction open for the next job, for
   at most `FOLLOW_SECONDS` and `MAX_ROWS_PER_COMMIT` rows; any other job is committed as soon as
   the queue is empty, as before.
3. Acknowledged means durable: a caller is answered only after the COMMIT that holds its job, with
   ``synchronous=FULL``, so what was acknowledged survives ``kill -9`` and power loss.
4. Reads never wait for the writer: each reading thread has its own connection, and WAL gives it a
   consistent snapshot while the writer goes on.
5. Every sqlite3 failure reaches callers as `StoreError` naming the file, never a bare traceback;
   a full disk (SQLITE_FULL) as its subclass `DiskFull`.
6. A row's ``checksum`` is the CRC-32 of its bytes (`raw_checksum`), written with it: what `core`
   accepted, so whose signature was checked. Reads say of each row whether it is *sealed* (its
   checksum matches its bytes): then the bytes are those that were checked, and need not be
   checked again (node.thread_source rule 1); a row damaged since, or stored before schema 4,
   is not sealed until its signature is checked again and `seal` stamps it. SQLite keeps no
   checksums of its own; the id (a SHA-256 of all but the signature) covers the rest of a row.
   Against an adversary who writes the file, no checksum helps: it holds the node's key too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import chain
from pathlib import Path
from types import TracebackType
from typing import Final, NamedTuple, Self

import trio

from p2pcomments.core.ops import Kind, Operation, claimed_id
from p2pcomments.core.thread_state import ThreadListing
from p2pcomments.errors import DiskFull, StoreError
from p2pcomments.store import views
from p2pcomments.store.schema import check_ownership, migrate

__all__ = [
    "OpState",
    "OpStore",
    "SoundRow",
    "StoreStatistics",
    "StoredRow",
    "ThreadActivity",
    "WalCheckpoint",
    "WriteBatch",
    "WriteTicket",
    "raw_checksum",
]

MAX_JOBS_PER_COMMIT: Final = 256
# Why a bulk ingest's chunks share a transaction: a commit writes every page it dirtied to the WAL
# (and a checkpoint writes it again), and an insert dirties a random leaf of the id index: at 100k
# operations of 519 bytes, a commit per 250 wrote 10.4 KB and took 28 us of CPU per operation,
# one per 5,000 5.9 KB and 13 us (scripts/bench_store.py --writer).
MAX_ROWS_PER_COMMIT: Final = 8192
FOLLOW_SECONDS: Final = 0.1  # how long an open transaction waits for a stream's next job
# The writer's page cache: a transaction's dirty pages stay in it until the commit (past it,
# SQLite spills them to the WAL early, and may write them twice), and the id index is read at
# random. 16 MiB holds a MAX_ROWS_PER_COMMIT transaction's pages of the id index and the table.
_WRITER_CACHE_KIB: Final = 16 * 1024
_FETCH_CHUNK: Final = 500  # ids per `IN (...)` query, below SQLite's parameter limit
_KEY_PAGE: Final = 4096
_KEY_CACHE_IDS: Final = 16_384  # thread or author ids whose keys the writer keeps (~2 MB each)
_BUSY_TIMEOUT_MS: Final = 10_000
_PAGE_SIZE: Final = 8192

_INSERT_HEAD: Final = (
    "INSERT OR IGNORE INTO ops (id, raw, thread, kind, author, timestamp_ms, state, checksum)"
)
_INSERT: Final = _INSERT_HEAD + " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
# Rows per multi-row INSERT: one statement step instead of one per row, so the writer thread
# gives up and re-takes the GIL once per statement, not once per operation (under load each
# re-take waits behind the verifying threads). 8 parameters a row stays far below SQLite's limit.
_INSERT_ROWS: Final = 256


def _insert_many(rows: int) -> str:
    return f"{_INSERT_HEAD} VALUES {', '.join(['(?, ?, ?, ?, ?, ?, ?, ?)'] * rows)}"


_INSERT_MANY: Final = _insert_many(_INSERT_ROWS)
_APPLIED: Final = 0  # OpState.APPLIED's value, as rows hold it
_KEYS: Final = "SELECT timestamp_ms, id FROM ops WHERE state = 0 AND (timestamp_ms, id)"
_ORDER: Final = " ORDER BY timestamp_ms, id LIMIT ?"
_KEYS_FROM: Final = _KEYS + " >= (?, ?)" + _ORDER
_KEYS_AFTER: Final = _KEYS + " > (?, ?)" + _ORDER
_KEYS_BELOW: Final = (  # the same two with an exclusive upper bound
    _KEYS + " >= (?, ?) AND (timestamp_ms, id) < (?, ?)" + _ORDER,
    _KEYS + " > (?, ?) AND (timestamp_ms, id) < (?, ?)" + _ORDER,
)
_PROMOTE: Final = "UPDATE ops SET state = 0 WHERE id = ? AND state = 1"
_SEAL: Final = "UPDATE ops SET checksum = ? WHERE id = ? AND raw = ?"
_DISCARD: Final = "DELETE FROM ops WHERE id = ? AND state = 1"


class _TransactionLost(Exception):
    """SQLite rolled a whole transaction back itself (SQLITE_FULL does): every job of it failed
    with ``failure``, the real cause."""

    def __init__(self, failure: Exception) -> None:
        super().__init__(str(failure))
        self.failure = failure


class OpState(IntEnum):
    """Where a stored operation stands; the integer is the ``state`` column."""

    APPLIED = 0
    PENDING = 1  # valid so far, waiting for operations it references


_STATES: Final = frozenset(int(state) for state in OpState)
_STATE_VALUES: Final = {state: int(state) for state in OpState}
_KIND_VALUES: Final = {kind: int(kind) for kind in Kind}
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteBatch:
    """One caller's changes; committed atomically, possibly in a transaction shared with others."""

    insert: Sequence[tuple[Operation, OpState]] = ()
    promote: Sequence[Operation] = ()  # stored as pending, now applied
    discard: Sequence[bytes] = ()  # ids stored as pending, now rejected: removed (rule 1)
    # What the thread list shows of the threads these change, as it is with them (views rule 3).
    listings: Sequence[ThreadListing] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadActivity:
    """A row of the ``thread_activity`` view."""

    thread: bytes
    operations: int
    last_activity_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStatistics:
    path: str
    database_bytes: int  # the main file plus its write-ahead log
    commits: int  # transactions committed since open
    jobs: int  # jobs committed since open (several share a commit under load)


class SoundRow(NamedTuple):
    """A stored operation whose bytes hash to its id (damaged ones are skipped); ``sealed``:
    its checksum matches them too, so its signature was checked before it was stored (rule 6)."""

    id: bytes
    raw: bytes
    sealed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRow:
    """A row of ``ops`` as it is on disk: damage can make any column any type."""

    seq: int
    id: object
    raw: object
    state: object


@dataclass(frozen=True, slots=True, kw_only=True)
class WalCheckpoint:
    """What `OpStore.checkpoint` folded: the log's valid frames (each one page)."""

    frames: int
    page_bytes: int
    busy: bool


_Work = Callable[[sqlite3.Connection], None]
_Done = Callable[[BaseException | None], None]


@dataclass(frozen=True, slots=True)
class _Job:
    work: _Work
    on_done: _Done
    rows: int = 0  # rows it writes, for MAX_ROWS_PER_COMMIT
    more_follows: bool = False  # rule 2: the next job of its stream is coming


def _database_error(path: Path, error: sqlite3.Error, doing: str) -> StoreError:
    if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return DiskFull(
            f"{path}: cannot {doing}: the disk is full, so nothing of it was stored;"
            " free some space and try again"
        )
    return StoreError(f"{path}: cannot {doing}: {error}", reason="store")


def _open_writer(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000
    )
    try:
        # Recognise the file before changing anything in it: a foreign database stays untouched.
        if check_ownership(connection, path) == 0:
            # A new file: larger pages leave less unused space per page (rows are ~600 bytes),
            # which is most of what a row costs beyond its bytes (scripts/bench_scale.py). Only
            # possible before the first table and WAL mode.
            connection.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: cannot switch to WAL mode (got {mode})", reason="store")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KIB}")
        migrate(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


class WriteTicket:
    """The receipt for one queued job (`OpStore.enqueue`)."""

    __slots__ = ("_done", "_error", "_token")

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self._done = trio.Event()
        self._error: BaseException | None = None

    @property
    def committed(self) -> bool:
        """Whether the job is settled and committed (so `wait` would return at once)."""
        return self._done.is_set() and self._error is None

    async def wait_settled(self) -> None:
        """Return once the job is settled, committed or not (see `committed`). Unlike `wait`,
        it can be cancelled."""
        await self._done.wait()

    async def wait(self) -> None:
        """Return once the job is committed; raise `StoreError` if it was not.

        Shielded from cancellation: the job commits whatever the caller does, and a caller that
        keeps memory and disk in step must learn how it went.
        """
        with trio.CancelScope(shield=True):
            await self._done.wait()
        if self._error is not None:
            raise self._error

    def _settle(self, error: BaseException | None) -> None:  # runs in the writer thread
        try:
            self._token.run_sync_soon(self._deliver, error)
        except trio.RunFinishedError:
            # The trio run that queued the job has ended; there is nobody left to answer.
            return

    def _deliver(self, error: BaseException | None) -> None:
        self._error = error
        self._done.set()


class OpStore:
    """The SQLite store of one data dir. Open with `OpStore.open`; close with `close` (or use it as
    a context manager). Thread-safe: `write` from any trio task, reads from any thread."""

    def __init__(self, path: Path, writer: sqlite3.Connection) -> None:
        self.path = path
        self._writer = writer
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closing_lock = threading.Lock()
        self._local = threading.local()
        self._closed = False
        self._commits = 0
        self._jobs = 0
        self._key_cache = _KeyCache()  # the writer thread's alone
        self._thread = threading.Thread(
            target=self._run_writer, name=f"p2pc-store-writer {path.name}", daemon=True
        )
        self._thread.start()

    @classmethod
    def open(cls, path: Path) -> OpStore:
        """Open (creating and migrating as needed) the store at ``path``.

        Raises `StoreError` naming the file when it is not SQLite, belongs to another program,
        has a schema newer than this code, or cannot be opened. The caller holds the data dir lock.
        """
        try:
            writer = _open_writer(path)
        except (sqlite3.Error, UnicodeDecodeError) as error:  # text that isn't UTF-8: damage
            raise StoreError(
                f"{path} is not a usable p2pcomments database: {error}", reason="corrupt-database"
            ) from None
        return cls(path, writer)

    def close(self) -> None:
        """Commit what is queued, stop the writer, close every connection. Idempotent."""
        with self._closing_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()
        with contextlib.suppress(sqlite3.Error):
            # Fold the log back into the main file so the data dir is one tidy file at rest; a
            # failure here loses nothing (the log is replayed on next open).
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    def enqueue(self, batch: WriteBatch, *, more_follows: bool = False) -> WriteTicket:
        """Queue ``batch`` for the writer and return at once; `WriteTicket.wait` returns once it
        is committed (rules 2-3). Call from a trio task.

        Jobs commit in the order they were queued, so a ticket is settled only after everything
        queued before it: an empty batch is a barrier (an operation another caller is still
        committing is durable once a `Duplicate` of it is reported after such a barrier).

        ``more_follows``: the caller is about to queue the next part of the same stream, so the
        writer keeps the transaction open for it (rule 2) instead of committing at once; the
        caller's last part must not say so, or its commit waits `FOLLOW_SECONDS` for nothing.
        """
        ticket = WriteTicket(trio.lowlevel.current_trio_token())
        rows = len(batch.insert) + len(batch.promote) + len(batch.discard)
        job = _Job(
            lambda connection: _apply_batch(connection, batch, self._key_cache),
            ticket._settle,
            rows,
            more_follows,
        )
        self._submit_job(job)
        return ticket

    async def write(self, batch: WriteBatch) -> None:
        """`enqueue` and wait for the commit."""
        await self.enqueue(batch).wait()

    def write_blocking(self, batch: WriteBatch) -> None:
        """`write` for threads that are not running trio (scripts, repair). Blocks the thread."""
        self._run_blocking(lambda connection: _apply_batch(connection, batch, self._key_cache))

    def rebuild_views(self) -> None:
        """Recompute every view table from ``ops`` in one transaction (``p2pc repair``). Blocks."""
        self._run_blocking(views.rebuild_views)

    def _submit(self, work: _Work, on_done: _Done) -> None:
        self._submit_job(_Job(work, on_done))

    def _submit_job(self, job: _Job) -> None:
        with self._closing_lock:  # nothing may be queued behind the writer's stop sentinel
            if self._closed:
                raise StoreError(f"{self.path}: the store is closed", reason="store-closed")
            self._queue.put(job)

    def _run_blocking(self, work: _Work) -> None:
        done = threading.Event()
        result: list[BaseException | None] = []

        def on_done(error: BaseException | None) -> None:
            result.append(error)
            done.set()

        self._submit(work, on_done)
        done.wait()
        if result[0] is not None:
            raise result[0]

    def _run_writer(self) -> None:
        while (first := self._queue.get()) is not None and self._commit(first):
            pass

    def _commit(self, first: _Job) -> bool:
        """Rule 2: one transaction, one savepoint per job, starting with ``first``; each job's
        caller is answered (its error or None) once the transaction is over. Returns False once
        the stop sentinel has been taken."""
        connection = self._writer
        jobs = [first]
        errors: list[BaseException | None] = [None]
        running = True
        committed = False
        try:
            connection.execute("BEGIN IMMEDIATE")
            rows = 0
            streaming = True  # every job so far has said that more of its stream follows
            while True:
                job = jobs[-1]
                connection.execute("SAVEPOINT job")
                try:
                    job.work(connection)
                except Exception as error:  # handed to that job's caller, who re-raises it
                    if not connection.in_transaction:
                        # SQLite rolled the whole transaction back itself (SQLITE_FULL does):
                        # no job of it is stored, and each caller hears the real cause.
                        raise _TransactionLost(self._as_store_error(error, "write")) from error
                    connection.execute("ROLLBACK TO job")
                    self._key_cache.forget()  # keys the job added are gone with it
                    errors[-1] = self._as_store_error(error, "write")
                connection.execute("RELEASE job")
                rows += job.rows
                streaming = streaming and job.more_follows
                if len(jobs) >= MAX_JOBS_PER_COMMIT or rows >= MAX_ROWS_PER_COMMIT:
                    break
                try:  # what was queued meanwhile; for a stream, also what comes next
                    following = self._queue.get(streaming, FOLLOW_SECONDS if streaming else None)
                except queue.Empty:
                    break
                if following is None:  # the stop sentinel: commit what we have, then stop
                    running = False
                    break
                jobs.append(following)
                errors.append(None)
            connection.execute("COMMIT")
            committed = True
        except _TransactionLost as lost:
            errors = [lost.failure for _ in jobs]
        except sqlite3.Error as error:
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the original error is what matters
                    connection.execute("ROLLBACK")
            errors = [self._as_store_error(error, "commit") for _ in jobs]
        else:
            self._commits += 1
            self._jobs += len(jobs)
        finally:
            if not committed:  # rolled back: the keys its jobs added are gone
                self._key_cache.forget()
        for job, outcome in zip(jobs, errors, strict=True):
            job.on_done(outcome)
        return running

    def _as_store_error(self, error: Exception, doing: str) -> Exception:
        if isinstance(error, sqlite3.Error):
            return _database_error(self.path, error, doing)
        return error

    # -- reading -------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"{self.path}: the store is closed", reason="store-closed")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        with self._readers_lock:
            if self._closed:  # closed while we waited for the lock
                raise StoreError(f"{self.path}: the store is closed", reason="store-closed")
            try:
                connection = sqlite3.connect(
                    self.path,
                    isolation_level=None,
                    check_same_thread=False,  # only this thread uses it; `close` closes it
                    timeout=_BUSY_TIMEOUT_MS / 1000,
                )
                connection.execute("PRAGMA query_only = 1")
            except sqlite3.Error as error:
                raise _database_error(self.path, error, "open a reader") from None
            self._readers.append(connection)
        self._local.connection = connection
        return connection

    @contextlib.contextmanager
    def _reading(self, doing: str) -> Iterator[sqlite3.Connection]:
        try:
            yield self._reader()
        except sqlite3.Error as error:
            raise _database_error(self.path, error, doing) from None
        except UnicodeDecodeError as error:  # a text column that isn't UTF-8: a damaged file
            raise StoreError(f"{self.path}: cannot {doing}: {error}", reason="store") from None

    def iter_operations(self) -> Iterator[tuple[bytes, OpState]]:
        """Every stored operation's bytes and state, in insertion order (for loading a replica):
        `iter_rows`, less the rows damaged on disk."""
        for row in self.iter_rows():
            raw, state = row.raw, row.state
            if state not in _STATES or type(raw) is not bytes or claimed_id(raw) != row.id:
                # Damaged on disk (SQLite has no checksums): bytes that no longer hash to
                # their id are not what was verified and stored, so they are never served.
                _log.warning("%s: skipping a damaged row (seq %s)", self.path, row.seq)
                continue
            yield raw, OpState(state)

    # Reads for a replica that holds threads on first use (`node.thread_source`).

    def held_thread_ids(self) -> list[bytes]:
        """The ids of the threads held, by id: those with a row in ``thread_activity`` (its
        thread operation is applied whenever anything of a thread is), so no scan of ``ops``."""
        with self._reading("list threads") as connection:
            rows = connection.execute(
                "SELECT thread FROM thread_activity ORDER BY thread"
            ).fetchall()
        return [thread_id for (thread_id,) in rows]

    def thread_raw(self, thread_id: bytes) -> list[bytes]:
        """The stored bytes of the applied operations of one thread (the thread operation
        included), in insertion order; damaged rows are skipped and logged."""
        return [row.raw for row in self.thread_rows(thread_id)]

    def thread_rows(self, thread_id: bytes) -> list[SoundRow]:
        """`thread_raw` as `SoundRow` values: (id, bytes hashing to it, sealed: rule 6)."""
        with self._reading("read a thread") as connection:
            rows = connection.execute(
                "SELECT seq, id, raw, checksum FROM ops"
                " WHERE thread = (SELECT key FROM threads WHERE id = ?) AND state = 0 ORDER BY seq",
                (thread_id,),
            ).fetchall()
        return self._sound_rows(rows)

    def profile_rows(self) -> list[SoundRow]:
        """Every profile operation as a `SoundRow`, in insertion order."""
        with self._reading("read profiles") as connection:
            rows = connection.execute(
                "SELECT seq, id, raw, checksum FROM ops WHERE thread IS NULL ORDER BY seq"
            ).fetchall()
        return self._sound_rows(rows)

    def pending_rows(self) -> list[SoundRow]:
        """Every pending operation as a `SoundRow`, in insertion order."""
        with self._reading("read pending operations") as connection:
            rows = connection.execute(
                "SELECT seq, id, raw, checksum FROM ops WHERE state = 1 ORDER BY seq"
            ).fetchall()
        return self._sound_rows(rows)

    def seal(self, rows: Sequence[tuple[bytes, bytes]]) -> None:
        """Rule 6: stamp the checksum of each (id, bytes) of ``rows`` whose signature the caller
        has just checked, if the row still holds those bytes. From any thread; returns at once,
        written with the next commit. Best effort: on a closed store, or if the write fails,
        the rows stay unsealed and are checked again next time."""
        stamps = [(raw_checksum(raw), op_id, raw) for op_id, raw in rows]
        if not stamps:
            return
        with contextlib.suppress(StoreError):  # closed: nothing is lost but time next load
            self._submit_job(
                _Job(lambda connection: _seal(connection, stamps), _ignore_outcome, len(stamps))
            )

    def threads_of(self, ids: Iterable[bytes]) -> dict[bytes, bytes]:
        """The thread of each of ``ids`` that is an applied operation in a thread, by id."""
        found: dict[bytes, bytes] = {}
        unique = list(dict.fromkeys(ids))
        with self._reading("look operations up") as connection:
            for chunk in _chunks(unique):
                marks = ",".join("?" * len(chunk))
                found.update(
                    connection.execute(
                        "SELECT ops.id, threads.id FROM ops JOIN threads"  # noqa: S608 - only marks
                        f" ON threads.key = ops.thread WHERE ops.id IN ({marks}) AND ops.state = 0",
                        chunk,
                    ).fetchall()
                )
        return found

    def threads_with_author(self, author: bytes) -> list[bytes]:
        """The threads holding an applied operation by ``author`` (a thread's owner included)."""
        with self._reading("look an author up") as connection:
            rows = connection.execute(
                "SELECT DISTINCT threads.id FROM ops JOIN threads ON threads.key = ops.thread"
                " WHERE ops.author = (SELECT key FROM authors WHERE id = ?) AND ops.state = 0",
                (author,),
            ).fetchall()
        return [thread_id for (thread_id,) in rows]

    def applied_in_threads(self) -> int:
        """How many applied operations the threads hold, from the ``thread_activity`` view."""
        with self._reading("count operations") as connection:
            row = connection.execute(
                "SELECT coalesce(sum(operations), 0) FROM thread_activity"
            ).fetchone()
        return int(row[0])

    def _sound_rows(self, rows: Iterable[tuple[int, bytes, bytes, object]]) -> list[SoundRow]:
        sound: list[SoundRow] = []
        for seq, op_id, raw, checksum in rows:
            if type(raw) is not bytes or claimed_id(raw) != op_id:
                # Damaged on disk (SQLite has no checksums): bytes that no longer hash to their
                # id are not what was verified and stored, so they are never served.
                _log.warning("%s: skipping a damaged row (seq %s)", self.path, seq)
                continue
            sound.append(SoundRow(op_id, raw, checksum == raw_checksum(raw)))
        return sound

    def iter_applied_keys(
        self,
        *,
        start: tuple[int, bytes] | None = None,
        stop: tuple[int, bytes] | None = None,
    ) -> Iterator[tuple[int, bytes]]:
        """(timestamp_ms, id) of every applied operation, ascending, for set reconciliation.

        ``start`` is inclusive and ``stop`` exclusive, both (timestamp_ms, id) bounds; None means
        unbounded. Pages through the covering index, so a long walk holds no snapshot open and
        never blocks the writer; operations committed meanwhile may or may not be included.
        """
        lower: tuple[int, bytes] = start if start is not None else (-1, b"")
        bounds: tuple[int, bytes] | tuple[()] = () if stop is None else stop
        query, next_query = (_KEYS_FROM, _KEYS_AFTER) if stop is None else _KEYS_BELOW
        while True:
            with self._reading("read the reconciliation index") as connection:
                rows: list[tuple[int, bytes]] = connection.execute(
                    query, (*lower, *bounds, _KEY_PAGE)
                ).fetchall()
            yield from rows
            if len(rows) < _KEY_PAGE:
                return
            if rows[-1] <= lower:  # a damaged index, out of order: don't ask for the same page
                raise StoreError(
                    f"{self.path}: the reconciliation index is damaged (rows out of order)",
                    reason="corrupt-database",
                )
            lower, query = rows[-1], next_query

    def fetch_raw(self, ids: Iterable[bytes]) -> dict[bytes, bytes]:
        """The stored bytes of those of ``ids`` held here (applied or pending), by id."""
        found: dict[bytes, bytes] = {}
        unique = list(dict.fromkeys(ids))
        with self._reading("fetch operations") as connection:
            for chunk in _chunks(unique):
                marks = ",".join("?" * len(chunk))
                found.update(
                    connection.execute(
                        f"SELECT id, raw FROM ops WHERE id IN ({marks})",  # noqa: S608 - only marks
                        chunk,
                    ).fetchall()
                )
        return found

    def ids_between(
        self, low: bytes, high: bytes | None, *, limit: int
    ) -> list[tuple[bytes, int, OpState]]:
        """(id, kind, state) of up to ``limit`` stored operations with ``low <= id < high`` (high
        None: no bound), by id: what a typed id prefix names, found through the id index."""
        query = "SELECT id, kind, state FROM ops WHERE id >= ?"
        params: list[object] = [low]
        if high is not None:
            query += " AND id < ?"
            params.append(high)
        params.append(limit)
        with self._reading("look ids up") as connection:
            rows = connection.execute(query + " ORDER BY id LIMIT ?", params).fetchall()
        return [(op_id, kind, OpState(state)) for op_id, kind, state in rows]

    def count(self, state: OpState | None = None) -> int:
        """How many operations are stored (in ``state``, or all)."""
        with self._reading("count operations") as connection:
            if state is OpState.APPLIED:
                row = connection.execute("SELECT count(*) FROM ops WHERE state = 0").fetchone()
            elif state is None:
                row = connection.execute("SELECT count(*) FROM ops").fetchone()
            else:
                row = connection.execute(
                    "SELECT count(*) FROM ops WHERE state = ?", (int(state),)
                ).fetchone()
        return int(row[0])

    def thread_listings(self) -> dict[bytes, ThreadListing]:
        """What the thread list shows of each thread, by thread id: the rows of
        ``thread_listings`` that are current (views rule 3). A thread without one is missing."""
        with self._reading("read thread listings") as connection:
            return views.read_listings(connection)

    def threads_without_listing(self) -> list[bytes]:
        """The ids of the threads held that have no current ``thread_listings`` row (views
        rule 3), found by SQLite alone: the common answer, none, costs no Python per thread."""
        with self._reading("read thread listings") as connection:
            rows = connection.execute(views.THREADS_WITHOUT_LISTING).fetchall()
        return [thread_id for (thread_id,) in rows]

    def thread_activity(self) -> list[ThreadActivity]:
        """The ``thread_activity`` view, most recently active thread first."""
        with self._reading("read thread activity") as connection:
            rows = connection.execute(
                "SELECT thread, operations, last_activity_ms FROM thread_activity"
                " ORDER BY last_activity_ms DESC, thread"
            ).fetchall()
        return [ThreadActivity(thread=t, operations=n, last_activity_ms=ms) for t, n, ms in rows]

    def integrity_check(self) -> list[str]:
        """Problems found, empty when all is well: SQLite's ``PRAGMA integrity_check`` and a
        comparison of every view with what `rebuild_views` would make of ``ops``."""
        with self._reading("check integrity") as connection:
            problems = [
                str(row[0]) for row in connection.execute("PRAGMA integrity_check").fetchall()
            ]
            if problems == ["ok"]:
                problems = []
            if not problems:
                stale = connection.execute(views.STALE_ACTIVITY).fetchone()[0]
                if stale:
                    problems.append(
                        f"view thread_activity disagrees with the operations on {stale} row(s):"
                        " rebuild the views (p2pc repair --rebuild-views)"
                    )
        return problems

    # -- for repair (node/maintenance.py) ---------------------------------------------------

    def iter_rows(self) -> Iterator[StoredRow]:
        """Every row as it is on disk, in insertion order, unchecked (``p2pc repair`` judges
        them; `iter_operations` skips what is damaged). `StoreError` if rows come out of order."""
        last_seq = 0
        while True:
            with self._reading("read operations") as connection:
                rows = connection.execute(
                    "SELECT seq, id, raw, state FROM ops WHERE seq > ? ORDER BY seq LIMIT ?",
                    (last_seq, _KEY_PAGE),
                ).fetchall()
            if not rows:
                return
            for seq, op_id, raw, state in rows:
                if type(seq) is not int or seq <= last_seq:
                    raise StoreError(
                        f"{self.path}: the operations table is damaged (rows out of order)",
                        reason="corrupt-database",
                    )
                last_seq = seq
                yield StoredRow(seq=seq, id=op_id, raw=raw, state=state)

    def remove_rows(self, seqs: Sequence[int]) -> None:
        """Delete the rows of ``seqs`` (any state) and rebuild the views, in one transaction:
        for ``p2pc repair`` only, once it has saved them (rule 1). Blocks."""

        def remove(connection: sqlite3.Connection) -> None:
            connection.executemany("DELETE FROM ops WHERE seq = ?", [(seq,) for seq in seqs])
            views.rebuild_views(connection)

        self._run_blocking(remove)

    def checkpoint(self) -> WalCheckpoint:
        """Fold the write-ahead log into the database file and empty it (``p2pc repair``):
        how many valid frames it held. Its own short-lived connection, since a checkpoint can't
        run inside the writer's transactions; between jobs the writer holds none. Blocks."""
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=1.0)
            try:
                # PASSIVE reports the log's frames; TRUNCATE, which then empties it, reports 0.
                _, frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                page = connection.execute("PRAGMA page_size").fetchone()[0]
            finally:
                connection.close()
        except sqlite3.Error as error:
            raise _database_error(self.path, error, "fold the write-ahead log") from None
        return WalCheckpoint(frames=max(0, int(frames)), page_bytes=int(page), busy=bool(busy))

    def statistics(self) -> StoreStatistics:
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):  # no log between checkpoints is normal
                size += os.stat(f"{self.path}{suffix}").st_size
        return StoreStatistics(
            path=str(self.path), database_bytes=size, commits=self._commits, jobs=self._jobs
        )


def raw_checksum(raw: bytes) -> int:
    """The ``checksum`` a row of ``raw`` holds (rule 6): CRC-32, 0.3 us for 500 bytes where a
    signature check takes ~55 us; it only has to catch damage, the id covers the rest."""
    return zlib.crc32(raw)


def _seal(connection: sqlite3.Connection, stamps: list[tuple[int, bytes, bytes]]) -> None:
    connection.executemany(_SEAL, stamps)


def _ignore_outcome(error: BaseException | None) -> None:
    if error is not None:  # unsealed rows are checked again on their next load: nothing lost
        _log.warning("sealing checked rows failed: %s", error)


def _chunks(items: list[bytes]) -> Iterator[tuple[bytes, ...]]:
    for offset in range(0, len(items), _FETCH_CHUNK):
        yield tuple(items[offset : offset + _FETCH_CHUNK])


def _insert_rows(connection: sqlite3.Connection, rows: Sequence[tuple[object, ...]]) -> int:
    """Insert ``rows`` (ignoring ids already stored) in multi-row statements; returns how many
    were added."""
    added = 0
    for offset in range(0, len(rows), _INSERT_ROWS):
        part = rows[offset : offset + _INSERT_ROWS]
        statement = _INSERT_MANY if len(part) == _INSERT_ROWS else _insert_many(len(part))
        added += connection.execute(statement, list(chain.from_iterable(part))).rowcount
    return added


class _KeyCache:
    """The integer keys of thread and author ids (tables ``threads`` and ``authors``) the writer
    has read or added, so a job asks the database only for ids it has not met: two ``IN``
    queries a job cost 1.2 us per operation (scripts/bench_store.py --writer). A key, once
    committed, is never reused or renumbered (schema rule 4), but one added by a job that is
    then rolled back goes with it: the writer calls `forget` on every rollback."""

    __slots__ = ("authors", "threads")

    def __init__(self) -> None:
        self.threads: dict[bytes, int] = {}
        self.authors: dict[bytes, int] = {}

    def forget(self) -> None:
        self.threads.clear()
        self.authors.clear()


def _keys(
    connection: sqlite3.Connection, table: str, ids: Iterable[bytes], known: dict[bytes, int]
) -> dict[bytes, int]:
    """``known`` (the keys of ``table``, ``threads`` or ``authors``, met so far), completed with
    those of ``ids`` it lacks: read, or added to the table for ids it does not hold."""
    unique = dict.fromkeys(ids)
    wanted = [op_id for op_id in unique if op_id not in known]
    if not wanted:
        return known
    if len(known) + len(wanted) > _KEY_CACHE_IDS:  # memory stays bounded, whoever writes
        known.clear()
        wanted = list(unique)
    for chunk in _chunks(wanted):
        marks = ",".join("?" * len(chunk))
        known.update(
            connection.execute(
                f"SELECT id, key FROM {table} WHERE id IN ({marks})",  # noqa: S608 - our names
                chunk,
            ).fetchall()
        )
    # One statement per part, not one per id: a sync from a blog of many authors meets a new
    # author in most operations (scripts/bench_store.py --authors).
    for chunk in _chunks([missing for missing in wanted if missing not in known]):
        values = ",".join(["(?)"] * len(chunk))
        known.update(
            connection.execute(
                f"INSERT INTO {table} (id) VALUES {values} RETURNING id, key",  # noqa: S608
                chunk,
            ).fetchall()
        )
    return known


def _apply_batch(
    connection: sqlite3.Connection, batch: WriteBatch, keys: _KeyCache | None = None
) -> None:
    """One job: insert, promote and discard rows, keeping the views in step (views rule 2).
    ``keys``: the writer's `_KeyCache` (None: read every key from the database)."""
    applied: list[tuple[bytes | None, int]] = []
    if batch.insert:
        if keys is None:
            keys = _KeyCache()
        # Each operation's thread once (a property, asked five times a row before: the writer's
        # Python is on the path of every ingested operation).
        threads = [op.thread_id for op, _ in batch.insert]
        thread_keys = _keys(connection, "threads", filter(None, threads), keys.threads)
        author_keys = _keys(
            connection, "authors", [op.author for op, _ in batch.insert], keys.authors
        )
        # Plain integers for the enums: sqlite3 binds an int subclass only after looking for an
        # adapter, and `.value` is a descriptor call; both cost more than the dict lookups.
        kinds, states = _KIND_VALUES, _STATE_VALUES
        rows = [
            (
                op.id,
                op.encoded,
                None if thread is None else thread_keys[thread],
                kinds[op.kind],
                author_keys[op.author],
                op.timestamp_ms,
                states[state],
                raw_checksum(op.encoded),  # rule 6: what core accepted, sealed as stored
            )
            for (op, state), thread in zip(batch.insert, threads, strict=True)
        ]
        connection.execute("SAVEPOINT insert_rows")
        if _insert_rows(connection, rows) == len(rows):
            applied.extend(
                (thread, row[5])
                for thread, row in zip(threads, rows, strict=True)
                if row[6] == _APPLIED
            )
        else:
            # Some were stored already (the same operation written twice): redo row by row so
            # the views count only what was really added.
            connection.execute("ROLLBACK TO insert_rows")
            for row, thread in zip(rows, threads, strict=True):
                added = connection.execute(_INSERT, row).rowcount == 1
                if added and row[6] == _APPLIED:
                    applied.append((thread, row[5]))
        connection.execute("RELEASE insert_rows")
    for op in batch.promote:
        if connection.execute(_PROMOTE, (op.id,)).rowcount == 1:
            applied.append((op.thread_id, op.timestamp_ms))
    if batch.discard:
        connection.executemany(_DISCARD, [(op_id,) for op_id in batch.discard])
    views.add_applied(connection, applied)
    if batch.listings:
        views.save_listings(connection, batch.listings)
