"""`api.rendered`: a big page is rendered once per version and given to every reader, and never
given once anything it is made of has changed."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing
from hypothesis import example, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from starlette.responses import JSONResponse

from p2pcomments.api import app as app_module
from p2pcomments.api import handlers
from p2pcomments.api.app import build_app
from p2pcomments.api.rendered import RenderedDocuments, accepts_gzip, render_json
from p2pcomments.core.ops import CommentPayload, ProfilePayload, make_operation
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.node import Node, open_node
from tests.core.strategies import budget


class _Counted:
    """A document maker that counts its calls and can be held until released."""

    def __init__(self, document: object, *, fails: bool = False) -> None:
        self.document, self.fails, self.calls = document, fails, 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self) -> object:
        self.calls += 1
        assert self.release.wait(10)
        if self.fails:
            raise RuntimeError("could not make it")
        return self.document


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)))  # JSON text is UTF-8: no surrogates
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=budget(0.5))
@example(document={"comments": [{"n": n, "body": "é" * (n % 3)} for n in range(1000)], "x": 1})
@example(document=[[n] for n in range(513)])
@example(document={"empty": [], "one": [None]})
@given(
    document=st.dictionaries(
        st.text(max_size=8), _VALUES | st.lists(_VALUES, max_size=700), max_size=6
    )
    | st.lists(_VALUES, max_size=700)
)
def test_rendering_in_slices_gives_what_jsonresponse_gives(
    document: dict[str, object] | list[object],
) -> None:
    """Rule 4, for documents whose top-level lists span several slices or none."""
    assert render_json(document) == JSONResponse(document).body


@pytest.mark.trio
async def test_one_render_per_version() -> None:
    documents = RenderedDocuments()
    make = _Counted({"comments": [1, 2, 3]})
    first = await documents.render("page", 1, make)
    assert json.loads(first.body) == {"comments": [1, 2, 3]}
    assert await documents.render("page", 1, make) is first
    assert make.calls == 1
    again = await documents.render("page", 2, make)  # something it is made of changed
    assert make.calls == 2
    assert again is not first
    assert await documents.render("other page", 2, make) is not again  # keys are apart


@pytest.mark.trio
async def test_readers_at_once_wait_for_one_render() -> None:
    documents, make = RenderedDocuments(), _Counted({"x": 1})
    make.release.clear()
    got: list[object] = []

    async def reader() -> None:
        got.append(await documents.render("page", 7, make))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        make.release.set()
    assert make.calls == 1
    assert len(got) == 5
    assert all(document is got[0] for document in got)


@pytest.mark.trio
async def test_when_a_render_fails_each_waiting_reader_renders_its_own() -> None:
    documents, failing = RenderedDocuments(), _Counted({}, fails=True)
    failing.release.clear()
    working = _Counted({"y": 2})
    results: list[object] = []

    async def first() -> None:
        with pytest.raises(RuntimeError, match="could not make it"):
            await documents.render("page", 1, failing)

    async def second() -> None:
        results.append(await documents.render("page", 1, working))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()  # waits for the first's render
        assert working.calls == 0
        failing.release.set()
    assert working.calls == 1
    assert json.loads(results[0].body) == {"y": 2}  # type: ignore[attr-defined]


@pytest.mark.trio
async def test_kept_documents_stay_within_their_bytes() -> None:
    documents = RenderedDocuments(max_bytes=100)
    page = _Counted({"text": "x" * 40})  # 51 bytes rendered
    for key in ("a", "b", "c"):
        await documents.render(key, 1, page)
    assert page.calls == 3
    await documents.render("c", 1, page)  # kept: the newest
    await documents.render("a", 1, page)  # dropped for "c": made again
    assert page.calls == 4
    huge = _Counted({"text": "x" * 200})
    await documents.render("huge", 1, huge)
    await documents.render("huge", 1, huge)  # bigger than the bound: never kept
    assert huge.calls == 2


_URL = "https://blog.example/popular"


@contextlib.asynccontextmanager
async def _big_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Node, bytes, httpx.AsyncClient, dict[str, str]]]:
    """A node holding a page of 8 comments (big for the handlers here: more than 5) and a client
    of its API app: (node, the page thread's id, client, the page's query)."""
    monkeypatch.setattr(handlers, "_COMMENTS_INLINE", 5)
    async with open_node(tmp_path / "data", create_identity=True) as node:
        page = await node.ensure_page_thread(_URL, node.author)
        for n in range(8):
            await node.comment(page.id, f"comment {n} " + "words " * 20)
        transport = httpx.ASGITransport(app=build_app(node, token="t", closing=trio.Event()))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield node, page.id, client, {"url": _URL, "owner": node.author.hex()}


@pytest.mark.trio
async def test_a_big_page_changes_for_a_comment_a_name_and_a_mute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the API app: readers get the same bytes while nothing changes; a new comment, a
    new display name and the node's own mutes each give a new page."""
    reader = SigningKey(b"\x09" * 32)
    async with _big_page(tmp_path, monkeypatch) as (node, page_id, client, query):

        async def shown() -> bytes:
            response = await client.get("/api/page", params=query)
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            return response.content

        first = await shown()
        assert await shown() == first
        comment = make_operation(
            reader,
            CommentPayload(body="from a reader"),
            timestamp_ms=node.replica.thread(page_id).last_activity_ms + 1,
            thread=page_id,
            refs=(page_id,),
            deps=frozenset(node.replica.thread(page_id).causal_deps()),
        )
        await node.ingest([comment.encoded])
        with_comment = json.loads(await shown())
        assert with_comment["comments"][-1]["body"] == "from a reader"
        assert with_comment["comments"][-1]["author_name"] is None
        await node.ingest(
            [make_operation(reader, ProfilePayload(name="Ree"), timestamp_ms=1).encoded]
        )
        named = json.loads(await shown())
        assert named["comments"][-1]["author_name"] == "Ree"
        assert named["comments"][-1]["muted"] is False
        node.mute(bytes(reader.verify_key))
        muted = json.loads(await shown())
        assert muted["comments"][-1]["muted"] is True
        assert json.loads(first)["comment_count"] == 8


@pytest.mark.parametrize(
    ("header", "takes"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, GZIP;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("*, gzip;q=0", False),  # named beats the wildcard
        ("identity", False),
        ("", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header: str, takes: bool) -> None:
    assert accepts_gzip(header) is takes


@pytest.mark.trio
async def test_a_big_page_goes_gzipped_to_readers_who_take_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _big_page(tmp_path, monkeypatch) as (_, _, client, query):
        plain = await client.get("/api/page", params=query, headers={"accept-encoding": "identity"})
        zipped = await client.get("/api/page", params=query, headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert plain.headers["vary"] == zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.content == plain.content  # httpx undoes the gzip, as a browser does
    assert int(zipped.headers["content-length"]) < len(plain.content) / 4
    assert len(json.loads(plain.content)["comments"]) == 8


@pytest.mark.trio
async def test_a_reader_holding_the_page_as_it_stands_is_answered_304(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _big_page(tmp_path, monkeypatch) as (node, page_id, client, query):
        first = await client.get("/api/page", params=query)
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        assert first.headers["cache-control"] == "no-cache"
        for asked in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
            again = await client.get("/api/page", params=query, headers={"if-none-match": asked})
            assert again.status_code == 304, asked
            assert again.content == b""
            assert again.headers["etag"] == etag
        stale = await client.get("/api/page", params=query, headers={"if-none-match": '"other"'})
        assert stale.status_code == 200
        assert stale.content == first.content
        await node.comment(page_id, "one more")
        changed = await client.get("/api/page", params=query, headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert json.loads(changed.content)["comments"][-1]["body"] == "one more"


@pytest.mark.trio
async def test_a_big_threads_document_changes_with_what_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /api/threads/{id} of a big thread is rendered once too, and its completeness is part
    of what it is made of: an operation that arrives and waits (for a parent not held) gives a
    new document though the thread's own operations did not change."""
    async with _big_page(tmp_path, monkeypatch) as (node, page_id, client, _):
        path = f"/api/threads/{format_id(TextKind.THREAD, page_id)}"
        first = await client.get(path)
        assert (await client.get(path)).content == first.content
        assert first.headers["etag"] == (await client.get(path)).headers["etag"]
        waiting = make_operation(
            SigningKey(b"\x0a" * 32),
            CommentPayload(body="a reply to a comment not held here"),
            timestamp_ms=node.replica.thread(page_id).last_activity_ms + 1,
            thread=page_id,
            refs=(b"\x01" * 32,),
            deps=frozenset({b"\x01" * 32}),
        )
        await node.ingest([waiting.encoded])
        second = json.loads((await client.get(path)).content)
        await node.comment(page_id, "one more")
        third = json.loads((await client.get(path)).content)
    assert json.loads(first.content)["completeness"]["pending"] == 0
    assert second["completeness"]["pending"] == 1
    assert len(second["comments"]) == 8
    assert third["comments"][-1]["body"] == "one more"


@pytest.mark.trio
async def test_a_big_threads_html_page_is_rendered_once_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "_LONG_LIST", 5)
    async with _big_page(tmp_path, monkeypatch) as (node, page_id, client, _):
        path = f"/t/{format_id(TextKind.THREAD, page_id)}"
        first = await client.get(path, headers={"accept-encoding": "gzip"})
        assert first.headers["content-type"] == "text/html; charset=utf-8"
        assert first.headers["content-encoding"] == "gzip"
        assert first.text.count("comment ") >= 8
        again = await client.get(path, headers={"if-none-match": first.headers["etag"]})
        assert again.status_code == 304
        await node.comment(page_id, "one more")
        changed = await client.get(path, headers={"if-none-match": first.headers["etag"]})
    assert changed.status_code == 200
    assert "one more" in changed.text
    assert "one more" not in first.text
