"""The boundaries behind the HTTP listeners that `HttpApiBoundary` does not cover, each driven
in process through the ASGI interface of the real app of a real Node (real SQLite):

- ``event-streams``: the server-sent event routes (one thread's, a page's, every thread's, the
  inbox's) with hostile paths, query strings and ``Last-Event-ID`` headers; a stream that starts
  must say ``: watching`` first, and a change made after it must arrive as an event.
- ``feeds-inbox``: the Atom feeds (thread, site, the token-guarded inbox feed) and the inbox
  routes (``GET /api/inbox``, ``POST /api/inbox/read``); a 200 is well-formed Atom whose
  ``self`` link never carries the token.
- ``public-gateway``: the ``p2pc daemon --public`` app (`GatewayGuard`) from many client
  addresses: ``POST /api/ops`` with valid, re-signed and damaged operations and batches,
  preflights, long query strings, reads and routes that are not public. Every answer has the
  CORS header; a 429 has ``Retry-After``; no client gets more operations or requests accepted
  than its token buckets allow; every acknowledged operation is stored.
- ``import-file``: WordPress (WXR) and Disqus exports through `importers.import_export`, mutated
  (bytes, entity declarations and external references, huge fields, other encodings, parents
  that loop, duplicated ids): a typed `ExportFormatError` or a report, and every operation the
  importer made is accepted by the node (the importer never signs something invalid).

For all: no 500, no exception out of the app, no hang (an answer within 20 s), every error the
API's JSON error object with a code and a message; at the end every stored operation verifies
(independently: `independent_problem`) and the store passes its integrity check.
"""

from __future__ import annotations

import contextlib
import json
import random
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from p2pcomments.core.ops import CommentPayload, Operation, make_operation
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.errors import P2PCommentsError

from .boundaries import (
    _EXPORT_SEEDS,
    _JUNK_TEXT,
    KEYS,
    T0,
    Tally,
    _scratch_dir,
    _tick,
    corpus,
    far_future,
    independent_problem,
    mutate_bytes,
    mutate_text,
    structured_op_mutation,
)

TOKEN = "fuzz-token"
ANSWER_SECONDS = 20.0  # an answer (or a stream's first line) later than this is a hang
_ATOM = "{http://www.w3.org/2005/Atom}"


# -- driving an ASGI app -------------------------------------------------------------------------


@dataclass(slots=True)
class Answer:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    complete: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


async def call_app(
    app: Any,
    method: str,
    path: str,
    *,
    query: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    client: tuple[str, int] = ("127.0.0.1", 50000),
    keep_streaming: Any = None,
) -> Answer | None:
    """One request to ``app``; None when it did not answer within `ANSWER_SECONDS`.

    A response that streams (``more_body``) is read until ``keep_streaming(answer)`` returns
    False (default: at once), then the client goes away (``http.disconnect``) and the app must
    end the response."""
    import trio

    answer = Answer()
    gone = trio.Event()
    sent_request = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {bytes(k).lower(): bytes(v) for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            if message.get("body"):
                answer.chunks.append(bytes(message["body"]))
            if not message.get("more_body", False):
                answer.complete = True
                gone.set()
            elif keep_streaming is None or not await keep_streaming(answer):
                gone.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": query,
        "root_path": "",
        "headers": list(headers),
        "client": client,
        "server": ("127.0.0.1", 8080),
    }
    with trio.move_on_after(ANSWER_SECONDS) as timer:
        await app(scope, receive, send)
    if timer.cancelled_caught:
        return None
    return answer


def judge_error(tally: Tally, answer: Answer, example: object) -> str | None:
    """The error code of a >= 400 answer, after checking it is the API's JSON error object;
    None (and a crash counted) when it is not, or when it is a 500."""
    status = answer.status
    if status >= 500 and status not in (502, 503):
        tally.crash(f"HTTP {status}: {answer.body[:200]!r}", example)
        return None
    try:
        error = json.loads(answer.body)["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        tally.crash(f"HTTP {status} without the JSON error object", example)
        return None
    if not isinstance(message, str) or not message or not isinstance(code, str):
        tally.crash(f"HTTP {status} with an empty error message", example)
        return None
    return str(code)


@contextlib.asynccontextmanager
async def fuzz_node(prefix: str) -> AsyncIterator[Any]:
    """A node holding the corpus, a thread of its own with a comment and a reply to it by
    someone else (an inbox entry)."""
    from p2pcomments import open_node

    with tempfile.TemporaryDirectory(prefix=prefix, dir=_scratch_dir()) as tmp:
        async with open_node(Path(tmp) / "data", create_identity=True) as node:
            await node.ingest([*corpus().encoded, *(op.encoded for op in far_future())])
            own = await node.create_thread("Own thread", url="https://own.example/p")
            mine = await node.comment(own.id, "my comment")
            reply = make_operation(
                KEYS[1],
                CommentPayload(body="a reply to you"),
                timestamp_ms=mine.timestamp_ms + 1,
                thread=own.id,
                refs=(mine.id,),
            )
            await node.ingest([reply.encoded])
            node.fuzz_own = own  # type: ignore[attr-defined]
            node.fuzz_reply = reply  # type: ignore[attr-defined]
            yield node


async def verify_store(tally: Tally, node: Any) -> None:
    for data in node.export_operations():
        if independent_problem(data) is not None:
            tally.violate("the store holds an invalid operation", data)
    problems = await node.integrity_check()
    if problems:
        tally.violate(f"integrity check: {problems[:3]}", b"")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _query(pairs: Sequence[tuple[str, str]]) -> bytes:
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in pairs).encode("ascii")


def _header_value(rng: random.Random, good: str) -> bytes:
    roll = rng.random()
    if roll < 0.5:
        return good.encode("latin-1", "replace")
    if roll < 0.75:
        return mutate_text(rng, good).encode("utf-8", "surrogatepass")
    return rng.choice(
        (b"", b"\xff\xfe", b"x" * 10_000, b"1" * 30, b"-1", b"\x00", "é".encode(), b" , ,")
    )


class _Ids:
    """Text ids the requests aim at: valid ones, and the corpus's."""

    def __init__(self, node: Any) -> None:
        own = node.fuzz_own
        self.threads = [format_id(TextKind.THREAD, t.id) for t in corpus().threads] + [
            format_id(TextKind.THREAD, own.id),
            format_id(TextKind.THREAD, far_future()[0].id),
        ]
        self.comments = [format_id(TextKind.COMMENT, c.id) for c in corpus().comments]
        self.keys = [format_id(TextKind.KEY, bytes(k.verify_key)) for k in KEYS] + [
            format_id(TextKind.KEY, node.author)
        ]
        self.urls = [
            "https://own.example/p",
            "https://blog.example/hello",
            "https://far.example/post",
        ]

    def thread(self, rng: random.Random) -> str:
        roll = rng.random()
        if roll < 0.6:
            return rng.choice(self.threads)
        if roll < 0.85:
            return mutate_text(rng, rng.choice(self.threads + self.comments))
        return rng.choice(_JUNK_TEXT)

    def value(self, rng: random.Random, good: Sequence[str]) -> str:
        roll = rng.random()
        if roll < 0.6:
            return rng.choice(good)
        if roll < 0.85:
            return mutate_text(rng, rng.choice(good))
        return rng.choice(_JUNK_TEXT)


# -- boundary: server-sent event streams ----------------------------------------------------------


class EventStreamBoundary:
    """The SSE routes of the local listener (see the module's docstring)."""

    name = "event-streams"

    def __init__(self) -> None:
        self.tally = Tally(self.name)
        self.writes = 0

    def run(self, n: int, seed: int) -> Tally:
        import trio

        trio.run(self._run, n, seed)
        return self.tally

    async def _run(self, n: int, seed: int) -> None:
        import trio

        from p2pcomments.api.app import build_app

        rng = random.Random(seed)
        async with fuzz_node("p2pc-fuzz-sse-") as node:
            self.node = node
            self.ids = _Ids(node)
            app = build_app(node, token=TOKEN, closing=trio.Event())
            for _ in range(n):
                await self._one(app, rng)
                _tick(self.tally)
            await verify_store(self.tally, node)

    def _request(self, rng: random.Random) -> tuple[str, str, list[tuple[str, str]]]:
        """(route kind, path, query pairs)."""
        kind = rng.choice(("thread", "thread", "page", "all", "inbox"))
        pairs: list[tuple[str, str]] = []
        if kind == "thread":
            path = f"/api/threads/{_quote(self.ids.thread(rng))}/events"
        elif kind == "page":
            path = "/api/page/events"
            for name, good in (
                ("url", self.ids.urls),
                ("owner", self.ids.keys),
                ("alias", self.ids.urls),
            ):
                if rng.random() < (0.9 if name == "url" else 0.5):
                    pairs.append((name, self.ids.value(rng, good)[:3000]))
            if rng.random() < 0.2 and pairs:
                pairs.append(rng.choice(pairs))  # given twice
        elif kind == "all":
            path = "/api/events"
        else:
            path = "/api/inbox/events"
        if rng.random() < 0.15:
            pairs += [
                (rng.choice(_JUNK_TEXT), rng.choice(_JUNK_TEXT)) for _ in range(rng.randrange(1, 4))
            ]
        if rng.random() < 0.03:
            kind, path = "mutated", mutate_text(rng, path)  # perhaps no event route at all
        return kind, path, pairs

    async def _one(self, app: Any, rng: random.Random) -> None:
        tally = self.tally
        tally.tried += 1
        kind, path, pairs = self._request(rng)
        headers = [
            (
                b"host",
                b"127.0.0.1:8080" if rng.random() < 0.97 else _header_value(rng, "evil.example"),
            )
        ]
        if rng.random() < 0.7:
            for _ in range(rng.choice((1, 1, 2))):
                good = rng.choice([*self.ids.comments, "0", "42"])
                headers.append((b"last-event-id", _header_value(rng, good)))
        if rng.random() < 0.5:
            headers.append((b"accept", _header_value(rng, "text/event-stream")))
        if rng.random() < 0.2:
            headers.append((b"authorization", _header_value(rng, f"Bearer {TOKEN}")))
        method = "GET" if rng.random() < 0.96 else rng.choice(("POST", "HEAD", "DELETE", "PUT"))
        # Now and then, a change made once the stream is watching must arrive as an event.
        expect: list[Operation] = []
        own = format_id(TextKind.THREAD, self.node.fuzz_own.id)
        watches_own = kind == "all" or (kind == "thread" and path == f"/api/threads/{own}/events")
        if method == "GET" and watches_own and rng.random() < 0.15:
            expect.append(self._next_comment())

        async def keep_streaming(answer: Answer) -> bool:
            if not expect:
                return False
            if len(answer.chunks) == 1:  # ": watching": now write
                await self.node.ingest([expect[0].encoded])
                return True
            return not any(c.startswith(b"event:") for c in answer.chunks[1:])

        example = (method, path[:200], _query(pairs)[:200], headers[1:3])
        query = _query(pairs)
        try:
            answer = await call_app(
                app, method, path, query=query, headers=headers, keep_streaming=keep_streaming
            )
        except Exception as error:
            tally.crash(error, example)
            return
        if answer is None:
            tally.crash(
                f"{kind} stream: no answer or no end within {ANSWER_SECONDS:.0f} s", example
            )
            return
        if answer.status >= 400:
            code = judge_error(tally, answer, example)
            if code is not None:
                tally.reject(f"{answer.status} {code}")
            return
        streamed = answer.headers.get(b"content-type", b"").startswith(b"text/event-stream")
        if kind == "mutated" and not streamed:
            tally.reject(f"mutated path {answer.status}")
            return
        if answer.status != 200 or not streamed:
            tally.crash(
                f"HTTP {answer.status} {answer.headers.get(b'content-type')!r} from an event route",
                example,
            )
            return
        if not answer.chunks or answer.chunks[0] != b": watching\n\n":
            tally.violate("a stream did not start with ': watching'", example)
            return
        if not answer.complete:
            tally.violate("a stream did not end when its client left", example)
            return
        if expect:
            events = [c for c in answer.chunks[1:] if c.startswith(b"event:")]
            if not events or not _event_names_op(events, expect[0]):
                tally.violate("a change made after ': watching' did not arrive", example)
                return
            tally.notes["a change made while watching arrived as an event"] += 1
        tally.accept()

    def _next_comment(self) -> Operation:
        self.writes += 1
        own = self.node.fuzz_own
        return make_operation(
            KEYS[2],
            CommentPayload(body=f"live comment {self.writes}"),
            timestamp_ms=T0 + 2 * 10**7 + self.writes,
            thread=own.id,
            refs=(own.id,),
        )


def _event_names_op(events: list[bytes], op: Operation) -> bool:
    wanted = format_id(TextKind.COMMENT, op.id)
    for chunk in events:
        for line in chunk.decode("utf-8").splitlines():
            if line.startswith("data: ") and wanted in line:
                json.loads(line[6:])
                return True
    return False


# -- boundary: the Atom feeds and the inbox routes ----------------------------------------------


class FeedsInboxBoundary:
    """The feeds and inbox routes of the local listener (see the module's docstring)."""

    name = "feeds-inbox"

    def __init__(self) -> None:
        self.tally = Tally(self.name)

    def run(self, n: int, seed: int) -> Tally:
        import trio

        trio.run(self._run, n, seed)
        return self.tally

    async def _run(self, n: int, seed: int) -> None:
        import trio

        from p2pcomments.api.app import build_app

        rng = random.Random(seed)
        async with fuzz_node("p2pc-fuzz-feeds-") as node:
            self.node = node
            self.ids = _Ids(node)
            self.entries = [
                format_id(TextKind.COMMENT, node.fuzz_reply.id),
                *self.ids.comments,
            ]
            app = build_app(node, token=TOKEN, closing=trio.Event())
            for _ in range(n):
                await self._one(app, rng)
                _tick(self.tally)
            await verify_store(self.tally, node)

    def _request(self, rng: random.Random) -> tuple[str, str, list[tuple[str, str]], bytes, str]:
        """(method, path, query pairs, body, what)."""
        what = rng.choice(("thread-feed", "site-feed", "inbox-feed", "inbox", "inbox-read"))
        pairs: list[tuple[str, str]] = []
        body = b""
        method = "GET"
        if what == "thread-feed":
            name = self.ids.thread(rng) + (
                ".atom" if rng.random() < 0.85 else rng.choice(("", ".xml", ".atom.atom"))
            )
            path = f"/feeds/thread/{_quote(name)}"
        elif what == "site-feed":
            site = self.ids.value(
                rng, ["blog.example", "own.example", "far.example", "none.example"]
            )
            path = f"/feeds/site/{_quote(site + ('.atom' if rng.random() < 0.85 else ''))}"
        elif what == "inbox-feed":
            path = "/feeds/inbox.atom"
            if rng.random() < 0.7:
                pairs.append(("token", self.ids.value(rng, [TOKEN])))
        elif what == "inbox":
            path = "/api/inbox"
            for name, good in (
                ("unread", ["true", "false", "1", "0"]),
                ("limit", ["1", "10", "0", "100000"]),
                ("thread", self.ids.threads),
            ):
                if rng.random() < 0.5:
                    pairs.append((name, self.ids.value(rng, good)))
        else:
            method, path = "POST", "/api/inbox/read"
            body = self._read_body(rng)
        if rng.random() < 0.1:
            pairs += [
                (rng.choice(_JUNK_TEXT), rng.choice(_JUNK_TEXT)) for _ in range(rng.randrange(1, 3))
            ]
        if rng.random() < 0.05 and pairs:
            pairs.append(rng.choice(pairs))
        if rng.random() < 0.03:
            method = rng.choice(("POST", "PUT", "GET", "DELETE"))
        return method, path, pairs, body, what

    def _read_body(self, rng: random.Random) -> bytes:
        document: dict[str, Any] = {}
        roll = rng.random()
        if roll < 0.4:
            document["ids"] = [self.ids.value(rng, self.entries) for _ in range(rng.randrange(4))]
        elif roll < 0.6:
            document["all"] = rng.choice((True, False, "yes", 1, None))
        elif roll < 0.7:
            document[rng.choice(("ids", "thread", "", "before"))] = rng.choice(
                (None, 1, "x", [1], {}, ["cmt_"] * 2000)
            )
        text = json.dumps(document).encode()
        return mutate_bytes(rng, text) if rng.random() < 0.2 else text

    async def _one(self, app: Any, rng: random.Random) -> None:
        tally = self.tally
        tally.tried += 1
        method, path, pairs, body, what = self._request(rng)
        headers = [(b"host", b"127.0.0.1:8080")]
        authorized = False
        if what in ("inbox-read",) or rng.random() < 0.3:
            value = _header_value(rng, f"Bearer {TOKEN}")
            authorized = value == f"Bearer {TOKEN}".encode()
            headers.append((b"authorization", value))
        if body:
            headers.append((b"content-type", b"application/json"))
        query = _query(pairs)
        example = (method, path[:200], query[:200], body[:200])
        try:
            answer = await call_app(app, method, path, query=query, headers=headers, body=body)
        except Exception as error:
            tally.crash(error, example)
            return
        if answer is None:
            tally.crash(f"{what}: no answer within {ANSWER_SECONDS:.0f} s", example)
            return
        token_given = authorized or any(k == "token" and v == TOKEN for k, v in pairs)
        if answer.status >= 400:
            code = judge_error(tally, answer, example)
            if code is None:
                return
            if answer.status == 401 and token_given and what == "inbox-feed" and method == "GET":
                only = [v for k, v in pairs if k == "token"]
                if not only or only[0] == TOKEN:  # the first ?token= is the one read
                    tally.violate("the inbox feed refused the right token", example)
                    return
            tally.reject(f"{what} {answer.status} {code}")
            return
        if what == "inbox-feed" and method == "GET" and not token_given:
            tally.violate("the inbox feed was served without the token", example)
            return
        if what.endswith("feed") and method == "GET":
            problem = _atom_problem(answer.body)
            if problem:
                tally.violate(f"a feed that is not Atom: {problem}", example)
                return
        tally.accept()


def _atom_problem(body: bytes) -> str | None:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        return f"not well-formed: {error}"
    if root.tag != f"{_ATOM}feed":
        return f"root {root.tag}"
    for link in root.iter(f"{_ATOM}link"):
        if "token" in (link.get("href") or ""):
            return "a link carries the token"
    return None


# -- boundary: the public gateway ---------------------------------------------------------------


class PublicGatewayBoundary:
    """``p2pc daemon --public``'s app (see the module's docstring)."""

    name = "public-gateway"
    CLIENTS = 400

    def __init__(self) -> None:
        self.tally = Tally(self.name)
        self.fresh = 0
        self.accepted_ops: Counter[str] = Counter()
        self.accepted_requests: Counter[str] = Counter()

    def run(self, n: int, seed: int) -> Tally:
        import trio

        trio.run(self._run, n, seed)
        return self.tally

    async def _run(self, n: int, seed: int) -> None:
        import trio

        from p2pcomments.api.app import build_app
        from p2pcomments.api.gateway import GatewayLimits

        rng = random.Random(seed)
        self.limits = GatewayLimits()
        async with fuzz_node("p2pc-fuzz-gateway-") as node:
            self.node = node
            self.ids = _Ids(node)
            app = build_app(node, token=TOKEN, closing=trio.Event(), gateway=self.limits)
            self.started = trio.current_time()
            for _ in range(n):
                await self._one(app, rng)
                _tick(self.tally)
            self._check_budgets(trio.current_time() - self.started)
            await verify_store(self.tally, node)

    def _check_budgets(self, seconds: float) -> None:
        """Rule 2 of the gateway: no client had more accepted than its buckets hold."""
        limits = self.limits
        most_ops = limits.ops_burst + limits.ops_per_minute * seconds / 60 + 1
        most_requests = limits.request_burst + limits.requests_per_minute * seconds / 60 + 1
        for client, count in self.accepted_ops.items():
            if count > most_ops:
                self.tally.violate(
                    f"a client had {count} operations accepted, over its budget of {most_ops:.0f}",
                    client,
                )
        for client, count in self.accepted_requests.items():
            if count > most_requests:
                self.tally.violate(
                    f"a client had {count} requests answered, over its budget"
                    f" of {most_requests:.0f}",
                    client,
                )

    def _submission(self, rng: random.Random) -> tuple[bytes, bytes, list[Operation], int]:
        """(content type, body, the valid fresh operations in it, how many operations)."""
        from p2pcomments.api.actions import OPERATION_MEDIA_TYPE, OPERATIONS_MEDIA_TYPE
        from p2pcomments.core.ops import MAX_OPERATION_BYTES
        from p2pcomments.net.gossip_payload import MAX_PAYLOAD_BYTES, encode_batch

        batch = rng.random() < 0.4
        items: list[bytes] = []
        fresh: list[Operation] = []
        for _ in range(rng.choice((1, 1, 2, 5, 20)) if batch else 1):
            roll = rng.random()
            if roll < 0.45:
                self.fresh += 1
                thread = rng.choice([*corpus().threads, self.node.fuzz_own])
                op = make_operation(
                    KEYS[self.fresh % 3],
                    CommentPayload(body=f"gateway comment {self.fresh}"),
                    timestamp_ms=T0 + 3 * 10**7 + self.fresh,
                    thread=thread.id,
                    refs=(thread.id,),
                )
                fresh.append(op)
                items.append(op.encoded)
            elif roll < 0.8:
                items.append(structured_op_mutation(rng, corpus().ops))
            else:
                items.append(mutate_bytes(rng, rng.choice(corpus().encoded)))
        items = [item or b"\x00" for item in items]  # a batch can't hold an empty item
        body = encode_batch(items) if batch else items[0]
        media = OPERATIONS_MEDIA_TYPE if batch else OPERATION_MEDIA_TYPE
        roll = rng.random()
        if roll < 0.1:  # the same type spelled otherwise: case, parameters, spaces
            media = rng.choice((media.upper(), media.title(), f" {media} ", f"{media}; charset=x"))
        elif roll < 0.13:
            media = rng.choice(
                ("application/octet-stream", "", "text/plain", OPERATIONS_MEDIA_TYPE)
            )
            fresh = []  # not sent as what they are: no verdict on them
        if rng.random() < 0.1:
            body = mutate_bytes(rng, body)
            fresh = []
        elif rng.random() < 0.02:
            body = b"\x91" + b"\x00" * (MAX_PAYLOAD_BYTES if batch else MAX_OPERATION_BYTES)
            fresh = []
        return media.encode("latin-1"), body, fresh, len(items)

    async def _one(self, app: Any, rng: random.Random) -> None:
        tally = self.tally
        tally.tried += 1
        roll = rng.random()
        if roll < 0.4:  # a few clients send most requests: their budgets run out
            client = f"192.0.2.{rng.randrange(4)}"
        elif roll < 0.7:
            client = f"203.0.113.{rng.randrange(250)}"
        else:
            client = f"2001:db8::{rng.randrange(self.CLIENTS):x}"
        headers = [(b"host", _header_value(rng, "comments.example"))]
        if rng.random() < 0.2:  # not trusted by default: must not change whose budget is used
            headers.append((b"x-forwarded-for", _header_value(rng, "198.51.100.7")))
        if rng.random() < 0.3:
            headers.append((b"origin", _header_value(rng, "https://blog.example")))
        roll = rng.random()
        method, path, query, body = "GET", "/api/threads", b"", b""
        fresh: list[Operation] = []
        ops_in = 0
        media = b""
        if roll < 0.45:
            method, path = "POST", "/api/ops"
            media, body, fresh, ops_in = self._submission(rng)
            headers.append((b"content-type", media))
        elif roll < 0.52:
            method, path = "OPTIONS", rng.choice(("/api/ops", "/api/threads", "/x", "/api/inbox"))
        elif roll < 0.57:
            query = b"url=" + b"a" * rng.choice((8 * 1024 - 3, 8 * 1024 + 1, 100_000))
            path = rng.choice(("/api/threads", "/api/page", "/api/ops"))
        elif roll < 0.8:
            thread = _quote(self.ids.thread(rng))
            path = rng.choice(
                (
                    f"/api/threads/{thread}",
                    "/api/threads",
                    f"/feeds/thread/{thread}.atom",
                    "/api/openapi.json",
                    "/api/id",
                    f"/api/comments/{_quote(self.ids.value(rng, self.ids.comments))}",
                )
            )
            if path == "/api/threads" or rng.random() < 0.3:
                query = _query([("url", self.ids.value(rng, self.ids.urls))])
        elif roll < 0.9:  # not public: never served here
            method, path = rng.choice(
                (
                    ("POST", "/api/threads"),
                    ("GET", "/api/inbox"),
                    ("GET", "/feeds/inbox.atom"),
                    ("POST", "/api/import"),
                    ("GET", "/api/export"),
                    ("GET", "/api/events"),
                    ("POST", f"/api/comments/{_quote(self.ids.comments[0])}/replies"),
                    ("PUT", "/api/profile"),
                )
            )
            body = b'{"title": "x", "body": "y"}'
            headers.append((b"authorization", f"Bearer {TOKEN}".encode()))
        else:
            path = rng.choice(
                (f"/api/threads/{_quote(self.ids.thread(rng))}/events", "/api/page/events")
            )
            if path == "/api/page/events":
                query = _query([("url", self.ids.value(rng, self.ids.urls))])
        example = (client, method, path[:200], query[:100], media, body[:200])
        try:
            answer = await call_app(
                app, method, path, query=query, headers=headers, body=body, client=(client, 40000)
            )
        except Exception as error:
            tally.crash(error, example)
            return
        if answer is None:
            tally.crash(f"no answer within {ANSWER_SECONDS:.0f} s", example)
            return
        if answer.headers.get(b"access-control-allow-origin") != b"*":
            tally.violate(f"HTTP {answer.status} without Access-Control-Allow-Origin: *", example)
            return
        if answer.status != 429 and method != "OPTIONS":
            self.accepted_requests[client] += 1
        if answer.status >= 400:
            code = judge_error(tally, answer, example)
            if code is None:
                return
            if answer.status == 429:
                retry = answer.headers.get(b"retry-after", b"")
                if not retry.isdigit() or int(retry) < 1:
                    tally.violate(f"429 with Retry-After {retry!r}", example)
                    return
            if fresh and code in _BYTE_LEVEL_CODES and len(fresh) == ops_in:
                tally.violate(f"valid operations were refused as {code}", fresh[0].encoded)
                return
            tally.reject(f"{method if method != 'GET' else ''} {answer.status} {code}".strip())
            return
        if method == "POST" and path == "/api/ops":
            # A batch over the bucket's capacity costs the capacity (`TokenBucket.take`).
            self.accepted_ops[client] += min(ops_in, self.limits.ops_burst)
            for op in fresh:
                if self.node.get_operation(op.id) is None:
                    tally.violate("an acknowledged submitted operation is not stored", op.encoded)
                    return
        tally.accept()


_BYTE_LEVEL_CODES = frozenset(
    {"malformed", "non-canonical", "bad-signature", "bad-batch", "oversize", "bad-field"}
)


# -- boundary: import files ---------------------------------------------------------------------

_WXR_COMMENT = (
    "<wp:comment><wp:comment_id>{id}</wp:comment_id><wp:comment_author>{author}"
    "</wp:comment_author><wp:comment_author_url>{url}</wp:comment_author_url>"
    "<wp:comment_date_gmt>{date}</wp:comment_date_gmt>"
    "<wp:comment_content><![CDATA[{body}]]></wp:comment_content>"
    "<wp:comment_approved>{approved}</wp:comment_approved>"
    "<wp:comment_parent>{parent}</wp:comment_parent></wp:comment>"
)
_WXR_HEAD = (
    '<?xml version="1.0" encoding="{encoding}"?>{doctype}\n<rss version="2.0"'
    ' xmlns:wp="http://wordpress.org/export/1.2/"'
    ' xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
    "<title>Blog</title><link>https://blog.example</link>"
)
_WXR_ITEM = (
    "<item><title>{title}</title><link>{link}</link><wp:post_id>{post}</wp:post_id>"
    "<wp:status>{status}</wp:status>{comments}</item>"
)
_DISQUS_POST = (
    '<post dsq:id="{id}"><message><![CDATA[{body}]]></message><createdAt>{date}</createdAt>'
    "<isDeleted>{deleted}</isDeleted><isSpam>{spam}</isSpam>"
    '<author><name>{author}</name></author><thread dsq:id="{thread}"/>{parent}</post>'
)
_DOCTYPES = (
    "",
    "",
    '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">',
    '<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>',
    "<!DOCTYPE rss>",
)


class ImportFileBoundary:
    """WordPress and Disqus exports into a real node (see the module's docstring)."""

    name = "import-file"

    def __init__(self) -> None:
        self.tally = Tally(self.name)

    def run(self, n: int, seed: int) -> Tally:
        import trio

        trio.run(self._run, n, seed)
        return self.tally

    async def _run(self, n: int, seed: int) -> None:
        rng = random.Random(seed)
        async with fuzz_node("p2pc-fuzz-import-") as node:
            self.node = node
            self.file = (
                Path(tempfile.mkdtemp(prefix="p2pc-fuzz-import-", dir=_scratch_dir()))
                / "export.xml"
            )
            try:
                for _ in range(n):
                    await self._one(rng)
                    _tick(self.tally)
            finally:
                import shutil

                shutil.rmtree(self.file.parent, ignore_errors=True)
            await verify_store(self.tally, node)

    def _text(self, rng: random.Random, good: str) -> str:
        roll = rng.random()
        if roll < 0.6:
            return good
        return rng.choice(
            (
                "",
                "x" * rng.choice((300, 70_000, 1_100_000)),
                "&amp;&lt;b&gt;bold&lt;/b&gt;",
                "&#0;",
                "&#xD800;",
                "&#x1F600;",
                "&undefined;",
                "&e;",
                "&b;",
                "\u202e\u0301é",
                "]]>",
                "<b>inline</b>",
                "<script>alert(1)</script>",
                "line\r\nbreak\x0b",
                "e\u0301" * 100,
                mutate_text(rng, good),
            )
        )

    def _wordpress(self, rng: random.Random) -> tuple[str, int]:
        """A WXR document and how many approved, well-formed comments it holds."""
        items = []
        expected = 0
        for post in range(1, rng.choice((1, 1, 2, 4)) + 1):
            comments = []
            ids = list(range(1, rng.choice((0, 1, 3, 8)) + 1))
            for cid in ids:
                parent = rng.choice([0, 0, *ids, cid, 999]) if rng.random() < 0.4 else 0
                approved = rng.choice(("1", "1", "1", "0", "spam", "trash", "x"))
                comments.append(
                    _WXR_COMMENT.format(
                        id=self._text(rng, str(cid)),
                        author=self._text(rng, f"Ann {cid}"),
                        url=self._text(rng, "https://ann.example"),
                        date=self._text(rng, f"2020-01-0{1 + cid % 9} 03:04:05"),
                        body=self._text(rng, f"comment {cid} on post {post}"),
                        approved=approved,
                        parent=parent,
                    )
                )
            items.append(
                _WXR_ITEM.format(
                    title=self._text(rng, f"Post {post}"),
                    link=self._text(rng, f"https://blog.example/p{post}"),
                    post=self._text(rng, str(post)),
                    status=rng.choice(("publish", "publish", "draft", "")),
                    comments="".join(comments),
                )
            )
        head = _WXR_HEAD.format(
            encoding=rng.choice(("UTF-8", "UTF-8", "ISO-8859-1", "utf-16", "x")),
            doctype=rng.choice(_DOCTYPES),
        )
        return head + "".join(items) + "</channel></rss>", expected

    def _disqus(self, rng: random.Random) -> str:
        parts = [
            '<?xml version="1.0" encoding="utf-8"?>' + rng.choice(_DOCTYPES),
            '<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">',
        ]
        threads = list(range(1, rng.choice((1, 2, 3)) + 1))
        for t in threads:
            parts.append(
                f'<thread dsq:id="{t}"><link>{self._text(rng, f"https://blog.example/d{t}")}</link>'
                f"<title>{self._text(rng, f'Thread {t}')}</title></thread>"
            )
        posts = list(range(100, 100 + rng.choice((0, 1, 4, 10))))
        for p in posts:
            parent = ""
            if rng.random() < 0.4:
                parent = f'<parent dsq:id="{rng.choice([*posts, p, 7])}"/>'
            parts.append(
                _DISQUS_POST.format(
                    id=self._text(rng, str(p)),
                    body=self._text(rng, f"post {p}"),
                    date=self._text(rng, "2020-01-02T03:04:05Z"),
                    deleted=rng.choice(("false", "false", "true", "x")),
                    spam=rng.choice(("false", "false", "true")),
                    author=self._text(rng, f"Bo {p}"),
                    thread=rng.choice([*threads, 99]),
                    parent=parent,
                )
            )
        parts.append("</disqus>")
        return "".join(parts)

    def _document(self, rng: random.Random) -> tuple[bytes, str]:
        source = rng.choice(("wordpress", "disqus"))
        roll = rng.random()
        if roll < 0.15:
            seed = _EXPORT_SEEDS[0 if source == "wordpress" else 1]
            return mutate_bytes(rng, seed), source
        text = self._wordpress(rng)[0] if source == "wordpress" else self._disqus(rng)
        if "utf-16" in text[:60]:
            data = text.encode("utf-16")
        elif "ISO-8859-1" in text[:60]:
            data = text.encode("latin-1", "replace")
        else:
            data = text.encode("utf-8", "surrogatepass")
        if rng.random() < 0.2:
            data = mutate_bytes(rng, data)
        if rng.random() < 0.03:
            source = "wordpress" if source == "disqus" else "disqus"  # the wrong importer
        return data, source

    async def _one(self, rng: random.Random) -> None:
        from p2pcomments.importers import ImportOptions, import_export

        tally = self.tally
        tally.tried += 1
        data, source = self._document(rng)
        self.file.write_bytes(data)
        options = ImportOptions(
            include_unapproved=rng.random() < 0.2,
            include_spam=rng.random() < 0.1,
            include_deleted=rng.random() < 0.1,
        )
        dry_run = rng.random() < 0.2
        example = (source, data[:300])
        try:
            report = await import_export(
                self.node, self.file, source=source, options=options, dry_run=dry_run
            )
        except P2PCommentsError as error:
            if not error.message:
                tally.crash(f"{type(error).__name__} without a message", example)
                return
            tally.reject(f"{type(error).__name__}:{getattr(error, 'reason', '')}")
            return
        except Exception as error:
            tally.crash(error, example)
            return
        if report.rejected:
            tally.violate(
                f"the node refused operations the importer made: {report.rejected}", example
            )
            return
        for thread_id in report.thread_ids[:3]:
            if not dry_run and self.node.get_operation(thread_id) is None:
                tally.violate("an imported thread is not stored", example)
                return
        tally.accept()
        tally.notes[f"imported ({'dry run' if dry_run else 'written'})"] += 1
