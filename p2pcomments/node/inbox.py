"""The Node's inbox: what others did near this author's comments and threads (`core.inbox`), with
read marks kept locally (`store.inbox_marks`), and a live stream of new entries.

Rules:

1. The entries are core's (`core.inbox.author_inbox`) over every thread held here: an operation
   that arrived by gossip, by sync after a restart, or from a bundle counts alike, so what arrived
   while the node was down is there when it comes back.
2. Read marks are durable once `mark_inbox_read` returns; unread = an entry without a mark.
3. `watch_inbox` yields each entry once, when it first appears, whatever made it appear (its own
   arrival, or a reopen that un-suppressed it); like `Node.watch` it never makes the node wait:
   a watcher that falls behind gets one ``lagged`` change and re-reads `inbox`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import trio

from p2pcomments.core.inbox import InboxEntry, author_inbox, thread_inbox
from p2pcomments.node.changes import WATCH_BUFFER, ChangeStream
from p2pcomments.node.node_state import NodeState
from p2pcomments.store.inbox_marks import InboxMarks

__all__ = ["Inbox", "InboxChange", "InboxReads", "InboxStream"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Inbox:
    """An author's inbox: ``entries`` newest first (all, or the unread ones only, as asked),
    ``read`` the ids among them marked read, and the counts over the whole inbox."""

    author: bytes
    entries: tuple[InboxEntry, ...]
    read: frozenset[bytes]
    total: int
    unread: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxChange:
    """A new entry, or (``lagged``, ``entry`` None) entries were missed: re-read the inbox."""

    entry: InboxEntry | None
    lagged: bool = False


class InboxReads(NodeState):
    """The inbox methods of `Node`."""

    _inbox_marks_cache: dict[bytes, set[bytes]] | None = None

    async def _read_marks(self, author: bytes) -> set[bytes]:
        cache = self._inbox_marks_cache
        if cache is None:
            cache = self._inbox_marks_cache = {}
        marks = cache.get(author)
        if marks is None:
            marks = await trio.to_thread.run_sync(InboxMarks(self.data_dir).read, author)
            cache[author] = marks
        return marks

    def inbox_entries(self, author: bytes | None = None) -> list[InboxEntry]:
        """Every entry of ``author``'s inbox (default: this node's author), newest first."""
        who = self.author if author is None else author
        return author_inbox(self.replica.threads_with_author(who), who, self.replica.names())

    async def inbox(
        self,
        *,
        author: bytes | None = None,
        thread_id: bytes | None = None,
        unread_only: bool = False,
        limit: int | None = None,
    ) -> Inbox:
        """``author``'s inbox (default: this node's author), newest first: in one thread only
        with ``thread_id`` (`NotFound` if not held); ``unread_only`` leaves out what was marked
        read; at most ``limit`` entries. The counts are of the whole (thread's) inbox."""
        who = self.author if author is None else author
        if thread_id is None:
            everything = self.inbox_entries(who)
        else:
            state = self._thread_state(thread_id)
            everything = thread_inbox(state, who, self.replica.names())
        marks = await self._read_marks(who)
        unread = sum(1 for entry in everything if entry.id not in marks)
        listed = [e for e in everything if e.id not in marks] if unread_only else everything
        if limit is not None:
            listed = listed[: max(limit, 0)]
        return Inbox(
            author=who,
            entries=tuple(listed),
            read=frozenset(e.id for e in listed if e.id in marks),
            total=len(everything),
            unread=unread,
        )

    async def mark_inbox_read(
        self, op_ids: Iterable[bytes] | None = None, *, author: bytes | None = None
    ) -> int:
        """Mark entries read (rule 2): those of ``op_ids``, or every entry held now when None.
        Returns how many were unread before. Ids that are no entry are ignored."""
        who = self.author if author is None else author
        entries = {entry.id for entry in self.inbox_entries(who)}
        wanted = entries if op_ids is None else entries.intersection(op_ids)
        marks = await self._read_marks(who)
        fresh = wanted - marks
        if fresh:
            await trio.to_thread.run_sync(partial(InboxMarks(self.data_dir).mark, who, fresh))
            marks.update(fresh)
        return len(fresh)

    @asynccontextmanager
    async def watch_inbox(
        self, *, author: bytes | None = None, max_buffered: int = WATCH_BUFFER
    ) -> AsyncIterator[InboxStream]:
        """New entries of ``author``'s inbox as they appear (rule 3)::

            async with node.watch_inbox() as changes:
                async for change in changes:
                    ...

        The iteration ends when the node closes.
        """
        who = self.author if author is None else author
        async with self._changes.watch(None, max_buffered) as stream:
            yield InboxStream(self, who, stream)


class InboxStream:
    """What `InboxReads.watch_inbox` yields: an async iterator of `InboxChange`."""

    def __init__(self, node: InboxReads, author: bytes, stream: ChangeStream) -> None:
        self._node = node
        self._author = author
        self._stream = stream
        self._seen: set[bytes] = set()
        # Operations per thread when its entries were last listed: a thread's entries are a
        # function of its operation set, so a change to a thread whose set has not grown since
        # (the other operations of a batch already looked at, a profile) needs no new listing.
        # A sync that brings 10,000 operations of one thread lists it once, not 10,000 times.
        self._sizes: dict[bytes, int] = {}
        self._ready: list[InboxEntry] = []  # found by one change, not handed out yet (oldest last)
        self._start_over()

    def _start_over(self) -> None:
        self._seen = {entry.id for entry in self._node.inbox_entries(self._author)}
        self._sizes = {
            state.id: len(state) for state in self._node.replica.threads_with_author(self._author)
        }

    def __aiter__(self) -> InboxStream:
        return self

    async def __anext__(self) -> InboxChange:
        node, author = self._node, self._author
        while not self._ready:
            change = await self._stream.__anext__()  # StopAsyncIteration when the node closes
            if change.lagged:
                self._start_over()
                self._ready = []
                return InboxChange(entry=None, lagged=True)
            state = node.replica.threads.get(change.thread_id or b"")
            if state is None:
                continue  # a profile: it renames, it adds no entry
            if self._sizes.get(state.id) == len(state):
                continue
            self._sizes[state.id] = len(state)
            seen = self._seen
            names = node.replica.names()
            self._ready = [e for e in thread_inbox(state, author, names) if e.id not in seen]
        entry = self._ready.pop()  # newest first in the list: pop gives the oldest
        self._seen.add(entry.id)
        return InboxChange(entry=entry)
