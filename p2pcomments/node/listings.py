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
4. A thread neither of whose rule sets (its own, its site thread's: `Replica.rules`) holds a
   rule operation withholds nothing and has no report, and a thread without a comment has
   neither whatever its rules, so a moderation queue or a list of reports over every thread
   need only load `threads_with_rules` (a site whose rules pre-moderate every page: only its
   pages with comments).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Mapping

import trio

from p2pcomments.core.ops import Operation, site_thread
from p2pcomments.core.replica import Replica
from p2pcomments.core.thread_state import ThreadListing
from p2pcomments.errors import InvalidOperation, PageUrlError, StoreError
from p2pcomments.store.op_store import OpStore, WriteBatch

__all__ = ["changed", "current_listings", "read_current_listings", "threads_with_rules"]


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
    return _combined(replica, store, store.thread_listings())


async def read_current_listings(replica: Replica, store: OpStore) -> list[ThreadListing]:
    """`current_listings` with the store's rows read in a worker thread (at 10,000 threads the
    read is most of the cost: 65 ms of 104-146)."""
    saved = await trio.to_thread.run_sync(store.thread_listings)
    return _combined(replica, store, saved)


def _combined(
    replica: Replica, store: OpStore, saved: Mapping[bytes, ThreadListing]
) -> list[ThreadListing]:
    """Rule 2: the states of the threads in memory, the current rows for the others."""
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


def threads_with_rules(listings: Iterable[ThreadListing]) -> list[bytes]:
    """The threads of ``listings`` (`current_listings`) that have comments and whose own or
    whose site thread's rules hold a rule operation (rule 4), in no particular order; found
    from the listings, loading none."""
    by_id = {listing.id: listing for listing in listings}
    found = []
    for listing in by_id.values():
        if not listing.comment_count:
            continue
        if listing.has_rules:
            found.append(listing.id)
            continue
        site_id = None if listing.site is None else _site_thread_id(listing.owner, listing.site)
        site = None if site_id is None else by_id.get(site_id)
        if site is not None and site.has_rules:
            found.append(listing.id)
    return found


@functools.lru_cache(maxsize=1_024)  # a blog's threads share an owner and a site
def _site_thread_id(owner: bytes, site: str) -> bytes | None:
    try:
        return site_thread(owner, site).id
    except (PageUrlError, InvalidOperation):  # not a host in normal form: no site rules
        return None
