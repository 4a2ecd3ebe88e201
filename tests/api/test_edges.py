"""The API's pure pieces, in process: request bodies, bundles, JSON forms, the OpenAPI document,
the address file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pcomments.api.actions import ACTIONS, ACTIONS_BY_NAME, Field, path_parameters
from p2pcomments.api.address_file import (
    ApiAddress,
    read_address_file,
    remove_address_file,
    write_address_file,
)
from p2pcomments.api.bundle import decode_bundle, encode_bundle
from p2pcomments.api.errors import BadRequest, UnprocessableRequest
from p2pcomments.api.openapi import EXTRA_ROUTES, openapi_document
from p2pcomments.api.representations import operation_json, thread_json
from p2pcomments.api.request_body import parse_fields
from p2pcomments.core.ops import (
    CommentPayload,
    EditPayload,
    ModAction,
    ModeratePayload,
    ProfilePayload,
    ReactPayload,
    RetractPayload,
    ThreadPayload,
    make_operation,
)
from p2pcomments.core.replica import Replica
from p2pcomments.errors import DecodeError

FIELDS = (
    Field(name="body", required=True, description=""),
    Field(name="url", nullable=True, description=""),
    Field(name="reason", default="", description=""),
)


def test_fields_are_read_against_the_allowlist() -> None:
    assert parse_fields(b'{"body": "hi"}', FIELDS) == {"body": "hi", "url": None, "reason": ""}
    assert parse_fields(b'{"body": "hi", "url": null}', FIELDS)["url"] is None
    assert parse_fields(b"", (FIELDS[2],)) == {"reason": ""}


@pytest.mark.parametrize(
    ("raw", "error", "code"),
    [
        (b'{"body": "hi", "extra": 1}', UnprocessableRequest, "unknown-field"),
        (b"{}", UnprocessableRequest, "missing-field"),
        (b'{"body": null}', UnprocessableRequest, "bad-field"),
        (b'{"body": "x", "reason": null}', UnprocessableRequest, "bad-field"),
        (b'{"body": ["x"]}', UnprocessableRequest, "bad-field"),
        (b"[]", BadRequest, "bad-json"),
        (b"{", BadRequest, "bad-json"),
        (b"\xff", BadRequest, "bad-encoding"),
        (b'{"body": "caf\xe9"}', BadRequest, "bad-encoding"),  # Latin-1, not UTF-8
        (b"\xff\xfe{\x00}\x00", BadRequest, "bad-encoding"),  # UTF-16 is not JSON's encoding
        (b'\xef\xbb\xbf{"body": "x"}', BadRequest, "bad-json"),  # no byte order mark either
        (b"[" * 100_000, BadRequest, "bad-json"),
    ],
)
def test_bad_bodies_are_refused(raw: bytes, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as raised:
        parse_fields(raw, FIELDS)
    assert raised.value.reason == code  # type: ignore[attr-defined]


def test_a_body_that_is_not_utf8_names_the_byte_and_its_offset() -> None:
    with pytest.raises(BadRequest) as raised:
        parse_fields(b'{"body": "caf\xe9"}', FIELDS)
    assert raised.value.message.startswith("the request body is not UTF-8: byte 0xe9 at offset 13")


def test_bundles_round_trip_and_name_the_bad_line() -> None:
    operations = [b"\x98\x01", b"\xff" * 40]
    bundle = encode_bundle(operations)
    assert bundle.decode().splitlines() == ['"9801"', '"' + "ff" * 40 + '"']
    assert decode_bundle(bundle) == operations
    assert decode_bundle(b"\n" + bundle + b"\n\n") == operations
    assert decode_bundle(b"") == []
    for bad, line in ((b'"9801"\n42\n', 2), (b'"zz"\n', 1), (b"9801\n", 1)):
        with pytest.raises(DecodeError, match=f"line {line}"):
            decode_bundle(bad)
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_bundle(b"\xff\n")


def test_every_action_has_a_handler_and_documented_path_parameters() -> None:
    assert len(ACTIONS_BY_NAME) == len(ACTIONS)
    routes = {(a.method, a.path) for a in ACTIONS}
    assert len(routes) == len(ACTIONS)
    for action in ACTIONS:
        assert callable(action.handler), action.name
        assert action.path.startswith("/api/")
        assert set(path_parameters(action.path)) <= {"thread", "comment", "key", "claim"}
        assert (action.consumes == "json") or not action.fields


def test_openapi_lists_every_action_and_extra_route() -> None:
    document = openapi_document()
    json.dumps(document)  # serialisable
    for action in ACTIONS:
        operation = document["paths"][action.path][action.method.lower()]
        assert operation["operationId"] == action.name
        if action.writes:
            assert operation["security"] == [{"token": []}]
    for method, path, _, _ in EXTRA_ROUTES:
        assert method.lower() in document["paths"][path]
    references = json.dumps(document).count("#/components/schemas/")
    assert references > len(ACTIONS)
    for schema in {a.response for a in ACTIONS}:
        assert schema in document["components"]["schemas"]


def test_operation_json_for_every_kind() -> None:
    owner = SigningKey.generate()
    thread = make_operation(
        owner, ThreadPayload(title="T", url="https://example.org"), timestamp_ms=1
    )
    forms = [operation_json(thread)]
    refs = (thread.id,)
    comment = make_operation(
        owner, CommentPayload(body="hi"), timestamp_ms=2, thread=thread.id, refs=refs
    )
    forms.append(operation_json(comment))
    on_comment = {"thread": thread.id, "refs": (comment.id,)}
    for payload in (
        EditPayload(body="hi!"),
        RetractPayload(),
        ReactPayload(reaction="👍"),
        ModeratePayload(action=ModAction.HIDE, reason="spam"),
    ):
        forms.append(operation_json(make_operation(owner, payload, timestamp_ms=3, **on_comment)))
    add = ModeratePayload(action=ModAction.ADD_MODERATOR, subject=bytes(32))
    forms.append(
        operation_json(make_operation(owner, add, timestamp_ms=3, thread=thread.id, refs=refs))
    )
    forms.append(operation_json(make_operation(owner, ProfilePayload(name="Ann"), timestamp_ms=4)))

    kinds = [form["kind"] for form in forms]
    assert kinds == [
        "thread", "comment", "edit", "retract", "react", "moderate", "moderate", "profile",
    ]  # fmt: skip
    assert forms[0]["id"].startswith("thr_")
    assert forms[0]["url"] == "https://example.org"
    assert forms[1]["id"].startswith("cmt_")
    assert forms[1]["target"] == forms[0]["id"]
    assert forms[2]["id"].startswith("op_")
    assert forms[2]["target"] == forms[1]["id"]
    assert forms[4]["reaction"] == "👍"
    assert forms[5]["action"] == "hide"
    assert forms[6]["action"] == "add-moderator"
    assert forms[6]["subject"].startswith("key_")
    assert forms[6]["target"] == forms[0]["id"]
    assert forms[7]["thread"] is None
    assert forms[7]["name"] == "Ann"
    for form in forms:
        json.dumps(form)
        assert form["author"].startswith("key_")


def test_thread_json_of_a_view() -> None:
    owner = SigningKey.generate()
    thread = make_operation(owner, ThreadPayload(title="T"), timestamp_ms=1)
    comment = make_operation(
        owner, CommentPayload(body="hi"), timestamp_ms=2, thread=thread.id, refs=(thread.id,)
    )
    reply = make_operation(
        owner, CommentPayload(body="yo"), timestamp_ms=3, thread=thread.id, refs=(comment.id,)
    )
    replica = Replica()
    replica.merge([thread, comment, reply])
    form = thread_json(replica.view(thread.id))
    assert form["comment_count"] == 2
    assert [(c["depth"], c["body"]) for c in form["comments"]] == [(0, "hi"), (1, "yo")]
    assert form["comments"][0]["parent"] == form["id"]
    assert form["comments"][1]["parent"] == form["comments"][0]["id"]
    assert form["comments"][0]["reply_count"] == 1
    assert len(form["digest"]) == 64
    assert form["completeness"] is None  # not given
    json.dumps(form)


def test_comment_json_has_the_whole_history_and_the_version_a_reply_answered() -> None:
    owner = SigningKey.generate()
    thread = make_operation(owner, ThreadPayload(title="T"), timestamp_ms=1)
    comment = make_operation(
        owner, CommentPayload(body="v1"), timestamp_ms=2, thread=thread.id, refs=(thread.id,)
    )
    reply = make_operation(
        owner, CommentPayload(body="re v1"), timestamp_ms=3, thread=thread.id, refs=(comment.id,)
    )
    edit = make_operation(
        owner,
        EditPayload(body="v2"),
        timestamp_ms=4,
        thread=thread.id,
        refs=(comment.id,),
        deps=frozenset({reply.id}),
    )
    replica = Replica()
    replica.merge([thread, comment, reply, edit])
    form = thread_json(replica.view(thread.id))
    first, answer = form["comments"]
    assert first["body"] == "v2"
    assert first["original"] == {"id": first["id"], "timestamp_ms": 2, "body": "v1"}
    assert [(e["id"][:3], e["timestamp_ms"], e["body"]) for e in first["edits"]] == [
        ("op_", 4, "v2")
    ]
    assert first["answered_version"] is None
    assert answer["parent_edited_after"] is True
    assert answer["answered_version"] == first["original"]
    assert answer["original"]["body"] == "re v1"


def test_completeness_json_names_what_waits_and_what_was_refused() -> None:
    from p2pcomments.api.representations import completeness_json
    from p2pcomments.core.completeness import RejectionLog, thread_completeness
    from p2pcomments.core.replica import Rejected

    owner, other = SigningKey.generate(), SigningKey.generate()
    thread = make_operation(owner, ThreadPayload(title="T"), timestamp_ms=1)
    comment = make_operation(
        owner, CommentPayload(body="c"), timestamp_ms=2, thread=thread.id, refs=(thread.id,)
    )
    waiting = make_operation(
        other, CommentPayload(body="w"), timestamp_ms=3, thread=thread.id, refs=(comment.id,)
    )
    forged = make_operation(
        other, EditPayload(body="x"), timestamp_ms=3, thread=thread.id, refs=(comment.id,)
    )
    replica = Replica()
    replica.merge([thread, waiting])
    log = RejectionLog(since_ms=1000)
    log.record(forged, Rejected(op_id=forged.id, reason="not-author", message="m"), at_ms=1001)
    completeness = thread_completeness(
        thread.id,
        verified=len(replica.threads[thread.id]),
        pending=[(waiting, replica.pending[waiting.id])],
        log=log,
    )
    form = completeness_json(completeness, b"\x01" * 32)
    assert form["verified"] == 1
    assert form["held"] == 2
    assert form["pending"] == 1
    assert form["rejected"] == 1
    assert form["digest"] == "01" * 32
    [pending] = form["pending_operations"]
    assert pending["id"].startswith("cmt_")
    assert pending["kind"] == "comment"
    assert len(pending["missing"]) == 1
    assert pending["missing"][0].startswith("op_")
    [refused] = form["rejected_operations"]
    assert refused["id"].startswith("op_")
    assert (refused["code"], refused["message"], refused["at_ms"]) == ("not-author", "m", 1001)
    assert form["rejections_since_ms"] == 1000
    json.dumps(form)


def test_address_file_is_private_and_removed_only_by_its_daemon(tmp_path: Path) -> None:
    address = ApiAddress(host="127.0.0.1", port=8765, token="secret", pid=os.getpid())
    path = write_address_file(tmp_path, address)
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["url"] == "http://127.0.0.1:8765"
    assert read_address_file(tmp_path) == address
    remove_address_file(tmp_path, pid=address.pid + 1)
    assert path.exists()
    remove_address_file(tmp_path, pid=address.pid)
    assert not path.exists()
    assert read_address_file(tmp_path) is None
    path.write_text("{not json")
    assert read_address_file(tmp_path) is None
    assert ApiAddress(host="::1", port=1, token="", pid=1).url == "http://[::1]:1"


@pytest.mark.trio
async def test_an_error_quoting_a_lone_surrogate_is_still_a_json_error(tmp_path: Path) -> None:
    """Found by scripts/fuzz_boundaries.py: JSON may carry "\\ud800", which UTF-8 can't encode;
    an error message quoting it made rendering the error fail (a 500 without the error object)."""
    import httpx
    import trio

    from p2pcomments import open_node
    from p2pcomments.api.app import build_app

    async with open_node(tmp_path / "data", create_identity=True) as node:
        app = build_app(node, token="t", closing=trio.Event())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            response = await client.post(
                "/api/inbox/read",
                content=b'{"ids": "\\ud800"}',
                headers={"authorization": "Bearer t"},
            )
    assert 400 <= response.status_code < 500
    error = response.json()["error"]
    assert error["code"]
    assert "\\ud800" in error["message"]


@pytest.mark.trio
async def test_far_future_timestamps_are_shown_not_a_500(tmp_path: Path) -> None:
    """Found by scripts/fuzz_boundaries.py: an operation may carry any timestamp below 2^63 ms;
    once one was held, the WordPress export and the thread's HTML page raised ValueError (year
    292278994 is out of range) for everyone."""
    import httpx
    import trio

    from p2pcomments import open_node
    from p2pcomments.api.app import build_app
    from p2pcomments.core.textform import TextKind, format_id

    author = SigningKey(b"\x09" * 32)
    far = ThreadPayload(title="Far", url="https://far.example/post")
    thread = make_operation(author, far, timestamp_ms=2**63 - 2)
    comment = make_operation(
        author,
        CommentPayload(body="from the far future"),
        timestamp_ms=2**63 - 1,
        thread=thread.id,
        refs=(thread.id,),
    )
    async with open_node(tmp_path / "data", create_identity=True) as node:
        await node.ingest([thread.encoded, comment.encoded])
        app = build_app(node, token="t", closing=trio.Event())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            page = await client.get(f"/t/{format_id(TextKind.THREAD, thread.id)}")
            export = await client.get("/api/export/wxr")
    assert page.status_code == 200
    assert "9999-12-31" in page.text
    assert export.status_code == 200
    assert b"9999-12-31 23:59:59" in export.content
