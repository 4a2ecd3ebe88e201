"""`open_node`: lock a data dir, unlock its author key, open its store and load it into memory.

Rules:

1. The data dir is locked for the node's lifetime (`p2pcomments.store.lock`); closing commits what
   is queued and releases the lock.
2. Opening reads what must be in memory (profiles, pending operations, the ids of the threads
   held); threads are loaded on first use (`node.thread_source`). A stored operation that no
   longer decodes, verifies or applies is counted (``unloadable``) and logged, not fatal.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import trio
from nacl.signing import SigningKey

from p2pcomments import identity
from p2pcomments.clock import wall_clock_ms
from p2pcomments.core.replica import Rejected, Replica
from p2pcomments.errors import ConflictError, PassphraseError, StoreError
from p2pcomments.node.node import Node
from p2pcomments.node.node_state import Loaded
from p2pcomments.node.thread_source import StoreThreads, decode_stored
from p2pcomments.store.data_dir import database_path
from p2pcomments.store.lock import DataDirLock
from p2pcomments.store.op_store import OpStore, WriteBatch

__all__ = ["CACHE_OPERATIONS", "open_node"]

logger = logging.getLogger("p2pcomments.node")

# Operations of the threads kept in memory: ~3 KB each (scripts/bench_core.py), so ~75 MB.
CACHE_OPERATIONS: Final = 25_000
_MAX_DECODE_THREADS: Final = 4  # decoding holds the GIL for a third of its time: more would queue


@asynccontextmanager
async def open_node(
    data_dir: Path | str | None = None,
    *,
    passphrase: str | None = None,
    create_identity: bool = False,
    clock: Callable[[], int] | None = None,
    decode_threads: int | None = None,
    defer_unlock: bool = False,
    cache_operations: int = CACHE_OPERATIONS,
) -> AsyncIterator[Node]:
    """Open the node of ``data_dir`` (default: ``$P2PC_HOME``, else the user data dir).

    Locks the data dir (`ConflictError` naming the holder's pid if another process has it), unlocks
    the author key (`IdentityMissing` when there is none and ``create_identity`` is False;
    `PassphraseError`), opens and migrates the store (`StoreError` if it is unusable) and reads
    its profiles and pending operations; a thread is read from the store when first used, into
    a cache of about ``cache_operations`` operations (`core.replica` rule 7). ``clock`` returns
    ms since the epoch (tests inject one).
    ``decode_threads`` bounds the threads verifying signatures in parallel (default: the CPUs,
    at most 4). With ``defer_unlock``, an encrypted key and no passphrase still open the node,
    for reading: local writes then raise `PassphraseError` (reason ``passphrase-required``)
    before anything is signed. Closing commits what is queued and releases the lock.
    """
    directory = identity.resolve_data_dir(data_dir).absolute()  # what statistics etc. show
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # the caller named a file: their mistake
        raise ConflictError(
            f"the data dir {directory} is a file, not a directory", reason="not-a-directory"
        ) from None
    except OSError as error:
        raise StoreError(f"cannot create the data dir {directory}: {error}") from None
    lock = DataDirLock.acquire(directory)
    try:
        if create_identity and not identity.has_identity(directory):
            created = await trio.to_thread.run_sync(
                lambda: identity.create_identity(directory, passphrase=passphrase)
            )
            author = _Author(public_key=created.public_key, signing_key=created.signing_key)
        else:
            author = await trio.to_thread.run_sync(
                lambda: _load_author(directory, passphrase, defer_unlock=defer_unlock)
            )
        threads = max(1, decode_threads or min(_MAX_DECODE_THREADS, _cpu_count()))
        store = await trio.to_thread.run_sync(OpStore.open, database_path(directory))
        try:
            loaded = await trio.to_thread.run_sync(_load, store, cache_operations, threads)
        except BaseException:
            store.close()
            raise
        node = Node(
            data_dir=directory,
            author=author.public_key,
            signing_key=author.signing_key,
            store=store,
            loaded=loaded,
            clock=clock or wall_clock_ms,
            decode_threads=threads,
        )
        try:
            yield node
        finally:
            await node._shutdown()
    finally:
        lock.release()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Author:
    public_key: bytes
    signing_key: SigningKey | None  # None: encrypted, and opened with defer_unlock


def _load_author(directory: Path, passphrase: str | None, *, defer_unlock: bool) -> _Author:
    try:
        unlocked = identity.load_identity(directory, passphrase=passphrase)
    except PassphraseError as error:
        if not defer_unlock or error.reason != "passphrase-required":
            raise
        return _Author(public_key=identity.read_public_key(directory), signing_key=None)
    return _Author(public_key=unlocked.public_key, signing_key=unlocked.signing_key)


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _load(store: OpStore, cache_operations: int, decode_threads: int) -> Loaded:
    """Open the replica over the store: threads stay on disk until first used
    (`core.replica` rule 7); profiles and pending operations are read into memory now. Stored
    bytes are checked again as they are loaded (`node.thread_source` rule 1), on
    ``decode_threads`` threads.

    Rows stored as pending that the replica applies are marked applied on the way (a crash
    between an operation's commit and the commit releasing its dependants leaves such rows).
    Blocks: run it in a worker thread.
    """
    started = time.perf_counter()
    source = StoreThreads(store, threads=decode_threads)
    replica = Replica(
        source,
        held_threads=store.held_thread_ids(),
        stored_operations=store.applied_in_threads(),
        cache_operations=cache_operations,
    )
    profiles, unloadable = decode_stored(store, store.profile_rows(), threads=decode_threads)
    for op in profiles:
        replica.apply(op, admit=False)
    pending, damaged = decode_stored(store, store.pending_rows(), threads=decode_threads)
    unloadable += damaged
    stored_pending: list[bytes] = []
    for op in pending:
        outcome = replica.apply(op, admit=False).outcome  # admitted when it arrived
        stored_pending.append(op.id)
        if isinstance(outcome, Rejected):
            unloadable += 1
            logger.warning(
                "%s: stored operation %s is now rejected (%s)",
                store.path,
                op.id.hex(),
                outcome.reason,
            )
    released = [
        applied
        for op_id in stored_pending
        if op_id not in replica.pending and (applied := replica.get(op_id)) is not None
    ]
    if released:
        store.write_blocking(WriteBatch(promote=released))
        replica.saved(released)
    return Loaded(
        replica=replica,
        source=source,
        unloadable=unloadable,
        seconds=time.perf_counter() - started,
    )
