"""The Starlette application: the action table served as JSON, live events, the OpenAPI document
and read-only HTML pages.

Rules:

1. Writes (every method but GET) need ``Authorization: Bearer <token>`` (401 otherwise); reads are
   open to whoever can reach the socket, which the daemon binds to localhost.
2. Requests whose Host header is not the address the daemon serves on are refused (403): a web
   page can't read the API through DNS rebinding.
3. A JSON body is at most `MAX_JSON_BODY_BYTES` and a bundle at most `MAX_BUNDLE_BYTES`; more is
   refused with 413 as soon as it is known, without reading the rest.
4. Every error is ``{"error": {"code": ..., "message": ...}}`` with the status of its exception
   class; an unexpected exception is a 500 with code ``internal`` (and is logged by the server).
5. Event streams end when the client goes away or the daemon shuts down (``closing`` is set), so
   a graceful shutdown never waits for a reader (`api.event_stream`).
6. Built with ``gateway=`` (``p2pc daemon --public``), the app is the public gateway: only the
   actions marked ``public`` (reads, and submitting operations signed elsewhere, which needs no
   token there), the event streams and the web files; any Host header; CORS, rate and size
   limits (`api.gateway`). Nothing that writes as this node's author or changes its settings.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Final

import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from p2pcomments.api import pages
from p2pcomments.api.actions import (
    ACTIONS,
    ACTIONS_BY_NAME,
    OPERATION_MEDIA_TYPE,
    OPERATIONS_MEDIA_TYPE,
    Action,
)
from p2pcomments.api.bundle import BUNDLE_MEDIA_TYPE, MAX_BUNDLE_BYTES
from p2pcomments.api.errors import BadRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from p2pcomments.api.event_stream import EventStream, sse_event
from p2pcomments.api.gateway import GatewayGuard, GatewayLimits
from p2pcomments.api.ids import read_id
from p2pcomments.api.inbox_routes import feed_routes, inbox_routes
from p2pcomments.api.openapi import openapi_document
from p2pcomments.api.rendered import (
    Rendered,
    accepts_gzip,
    documents_of,
    encode_html,
    ready_or_version,
    render_json,
)
from p2pcomments.api.representations import change_json
from p2pcomments.api.request_body import parse_fields, parse_query
from p2pcomments.api.web_routes import web_routes
from p2pcomments.core.ops import Kind
from p2pcomments.core.textform import TextKind
from p2pcomments.errors import NotFound, P2PCommentsError

if TYPE_CHECKING:
    from p2pcomments.node import Node, ThreadChange

__all__ = ["MAX_JSON_BODY_BYTES", "build_app"]

# A comment body at its limit (32 KiB of UTF-8, `core.ops.MAX_BODY_BYTES`) fits however a client
# escapes it: JSON's longest escape, \u00XX, takes 6 bytes for 1.
MAX_JSON_BODY_BYTES: Final = 256 * 1024
MAX_EXPORT_BYTES: Final = 512 * 1024 * 1024  # a WordPress or Disqus export (POST /api/import/…)
XML_MEDIA_TYPE: Final = "application/xml"

_log = logging.getLogger(__name__)
_LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


_LONG_LIST: Final = 500  # entries in a list past which a document renders off the loop
_THREADS_PER_PAGE: Final = 100  # on the server-rendered thread list at /t/


def _long(document: dict[str, Any] | list[Any]) -> bool:
    values = document.values() if isinstance(document, dict) else [document]
    return any(isinstance(value, list) and len(value) > _LONG_LIST for value in values)


def _rendered_response(request: Request, rendered: Rendered, status: int) -> Response:
    """A document of `api.rendered`: 304 to a reader holding it as it stands, else gzipped to
    one whose Accept-Encoding takes it (its rules 5-6)."""
    headers = {"ETag": rendered.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if rendered.matches(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    if accepts_gzip(request.headers.get("accept-encoding", "")):
        headers["Content-Encoding"] = "gzip"
        body = rendered.gzipped
    else:
        body = rendered.body
    return Response(body, status_code=status, media_type=rendered.media_type, headers=headers)


def _error_response(
    status: int, code: str, message: str, extra: dict[str, Any] | None = None
) -> JSONResponse:
    # An error may be sent before the request body was read (401, 413, an unknown route); the
    # connection can't carry another request then, and saying so keeps clients from reusing it.
    headers = {"Connection": "close"}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    # A message may quote what the client sent, lone surrogates (JSON "\ud800") included, which
    # UTF-8 can't encode: escape them rather than fail while reporting the error.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse(
        {"error": {**(extra or {}), "code": code, "message": message}},
        status_code=status,
        headers=headers,
    )


async def _on_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, P2PCommentsError)
    return _error_response(error.http_status, error.reason, error.message, error.to_dict())


async def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    codes = {404: "not-found", 405: "method-not-allowed"}
    return _error_response(
        error.status_code, codes.get(error.status_code, "http-error"), str(error.detail)
    )


async def _on_gateway_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code in (404, 405):  # a route the gateway does not serve, for any method
        return _error_response(
            404,
            "not-found",
            f"{request.method} {request.url.path} is not served by a public gateway (the node's"
            " own API is on its local listener)",
        )
    return await _on_http_error(request, error)


async def _on_unexpected(request: Request, error: Exception) -> Response:
    return _error_response(500, "internal", "internal error; the daemon's log has the details")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is {declared} bytes, the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _HostGuard:
    """Rule 2: answer only requests addressed to this daemon by a local name or its own host."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] | None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.allowed_hosts is not None:
            host = ""
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value.decode("latin-1")
            hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if hostname.lower() not in self.allowed_hosts:
                response = _error_response(403, "bad-host", f"unexpected Host header {host!r}")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _ThreadEvents(EventStream["ThreadChange"]):
    """One ``operation`` event per change (``lagged`` if this reader fell behind and should
    re-read the thread). With ``threads``, the changes of those threads only (a page and its
    aliases)."""

    def __init__(
        self,
        node: Node,
        thread_id: bytes | None,
        closing: trio.Event,
        *,
        threads: frozenset[bytes] | None = None,
    ) -> None:
        super().__init__(closing)
        self.node = node
        self.thread_id = thread_id
        self.threads = threads

    def watch(self) -> AbstractAsyncContextManager[AsyncIterator[ThreadChange]]:
        return self.node.watch(self.thread_id)

    def event_for(self, change: ThreadChange) -> bytes | None:
        if self.threads is not None and not (change.lagged or change.thread_id in self.threads):
            return None
        if change.lagged:
            return sse_event("lagged", None, change_json(change, None, None))
        op = None if change.op_id is None else self.node.get_operation(change.op_id)
        name = None if op is None else self.node.replica.names().get(op.author)
        data = change_json(change, op, name)
        return sse_event("operation", data["id"], data)


async def _read_operations(request: Request) -> list[bytes]:
    """A submission's operations, as sent: one operation's bytes, or a gossip batch (§8.4)."""
    from p2pcomments.core.ops import MAX_OPERATION_BYTES
    from p2pcomments.net.errors import GossipPayloadError
    from p2pcomments.net.gossip_payload import MAX_PAYLOAD_BYTES, decode_batch

    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == OPERATION_MEDIA_TYPE:
        try:
            return [await _read_body(request, MAX_OPERATION_BYTES)]
        except PayloadTooLarge as error:
            raise PayloadTooLarge(error.message, reason="oversize") from None
    if media_type == OPERATIONS_MEDIA_TYPE:
        try:
            payload = await _read_body(request, MAX_PAYLOAD_BYTES)
        except PayloadTooLarge as error:
            raise PayloadTooLarge(error.message, reason="oversize") from None
        try:
            return decode_batch(payload)
        except GossipPayloadError as error:
            raise BadRequest(
                f"not a batch of operations (SPEC §8.4): {error}", reason="bad-batch"
            ) from None
    raise UnsupportedMediaType(
        f"send one operation as {OPERATION_MEDIA_TYPE} or a batch as {OPERATIONS_MEDIA_TYPE},"
        f" not {media_type or 'no Content-Type'}"
    )


def build_app(
    node: Node,
    *,
    token: str,
    closing: trio.Event,
    allowed_hosts: frozenset[str] | None = _LOCAL_HOSTS,
    gateway: GatewayLimits | None = None,
) -> ASGIApp:
    """The API for ``node``. ``allowed_hosts`` None accepts any Host header (rule 2 off);
    ``gateway`` makes it the public gateway instead (rule 6)."""
    expected = f"Bearer {token}".encode()

    def check_token(request: Request) -> None:
        given = request.headers.get("authorization", "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, expected):
            raise Unauthorized(
                "writes need the daemon's token: 'Authorization: Bearer <token>' "
                "(the token is in api.json in the data directory)"
            )

    def endpoint(action: Action) -> Any:
        async def handle(request: Request) -> Response:
            if action.writes and gateway is None:
                check_token(request)
            params: dict[str, Any] = dict(request.path_params)
            params.update(parse_query(request.query_params.multi_items(), action.query))
            if action.consumes == "json":
                raw = await _read_body(request, MAX_JSON_BODY_BYTES)
                params.update(parse_fields(raw, action.fields))
            elif action.consumes == "bundle":
                params["bundle"] = await _read_body(request, MAX_BUNDLE_BYTES)
            elif action.consumes == "operations":
                params["operations"] = await _read_operations(request)
            elif action.consumes == "export":
                params["export"] = await _read_body(request, MAX_EXPORT_BYTES)
            result = await action.handler(node, **params)
            if action.produces in ("xml", "bundle"):
                media_type = XML_MEDIA_TYPE if action.produces == "xml" else BUNDLE_MEDIA_TYPE
                if isinstance(result, bytes):
                    return Response(result, status_code=action.status, media_type=media_type)
                # Streamed (GET /api/export, /api/export/wxr): a failure midway ends the response
                # without its last chunk, which a client reads as an incomplete body.
                return StreamingResponse(result, status_code=action.status, media_type=media_type)
            if isinstance(result, Rendered):  # a big page, rendered once for every reader
                return _rendered_response(request, result, action.status)
            if not isinstance(result, dict | list):  # streamed JSON (GET /api/export/json)
                return StreamingResponse(
                    result, status_code=action.status, media_type="application/json"
                )
            if not _long(result):
                return JSONResponse(result, status_code=action.status)
            # In a worker thread: a list of 10,000 threads is 42-64 ms of json.dumps (the hop
            # costs ~0.2 ms, 20 times rendering a small document, so small ones stay here),
            # in slices, which let the loop run between them (api.rendered rule 4).
            body = await trio.to_thread.run_sync(render_json, result)
            return Response(body, status_code=action.status, media_type="application/json")

        handle.__name__ = action.name
        return handle

    async def thread_events(request: Request) -> Response:
        thread_id = await read_id(node, request.path_params["thread"], TextKind.THREAD)
        _, kind = node.resolve(thread_id)
        if kind is not Kind.THREAD:
            raise NotFound(f"{request.path_params['thread']} is not a thread")
        return _ThreadEvents(node, thread_id, closing)

    async def all_events(request: Request) -> Response:
        return _ThreadEvents(node, None, closing)

    async def page_events(request: Request) -> Response:
        from p2pcomments.api.handlers import page_threads

        query = parse_query(request.query_params.multi_items(), ACTIONS_BY_NAME["page"].query)
        url, owner, alias = query["url"], query["owner"], query["alias"]
        assert isinstance(url, str)
        assert isinstance(owner, str)
        assert isinstance(alias, list)
        threads = page_threads(url=url, owner=owner, alias=alias)
        return _ThreadEvents(node, None, closing, threads=threads)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def index_page(request: Request) -> Response:
        # A page at a time: 10,000 threads made a 2.5 MB page that took 200-280 ms to render.
        from p2pcomments.api.thread_paging import page_of, read_cursor

        after = request.query_params.get("after")
        try:
            place = None if after is None else read_cursor(after)
        except P2PCommentsError as error:
            return HTMLResponse(pages.error_page(error.message), status_code=error.http_status)
        shown, cursor = page_of(await node.read_threads(), limit=_THREADS_PER_PAGE, after=place)
        return HTMLResponse(pages.index_page(shown, first=after is None, next_cursor=cursor))

    async def thread_page(request: Request) -> Response:
        try:
            thread_id = await read_id(node, request.path_params["thread"], TextKind.THREAD)
            key = ("thread page", thread_id)
            async with node.loading([thread_id]):  # a cold thread is read off the loop
                completeness = node.thread_completeness(thread_id)  # NotFound if not held
                # A popular post's page, rendered once for all its readers (api.rendered), like
                # its JSON: made of the view (the names, its operations, which its completeness
                # counts) and the completeness alone.
                big = len(node.replica.thread(thread_id)) > _LONG_LIST
                if big:
                    ready, version = await ready_or_version(
                        node,
                        key,
                        lambda: (node.replica.names_version, node.thread_completeness(thread_id)),
                    )
                    if ready is not None:
                        return _rendered_response(request, ready, 200)
                    completeness = version[1]  # as the version read it
                view = node.thread_view(thread_id)
        except P2PCommentsError as error:
            return HTMLResponse(pages.error_page(error.message), status_code=error.http_status)
        if not big or len(view.comments) <= _LONG_LIST:
            return HTMLResponse(pages.thread_page(view, completeness))
        make = functools.partial(pages.thread_page, view, completeness)
        rendered = await documents_of(node).render(
            key, version, make, encode=encode_html, media_type="text/html"
        )
        return _rendered_response(request, rendered, 200)

    if gateway is not None:
        public: list[BaseRoute] = [
            Route(action.path, endpoint(action), methods=[action.method], name=action.name)
            for action in ACTIONS
            if action.public
        ]
        public += [
            Route("/api/threads/{thread}/events", thread_events, methods=["GET"]),
            Route("/api/page/events", page_events, methods=["GET"]),
            Route("/api/openapi.json", openapi, methods=["GET"]),
        ]
        public += feed_routes(node)  # the thread and site feeds; never the inbox
        public += web_routes(token=None)  # never the token on a public listener
        public_app = Starlette(
            routes=public,
            exception_handlers={
                P2PCommentsError: _on_error,
                HTTPException: _on_gateway_http_error,
                Exception: _on_unexpected,
            },
        )
        return GatewayGuard(public_app, gateway)

    routes: list[BaseRoute] = [
        Route(action.path, endpoint(action), methods=[action.method], name=action.name)
        for action in ACTIONS
    ]
    routes += [
        Route("/api/page/events", page_events, methods=["GET"]),
        Route("/api/threads/{thread}/events", thread_events, methods=["GET"]),
        Route("/api/events", all_events, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        Route("/t/", index_page, methods=["GET"]),
        Route("/t/{thread}", thread_page, methods=["GET"]),
    ]
    routes += inbox_routes(node, token=token, closing=closing)  # inbox events, Atom feeds
    routes += web_routes(token=token)  # the reader UI at /, /embed.js and its modules
    app = Starlette(
        routes=routes,
        exception_handlers={
            P2PCommentsError: _on_error,
            HTTPException: _on_http_error,
            Exception: _on_unexpected,
        },
    )
    return _HostGuard(app, allowed_hosts)
