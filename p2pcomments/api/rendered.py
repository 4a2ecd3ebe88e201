"""Big JSON documents rendered once and given to every reader while what they are made of stays
the same (issue 14: a popular post).

Rules:

1. Every widget open on a page reloads it after each change (`GET /api/page`; readers of the
   thread itself, `GET /api/threads/{id}` and its HTML page `/t/{id}`, share theirs the same
   way): for a post of
   10,000 comments, 20 readers reloading at once after one new comment cost a daemon 3.4-3.5 s
   of CPU, now 0.32-0.35 s (scripts/bench_readers.py). A document is rendered here
   (in a worker thread) once per ``version``: whatever the caller reads on the loop, in the same
   step as what it makes the document of, that changes whenever the document would (compared
   with ``==``).
2. Readers asking for a document being rendered at their version wait for it rather than render
   it again; if that render fails, each renders its own.
3. At most `MAX_BYTES` of documents are kept, the least recently given dropped first; a document
   bigger than that is rendered for its reader and not kept.
4. `render_json` gives the bytes `JSONResponse` would, a long list a slice at a time (and each
   slice encoded to UTF-8 apart): the C encoder holds the GIL for a whole call, so one call for
   a page of 10,000 comments, though in a worker thread, kept the loop from running as long
   (scripts/bench_loop.py --scenario popular-thread: how late the loop wakes a 1 ms ticker).
5. A rendered document is also kept gzipped (once, in the same worker thread: zlib lets go of
   the GIL), for the readers whose Accept-Encoding takes it: a page of 10,000 comments is
   11.3 MB of JSON, 2.0 MB gzipped, sent to every reader after each comment.
6. It carries a weak ETag (a digest of its JSON), and readers are told to ask again each time
   (``Cache-Control: no-cache``): a reader whose browser holds the page as it stands is
   answered 304 and nothing else, however often it comes back to the post.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio

if TYPE_CHECKING:
    from p2pcomments.node import Node

__all__ = [
    "MAX_BYTES",
    "Rendered",
    "RenderedDocuments",
    "accepts_gzip",
    "documents_of",
    "encode_html",
    "ready_or_version",
    "render_json",
]

MAX_BYTES: Final = 64 * 1024 * 1024  # ~10 pages of 10,000 comments
V = TypeVar("V")
_SLICE: Final = 256  # list items rendered in one call of the C encoder (rule 4)
_GZIP_LEVEL: Final = 1  # rule 5: half the time of 5, 12% more bytes (7.5 MB of prose: 1.08 MB)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A document as a response carries it, and gzipped (rule 5): the API app sends one or the
    other as they are."""

    body: bytes
    gzipped: bytes
    etag: str  # weak (rule 6): the same for both encodings
    media_type: str

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped)

    def matches(self, if_none_match: str) -> bool:
        """Whether an If-None-Match header names this document (RFC 9110 13.1.2: weak
        comparison, or ``*``)."""
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or self.etag.removeprefix("W/") in tags


def render_json(document: dict[str, Any] | list[Any]) -> bytes:
    """``document`` as `JSONResponse` renders it, byte for byte, its long lists (the document
    itself, or its top-level values) a slice at a time, each encoded to UTF-8 apart (rule 4)."""
    if isinstance(document, list):
        return b"".join(_list(document))
    parts = [b"{"]
    for index, (key, value) in enumerate(document.items()):
        parts.append(b"," if index else b"")
        parts.append(_dumps(key).encode("utf-8") + b":")
        parts.extend(_list(value) if isinstance(value, list) else [_dumps(value).encode("utf-8")])
    parts.append(b"}")
    return b"".join(parts)


def _list(items: list[Any]) -> list[bytes]:
    parts = [b"["]
    for start in range(0, len(items), _SLICE):
        parts.append(b"," if start else b"")
        parts.append(_dumps(items[start : start + _SLICE])[1:-1].encode("utf-8"))
    parts.append(b"]")
    return parts


def _dumps(value: object) -> str:  # `JSONResponse.render`'s settings
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    )


def _render(make: Callable[[], Any], encode: Callable[[Any], bytes], media_type: str) -> Rendered:
    body = encode(make())
    gzipped = gzip.compress(body, compresslevel=_GZIP_LEVEL, mtime=0)
    etag = f'W/"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    return Rendered(body, gzipped, etag, media_type)


def encode_html(page: str) -> bytes:
    """An HTML page as `HTMLResponse` sends it."""
    return page.encode("utf-8")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header takes gzip (RFC 9110 12.5.3): named, or else ``*``,
    with a q above 0."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[coding.lower()] = weight
    named = weights.get("gzip", weights.get("x-gzip"))
    return (named if named is not None else weights.get("*", 0.0)) > 0


class RenderedDocuments:
    """Documents by key (what was asked: a page's URL, owner and aliases), each with the version
    it was made at (module rules 1-3). Used from one trio loop."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._kept: OrderedDict[Hashable, tuple[object, Rendered]] = OrderedDict()
        self._rendering: dict[Hashable, tuple[object, trio.Event]] = {}

    async def ready(self, key: Hashable, version: object) -> Rendered | None:
        """The document kept for ``key`` at an equal ``version``, once rendered if it is being
        rendered (rule 2); None if there is none (then `render` it: no checkpoint was taken)."""
        while isinstance(found := self._found(key, version), trio.Event):
            await found.wait()  # then it is kept, or it failed and the caller renders
        return found

    async def ready_at(
        self, key: Hashable, version_of: Callable[[], V]
    ) -> tuple[Rendered | None, V]:
        """`ready` at the version ``version_of()`` reads, read again after each wait (waiting
        lets changes in), and that version, to render at if there is nothing ready."""
        version = version_of()
        while isinstance(found := self._found(key, version), trio.Event):
            await found.wait()
            version = version_of()
        return found, version

    def _found(self, key: Hashable, version: object) -> Rendered | trio.Event | None:
        """The document kept for ``key`` at ``version``, else the event its render at that
        version sets when done, else None."""
        kept = self._kept.get(key)
        if kept is not None and kept[0] == version:
            self._kept.move_to_end(key)
            return kept[1]
        rendering = self._rendering.get(key)
        return rendering[1] if rendering is not None and rendering[0] == version else None

    async def render(
        self,
        key: Hashable,
        version: object,
        make: Callable[[], Any],
        *,
        encode: Callable[[Any], bytes] = render_json,
        media_type: str = "application/json",
    ) -> Rendered:
        """The document ``make()`` (a pure function of what was read with ``version``: it runs
        in a worker thread) rendered by ``encode``, or the one kept for ``key`` at an equal
        ``version``."""
        ready = await self.ready(key, version)
        if ready is not None:
            return ready
        done = trio.Event()
        self._rendering[key] = (version, done)
        try:
            rendered = await trio.to_thread.run_sync(_render, make, encode, media_type)
            self._keep(key, version, rendered)
            return rendered
        finally:
            if self._rendering.get(key, (None, None))[1] is done:
                del self._rendering[key]
            done.set()

    def _keep(self, key: Hashable, version: object, rendered: Rendered) -> None:
        old = self._kept.pop(key, None)
        if old is not None:
            self._bytes -= old[1].size
        if rendered.size > self._max_bytes:
            return
        self._kept[key] = (version, rendered)
        self._bytes += rendered.size
        while self._bytes > self._max_bytes:
            _, (_, dropped) = self._kept.popitem(last=False)
            self._bytes -= dropped.size


_DOCUMENTS: weakref.WeakKeyDictionary[Node, RenderedDocuments] = weakref.WeakKeyDictionary()


def documents_of(node: Node) -> RenderedDocuments:
    """The documents rendered for ``node``'s readers (its API and its gateway share them)."""
    return _DOCUMENTS.setdefault(node, RenderedDocuments())


async def ready_or_version(
    node: Node, key: Hashable, version_of: Callable[[], V]
) -> tuple[Rendered | None, V]:
    """`RenderedDocuments.ready_at` of the documents rendered for ``node``'s readers."""
    return await documents_of(node).ready_at(key, version_of)
