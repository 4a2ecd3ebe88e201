"""The local HTTP API over real HTTP, against a ``p2pc daemon`` process (one for the module)."""

from __future__ import annotations

import html
import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from p2pcomments.api.actions import ACTIONS
from p2pcomments.api.openapi import EXTRA_ROUTES

from .processes import (
    DaemonProcess,
    foreign_comment_bundle,
    foreign_comment_id,
    ok,
    old_threads_bundle,
    run_p2pc,
    running_daemon,
)

pytestmark = pytest.mark.network


def _unknown(prefix: str) -> str:
    from p2pcomments.core.textform import TextKind, format_id

    return format_id(TextKind(prefix), bytes(range(32)))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    home = tmp_path_factory.mktemp("api-home")
    ok(home, "init")
    with running_daemon(home, tmp_path_factory.mktemp("api-logs")) as process:
        yield process
        code = process.stop(signal.SIGTERM)
        assert code == 0, process.stderr
        assert "Traceback" not in process.stderr
        assert not (home / "api.json").exists()


@pytest.fixture(scope="module")
def client(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=daemon.url, timeout=15) as http:
        yield http


@pytest.fixture(scope="module")
def writer(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=daemon.url, timeout=15, headers=daemon.auth) as http:
        yield http


@pytest.fixture(scope="module")
def thread(writer: httpx.Client) -> str:
    response = writer.post(
        "/api/threads", json={"title": "A thread", "url": "https://example.org/post"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
def comment(writer: httpx.Client, thread: str) -> str:
    response = writer.post(f"/api/threads/{thread}/comments", json={"body": "first"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    return dict(error)


# -- happy paths -------------------------------------------------------------------------------


def test_identity_profile_and_statistics(
    daemon: DaemonProcess, client: httpx.Client, writer: httpx.Client
) -> None:
    identity = client.get("/api/id").json()
    assert identity["author"].startswith("key_")
    assert identity["data_dir"] == str(daemon.data_dir)

    assert writer.put("/api/profile", json={"name": "Alice"}).status_code == 201
    profile = client.get("/api/profile").json()
    assert profile == {"author": identity["author"], "name": "Alice"}
    assert client.get("/api/id").json()["name"] == "Alice"

    statistics = client.get("/api/statistics").json()
    assert statistics["author"] == identity["author"]
    assert statistics["operations"] >= 1


def test_threads_comments_replies_edits_reactions(
    client: httpx.Client, writer: httpx.Client, thread: str, comment: str
) -> None:
    listed = client.get("/api/threads").json()["threads"]
    assert thread in [t["id"] for t in listed]

    reply = writer.post(f"/api/comments/{comment}/replies", json={"body": "a reply"})
    assert reply.status_code == 201
    reply_op = reply.json()
    assert reply_op["kind"] == "comment"
    assert reply_op["target"] == comment
    assert reply_op["thread"] == thread

    edit = writer.post(f"/api/comments/{comment}/edits", json={"body": "first, edited"})
    assert edit.status_code == 201
    assert edit.json()["kind"] == "edit"
    react = writer.post(f"/api/comments/{comment}/reactions", json={"reaction": "👍"})
    assert react.status_code == 201

    view = client.get(f"/api/threads/{thread}").json()
    assert view["title"] == "A thread"
    assert view["url"] == "https://example.org/post"
    rows = {row["id"]: row for row in view["comments"]}
    first = rows[comment]
    assert first["body"] == "first, edited"
    assert first["edited"] is True
    assert [e["body"] for e in first["edits"]] == ["first, edited"]
    assert first["reactions"][0]["reaction"] == "👍"
    assert first["reactions"][0]["count"] == 1
    second = rows[reply_op["id"]]
    assert second["depth"] == first["depth"] + 1
    assert second["parent"] == comment
    assert second["parent_edited_after"] is True

    single = client.get(f"/api/comments/{comment}").json()
    assert single == first

    withdraw = writer.post(f"/api/comments/{comment}/reactions", json={"reaction": ""})
    assert withdraw.status_code == 201
    assert client.get(f"/api/comments/{comment}").json()["reactions"] == []

    retract = writer.post(f"/api/comments/{reply_op['id']}/retract")
    assert retract.status_code == 201
    gone = client.get(f"/api/comments/{reply_op['id']}").json()
    assert gone["retracted"] is True
    assert gone["body"] is None


def test_moderation(client: httpx.Client, writer: httpx.Client, thread: str) -> None:
    target = writer.post(f"/api/threads/{thread}/comments", json={"body": "spam"}).json()["id"]
    hide = writer.post(f"/api/comments/{target}/hide", json={"reason": "spam"})
    assert hide.status_code == 201
    assert hide.json()["action"] == "hide"
    assert client.get(f"/api/comments/{target}").json()["hidden"] is True
    assert writer.post(f"/api/comments/{target}/unhide").status_code == 201
    assert client.get(f"/api/comments/{target}").json()["hidden"] is False

    moderator = _unknown("key")
    added = writer.post(f"/api/threads/{thread}/moderators", json={"key": moderator})
    assert added.status_code == 201
    assert added.json()["subject"] == moderator
    assert client.get(f"/api/threads/{thread}").json()["moderators"] == [moderator]
    removed = writer.delete(f"/api/threads/{thread}/moderators/{moderator}")
    assert removed.status_code == 200
    assert client.get(f"/api/threads/{thread}").json()["moderators"] == []

    assert writer.post(f"/api/threads/{thread}/close", json={"reason": "done"}).status_code == 201
    assert client.get(f"/api/threads/{thread}").json()["closed"] is True
    closed = writer.post(f"/api/threads/{thread}/comments", json={"body": "too late"})
    _error(closed, 409, "thread-closed")
    assert writer.post(f"/api/threads/{thread}/reopen").status_code == 201
    assert client.get(f"/api/threads/{thread}").json()["closed"] is False


def test_export_and_import_bundles(
    client: httpx.Client, writer: httpx.Client, thread: str, comment: str
) -> None:
    exported = client.get(f"/api/threads/{thread}/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = exported.text.splitlines()
    assert len(lines) >= 2
    assert all(json.loads(line) for line in lines)
    everything = client.get("/api/export").text.splitlines()
    assert set(lines) <= set(everything)

    again = writer.post("/api/import", content=exported.content)
    assert again.status_code == 200
    result = again.json()
    assert result["duplicate"] == result["total"] == len(lines)
    assert result["applied"] == result["rejected"] == 0

    bundle = foreign_comment_bundle(thread)
    imported = writer.post("/api/import", content=bundle).json()
    assert imported["applied"] == 1
    foreign = foreign_comment_id(bundle)
    assert client.get(f"/api/comments/{foreign}").json()["body"] == "a comment by someone else"

    # Someone else's comment: this node's author may neither edit nor retract it.
    edit = writer.post(f"/api/comments/{foreign}/edits", json={"body": "mine now"})
    _error(edit, 403, "not-author")
    _error(writer.post(f"/api/comments/{foreign}/retract"), 403, "not-author")

    _error(writer.post("/api/import", content=b"not a bundle\n"), 422, "bad-bundle")
    tampered = bytearray(bundle)
    tampered[-10] = ord("0") if tampered[-10] != ord("0") else ord("1")
    rejected = writer.post("/api/import", content=bytes(tampered)).json()
    assert rejected["rejected"] == 1
    assert rejected["rejections"][0]["code"]


def test_server_sent_events_deliver_a_new_comment(
    daemon: DaemonProcess, writer: httpx.Client, thread: str
) -> None:
    with (
        httpx.Client(base_url=daemon.url, timeout=15) as reader,
        reader.stream("GET", f"/api/threads/{thread}/events") as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == ": watching"
        posted = writer.post(f"/api/threads/{thread}/comments", json={"body": "live!"}).json()
        event: dict[str, str] = {}
        for line in lines:
            if not line:
                if event.get("event") == "operation":
                    break
                event = {}
                continue
            field, _, value = line.partition(": ")
            event[field] = value
        assert event["id"] == posted["id"]
        data = json.loads(event["data"])
        assert data["thread"] == thread
        assert data["kind"] == "comment"
        assert data["operation"]["body"] == "live!"


def test_server_sent_events_of_every_thread(daemon: DaemonProcess, writer: httpx.Client) -> None:
    with (
        httpx.Client(base_url=daemon.url, timeout=15) as reader,
        reader.stream("GET", "/api/events") as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines) == ": watching"
        created = writer.post("/api/threads", json={"title": "Another"}).json()
        data = next(json.loads(line[6:]) for line in lines if line.startswith("data: "))
        assert data["id"] == data["thread"] == created["id"]
        assert data["kind"] == "thread"


def test_openapi_document_lists_every_route(client: httpx.Client) -> None:
    import trio
    from starlette.routing import Route

    from p2pcomments.api.app import build_app

    document = client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    served = build_app(None, token="x", closing=trio.Event())  # type: ignore[arg-type]
    routes = [r for r in served.app.routes if isinstance(r, Route)]  # type: ignore[attr-defined]
    assert len(routes) == len(ACTIONS) + len(EXTRA_ROUTES)  # every other route is listed
    for route in routes:
        for method in route.methods or ():
            if method == "HEAD":
                continue
            assert method.lower() in document["paths"][route.path], (method, route.path)


def test_pages_are_escaped(client: httpx.Client, writer: httpx.Client) -> None:
    created = writer.post("/api/threads", json={"title": "<script>alert(1)</script>"}).json()
    writer.post(f"/api/threads/{created['id']}/comments", json={"body": "<b>bold?</b>"})
    index = client.get("/t/")
    assert index.status_code == 200
    assert "&lt;script&gt;" in index.text
    assert "<script>" not in index.text
    page = client.get(f"/t/{created['id']}")
    assert page.status_code == 200
    assert "&lt;b&gt;bold?&lt;/b&gt;" in page.text
    assert client.get(f"/t/{_unknown('thr')}").status_code == 404


# -- refusals ----------------------------------------------------------------------------------


def _write_requests(thread: str, comment: str) -> list[tuple[str, str]]:
    values = {"thread": thread, "comment": comment, "key": _unknown("key"), "claim": _unknown("op")}
    requests = []
    for action in ACTIONS:
        if action.writes:
            requests.append((action.method, action.path.format(**values)))
    return requests


def test_every_write_needs_the_token(client: httpx.Client, thread: str, comment: str) -> None:
    requests = _write_requests(thread, comment)
    assert len(requests) == sum(action.writes for action in ACTIONS) >= 14
    for method, path in requests:
        _error(client.request(method, path, json={}), 401, "unauthorized")
        wrong = {"Authorization": "Bearer not-the-token"}
        _error(client.request(method, path, json={}, headers=wrong), 401, "unauthorized")


def test_oversize_body_is_413(writer: httpx.Client, thread: str) -> None:
    response = writer.post(f"/api/threads/{thread}/comments", json={"body": "x" * 300_000})
    _error(response, 413, "too-large")


def test_body_fields_are_checked(writer: httpx.Client, thread: str) -> None:
    path = f"/api/threads/{thread}/comments"
    error = _error(writer.post(path, json={"body": "hi", "bdoy": "typo"}), 422, "unknown-field")
    assert "bdoy" in error["message"]
    _error(writer.post(path, json={}), 422, "missing-field")
    _error(writer.post(path, json={"body": 5}), 422, "bad-field")
    _error(writer.post(path, json={"body": ""}), 422, "bad-field")
    _error(writer.post(path, content=b"{not json"), 400, "bad-json")
    _error(writer.post(path, content=b"[1, 2]"), 400, "bad-json")
    error = _error(writer.post(path, content=b'{"body": "caf\xe9"}'), 400, "bad-encoding")
    assert "not UTF-8: byte 0xe9 at offset 13" in error["message"]


def test_unknown_and_malformed_ids(client: httpx.Client, writer: httpx.Client) -> None:
    _error(client.get(f"/api/threads/{_unknown('thr')}"), 404, "not-found")
    _error(client.get(f"/api/comments/{_unknown('cmt')}"), 404, "not-found")
    _error(
        writer.post(f"/api/comments/{_unknown('cmt')}/replies", json={"body": "hi"}),
        404,
        "not-found",
    )
    _error(client.get("/api/threads/thr_nope"), 404, "not-found")  # a prefix no thread has
    _error(client.get("/api/threads/thr_no"), 400, "prefix-too-short")
    _error(client.get("/api/threads/thr_n0pe"), 400, "bad-text-form")  # 0 is not base32
    _error(client.get(f"/api/threads/{_unknown('cmt')}"), 400, "bad-text-form")
    _error(client.get("/api/no-such-route"), 404, "not-found")
    _error(client.get(f"/api/threads/{_unknown('thr')}/events"), 404, "not-found")


def test_foreign_host_header_is_refused(client: httpx.Client) -> None:
    _error(client.get("/api/threads", headers={"Host": "evil.example"}), 403, "bad-host")


def test_a_second_daemon_refuses_the_same_data_dir(daemon: DaemonProcess, tmp_path: Path) -> None:
    second = run_p2pc(daemon.data_dir, "daemon", "--api", "127.0.0.1:0", timeout=30)
    assert second.returncode == 4
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"pid {daemon.pid}" in lines[0]
    assert "Traceback" not in second.stderr


def test_ctrl_c_stops_the_daemon_cleanly(tmp_path: Path) -> None:
    """SIGINT here; the module's daemon is stopped with SIGTERM, checked the same way."""
    home = tmp_path / "home"
    ok(home, "init")
    with running_daemon(home, tmp_path / "logs") as process:
        thread = httpx.post(
            f"{process.url}/api/threads", json={"title": "durable"}, headers=process.auth
        ).json()["id"]
        assert (home / "api.json").stat().st_mode & 0o777 == 0o600
        assert process.stop(signal.SIGINT) == 0
        assert "Traceback" not in process.stderr
        assert not (home / "api.json").exists()
    assert "durable" in ok(home, "show", thread)


def test_a_long_list_renders_whole_off_the_loop_and_pages(
    client: httpx.Client, writer: httpx.Client
) -> None:
    """A document with a top-level list of more than 500 entries is rendered in a worker thread
    (api.app): the same text, every entry there. Paged, the list (``limit``, ``after``) and the
    front page at /t/ (100 a page, "Older threads" links) hold every thread once, in order."""
    bundle, ids = old_threads_bundle("Long list {}", 600, first_ms=1_700_000_000_000)
    imported = writer.post("/api/import", content=bundle)
    assert imported.json()["applied"] == 600
    response = client.get("/api/threads")
    assert response.headers["content-type"] == "application/json"
    listed = {t["id"]: t["title"] for t in response.json()["threads"]}
    assert {thread: f"Long list {n}" for n, thread in enumerate(ids)}.items() <= listed.items()
    order = [t["id"] for t in response.json()["threads"]]
    assert response.json()["next"] is None

    paged: list[str] = []
    after: dict[str, str] = {}
    for _ in range(10):
        answer = client.get("/api/threads", params={"limit": "250", **after}).json()
        paged += [t["id"] for t in answer["threads"]]
        if answer["next"] is None:
            break
        after = {"after": answer["next"]}
    assert paged == order

    titles: list[str] = []
    path = "/t/"
    for _ in range(20):
        page = client.get(path)
        assert page.status_code == 200
        titles += re.findall(r">(Long list \d+)</a>", page.text)
        older = re.search(r"<a rel='next' href='([^']+)'>Older threads", page.text)
        if older is None:
            break
        assert "Newest threads" in page.text or path == "/t/"
        path = html.unescape(older.group(1))
    assert sorted(titles) == sorted(f"Long list {n}" for n in range(600))
    assert len(titles) == 600

    for bad in ({"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"after": "yesterday"}):
        _error(client.get("/api/threads", params=bad), 400, "bad-parameter")
    refused = client.get("/t/", params={"after": "12.thr_nope"})
    assert refused.status_code == 400
    assert "after" in refused.text


def test_a_thread_of_many_comments_is_shown_whole(
    client: httpx.Client, writer: httpx.Client
) -> None:
    """Past 500 comments a thread's JSON and its page at /t/ are made in a worker thread (api
    handlers, api.app), of what was read on the loop: every comment there, in order."""
    from p2pcomments.api.bundle import encode_bundle
    from p2pcomments.core.textform import TextKind, format_id
    from tests.store.conftest import thread_with_comments

    ops = thread_with_comments(600, start_ms=1_700_000_000, title="Many comments")
    imported = writer.post("/api/import", content=encode_bundle([op.encoded for op in ops]))
    assert imported.json()["applied"] == 601
    text = format_id(TextKind.THREAD, ops[0].id)
    document = client.get(f"/api/threads/{text}").json()
    assert [c["body"] for c in document["comments"]] == [f"comment {n}" for n in range(600)]
    assert document["rules"]["thread"] is not None
    page = client.get(f"/t/{text}")
    assert page.status_code == 200
    assert re.findall(r">comment (\d+)<", page.text) == [str(n) for n in range(600)]
