"""The public gateway (``p2pc daemon --public``) over real HTTP, against a daemon process: what it
serves and refuses, CORS, operations signed elsewhere (checked as gossip, kept byte for byte,
refused with the spec's reason), rate and size limits, the page view and its event stream; and
the same submission on the local listener, behind the token."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    CommentPayload,
    ModAction,
    ModeratePayload,
    make_operation,
    page_thread,
)
from p2pcomments.core.textform import TextKind, format_id, parse_id
from p2pcomments.net.gossip_payload import encode_batch

from .processes import DaemonProcess, ok, running_daemon

pytestmark = pytest.mark.network

OP = "application/vnd.p2pcomments.op"
OPS = "application/vnd.p2pcomments.ops"
POST = "https://www.exemple.fr/2024/03/l-été-où-tout-a-changé-%e2%80%a6/?utm_source=x#commentaires"
OPS_PER_MINUTE = 40  # the gateway's budget of submitted operations (its burst is as large)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    home = tmp_path_factory.mktemp("gateway-home")
    ok(home, "init")
    args = ("--no-network", "--public", "127.0.0.1:0")
    args += ("--public-ops-per-minute", str(OPS_PER_MINUTE))
    with running_daemon(home, tmp_path_factory.mktemp("gateway-logs"), *args) as process:
        yield process
        assert process.stop(signal.SIGTERM) == 0, process.stderr
        assert "Traceback" not in process.stderr


@pytest.fixture(scope="module")
def gateway(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    url = daemon.info["public_url"]
    assert url.startswith("http://127.0.0.1:")
    assert url != daemon.url
    with httpx.Client(base_url=url, timeout=15) as http:
        yield http


@pytest.fixture(scope="module")
def owner(daemon: DaemonProcess) -> str:
    return str(httpx.get(daemon.url + "/api/id", timeout=15).json()["author"])


def _comment(key: SigningKey, thread: bytes, parent: bytes, body: str) -> bytes:
    return make_operation(
        key,
        CommentPayload(body=body),
        timestamp_ms=time.time_ns() // 1_000_000,
        thread=thread,
        refs=(parent,),
    ).encoded


def _submit(client: httpx.Client, data: bytes, media_type: str = OP) -> httpx.Response:
    return client.post("/api/ops", content=data, headers={"Content-Type": media_type})


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def test_reads_carry_cors_for_any_origin(gateway: httpx.Client, owner: str) -> None:
    for path, params in (
        ("/api/threads", {}),
        ("/api/page", {"url": POST, "owner": owner}),
        ("/embed.js", {}),
    ):
        response = gateway.get(path, params=params, headers={"Origin": "https://www.exemple.fr"})
        assert response.status_code == 200, (path, response.text)
        assert response.headers.get_list("access-control-allow-origin") == ["*"], path
        assert "access-control-allow-credentials" not in response.headers


def test_a_preflight_is_answered_for_op_submission(gateway: httpx.Client) -> None:
    response = gateway.options(
        "/api/ops",
        headers={
            "Origin": "https://www.exemple.fr",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()
    assert int(response.headers["access-control-max-age"]) > 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/threads"),
        ("POST", "/api/threads/thr_aaaa/comments"),
        ("POST", "/api/threads/thr_aaaa/close"),
        ("POST", "/api/comments/cmt_aaaa/replies"),
        ("PUT", "/api/profile"),
        ("POST", "/api/follows"),
        ("POST", "/api/network/connect"),
        ("POST", "/api/import"),
        ("POST", "/api/page"),
        ("GET", "/api/id"),
        ("GET", "/api/statistics"),
        ("GET", "/api/network"),
        ("GET", "/api/export"),
        ("GET", "/api/events"),
    ],
)
def test_what_writes_as_the_node_or_shows_its_settings_is_not_served(
    gateway: httpx.Client, daemon: DaemonProcess, method: str, path: str
) -> None:
    # Even with the node's token: the gateway serves none of it.
    response = gateway.request(method, path, json={"body": "x"}, headers=daemon.auth)
    assert response.status_code == 404, response.text
    assert _error(response)["code"] == "not-found"
    assert response.headers["access-control-allow-origin"] == "*"


def test_the_reader_ui_on_the_gateway_carries_no_token(
    gateway: httpx.Client, daemon: DaemonProcess
) -> None:
    response = gateway.get("/")
    assert response.status_code == 200
    assert daemon.token not in response.text


def test_a_page_without_a_thread_is_an_empty_view(gateway: httpx.Client, owner: str) -> None:
    other = format_id(TextKind.KEY, bytes(SigningKey(b"\x31" * 32).verify_key))
    response = gateway.get("/api/page", params={"url": POST, "owner": other})
    assert response.status_code == 200
    page = response.json()
    expected = page_thread(parse_id(other), POST)
    assert page["id"] == format_id(TextKind.THREAD, expected.id)
    assert page["exists"] is False
    assert page["comments"] == []
    assert page["comment_count"] == 0
    assert page["closed"] is False
    assert page["deps"] == []
    assert bytes.fromhex(page["page_operation"]) == expected.encoded
    assert (
        page["url"]
        == "https://www.exemple.fr/2024/03/l-%C3%A9t%C3%A9-o%C3%B9-tout-a-chang%C3%A9-%E2%80%A6"
    )


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"url": "ftp://exemple.fr/", "owner": "OWNER"}, 400, "unsupported-scheme"),
        ({"url": "exemple.fr/a", "owner": "OWNER"}, 400, "not-a-url"),
        ({"url": POST}, 400, "missing-field"),
        ({"url": POST, "owner": "key_nope"}, 400, "bad-text-form"),
        ({"url": POST, "owner": "OWNER", "colour": "red"}, 400, "unknown-parameter"),
    ],
)
def test_a_bad_page_query_is_a_clear_error(
    gateway: httpx.Client, owner: str, params: dict[str, str], status: int, code: str
) -> None:
    params = {k: owner if v == "OWNER" else v for k, v in params.items()}
    response = gateway.get("/api/page", params=params)
    assert response.status_code == status, response.text
    assert _error(response)["code"] == code


def test_a_browser_signed_comment_is_stored_byte_for_byte(
    gateway: httpx.Client, daemon: DaemonProcess, owner: str
) -> None:
    reader = SigningKey.generate()
    page = page_thread(parse_id(owner), POST)
    comment = _comment(reader, page.id, page.id, "Très bel article !")
    response = _submit(gateway, encode_batch([page.encoded, comment]), OPS)
    assert response.status_code == 201, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    results = response.json()["operations"]
    assert [r["state"] for r in results] == ["valid", "valid"]
    assert results[0]["id"] == format_id(TextKind.THREAD, page.id)
    comment_id = results[1]["id"]
    assert comment_id.startswith("cmt_")
    # Stored as sent: the node's export holds exactly these bytes.
    exported = httpx.get(daemon.url + f"/api/threads/{results[0]['id']}/export", timeout=15).text
    assert [bytes.fromhex(json.loads(line)) for line in exported.splitlines()] == [
        page.encoded,
        comment,
    ]
    again = _submit(gateway, page.encoded)
    assert again.status_code == 201
    assert again.json() == {"id": results[0]["id"], "state": "valid", "duplicate": True}
    view = gateway.get("/api/page", params={"url": POST, "owner": owner}).json()
    assert view["exists"] is True
    assert [c["body"] for c in view["comments"]] == ["Très bel article !"]
    assert view["comments"][0]["thread"] == results[0]["id"]
    assert comment_id in view["deps"]
    thread = gateway.get(f"/api/threads/{results[0]['id']}").json()
    assert comment_id in thread["deps"]


def test_a_comment_before_its_page_thread_is_kept_pending(
    gateway: httpx.Client, owner: str
) -> None:
    url = "https://www.exemple.fr/pending-first"
    page = page_thread(parse_id(owner), url)
    comment = _comment(SigningKey.generate(), page.id, page.id, "en attente")
    early = _submit(gateway, comment)
    assert early.status_code == 201, early.text
    assert early.json()["state"] == "pending"
    assert _submit(gateway, page.encoded).json()["state"] == "valid"
    assert _submit(gateway, comment).json() == {
        "id": early.json()["id"],
        "state": "valid",
        "duplicate": True,
    }


def _forged(owner: str) -> bytes:
    page = page_thread(parse_id(owner), POST)
    data = bytearray(_comment(SigningKey.generate(), page.id, page.id, "forged"))
    data[-1] ^= 0x01
    return bytes(data)


def _non_canonical(owner: str) -> bytes:
    page = page_thread(parse_id(owner), POST)
    canonical = _comment(SigningKey.generate(), page.id, page.id, "x")
    assert canonical[1] == 0x01  # the version, a positive fixint
    return canonical[:1] + b"\xcc\x01" + canonical[2:]  # the same value as a uint 8


@pytest.mark.parametrize(
    ("make", "media_type", "status", "code"),
    [
        (_forged, OP, 422, "bad-signature"),
        (_non_canonical, OP, 422, "non-canonical"),
        (lambda owner: b"\x99not an operation", OP, 422, "malformed"),
        (lambda owner: b"\x99" + bytes(41_000), OP, 413, "oversize"),
        (lambda owner: b"\x92\x01\x02", OPS, 400, "bad-batch"),
        (
            lambda owner: page_thread(parse_id(owner), POST).encoded,
            "application/json",
            415,
            "unsupported-media-type",
        ),
    ],
    ids=["forged", "non-canonical", "malformed", "oversize", "bad-batch", "media-type"],
)
def test_a_refused_submission_names_the_spec_reason(
    gateway: httpx.Client, owner: str, make: Any, media_type: str, status: int, code: str
) -> None:
    response = _submit(gateway, make(owner), media_type)
    assert response.status_code == status, response.text
    assert _error(response)["code"] == code
    assert response.headers["access-control-allow-origin"] == "*"


def test_a_batch_with_one_bad_operation_stores_none(gateway: httpx.Client, owner: str) -> None:
    url = "https://www.exemple.fr/all-or-nothing"
    page = page_thread(parse_id(owner), url)
    good = _comment(SigningKey.generate(), page.id, page.id, "good")
    response = _submit(gateway, encode_batch([page.encoded, good, _forged(owner)]), OPS)
    assert response.status_code == 422
    error = _error(response)
    assert (error["code"], error["index"]) == ("bad-signature", 2)
    view = gateway.get("/api/page", params={"url": url, "owner": owner}).json()
    assert view["exists"] is False


def test_a_close_by_a_stranger_is_not_moderator(gateway: httpx.Client, owner: str) -> None:
    page = page_thread(parse_id(owner), POST)
    _submit(gateway, page.encoded)
    close = make_operation(
        SigningKey.generate(),
        ModeratePayload(action=ModAction.CLOSE),
        timestamp_ms=time.time_ns() // 1_000_000,
        thread=page.id,
        refs=(page.id,),
    )
    response = _submit(gateway, close.encoded)
    assert response.status_code == 403
    assert _error(response)["code"] == "not-moderator"


def test_the_page_event_stream_shows_a_new_comment_live(gateway: httpx.Client, owner: str) -> None:
    url = "https://www.exemple.fr/live"
    page = page_thread(parse_id(owner), url)
    events: list[dict[str, Any]] = []
    watching = threading.Event()
    got = threading.Event()

    def listen() -> None:
        with gateway.stream(
            "GET", "/api/page/events", params={"url": url, "owner": owner}, timeout=30
        ) as response:
            assert response.headers["access-control-allow-origin"] == "*"
            assert response.headers["content-type"].startswith("text/event-stream")
            name = None
            for line in response.iter_lines():
                if line == ": watching":
                    watching.set()
                elif line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: ") and name == "operation":
                    events.append(json.loads(line[len("data: ") :]))
                    if events[-1]["kind"] == "comment":
                        got.set()
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert watching.wait(15), "the stream never said it was watching"
    comment = _comment(SigningKey.generate(), page.id, page.id, "en direct")
    assert _submit(gateway, encode_batch([page.encoded, comment]), OPS).status_code == 201
    assert got.wait(15), events
    listener.join(15)
    assert events[-1]["operation"]["body"] == "en direct"
    assert events[-1]["thread"] == format_id(TextKind.THREAD, page.id)


def test_the_local_listener_takes_submissions_with_the_token_only(
    daemon: DaemonProcess, owner: str
) -> None:
    page = page_thread(parse_id(owner), "https://www.exemple.fr/local")
    headers = {"Content-Type": OP}
    refused = httpx.post(daemon.url + "/api/ops", content=page.encoded, headers=headers)
    assert refused.status_code == 401
    accepted = httpx.post(
        daemon.url + "/api/ops", content=page.encoded, headers={**headers, **daemon.auth}
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["state"] == "valid"
    # The local listener has no CORS: a web page can't read its answers.
    assert "access-control-allow-origin" not in accepted.headers


def test_over_the_operation_budget_is_429_with_retry_after(
    gateway: httpx.Client, owner: str
) -> None:
    # Last in the module: it spends the address's whole budget.
    page = page_thread(parse_id(owner), "https://www.exemple.fr/flood")
    reader = SigningKey.generate()
    batch = [page.encoded] + [
        _comment(reader, page.id, page.id, f"flood {n}") for n in range(OPS_PER_MINUTE)
    ]
    response = _submit(gateway, encode_batch(batch), OPS)
    statuses = [response.status_code]
    while response.status_code != 429 and len(statuses) < OPS_PER_MINUTE + 2:
        response = _submit(gateway, page.encoded)
        statuses.append(response.status_code)
    assert response.status_code == 429, statuses
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["access-control-allow-origin"] == "*"
    assert _error(response)["code"] == "rate-limited"
    # Reads have a budget of their own, still there.
    assert gateway.get("/api/threads").status_code == 200


def test_behind_a_proxy_each_forwarded_client_has_its_own_budget(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home = tmp_path_factory.mktemp("proxied-home")
    ok(home, "init")
    args = ("--no-network", "--public", "127.0.0.1:0", "--public-behind-proxy")
    args += ("--public-ops-per-minute", "1")
    with running_daemon(home, tmp_path_factory.mktemp("proxied-logs"), *args) as process:
        owner = str(httpx.get(process.url + "/api/id", timeout=15).json()["author"])
        page = page_thread(parse_id(owner), "https://www.exemple.fr/proxied")
        with httpx.Client(base_url=process.info["public_url"], timeout=15) as gateway:

            def submit(client: str) -> int:
                response = gateway.post(
                    "/api/ops",
                    content=page.encoded,
                    headers={"Content-Type": OP, "X-Forwarded-For": f"192.0.2.50, {client}"},
                )
                return response.status_code

            assert submit("203.0.113.1") == 201
            assert submit("203.0.113.1") == 429
            assert submit("203.0.113.2") == 201
        assert process.stop(signal.SIGTERM) == 0, process.stderr
