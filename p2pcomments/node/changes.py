"""The change stream: who hears of applied operations, and how a slow listener is treated.

Rules:

1. Watchers and applied-operation subscribers hear of operations only after they are committed
   (the callers of `ChangeFeed.announce` see to that).
2. Buffers are bounded and the node never waits for a listener: a watcher that falls behind gets
   one ``lagged`` change and must re-read the view; a subscriber's next batch says ``lagged``.
3. A profile change reaches every watcher, whatever thread it watches: it renames authors
   everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Final

import trio

from p2pcomments.core.ops import Operation
from p2pcomments.node.values import AppliedBatch, ThreadChange

__all__ = ["APPLIED_BUFFER", "WATCH_BUFFER", "ChangeFeed", "ChangeStream"]

WATCH_BUFFER: Final = 256
APPLIED_BUFFER: Final = 1024


class _Watcher:
    __slots__ = ("lagged", "send", "thread_id")

    def __init__(self, thread_id: bytes | None, send: trio.MemorySendChannel[ThreadChange]) -> None:
        self.thread_id = thread_id
        self.send = send
        self.lagged = False

    def offer(self, change: ThreadChange) -> None:
        if self.lagged:
            return  # the consumer re-reads everything when it catches up
        try:
            self.send.send_nowait(change)
        except trio.WouldBlock:
            self.lagged = True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The consumer closed its end early; its `watch` block unregisters it on exit.
            self.lagged = True


class ChangeStream:
    """What `Node.watch` yields: an async iterator of `ThreadChange`; it ends when the node
    closes."""

    def __init__(self, watcher: _Watcher, receive: trio.MemoryReceiveChannel[ThreadChange]) -> None:
        self._watcher = watcher
        self._receive = receive

    def __aiter__(self) -> ChangeStream:
        return self

    async def __anext__(self) -> ThreadChange:
        watcher = self._watcher
        if watcher.lagged:
            # Everything buffered is superseded by the re-read the lagged change asks for.
            while True:
                try:
                    self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            watcher.lagged = False
            return ThreadChange(thread_id=watcher.thread_id, op_id=None, kind=None, lagged=True)
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None


class _Subscriber:
    __slots__ = ("lagged", "send")

    def __init__(self, send: trio.MemorySendChannel[AppliedBatch]) -> None:
        self.send = send
        self.lagged = False

    def offer(self, batch: AppliedBatch) -> None:
        try:
            self.send.send_nowait(replace(batch, lagged=True) if self.lagged else batch)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.lagged = True
        else:
            self.lagged = False


class ChangeFeed:
    """The watchers and subscribers of one node; `Node.watch` and `Node.subscribe_applied`
    register here, the node's writes and ingest `announce` here."""

    def __init__(self) -> None:
        self._watchers: dict[bytes | None, set[_Watcher]] = {}
        self._subscribers: set[_Subscriber] = set()

    @property
    def watchers(self) -> int:
        return sum(len(group) for group in self._watchers.values())

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @asynccontextmanager
    async def watch(
        self, thread_id: bytes | None, max_buffered: int
    ) -> AsyncIterator[ChangeStream]:
        send, receive = trio.open_memory_channel[ThreadChange](max_buffered)
        watcher = _Watcher(thread_id, send)
        self._watchers.setdefault(thread_id, set()).add(watcher)
        try:
            with receive:
                yield ChangeStream(watcher, receive)
        finally:
            group = self._watchers.get(thread_id)
            if group is not None:
                group.discard(watcher)
                if not group:
                    del self._watchers[thread_id]
            send.close()

    @contextmanager
    def subscribe(self, max_buffered: int) -> Iterator[trio.MemoryReceiveChannel[AppliedBatch]]:
        send, receive = trio.open_memory_channel[AppliedBatch](max_buffered)
        subscriber = _Subscriber(send)
        self._subscribers.add(subscriber)
        try:
            with receive:
                yield receive
        finally:
            self._subscribers.discard(subscriber)
            send.close()

    def announce(self, ops: list[Operation], source: str) -> None:
        """Tell every listener of ``ops``, just committed (rule 1), never waiting (rule 2)."""
        if not ops:
            return
        if self._watchers:
            everything = self._watchers.get(None, set())
            for op in ops:
                thread_id = op.thread_id
                change = ThreadChange(thread_id=thread_id, op_id=op.id, kind=op.kind)
                if thread_id is None:  # rule 3
                    for group in self._watchers.values():
                        for watcher in group:
                            watcher.offer(change)
                    continue
                for watcher in everything:
                    watcher.offer(change)
                for watcher in self._watchers.get(thread_id, ()):
                    watcher.offer(change)
        if self._subscribers:
            batch = AppliedBatch(ops=tuple(ops), source=source)
            for subscriber in self._subscribers:
                subscriber.offer(batch)

    def close(self) -> None:
        """End every stream and subscription (the node is closing)."""
        for group in self._watchers.values():
            for watcher in group:
                watcher.send.close()
        for subscriber in self._subscribers:
            subscriber.send.close()
