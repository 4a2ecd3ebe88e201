"""`StoreThreads`: the node's store as the `core.replica.ThreadSource` a replica loads threads from.

Rules:

1. A thread is read from the store when the replica first uses it, and every operation of it is
   checked again as it is loaded: its bytes must hash to the id they are stored under (the
   store checks) and be those whose signature was checked before they were stored: a row
   *sealed* by its checksum (`store.op_store` rule 6), or else one whose author's signature is
   valid now, which is then sealed for next time. Bytes damaged on disk since they were
   verified are reported (logged and counted in ``damaged``), never loaded, applied or served.
   Checking every signature again cost ~55 us an operation, most of a cold thread's load and
   of an export or a moderation queue over every thread; a checksum costs 0.3 us. A thread the
   replica dropped from memory and reads back byte for byte as it held it
   (`core.ops.encoded_digest`) was verified already: only parsed. Signatures still to check
   are checked together, in one call that lets go of the GIL once (`core.ops.authentic_all`),
   so threads loading side by side in worker threads do not queue for the GIL after every
   check. What opening reads at once (profiles, pending operations: `decode_stored`) and a huge
   thread (`_SPLIT_AT` operations or more a part: a popular post's 10,000 comments) are checked
   in parts side by side, one per decode thread.
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
from p2pcomments.store.op_store import OpStore, SoundRow

__all__ = ["StoreThreads", "decode_stored"]

logger = logging.getLogger("p2pcomments.node")
_DAMAGED = "%s: a stored operation is damaged (%s): not loaded"
_SPLIT_AT = 1_000  # operations below which `decode_stored` checks in one part


def decode_stored(
    store: OpStore, rows: list[SoundRow], *, threads: int = 1
) -> tuple[list[Operation], int]:
    """Rule 1 for stored rows: the operations of ``rows`` that decode and are sealed or
    authentic, in order, and how many did not (each logged). Many unsealed ones are checked in
    ``threads`` parts side by side, each in one call that lets go of the GIL (opening a store
    with 20,000 profiles spent 1.7-2.4 s checking them on one thread)."""
    ops, damaged = _decode_in_parts(store, rows, threads)
    return ops, len(damaged)


def _decode_in_parts(
    store: OpStore, rows: list[SoundRow], threads: int
) -> tuple[list[Operation], list[bytes]]:
    """`_decode_checked` of ``rows``, in up to ``threads`` parts side by side when they are
    many (at least `_SPLIT_AT` a part), in order."""
    size = max(_SPLIT_AT, -(-len(rows) // max(1, threads)))
    parts = [rows[start : start + size] for start in range(0, len(rows), size)]
    if len(parts) <= 1:
        return _decode_checked(store, rows)
    with ThreadPoolExecutor(len(parts) - 1) as pool:
        later = [pool.submit(_decode_checked, store, part) for part in parts[1:]]
        done = [_decode_checked(store, parts[0]), *(future.result() for future in later)]
    return [op for ops, _ in done for op in ops], [raw for _, bad in done for raw in bad]


def _decode_checked(store: OpStore, rows: list[SoundRow]) -> tuple[list[Operation], list[bytes]]:
    """The operations of ``rows`` that decode and are sealed or authentic (the signatures of
    the unsealed ones checked in one call, `authentic_all`, and those found authentic sealed);
    and the bytes of the others, each logged."""
    parsed: list[Operation] = []
    unsealed: list[int] = []  # indexes into parsed
    damaged: list[bytes] = []
    for op_id, raw, sealed in rows:
        try:
            op = load_stored_operation(raw, op_id)  # the store has hashed it to its id
        except InvalidOperation as error:
            logger.warning(_DAMAGED, store.path, error)
            damaged.append(raw)
            continue
        if not sealed:
            unsealed.append(len(parsed))
        parsed.append(op)
    if not unsealed:
        return parsed, damaged
    forged: set[int] = set()
    checked = authentic_all([parsed[index] for index in unsealed])
    for index, authentic in zip(unsealed, checked, strict=True):
        if not authentic:
            logger.warning(_DAMAGED, store.path, "bad-signature")
            damaged.append(parsed[index].encoded)
            forged.add(index)
    store.seal([(parsed[i].id, parsed[i].encoded) for i in unsealed if i not in forged])
    if not forged:
        return parsed, damaged
    return [op for index, op in enumerate(parsed) if index not in forged], damaged


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
        if checked is not None and encoded_digest(row.raw for row in rows) == checked:
            # Byte for byte what was verified before the replica dropped it (rule 1 holds: any
            # change since would change the digest, and then every signature is checked). The
            # store has checked that each hashes to its id.
            return [load_stored_operation(row.raw, row.id) for row in rows]
        ops, damaged = _decode_in_parts(self._store, rows, self._threads)
        self._damaged.update(damaged)
        return ops

    def threads_of(self, op_ids: Collection[bytes]) -> dict[bytes, bytes]:
        return self._store.threads_of(op_ids)

    def encoded(self, op_ids: Collection[bytes]) -> dict[bytes, bytes]:
        found = self._store.fetch_raw(op_ids)
        return {op_id: raw for op_id, raw in found.items() if claimed_id(raw) == op_id}

    def threads_with_author(self, author: bytes) -> list[bytes]:
        return self._store.threads_with_author(author)
