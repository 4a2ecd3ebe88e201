"""The public gateway's edge (``p2pc daemon --public HOST:PORT``): CORS, per-client rate limits and
size limits around the public API (`app.build_app` with ``gateway=``).

Rules:

1. Any origin may read and submit: every response carries ``Access-Control-Allow-Origin: *``
   (never credentials); a preflight ``OPTIONS`` is answered 204 with the methods and headers
   the public API takes, for any path, before anything else runs.
2. Each client (by its IP address: the socket's peer, or behind a reverse proxy that the operator
   says to trust, the last address of ``X-Forwarded-For``, the one that proxy saw) has two token
   buckets: requests, and
   submitted operations (a batch counts each of its operations, read from its header without
   decoding). A client over either budget gets 429 ``rate-limited`` with ``Retry-After`` (whole
   seconds). At most `GatewayLimits.event_streams_per_client` event streams are open per client.
3. A query string over `MAX_QUERY_BYTES` is 414; request bodies are bounded by the app (413).
4. Errors are the API's JSON errors (``{"error": {"code", "message"}}``) with the CORS header.
5. Buckets of clients idle long enough to be full again are forgotten, so memory stays bounded by
   the clients of the last minutes, whatever their number over time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Final

import trio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_QUERY_BYTES", "GatewayGuard", "GatewayLimits", "TokenBucket", "client_of"]

MAX_QUERY_BYTES: Final = 8 * 1024
_CORS: Final = [(b"access-control-allow-origin", b"*")]
_PREFLIGHT: Final = [
    *_CORS,
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
    (b"access-control-allow-headers", b"Content-Type, Last-Event-ID"),
    (b"access-control-max-age", b"86400"),
    (b"content-length", b"0"),
]
_SUBMIT_PATH: Final = "/api/ops"
_FORGET_EVERY: Final = 1024  # requests between sweeps of idle buckets


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayLimits:
    """Per-client budgets of a public gateway (rule 2)."""

    requests_per_minute: int = 600
    request_burst: int = 120
    ops_per_minute: int = 120
    ops_burst: int = 30
    event_streams_per_client: int = 8
    trust_forwarded_for: bool = False  # behind a reverse proxy: the client is who it says (rule 2)

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "request_burst", "ops_per_minute", "ops_burst"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@dataclass(slots=True)
class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; time is passed in (seconds)."""

    rate: float
    capacity: float
    tokens: float
    updated: float

    def take(self, count: float, now: float) -> float:
        """Take ``count`` tokens if there are enough: 0.0; else how many seconds until there
        would be (nothing is taken then). More than the capacity counts as the capacity."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        count = min(count, self.capacity)
        if self.tokens >= count:
            self.tokens -= count
            return 0.0
        return (count - self.tokens) / self.rate

    def full_at(self) -> float:
        return self.updated + (self.capacity - self.tokens) / self.rate


@dataclass(slots=True)
class _Client:
    requests: TokenBucket
    ops: TokenBucket
    streams: int = 0


@dataclass(slots=True)
class _Clients:
    limits: GatewayLimits
    by_address: dict[str, _Client] = field(default_factory=dict)
    seen: int = 0

    def get(self, address: str, now: float) -> _Client:
        self.seen += 1
        if self.seen % _FORGET_EVERY == 0:
            self.forget_idle(now)
        client = self.by_address.get(address)
        if client is None:
            limits = self.limits
            client = _Client(
                requests=TokenBucket(
                    limits.requests_per_minute / 60, limits.request_burst, limits.request_burst, now
                ),
                ops=TokenBucket(
                    limits.ops_per_minute / 60, limits.ops_burst, limits.ops_burst, now
                ),
            )
            self.by_address[address] = client
        return client

    def forget_idle(self, now: float) -> None:
        """Rule 5."""
        for address, client in list(self.by_address.items()):
            if (
                client.streams == 0
                and client.requests.full_at() <= now
                and client.ops.full_at() <= now
            ):
                del self.by_address[address]


def _json_error(
    status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]
) -> tuple[Message, Message]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            *_CORS,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *headers,
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


def client_of(scope: Scope, *, trust_forwarded_for: bool) -> str:
    """The address a request's budget is charged to (rule 2)."""
    if trust_forwarded_for:
        for name, value in reversed(scope["headers"]):
            if name == b"x-forwarded-for":
                last: str = bytes(value).decode("latin-1").rsplit(",", 1)[-1].strip()
                if last:
                    return last
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _batch_count(head: bytes) -> int | None:
    """The element count of a msgpack array header at the start of ``head``, or None."""
    if not head:
        return None
    first = head[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F
    if first == 0xDC and len(head) >= 3:
        return int.from_bytes(head[1:3], "big")
    if first == 0xDD and len(head) >= 5:
        return int.from_bytes(head[1:5], "big")
    return None


class GatewayGuard:
    """Rules 1-4 around the public app."""

    def __init__(self, app: ASGIApp, limits: GatewayLimits) -> None:
        self.app = app
        self.limits = limits
        self.clients = _Clients(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": _PREFLIGHT})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            await self._refuse(send, 414, "uri-too-long", "the query string is over 8 KiB")
            return
        now = trio.current_time()
        client_address = client_of(scope, trust_forwarded_for=self.limits.trust_forwarded_for)
        client = self.clients.get(client_address, now)
        wait = client.requests.take(1, now)
        if wait:
            await self._rate_limited(send, wait, "requests")
            return
        path: str = scope["path"]
        if scope["method"] == "POST" and path == _SUBMIT_PATH:
            counted = await self._count_submission(scope, receive, send, client, now)
            if counted is None:
                return
            receive = counted
        streaming = path.endswith("/events")
        if streaming:
            if client.streams >= self.limits.event_streams_per_client:
                await self._refuse(
                    send,
                    429,
                    "rate-limited",
                    f"at most {self.limits.event_streams_per_client} event streams per client",
                    [(b"retry-after", b"30")],
                )
                return
            client.streams += 1
        try:
            await self.app(scope, receive, _with_cors(send))
        finally:
            if streaming:
                client.streams -= 1

    async def _count_submission(
        self, scope: Scope, receive: Receive, send: Send, client: _Client, now: float
    ) -> Receive | None:
        """Charge the client's operation bucket for a submission (rule 2); the receive callable
        to go on with (what was read to count a batch is replayed), or None when refused."""
        # Spelled as the app reads it (any case), or a batch in capitals would cost one operation.
        content_type = (
            dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
        )
        buffered: list[Message] = []
        count = 1
        if content_type == b"application/vnd.p2pcomments.ops":
            head = b""
            while len(head) < 5:
                message = await receive()
                buffered.append(message)
                head += message.get("body", b"")
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
            count = _batch_count(head) or 1
        wait = client.ops.take(count, now)
        if wait:
            await self._rate_limited(send, wait, "submitted operations")
            return None
        if not buffered:
            return receive

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        return replay

    async def _rate_limited(self, send: Send, wait: float, what: str) -> None:
        seconds = max(1, math.ceil(wait))
        await self._refuse(
            send,
            429,
            "rate-limited",
            f"too many {what} from this address: retry in {seconds} s",
            [(b"retry-after", str(seconds).encode())],
        )

    async def _refuse(
        self,
        send: Send,
        status: int,
        code: str,
        message: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        start, body = _json_error(status, code, message, headers or [])
        await send(start)
        await send(body)


def _with_cors(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (name, value)
                for name, value in message.get("headers", [])
                if name.lower() != b"access-control-allow-origin"
            ]
            message = {**message, "headers": [*headers, *_CORS]}
        await send(message)

    return sending
