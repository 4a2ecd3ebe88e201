"""protocol/vectors/ as a conformance suite, read the way another implementation would read it;
and `scripts/gen_vectors.py --check` keeps the files true to the code."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import msgpack
import pytest
from nacl.signing import SigningKey, VerifyKey

from p2pcomments.core.ops import (
    OP_SIGNING_DOMAIN,
    CommentPayload,
    EditPayload,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    Payload,
    ProfilePayload,
    ReactPayload,
    RetractPayload,
    ThreadPayload,
    decode_operation,
    make_operation,
)
from p2pcomments.core.replica import Applied, Rejected, Replica
from p2pcomments.core.textform import TextKind, format_id, parse_id
from p2pcomments.core.thread_state import ThreadView
from p2pcomments.errors import InvalidOperation, TextFormError

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors"


@cache
def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _ids(name: str, key: str = "vectors") -> list[str]:
    return [v.get("name", v.get("label")) for v in load(name)[key]]


def test_gen_vectors_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- operations.json -------------------------------------------------------------------------


def _payload(kind: Kind, fields: dict[str, Any]) -> Payload:
    if kind is Kind.THREAD:
        return ThreadPayload(title=fields["title"], url=fields["url"], site=fields["site"])
    if kind is Kind.COMMENT:
        return CommentPayload(body=fields["body"])
    if kind is Kind.EDIT:
        return EditPayload(body=fields["body"])
    if kind is Kind.RETRACT:
        return RetractPayload()
    if kind is Kind.REACT:
        return ReactPayload(reaction=fields["reaction"])
    if kind is Kind.MODERATE:
        subject = fields["subject"]
        return ModeratePayload(
            action=ModAction(fields["action"]),
            subject=bytes.fromhex(subject) if subject else None,
            reason=fields["reason"],
        )
    return ProfilePayload(name=fields["name"])


def _opt(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


@pytest.mark.parametrize("vector", load("operations.json")["vectors"], ids=_ids("operations.json"))
def test_valid_operation_vector(vector: dict[str, Any]) -> None:
    encoded = bytes.fromhex(vector["encoded"])
    op = decode_operation(encoded)
    unsigned = vector["unsigned"]
    assert op.version == unsigned["version"]
    assert int(op.kind) == unsigned["kind"]
    assert op.kind.name.lower() == unsigned["kind_name"]
    assert op.author.hex() == unsigned["author"] == vector["signer"]["public_key"]
    assert op.thread == _opt(unsigned["thread"])
    assert [r.hex() for r in op.refs] == unsigned["refs"]
    assert [d.hex() for d in op.deps] == unsigned["deps"]
    assert op.timestamp_ms == unsigned["timestamp_ms"]
    assert op.payload == _payload(op.kind, unsigned["payload"])
    # identity and signature
    unsigned_bytes = bytes.fromhex(vector["unsigned_hex"])
    assert (
        msgpack.unpackb(unsigned_bytes, use_list=False)
        == msgpack.unpackb(encoded, use_list=False)[:8]
    )
    assert hashlib.sha256(unsigned_bytes).hexdigest() == vector["id"] == op.id.hex()
    assert bytes.fromhex(vector["signing_message_hex"]) == OP_SIGNING_DOMAIN + op.id
    assert op.signature.hex() == vector["signature"]
    VerifyKey(op.author).verify(OP_SIGNING_DOMAIN + op.id, op.signature)
    # the seed signs the same bytes again (Ed25519 is deterministic)
    key = SigningKey(bytes.fromhex(vector["signer"]["seed"]))
    assert bytes(key.verify_key) == op.author
    again = make_operation(
        key,
        op.payload,
        timestamp_ms=op.timestamp_ms,
        thread=op.thread,
        refs=op.refs,
        deps=op.deps,
    )
    assert again.encoded == encoded
    # text forms
    assert parse_id(vector["id_text"]) == op.id
    assert (
        parse_id(vector["signer"]["public_key_text"], expect=frozenset({TextKind.KEY})) == op.author
    )


def test_operation_vectors_cover_every_kind_and_action() -> None:
    vectors = load("operations.json")["vectors"]
    kinds = {v["unsigned"]["kind"] for v in vectors}
    actions = {v["unsigned"]["payload"].get("action") for v in vectors} - {None}
    assert kinds == {int(k) for k in Kind}
    # retitle came with page threads: its vectors are in page_threads.json (tests/core/test_page_*)
    # and the rule actions (SPEC §11) with the rules: theirs are in rules.json (test_rules_vectors)
    # and the claims' (SPEC §2) in claims.json (tests/core/test_claims.py)
    rules = {int(a) for a in ModAction if ModAction.BAN <= a <= ModAction.RECOMMEND_LIST}
    claims = {int(ModAction.CLAIM), int(ModAction.ACCEPT_CLAIM)}
    assert actions == {int(a) for a in ModAction} - {int(ModAction.RETITLE)} - rules - claims


# -- invalid_operations.json -------------------------------------------------------------------


def _invalid_bytes(vector: dict[str, Any]) -> bytes:
    if "encoded" in vector:
        return bytes.fromhex(vector["encoded"])
    data = b"\x99" + b"\x00" * (vector["size"] - 1)  # the one pattern the generator uses
    assert vector["encoded_pattern"] == f"0x99 followed by {vector['size'] - 1} zero bytes"
    assert hashlib.sha256(data).hexdigest() == vector["encoded_sha256"]
    return data


@pytest.mark.parametrize(
    "vector", load("invalid_operations.json")["vectors"], ids=_ids("invalid_operations.json")
)
def test_invalid_operation_vector(vector: dict[str, Any]) -> None:
    data = _invalid_bytes(vector)
    assert len(data) == vector["size"]
    with pytest.raises(InvalidOperation) as caught:
        decode_operation(data)
    assert caught.value.reason == vector["reason"]


def test_invalid_vectors_cover_every_structural_reason() -> None:
    reasons = {v["reason"] for v in load("invalid_operations.json")["vectors"]}
    assert reasons >= {
        "malformed",
        "oversize",
        "non-canonical",
        "unknown-version",
        "unknown-kind",
        "bad-field",
        "bad-text",
        "bad-signature",
        "bad-reference",
    }


# -- thread_views.json ---------------------------------------------------------------------------


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _view_json(view: ThreadView) -> dict[str, Any]:
    """The vectors' JSON form of a view, written independently of the generator."""
    return {
        "id": view.id.hex(),
        "owner": view.owner.hex(),
        "owner_name": view.owner_name,
        "title": view.title,
        "url": view.url,
        "site": view.site,
        "timestamp_ms": view.timestamp_ms,
        "closed": view.closed,
        "moderators": [m.hex() for m in view.moderators],
        "operation_count": view.operation_count,
        "comments": [
            {
                "id": c.id.hex(),
                "author": c.author.hex(),
                "author_name": c.author_name,
                "parent": c.parent.hex(),
                "depth": c.depth,
                "timestamp_ms": c.timestamp_ms,
                "body": c.body,
                "edits": [
                    {"id": e.id.hex(), "timestamp_ms": e.timestamp_ms, "body": e.body}
                    for e in c.edits
                ],
                "retracted": c.retracted,
                "hidden": c.hidden,
                "hidden_by": _hex(c.hidden_by),
                "reactions": [
                    {"reaction": r.reaction, "authors": [a.hex() for a in r.authors]}
                    for r in c.reactions
                ],
                "parent_edited_after": c.parent_edited_after,
                "after_close": c.after_close,
                "reply_count": c.reply_count,
            }
            for c in view.comments
        ],
    }


def _history_ops(history: dict[str, Any]) -> list[Operation]:
    return [decode_operation(bytes.fromhex(h)) for h in history["operations"]]


@pytest.mark.parametrize(
    "history", load("thread_views.json")["histories"], ids=_ids("thread_views.json", "histories")
)
def test_thread_history_vector(history: dict[str, Any]) -> None:
    ops = _history_ops(history)
    replica = Replica()
    for op, expected in zip(ops, history["outcomes"], strict=True):
        assert op.id.hex() == expected["id"]
        outcome = replica.apply(op).outcome
        if expected["outcome"] == "applied":
            assert isinstance(outcome, Applied), expected["label"]
        else:
            assert isinstance(outcome, Rejected), expected["label"]
            assert outcome.reason == expected["reason"], expected["label"]
    view = replica.view(bytes.fromhex(history["thread_id"]))
    assert _view_json(view) == history["view"]
    preimage = bytes.fromhex(history["view_digest_preimage"])
    assert hashlib.sha256(preimage).hexdigest() == history["view_digest"]
    assert view.digest().hex() == history["view_digest"]
    for shuffled in history["shuffled_orders"]:
        other = Replica()
        other.merge(ops[i] for i in shuffled["order"])
        assert other.view(view.id).digest().hex() == shuffled["view_digest"]
        assert other.pending == {}


def test_history_vectors_show_the_rules() -> None:
    histories = load("thread_views.json")["histories"]
    comments = [c for h in histories for c in h["view"]["comments"]]
    reasons = {o.get("reason") for h in histories for o in h["outcomes"]}
    assert {"not-author", "not-owner", "not-moderator"} <= reasons
    assert any(c["retracted"] and c["reply_count"] for c in comments)
    assert any(c["hidden"] for c in comments)
    assert any(c["after_close"] for c in comments)
    assert any(c["parent_edited_after"] for c in comments)
    assert any(len(c["edits"]) > 1 for c in comments)
    assert any(c["reactions"] for c in comments)
    assert {h["view"]["closed"] for h in histories} == {True, False}


# -- text_forms.json -----------------------------------------------------------------------------


def test_text_form_vectors() -> None:
    document = load("text_forms.json")
    for entry in document["valid"]:
        raw = bytes.fromhex(entry["bytes"])
        for prefix, text in entry["forms"].items():
            assert format_id(TextKind(prefix), raw) == text
            assert parse_id(text) == raw
    for entry in document["hex_accepted"]:
        assert parse_id(entry["text"]) == bytes.fromhex(entry["bytes"])
    for entry in document["invalid"]:
        with pytest.raises(TextFormError):
            parse_id(entry["text"])
