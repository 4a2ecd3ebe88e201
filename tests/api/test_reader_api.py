"""The API as a reader's client uses it (issue 16), over real HTTP against a daemon process:
threads of one page, query parameters checked, ids by prefix, the whole edit history and a
thread's completeness in the JSON and on its page."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import httpx
import pytest

from .processes import DaemonProcess, ok, running_daemon

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    home = tmp_path_factory.mktemp("reader-api-home")
    ok(home, "init")
    with running_daemon(home, tmp_path_factory.mktemp("reader-api-logs")) as process:
        yield process
        assert process.stop(signal.SIGTERM) == 0, process.stderr


@pytest.fixture(scope="module")
def writer(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=daemon.url, timeout=15, headers=daemon.auth) as http:
        yield http


def _created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


def test_threads_of_one_page_by_its_normal_url(writer: httpx.Client) -> None:
    post = _created(
        writer.post("/api/threads", json={"title": "P", "url": "https://blog.example/a/?utm_x=1"})
    )
    _created(writer.post("/api/threads", json={"title": "Q", "url": "https://blog.example/b"}))
    found = writer.get("/api/threads", params={"url": "HTTPS://Blog.Example:443/a"}).json()
    assert [t["id"] for t in found["threads"]] == [post]
    assert writer.get("/api/threads", params={"url": "https://blog.example/z"}).json() == {
        "threads": [],
        "next": None,
    }
    assert len(writer.get("/api/threads").json()["threads"]) == 2
    message = _error(writer.get("/api/threads", params={"ulr": "x"}), 400, "unknown-parameter")
    assert message == "unknown query parameter 'ulr': this endpoint takes url, limit, after"
    _error(writer.get("/api/threads?url=a&url=b"), 400, "repeated-parameter")
    _error(writer.get("/api/threads", params={"url": "blog.example/a"}), 400, "not-a-url")
    message = _error(
        writer.get(f"/api/threads/{post}", params={"x": "1"}), 400, "unknown-parameter"
    )
    assert "takes no query parameters" in message


def test_ids_in_paths_may_be_unique_prefixes(writer: httpx.Client) -> None:
    thread = _created(writer.post("/api/threads", json={"title": "Prefixes"}))
    comment = _created(writer.post(f"/api/threads/{thread[:12]}/comments", json={"body": "hi"}))
    reply = writer.post(f"/api/comments/{comment[:10]}/replies", json={"body": "yo"})
    assert reply.json()["target"] == comment
    assert writer.get(f"/api/threads/{thread[:9]}").json()["id"] == thread
    assert writer.get(f"/api/comments/{comment[:12]}").json()["id"] == comment
    page = writer.get(f"/t/{thread[:12]}")
    assert page.status_code == 200
    assert "Prefixes" in page.text
    _error(writer.get("/api/threads/thr_ab"), 400, "prefix-too-short")
    message = _error(writer.get(f"/api/threads/{comment[:12]}"), 400, "bad-text-form")
    assert "names a comment, expected 'thr_'" in message


def test_the_thread_json_and_page_carry_history_and_completeness(writer: httpx.Client) -> None:
    thread = _created(writer.post("/api/threads", json={"title": "History"}))
    first = _created(writer.post(f"/api/threads/{thread}/comments", json={"body": "v1 <i>"}))
    _created(writer.post(f"/api/comments/{first}/replies", json={"body": "answering v1"}))
    _created(writer.post(f"/api/comments/{first}/edits", json={"body": "v2"}))
    view = writer.get(f"/api/threads/{thread}").json()
    parent, reply = view["comments"]
    assert parent["original"]["id"] == first
    assert parent["original"]["body"] == "v1 <i>"
    assert [e["body"] for e in parent["edits"]] == ["v2"]
    assert reply["answered_version"] == parent["original"]
    completeness = view["completeness"]
    assert completeness == {
        "verified": 4,
        "held": 4,
        "pending": 0,
        "rejected": 0,
        "digest": view["digest"],
        "pending_operations": [],
        "rejected_operations": [],
        "rejections_since_ms": completeness["rejections_since_ms"],
    }
    page = writer.get(f"/t/{thread}").text
    assert f"4 of 4 operations verified, none pending, digest {view['digest'][:16]}…" in page
    assert "history: 2 versions" in page
    assert "v1 &lt;i&gt;" in page
    assert "answered an earlier version of its parent" in page
