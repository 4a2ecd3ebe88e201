"""The thread list of a large store without loading every thread (issue 14).

Rules:

1. What the list shows of a thread is core's `ThreadListing`, a function of its operations
   (`core.thread_state` rule 10); the store keeps one per thread (`store.views` rule 3), so a
   list of 10,000 threads is one read, not a million operations loaded and checked again.
2. A thread in memory is listed from its state (what it holds may not all be saved yet). One not
   in memory has every applied operation saved (`core.replica` rule 7), so the store's row is
   right for it whenever the row is current (made from as many operations as the store holds);
   a thread without a current row (a store from before listings, a crash between two commits,
   `p2pc repair`) is loaded once, and its row written.
3. Whoever commits applied operations writes the rows of the threads they change, made after
   applying them (`changed`), in the same batch when it can, else in one queued just after:
   jobs commit in the order queued, so a row is never committed ahead of its operations.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from p2pcomments.core.ops import Operation
from p2pcomments.core.replica import Replica
from p2pcomments.core.thread_state import ThreadListing
from p2pcomments.errors import StoreError
from p2pcomments.store.op_store import OpStore, WriteBatch

__all__ = ["changed", "current_listings"]


def changed(replica: Replica, applied: Iterable[Operation]) -> list[ThreadListing]:
    """The listings of the threads ``applied`` (just applied, not yet saved) belong to (rule 3).
    Those threads are in memory: a thread with unsaved operations is never dropped."""
    threads = dict.fromkeys(op.thread_id for op in applied)
    listings = []
    for thread_id in threads:
        state = None if thread_id is None else replica.in_memory(thread_id)
        if state is not None:
            listings.append(state.listing())
    return listings


def current_listings(replica: Replica, store: OpStore) -> list[ThreadListing]:
    """A listing of every thread held (rule 2), in no particular order."""
    saved = store.thread_listings()
    listings: list[ThreadListing] = []
    made: list[ThreadListing] = []
    for thread_id in replica.threads:
        state = replica.in_memory(thread_id)
        if state is not None:
            listings.append(state.listing())
            continue
        listing = saved.get(thread_id)
        if listing is None:
            loaded = replica.threads.get(thread_id)
            if loaded is None:  # its thread operation turned out damaged as it loaded
                continue
            listing = loaded.listing()
            made.append(listing)
        listings.append(listing)
    if made:
        with contextlib.suppress(StoreError):  # a closed or failed store: listed anew next time
            store.enqueue(WriteBatch(listings=made))
    return listings
