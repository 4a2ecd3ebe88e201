"""Routes beside the action table: the inbox's event stream and the Atom feeds.

Rules:

1. ``GET /api/inbox/events`` streams server-sent events of this node's author's inbox: first a
   ``: watching`` comment line (no later entry is missed after it), then one ``entry`` event
   per new entry (its JSON, `api.inbox_json`), ``lagged`` when the reader fell behind (re-read
   ``GET /api/inbox``), ``: keepalive`` every 15 s; it ends when the client leaves or the
   daemon closes.
2. ``/feeds/thread/thr_….atom`` and ``/feeds/site/<site>.atom`` are public reads (served on the
   ``--public`` listener too: `feed_routes`). ``/feeds/inbox.atom`` is the author's own and is
   served on the local listener only, with the API token in ``?token=`` (what a feed reader can
   be given) or an ``Authorization: Bearer`` header; without it, 401.
3. Feed links point at the listener that served the feed; the feed's ``self`` link never
   carries the token.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Final

import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from p2pcomments.api.errors import Unauthorized
from p2pcomments.api.event_stream import EventStream, sse_event
from p2pcomments.api.feeds import ATOM_MEDIA_TYPE, inbox_feed, site_feed, thread_feed
from p2pcomments.api.ids import read_id
from p2pcomments.api.inbox_json import inbox_entry_json
from p2pcomments.core.textform import TextKind
from p2pcomments.errors import NotFound

if TYPE_CHECKING:
    from p2pcomments.node import Node
    from p2pcomments.node.inbox import InboxChange

__all__ = ["INBOX_EVENTS_PATH", "feed_routes", "inbox_routes"]

INBOX_EVENTS_PATH: Final = "/api/inbox/events"
_SUFFIX: Final = ".atom"


class _InboxEvents(EventStream["InboxChange"]):
    """Rule 1."""

    def __init__(self, node: Node, closing: trio.Event) -> None:
        super().__init__(closing)
        self.node = node

    def watch(self) -> AbstractAsyncContextManager[AsyncIterator[InboxChange]]:
        return self.node.watch_inbox()

    def event_for(self, change: InboxChange) -> bytes:
        if change.entry is None:
            return sse_event("lagged", None, {"lagged": True})
        data = inbox_entry_json(change.entry, read=False)
        return sse_event("entry", data["id"], data)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _self_url(request: Request) -> str:
    return _base_url(request) + request.url.path  # rule 3: no query, so never the token


def _feed_name(request: Request, what: str) -> str:
    name: str = request.path_params["name"]
    if not name.endswith(_SUFFIX) or len(name) == len(_SUFFIX):
        raise NotFound(f"a {what} feed is /feeds/{what}/<{what}>{_SUFFIX}", reason="not-found")
    return name[: -len(_SUFFIX)]


def _atom(body: bytes) -> Response:
    return Response(body, media_type=ATOM_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


def feed_routes(node: Node) -> list[Route]:
    """The public feeds (rule 2): one thread's, one site's."""

    async def thread(request: Request) -> Response:
        thread_id = await read_id(node, _feed_name(request, "thread"), TextKind.THREAD)
        async with node.loading([thread_id]):  # a cold thread is read off the loop
            view = node.thread_view(thread_id)
        return _atom(thread_feed(view, base_url=_base_url(request), self_url=_self_url(request)))

    async def site(request: Request) -> Response:
        name = _feed_name(request, "site")
        threads = [  # `Node.threads` is the most recently active first
            (summary.last_activity_ms, functools.partial(node.thread_view, summary.id))
            for summary in await node.read_threads()
            if summary.site == name
        ]
        body = site_feed(name, threads, base_url=_base_url(request), self_url=_self_url(request))
        return _atom(body)

    return [
        Route("/feeds/thread/{name}", thread, methods=["GET"]),
        Route("/feeds/site/{name}", site, methods=["GET"]),
    ]


def inbox_routes(node: Node, *, token: str, closing: trio.Event) -> list[Route]:
    """The local listener's routes of this module: the inbox's stream and feed, and the public
    feeds (rules 1-3)."""
    expected = token.encode()

    def check_token(request: Request) -> None:
        given = request.query_params.get("token")
        if given is None:
            header = request.headers.get("authorization", "")
            given = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode("utf-8", "replace"), expected):
            raise Unauthorized(
                "the inbox feed needs the daemon's token: /feeds/inbox.atom?token=<token> or"
                " 'Authorization: Bearer <token>' (the token is in api.json in the data directory)"
            )

    async def events(request: Request) -> Response:
        return _InboxEvents(node, closing)

    async def inbox(request: Request) -> Response:
        check_token(request)
        entries = node.inbox_entries()
        body = inbox_feed(
            node.author,
            node.replica.names().get(node.author),
            entries,
            base_url=_base_url(request),
            self_url=_self_url(request),
        )
        return _atom(body)

    return [
        Route(INBOX_EVENTS_PATH, events, methods=["GET"]),
        Route("/feeds/inbox.atom", inbox, methods=["GET"]),
        *feed_routes(node),
    ]
