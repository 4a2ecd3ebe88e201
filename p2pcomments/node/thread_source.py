"""`StoreThreads`: the node's store as the `core.replica.ThreadSource` a replica loads threads from.

Rules:

1. A thread is read from the store when the replica first uses it, and every operation of it is
   checked again as it is loaded: its bytes must hash to the id they are stored under (the
   store checks) and carry their author's valid signature. SQLite has no checksums, so bytes
   damaged on disk since they were verified are reported (logged and counted in ``damaged``),
   never loaded, applied or served. A thread the replica dropped from memory and reads back
   byte for byte as it held it (`core.ops.encoded_digest`) was verified already: only parsed.
   A thread's signatures are checked together, in one call that lets go of the GIL once
   (`core.ops.authentic_all`), so threads loading side by side in worker threads do not queue
   for the GIL after every check. What opening reads at once (profiles, pending operations:
   `decode_stored`) and a huge thread (`_SPLIT_AT` operations or more a part: a popular post's
   10,000 comments) are checked in parts side by side, one per decode thread.
2. Blocking reads on the calling thread, any thread (each has its own store connection): ingest
   reads the threads a batch needs in worker threads (`node.ingest` rule 4), and a server the
   threads it is about to show (`node.thread_walk` rule 4); any other read that loads one
   thread (about a hundred operations: a few milliseconds, scripts/bench_scale.py) stays on
   the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor

from p2pcomments.core.ops import (
    Operation,
    authentic_all,
    claimed_id,
    encoded_digest,
    load_stored_operation,
)
from p2pcomments.errors import InvalidOperation
from p2pcomments.store.op_store import OpStore

__all__ = ["StoreThreads", "decode_stored"]

logger = logging.getLogger("p2pcomments.node")
_DAMAGED = "%s: a stored operation is damaged (%s): not loaded"
_SPLIT_AT = 1_000  # operations below which `decode_stored` checks in one part


def decode_stored(
    store: OpStore, raws: list[bytes], *, threads: int = 1
) -> tuple[list[Operation], int]:
    """Rule 1 for stored bytes: the operations of ``raws`` that decode and are authentic, in
    order, and how many did not (each logged). Many are checked in ``threads`` parts side by
    side, each in one call that lets go of the GIL (opening a store with 20,000 profiles spent
    1.7-2.4 s checking them on one thread)."""
    ops, damaged = _decode_in_parts(store, raws, threads)
    return ops, len(damaged)


def _decode_in_parts(
    store: OpStore, raws: list[bytes], threads: int
) -> tuple[list[Operation], list[bytes]]:
    """`_decode_checked` of ``raws``, in up to ``threads`` parts side by side when they are
    many (at least `_SPLIT_AT` a part), in order."""
    size = max(_SPLIT_AT, -(-len(raws) // max(1, threads)))
    parts = [raws[start : start + size] for start in range(0, len(raws), size)]
    if len(parts) <= 1:
        return _decode_checked(store, raws)
    with ThreadPoolExecutor(len(parts) - 1) as pool:
        later = [pool.submit(_decode_checked, store, part) for part in parts[1:]]
        done = [_decode_checked(store, parts[0]), *(future.result() for future in later)]
    return [op for ops, _ in done for op in ops], [raw for _, bad in done for raw in bad]


def _decode_checked(store: OpStore, raws: list[bytes]) -> tuple[list[Operation], list[bytes]]:
    """The operations of ``raws`` that decode and are authentic, their signatures checked in
    one call (`authentic_all`); and the bytes of the others, each logged."""
    parsed: list[Operation] = []
    damaged: list[bytes] = []
    for raw in raws:
        try:
            parsed.append(load_stored_operation(raw))
        except InvalidOperation as error:
            logger.warning(_DAMAGED, store.path, error)
            damaged.append(raw)
    ops: list[Operation] = []
    for op, authentic in zip(parsed, authentic_all(parsed), strict=True):
        if authentic:
            ops.append(op)
        else:
            logger.warning(_DAMAGED, store.path, "bad-signature")
            damaged.append(op.encoded)
    return ops, damaged


class StoreThreads:
    """Rules 1-2, over one `OpStore`."""

    def __init__(self, store: OpStore, *, threads: int = 1) -> None:
        self._store = store
        self._threads = threads  # a huge thread's signatures are checked in this many parts
        self._damaged: set[bytes] = set()  # the bytes of stored operations found damaged

    @property
    def damaged(self) -> int:
        """Stored operations found damaged since open (rule 1), each counted once."""
        return len(self._damaged)

    def thread_operations(
        self, thread_id: bytes, *, checked: bytes | None = None
    ) -> list[Operation]:
        rows = self._store.thread_rows(thread_id)
        if checked is not None and encoded_digest(raw for _, raw in rows) == checked:
            # Byte for byte what was verified before the replica dropped it (rule 1 holds: any
            # change since would change the digest, and then every signature is checked). The
            # store has checked that each hashes to its id.
            return [load_stored_operation(raw, op_id) for op_id, raw in rows]
        ops, damaged = _decode_in_parts(self._store, [raw for _, raw in rows], self._threads)
        self._damaged.update(damaged)
        return ops

    def threads_of(self, op_ids: Collection[bytes]) -> dict[bytes, bytes]:
        return self._store.threads_of(op_ids)

    def encoded(self, op_ids: Collection[bytes]) -> dict[bytes, bytes]:
        found = self._store.fetch_raw(op_ids)
        return {op_id: raw for op_id, raw in found.items() if claimed_id(raw) == op_id}

    def threads_with_author(self, author: bytes) -> list[bytes]:
        return self._store.threads_with_author(author)
