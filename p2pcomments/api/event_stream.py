"""Server-sent events: the one response class behind every live stream of the API.

Rules:

1. A stream starts watching before it sends its first line (``: watching``): after that line,
   no change is missed.
2. Each change becomes at most one event, rendered by `event_for`; ``None`` skips it.
3. A ``: keepalive`` comment every `KEEPALIVE_SECONDS` keeps proxies from closing an idle stream.
4. The stream ends when the client goes away or the daemon shuts down (``closing`` is set), so a
   graceful shutdown never waits for a reader.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Final, Generic, TypeVar

import trio
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

__all__ = ["KEEPALIVE_SECONDS", "EventStream", "sse_event"]

KEEPALIVE_SECONDS: Final = 15.0

Change = TypeVar("Change")


def sse_event(name: str, event_id: str | None, data: object) -> bytes:
    """One event in the text/event-stream form, its data as compact JSON."""
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


class EventStream(Response, Generic[Change]):
    """A stream of the changes `watch` yields, each rendered by `event_for` (rules 1-4)."""

    def __init__(self, closing: trio.Event) -> None:
        super().__init__(status_code=200, media_type="text/event-stream")
        self.closing = closing
        self.send_lock = trio.Lock()

    def watch(self) -> AbstractAsyncContextManager[AsyncIterator[Change]]:
        raise NotImplementedError

    def event_for(self, change: Change) -> bytes | None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self.watch() as changes:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            await self._send(send, b": watching\n\n")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._until_disconnect, receive, nursery.cancel_scope)
                nursery.start_soon(self._until_closing, nursery.cancel_scope)
                nursery.start_soon(self._keepalive, send)
                async for change in changes:
                    chunk = self.event_for(change)
                    if chunk is not None:
                        await self._send(send, chunk)
                nursery.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send(self, send: Send, chunk: bytes) -> None:
        async with self.send_lock:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def _keepalive(self, send: Send) -> None:
        while True:
            await trio.sleep(KEEPALIVE_SECONDS)
            await self._send(send, b": keepalive\n\n")

    async def _until_disconnect(self, receive: Receive, scope: trio.CancelScope) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return

    async def _until_closing(self, scope: trio.CancelScope) -> None:
        await self.closing.wait()
        scope.cancel()
