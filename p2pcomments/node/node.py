"""The Node: the one object an embedder needs. Open a data dir (`open_node`), write, ingest, read,
watch.

Where its parts live (rules in each module):

- `p2pcomments.node.writes`: the local writes (`create_thread`, `comment`, ... `set_profile`); the
  authoring rules they follow are `p2pcomments.core.authoring`'s.
- `p2pcomments.node.ingest`: `ingest` and `ingest_verified`, the pipeline for outside operations.
- `p2pcomments.node.changes`: `watch` and `subscribe_applied`, bounded and never waited for.
- `p2pcomments.node.inbox`: `inbox`, `mark_inbox_read`, `watch_inbox` (`core.inbox` + read marks).
- `p2pcomments.node.node_state`: what those share (replica, store, key, health) and the lookups.
- `p2pcomments.node.opening`: `open_node`, which locks the data dir and loads the store.
- `p2pcomments.node.following`: `follows`, `follow`, `unfollow` (the Node decides where they live).
- `p2pcomments.node.maintenance`: `repair_data_dir`, for a store that may not load.
- `p2pcomments.node.listings`: the thread list of a large store, without loading every thread.
- `p2pcomments.node.thread_walk`: `each_thread`, many threads a few at a time, off the loop.
- this module: the reads (`thread_view`, `threads`, ...), statistics, maintenance, closing.

Rules:

1. Reads are synchronous and in memory, but for those that go through every thread
   (`each_thread`, `export_pieces`, the moderation queue and reports of every thread), which
   are async and read threads off the loop a few at a time (`node.thread_walk`), and
   `read_threads`, the thread list with its store read and sorting in worker threads. Derived
   thread state (views, comment counts, last activity) is core's (`ThreadState`), never kept
   beside it here. The thread list is core's too (`ThreadListing`), kept by the store for the
   threads not in memory (`node.listings`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Final

import trio

from p2pcomments.core.completeness import ThreadCompleteness, thread_completeness
from p2pcomments.core.id_prefix import IdPrefix
from p2pcomments.core.ops import Kind, Operation
from p2pcomments.core.page_url import normalise_page_url
from p2pcomments.core.textform import TextKind, display_id
from p2pcomments.core.thread_state import ThreadListing, ThreadState, ThreadView
from p2pcomments.errors import NotFound, PageUrlError, StoreError
from p2pcomments.node.changes import APPLIED_BUFFER, WATCH_BUFFER, ChangeStream
from p2pcomments.node.following import Following
from p2pcomments.node.inbox import InboxReads
from p2pcomments.node.ingest import Ingest
from p2pcomments.node.listings import current_listings, read_current_listings
from p2pcomments.node.moderation import RuleWrites
from p2pcomments.node.pages import WebPages
from p2pcomments.node.values import AppliedBatch, NodeStatistics, ThreadSummary
from p2pcomments.node.writes import LocalWrites
from p2pcomments.store.op_store import WriteBatch

__all__ = ["Node"]

_ID_PAGE: Final = 256  # ids read per index query when looking a prefix up
_LAST_ID: Final = b"\xff" * 32
_THREADS_LISTED_INLINE: Final = 500  # `read_threads` lists this many or fewer on the loop


class Node(RuleWrites, LocalWrites, WebPages, Ingest, InboxReads, Following):
    """A data dir opened: its replica in memory, its store on disk, its author key unlocked.

    Create with `open_node`. Reads are synchronous and in memory (those through every thread
    are async: module rule 1); writes and ingest are async and return once durable.
    ``replica`` is for reading only.
    """

    # -- reads ---------------------------------------------------------------------------------

    def thread_view(self, thread_id: bytes) -> ThreadView:
        """The thread as shown. Raises `NotFound` for a thread not held here."""
        replica = self.replica
        state = self._thread_state(thread_id)
        return state.view(replica.names(), names_version=replica.names_version)

    def thread_completeness(self, thread_id: bytes) -> ThreadCompleteness:
        """How complete the thread is here: operations verified, pending (and what each waits
        for), rejected since open and why (`core.completeness`). `NotFound` if not held."""
        state = self._thread_state(thread_id)
        missing = self.replica.pending
        return thread_completeness(
            thread_id,
            verified=len(state),
            pending=[(op, missing[op.id]) for op in self.replica.pending_operations()],
            log=self._rejections,
        )

    async def ids_with_prefix(self, prefix: IdPrefix, *, limit: int = 10) -> list[bytes]:
        """Up to ``limit`` ids held here that ``prefix`` names (`core.id_prefix` rule 3): threads
        for ``thr_``, comments for ``cmt_``, any operation for ``op_``. Found through the
        store's id index, in a worker thread; sorted."""
        wanted = {TextKind.THREAD: Kind.THREAD, TextKind.COMMENT: Kind.COMMENT}.get(prefix.kind)
        low, high = prefix.bounds()
        found: list[bytes] = []
        while True:
            rows = await trio.to_thread.run_sync(
                functools.partial(self.store.ids_between, low, high, limit=_ID_PAGE)
            )
            for op_id, kind, _ in rows:
                if (wanted is None or kind == wanted) and prefix.matches(op_id):
                    found.append(op_id)
                    if len(found) == limit:
                        return found
            if len(rows) < _ID_PAGE or rows[-1][0] == _LAST_ID:
                return found
            low = (int.from_bytes(rows[-1][0], "big") + 1).to_bytes(32, "big")

    def threads(self, *, url: str | None = None) -> list[ThreadSummary]:
        """Every thread held here, most recent activity first; with ``url``, those about that
        page: URLs are compared in their normal form (`core.page_url`; `PageUrlError` if ``url``
        has none), a thread's URL that has none as it is."""
        wanted = None if url is None else normalise_page_url(url)
        listings = current_listings(self.replica, self.store)
        return _summaries(listings, self.replica.names(), wanted)

    async def read_threads(self, *, url: str | None = None) -> list[ThreadSummary]:
        """`threads` for a server: the store's rows read, and the summaries made and sorted, in
        worker threads (at 10,000 threads `threads` holds the loop for 100-150 ms, two thirds
        of it reading the rows; scripts/bench_scale.py). A store of a few hundred threads is
        listed here, as `threads`: two thread hops cost more than listing them."""
        if len(self.replica.threads) <= _THREADS_LISTED_INLINE:
            return self.threads(url=url)
        wanted = None if url is None else normalise_page_url(url)
        listings = await read_current_listings(self.replica, self.store)
        names = self.replica.names()  # never changed: the loop may take in profiles meanwhile
        return await trio.to_thread.run_sync(_summaries, listings, names, wanted)

    def thread_summary(self, thread_id: bytes) -> ThreadSummary:
        """One thread's entry of `threads`. Raises `NotFound` for a thread not held here."""
        return _summary(self._thread_state(thread_id).listing(), self.replica.names())

    def get_operation(self, op_id: bytes) -> Operation | None:
        """A held operation, applied or pending."""
        return self.replica.get(op_id)

    def resolve(self, op_id: bytes) -> tuple[bytes, Kind]:
        """(thread id, kind) of a held operation (a thread resolves to itself).

        Raises `NotFound` for an unknown id, and for a profile, which belongs to no thread.
        """
        op = self.replica.get(op_id)
        if op is None:
            raise NotFound(f"no operation {display_id(TextKind.OPERATION, op_id)} here")
        thread_id = op.thread_id
        if thread_id is None:
            raise NotFound(
                f"{display_id(TextKind.OPERATION, op_id)} is a profile, not part of a thread",
                reason="not-in-thread",
            )
        return thread_id, op.kind

    def export_operations(self, thread_id: bytes | None = None) -> list[bytes]:
        """Canonical bytes of the thread's operations (or of everything, profiles included), each
        after the operations it references, so `ingest` on another node applies them in one pass.
        Pending operations come last (they will wait there too)."""
        if thread_id is not None:
            state = self._thread_state(thread_id)
            ops = state.operations()
            pending = [op for op in self.replica.pending_operations() if op.thread == thread_id]
        else:
            ops = sorted(self.replica.profile_operations(), key=lambda op: (op.timestamp_ms, op.id))
            states = sorted(
                self.replica.threads.values(),
                key=lambda s: (s.thread_op.timestamp_ms, s.id),
            )
            for state in states:
                ops.extend(state.operations())
            pending = self.replica.pending_operations()
        return [op.encoded for op in ops] + [op.encoded for op in pending]

    def statistics(self) -> NodeStatistics:
        store = self.store.statistics()
        return NodeStatistics(
            operations=self.replica.operation_count(),
            threads=len(self.replica.threads),
            pending=len(self.replica.pending),
            rejected=self._rejected,
            data_dir=str(self.data_dir),
            author=self.author,
            profiles=len(self.replica.profiles),
            watchers=self._changes.watchers,
            applied_subscribers=self._changes.subscribers,
            database_bytes=store.database_bytes,
            store_commits=store.commits,
            load_seconds=self._load_seconds,
            unloadable=self._unloadable,
        )

    # -- maintenance ---------------------------------------------------------------------------

    async def integrity_check(self) -> list[str]:
        """Problems in the database (SQLite's check and the views'), empty when all is well."""
        return await trio.to_thread.run_sync(self.store.integrity_check)

    async def make_missing_listings(self) -> int:
        """Make the thread listings the store lacks (a store from before them, or after
        `rebuild_views`), so the first thread list need not (`node.listings` rule 2): threads
        not in memory are read and checked in worker threads a few at a time and installed one
        per step. Returns how many were made; the daemon runs it once in the background.

        A row made from a thread in memory is queued behind the commits of everything applied
        to it (those are queued as they are applied), so it never counts ahead of the store."""
        try:
            missing = await trio.to_thread.run_sync(self.store.threads_without_listing)
        except StoreError:  # a failed store: the daemon stops on it, listed as before meanwhile
            return 0
        made = 0
        async with contextlib.aclosing(self.each_thread(missing, ThreadState.listing)) as made_in:
            async for listings in made_in:
                if listings:
                    try:
                        self.store.enqueue(WriteBatch(listings=listings))
                    except StoreError:  # closed or failed: the rest waits for the next open
                        return made
                    made += len(listings)
        return made

    async def export_pieces(self) -> AsyncGenerator[list[bytes], None]:
        """`export_operations` of everything, a piece at a time, for a store larger than memory:
        the same operations in the same order (profiles, then each thread by its thread
        operation's (timestamp, id), then what is pending), threads read a few at a time in
        worker threads and let go after, so memory holds a few threads, not every one."""
        profiles = self.replica.profile_operations()
        yield [op.encoded for op in sorted(profiles, key=lambda op: (op.timestamp_ms, op.id))]
        listings = await read_current_listings(self.replica, self.store)
        order = [t.id for t in sorted(listings, key=lambda t: (t.timestamp_ms, t.id))]
        async for encoded in self.each_thread(order, _encoded_in_causal_order):
            yield [raw for thread in encoded for raw in thread]
        yield [op.encoded for op in self.replica.pending_operations()]

    async def rebuild_views(self) -> None:
        """Recompute the store's view tables from its operations."""
        self._check_writable()
        await trio.to_thread.run_sync(self.store.rebuild_views)

    # -- watching (`changes`) -------------------------------------------------------------------

    @asynccontextmanager
    async def watch(
        self, thread_id: bytes | None = None, *, max_buffered: int = WATCH_BUFFER
    ) -> AsyncIterator[ChangeStream]:
        """Live changes to one thread (or to all when None), from local writes and ingest alike::

            async with node.watch(thread_id) as changes:
                async for change in changes:
                    ...

        A thread not held yet may be watched (it may arrive). The iteration ends when the node
        closes. A watcher that falls ``max_buffered`` changes behind gets one ``lagged`` change.
        """
        async with self._changes.watch(thread_id, max_buffered) as stream:
            yield stream

    @contextmanager
    def subscribe_applied(
        self, *, max_buffered: int = APPLIED_BUFFER
    ) -> Iterator[trio.MemoryReceiveChannel[AppliedBatch]]:
        """Every newly applied operation, local writes and ingested ones alike, as `AppliedBatch`
        values (one per write or ingest call), for the networking layer to publish::

            with node.subscribe_applied() as batches:
                async for batch in batches:
                    if batch.source != "gossip": ...publish batch.ops...

        Bounded: when ``max_buffered`` batches are waiting, further ones are dropped and the next
        delivered batch has ``lagged=True``. The channel ends when the node closes.
        """
        with self._changes.subscribe(max_buffered) as batches:
            yield batches

    async def _shutdown(self) -> None:
        self._closed = True
        self._changes.close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.store.close)


def _encoded_in_causal_order(state: ThreadState) -> list[bytes]:
    return [op.encoded for op in state.operations()]


def _summaries(
    listings: list[ThreadListing], names: Mapping[bytes, str], url: str | None
) -> list[ThreadSummary]:
    """The thread list (`Node.threads`) made of ``listings``: those about ``url`` (a normal
    form; None: all), most recent activity first."""
    summaries = [
        _summary(listing, names)
        for listing in listings
        if url is None or _normal_or_raw(listing.url) == url
    ]
    summaries.sort(key=lambda s: (s.last_activity_ms, s.id), reverse=True)
    return summaries


def _summary(listing: ThreadListing, names: Mapping[bytes, str]) -> ThreadSummary:
    return ThreadSummary(
        id=listing.id,
        title=listing.title,
        url=listing.url,
        site=listing.site,
        owner=listing.owner,
        owner_name=names.get(listing.owner),
        comment_count=listing.comment_count,
        last_activity_ms=listing.last_activity_ms,
        closed=listing.closed,
        timestamp_ms=listing.timestamp_ms,
    )


@functools.lru_cache(maxsize=65_536)  # a thread's URL never changes; normalising costs ~12 us
def _normal_or_raw(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        return normalise_page_url(url)
    except PageUrlError:
        return url.strip()
