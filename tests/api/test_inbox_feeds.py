"""The inbox over HTTP (GET /api/inbox, mark-read, its event stream), the Atom feeds (validated by
feedparser, as feed readers read them) and the hooks (a command and a webhook on 127.0.0.1), all
against one real daemon process whose config.json names the hooks."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from nacl.signing import SigningKey

from p2pcomments.api.bundle import encode_bundle
from p2pcomments.core.ops import CommentPayload, Operation, ReactPayload, make_operation
from p2pcomments.core.textform import TextKind, format_id, parse_id

from .processes import DaemonProcess, ok, run_p2pc, running_daemon

HOSTILE = "<script>alert('x')</script> & <b>bold</b>"


class _Receiver:
    """A webhook receiver on 127.0.0.1: records every POST body; answers 500 to the first."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(500 if len(receiver.bodies) == 1 else 204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


HOOK = textwrap.dedent(
    """
    import sys
    body = sys.stdin.read()
    with open(sys.argv[1], "a", encoding="utf-8") as out:
        out.write(body.replace("\\n", " ") + "\\n")
    sys.exit(3 if "FAIL-HOOK" in body else 0)
    """
)


@pytest.fixture(scope="module")
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory, receiver: _Receiver) -> Iterator[Path]:
    """A data dir whose config.json runs a hook command and a webhook."""
    home = tmp_path_factory.mktemp("inbox-home")
    ok(home, "init")
    script = home / "hook.py"
    script.write_text(HOOK, encoding="utf-8")
    out = home / "hooked.jsonl"
    config = {"on_comment": [sys.executable, str(script), str(out)], "webhook": receiver.url}
    (home / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return home


@pytest.fixture(scope="module")
def daemon(hooked: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    logs = tmp_path_factory.mktemp("inbox-logs")
    with running_daemon(hooked, logs, "--public", "127.0.0.1:0") as process:
        yield process
        assert process.stop(signal.SIGTERM) == 0, process.stderr
        assert "Traceback" not in process.stderr


@pytest.fixture(scope="module")
def http(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=daemon.url, timeout=15, headers=daemon.auth) as client:
        yield client


def _raw(text: str) -> bytes:
    return parse_id(text)


_LAST_MS = [0]


def _foreign(
    key: SigningKey, thread: str, parent: str, payload: CommentPayload | ReactPayload
) -> Operation:
    # Strictly increasing timestamps: the inbox orders by them (newest first).
    _LAST_MS[0] = max(_LAST_MS[0] + 1, time.time_ns() // 1_000_000)
    return make_operation(
        key,
        payload,
        timestamp_ms=_LAST_MS[0],
        thread=_raw(thread),
        refs=(_raw(parent),),
        deps=(_raw(parent),),
    )


def _import(http: httpx.Client, *ops: Operation) -> None:
    response = http.post(
        "/api/import",
        content=encode_bundle([op.encoded for op in ops]),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.text


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def story(http: httpx.Client) -> dict[str, Any]:
    """A thread of this node's author (so followed), its comment, and others' answers."""
    thread = http.post(
        "/api/threads", json={"title": "Feeds & <things>", "url": "https://blog.example/feeds"}
    ).json()["id"]
    mine = http.post(f"/api/threads/{thread}/comments", json={"body": "What do you think?"})
    mine_id = mine.json()["id"]
    bob, carol = SigningKey(b"\x21" * 32), SigningKey(b"\x22" * 32)
    reply = _foreign(bob, thread, mine_id, CommentPayload(body=HOSTILE))
    like = _foreign(carol, thread, mine_id, ReactPayload(reaction="👍"))
    _import(http, reply, like)
    return {
        "thread": thread,
        "mine": mine_id,
        "reply": format_id(TextKind.COMMENT, reply.id),
        "like": format_id(TextKind.OPERATION, like.id),
        "bob": bob,
    }


# -- the inbox -------------------------------------------------------------------------------------


def test_the_inbox_lists_replies_and_reactions_unread_then_read(
    http: httpx.Client, story: dict[str, Any], daemon: DaemonProcess
) -> None:
    inbox = http.get("/api/inbox").json()
    assert [(e["kind"], e["id"]) for e in inbox["entries"]] == [
        ("reaction", story["like"]),
        ("reply", story["reply"]),
    ]
    reply = inbox["entries"][1]
    assert reply["text"] == HOSTILE
    assert reply["subject"] == story["mine"]
    assert reply["subject_body"] == "What do you think?"
    assert (inbox["total"], inbox["unread"]) == (2, 2)
    per_thread = http.get("/api/inbox", params={"thread": story["thread"], "limit": "0"}).json()
    assert (per_thread["entries"], per_thread["unread"]) == ([], 2)
    bad = http.get("/api/inbox", params={"unread": "maybe"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad-parameter"
    # the CLI, through the daemon: unread entries, then marking one by the prefix it shows
    listed = json.loads(ok(daemon.data_dir, "--json", "inbox"))
    assert {e["id"] for e in listed["entries"]} == {story["reply"], story["like"]}
    text = ok(daemon.data_dir, "inbox")
    assert "replied to your comment" in text
    assert "2 unread of 2" in text
    marked = json.loads(ok(daemon.data_dir, "--json", "inbox", "mark-read", story["like"][:12]))
    assert marked == {"marked": 1, "unread": 1, "total": 2}
    unread = http.get("/api/inbox", params={"unread": "true"}).json()
    assert [e["id"] for e in unread["entries"]] == [story["reply"]]
    neither = run_p2pc(daemon.data_dir, "inbox", "mark-read")
    assert neither.returncode == 1
    assert "ids, or --all" in neither.stderr
    refused = http.post("/api/inbox/read", json={"ids": "cmt_zz"})
    assert refused.status_code == 404
    assert httpx.post(daemon.url + "/api/inbox/read", json={"all": "true"}).status_code == 401


def test_the_inbox_event_stream_carries_new_entries(
    daemon: DaemonProcess, http: httpx.Client, story: dict[str, Any]
) -> None:
    answer = _foreign(story["bob"], story["thread"], story["mine"], CommentPayload(body="Live!"))
    with (
        httpx.Client(base_url=daemon.url, timeout=15) as reader,
        reader.stream("GET", "/api/inbox/events") as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines) == ": watching"
        _import(http, answer)
        event: dict[str, str] = {}
        for line in lines:
            if not line:
                if event.get("event") == "entry":
                    break
                event = {}
                continue
            field, _, value = line.partition(": ")
            event[field] = value
    data = json.loads(event["data"])
    assert event["id"] == data["id"] == format_id(TextKind.COMMENT, answer.id)
    assert (data["kind"], data["text"], data["read"]) == ("reply", "Live!", False)


# -- feeds -----------------------------------------------------------------------------------------


def _parse(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    return feed


def test_a_thread_feed_is_valid_atom_with_stable_ids_and_inert_text(
    daemon: DaemonProcess, story: dict[str, Any]
) -> None:
    path = f"/feeds/thread/{story['thread']}.atom"
    response = httpx.get(daemon.url + path, timeout=15)
    feed = _parse(response)
    assert feed.feed.title == "Feeds & <things>"
    assert feed.feed.id == f"urn:p2pcomments:{story['thread']}"
    assert feed.feed.link == "https://blog.example/feeds"
    assert any(link.rel == "self" and link.href.endswith(path) for link in feed.feed.links)
    by_id = {entry.id: entry for entry in feed.entries}
    hostile = by_id[f"urn:p2pcomments:{story['reply']}"]
    assert hostile.content[0].type == "text/plain"
    assert hostile.content[0].value == HOSTILE  # the text, exactly: never markup
    assert b"<script>" not in response.content
    assert b"&lt;script&gt;" in response.content
    assert " replied to key_" in hostile.title  # no display names here: short keys
    assert hostile.updated_parsed is not None
    assert hostile.published_parsed is not None
    assert f"urn:p2pcomments:{story['mine']}" in by_id
    again = feedparser.parse(httpx.get(daemon.url + path, timeout=15).content)
    assert [e.id for e in again.entries][: len(feed.entries)] == [e.id for e in feed.entries]
    assert httpx.get(daemon.url + "/feeds/thread/nothing.atom", timeout=15).status_code == 400
    by_prefix = _parse(httpx.get(f"{daemon.url}/feeds/thread/{story['thread'][:12]}.atom"))
    assert by_prefix.feed.id == feed.feed.id
    assert httpx.get(daemon.url + f"/feeds/thread/{story['thread']}", timeout=15).status_code == 404


def test_a_site_feed_and_the_inbox_feed_which_needs_the_token(
    daemon: DaemonProcess, story: dict[str, Any]
) -> None:
    site = _parse(httpx.get(daemon.url + "/feeds/site/blog.example.atom", timeout=15))
    assert site.feed.id == "urn:p2pcomments:site:blog.example"
    empty = _parse(httpx.get(daemon.url + "/feeds/site/elsewhere.example.atom", timeout=15))
    assert empty.entries == []
    assert httpx.get(daemon.url + "/feeds/inbox.atom", timeout=15).status_code == 401
    wrong = httpx.get(daemon.url + "/feeds/inbox.atom", params={"token": "no"}, timeout=15)
    assert wrong.status_code == 401
    response = httpx.get(
        daemon.url + "/feeds/inbox.atom", params={"token": daemon.token}, timeout=15
    )
    inbox = _parse(response)
    assert daemon.token.encode() not in response.content  # the self link has no token
    ids = {entry.id for entry in inbox.entries}
    assert f"urn:p2pcomments:{story['reply']}" in ids
    assert f"urn:p2pcomments:{story['like']}" in ids
    by_header = httpx.get(daemon.url + "/feeds/inbox.atom", headers=daemon.auth, timeout=15)
    assert by_header.status_code == 200


def test_the_public_gateway_serves_the_read_feeds_but_not_the_inbox(
    daemon: DaemonProcess, story: dict[str, Any]
) -> None:
    public = str(daemon.info["public_url"])
    path = f"/feeds/thread/{story['thread']}.atom"
    feed = _parse(httpx.get(public + path, timeout=15))
    assert any(link.rel == "self" and link.href == public + path for link in feed.feed.links)
    assert f"urn:p2pcomments:{story['reply']}" in {entry.id for entry in feed.entries}
    _parse(httpx.get(public + "/feeds/site/blog.example.atom", timeout=15))
    for private in ("/feeds/inbox.atom", "/api/inbox", "/api/inbox/events"):
        response = httpx.get(public + private, params={"token": daemon.token}, timeout=15)
        assert response.status_code == 404, private


# -- hooks -----------------------------------------------------------------------------------------


def test_hooks_run_for_others_comments_in_followed_threads_and_survive_failures(
    daemon: DaemonProcess, http: httpx.Client, story: dict[str, Any], receiver: _Receiver
) -> None:
    out = daemon.data_dir / "hooked.jsonl"

    def hooked() -> list[dict[str, Any]]:
        if not out.exists():
            return []
        # Only whole lines: a hook may be writing its line while we read.
        lines = out.read_text(encoding="utf-8").split("\n")[:-1]
        return [json.loads(line) for line in lines]

    failing = _foreign(
        story["bob"], story["thread"], story["mine"], CommentPayload(body="FAIL-HOOK")
    )
    _import(http, failing)
    after = _foreign(story["bob"], story["thread"], story["mine"], CommentPayload(body="after it"))
    _import(http, after)
    own = http.post(f"/api/threads/{story['thread']}/comments", json={"body": "mine: no hook"})
    assert own.status_code == 201
    expected = {HOSTILE, "FAIL-HOOK", "after it"}
    # Hooks run on several workers at once, so they may finish in any order: wait for all three.
    bodies = _wait(
        lambda: (got := hooked()) and expected <= {b["comment"]["body"] for b in got} and got,
        "the hook command to see the comment after the failing one",
    )
    by_body = {b["comment"]["body"]: b for b in bodies}
    assert "mine: no hook" not in by_body
    document = by_body["after it"]
    assert bytes.fromhex(document["operation_hex"]) == after.encoded
    assert document["operation"]["id"] == format_id(TextKind.COMMENT, after.id)
    assert document["thread"]["id"] == story["thread"]
    assert document["source"] == "import"
    _wait(
        lambda: any(b["comment"]["body"] == "after it" for b in receiver.bodies),
        "the webhook to receive the comment too",
    )
    assert any(bytes.fromhex(b["operation_hex"]) == after.encoded for b in receiver.bodies)
    assert all(b["comment"]["body"] != "mine: no hook" for b in receiver.bodies)
    _wait(lambda: "exited 3" in daemon.stderr, "the failing hook to be logged")
    _wait(lambda: "answered 500" in daemon.stderr, "the failing webhook to be logged")
    assert http.get("/api/statistics").status_code == 200  # the daemon goes on
