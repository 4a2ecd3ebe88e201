"""The rule vectors (rejection_order, signature_rules, causal_rules, text_form_rules) read the way
another implementation would read them, and `scripts/gen_rule_vectors.py --check` keeps them true
to the code. Also the decoder's rule that a map is a value of the wrong type whatever its keys."""

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
from hypothesis import given
from hypothesis import strategies as st
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from p2pcomments.core.ops import (
    MAX_OPERATION_BYTES,
    OP_SIGNING_DOMAIN,
    decode_operation,
    decode_operations,
)
from p2pcomments.core.replica import Applied, Duplicate, Pending, Rejected, Replica
from p2pcomments.core.textform import TextKind, parse_id
from p2pcomments.errors import InvalidOperation, TextFormError
from tests.core import spec_decoder, spec_view
from tests.core.strategies import histories
from tests.core.test_vectors import _view_json
from tests.core.wire import Raw, comment_fields, sign_fields

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors"
sys.path.insert(0, str(ROOT / "scripts"))
import ed25519_math as ed  # noqa: E402


@cache
def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _names(name: str, key: str, field: str = "name") -> list[str]:
    return [v[field] for v in load(name)[key]]


def test_gen_rule_vectors_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_rule_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- rejection_order.json ---------------------------------------------------------------------


def _bytes_of(vector: dict[str, Any]) -> bytes:
    if "encoded" in vector:
        return bytes.fromhex(vector["encoded"])
    size, _, pattern = vector["encoded_pattern"].split(" ")
    data = bytes.fromhex(pattern) * int(size)
    assert hashlib.sha256(data).hexdigest() == vector["encoded_sha256"]
    return data


@pytest.mark.parametrize(
    "vector",
    load("rejection_order.json")["vectors"],
    ids=_names("rejection_order.json", "vectors"),
)
def test_rejection_order_vector(vector: dict[str, Any]) -> None:
    data = _bytes_of(vector)
    assert len(data) == vector["size"]
    if vector["reason"] is None:
        assert decode_operation(data).encoded == data
        return
    with pytest.raises(InvalidOperation) as caught:
        decode_operation(data)
    assert caught.value.reason == vector["reason"]
    # the batch decoder gives the same reason
    (result,) = decode_operations([data])
    assert isinstance(result, InvalidOperation)
    assert result.reason == vector["reason"]


def test_rejection_order_covers_the_boundaries() -> None:
    vectors = load("rejection_order.json")["vectors"]
    reasons = {v["reason"] for v in vectors}
    assert reasons >= {
        None,
        "malformed",
        "oversize",
        "non-canonical",
        "unknown-version",
        "unknown-kind",
        "bad-field",
        "bad-text",
        "bad-reference",
        "bad-signature",
    }
    assert any(v["size"] > MAX_OPERATION_BYTES for v in vectors)


# -- the decoder: maps and other values of the wrong type ------------------------------------

_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.binary(max_size=40)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8))
)
_keys = st.integers(-5, 5) | st.text(max_size=3) | st.binary(max_size=3) | st.booleans()


def _values(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3).map(tuple)
            | st.dictionaries(_keys, inner, min_size=1, max_size=3)
        ),
        max_leaves=8,
    )


@given(value=_values(_leaves))
def test_any_value_not_text_as_the_body_is_bad_field(value: Any) -> None:
    """A well-formed msgpack value of the wrong type where the body goes is bad-field, whatever
    it is: maps with integer, boolean, binary or text keys alike (SPEC §5.1 step 7)."""
    from nacl.signing import SigningKey

    key = SigningKey(b"\x07" * 32)
    body = Raw(msgpack.packb(value, use_bin_type=True))
    data = sign_fields(key, comment_fields(key, payload=(body,)))
    with pytest.raises(InvalidOperation) as caught:
        decode_operation(data)
    assert caught.value.reason == "bad-field"


@pytest.mark.parametrize(
    "encoded_map",
    [b"\x81\x01\x02", b"\x81\xc3\x02", b"\x81\x81\x01\x02\x03", b"\x81\x91\x01\x02", b"\x80"],
    ids=["int-key", "bool-key", "map-key", "array-key", "empty"],
)
def test_a_map_in_any_field_is_bad_field(encoded_map: bytes) -> None:
    from nacl.signing import SigningKey

    key = SigningKey(b"\x08" * 32)
    for position in ("thread", "refs", "deps", "payload"):
        data = sign_fields(key, comment_fields(key, **{position: Raw(encoded_map)}))
        with pytest.raises(InvalidOperation) as caught:
            decode_operation(data)
        assert caught.value.reason == "bad-field", position
    # as the whole operation, or where the version or kind goes
    with pytest.raises(InvalidOperation) as caught:
        decode_operation(encoded_map)
    assert caught.value.reason == "malformed"
    data = sign_fields(key, comment_fields(key, version=Raw(encoded_map)))
    with pytest.raises(InvalidOperation) as caught:
        decode_operation(data)
    assert caught.value.reason == "unknown-version"


# -- signature_rules.json ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "vector", load("signature_rules.json")["vectors"], ids=_names("signature_rules.json", "vectors")
)
def test_signature_rule_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["encoded"])
    author = bytes.fromhex(vector["author"])
    signature = bytes.fromhex(vector["signature"])
    message = bytes.fromhex(vector["signing_message_hex"])
    assert data.endswith(b"\xc4\x40" + signature)
    op_id = hashlib.sha256(b"\x98" + data[1:-66]).digest()
    assert message == OP_SIGNING_DOMAIN + op_id
    if vector["valid"]:
        op = decode_operation(data)
        assert op.author == author
        VerifyKey(author).verify(message, signature)  # PyNaCl's own path agrees
    else:
        with pytest.raises(InvalidOperation) as caught:
            decode_operation(data)
        assert caught.value.reason == vector["reason"] == "bad-signature"
        with pytest.raises(BadSignatureError):
            VerifyKey(author).verify(message, signature)
        # nothing but the signature is wrong: the same bytes decode without verification
        assert decode_operation(data, verify=False).author == author
    # what the other rules would say, recomputed
    others = vector["other_rules"]
    assert ed.verify_rfc8032(author, message, signature) is others["rfc8032_cofactored"]
    assert ed.verify_zip215(author, message, signature) is others["zip215"]


def test_signature_vectors_separate_libsodium_from_the_other_rules() -> None:
    vectors = load("signature_rules.json")["vectors"]
    # each alternative reading accepts something the rule refuses
    assert any(v["other_rules"]["rfc8032_cofactored"] and not v["valid"] for v in vectors)
    assert any(
        v["other_rules"]["zip215"] and not v["other_rules"]["rfc8032_cofactored"] for v in vectors
    )
    # and a key outside the prime-order subgroup that the rule accepts
    assert any(v["valid"] and "mixed" in v["name"] for v in vectors)


# -- causal_rules.json ------------------------------------------------------------------------


def _outcome_json(outcome: object) -> dict[str, Any]:
    if isinstance(outcome, Applied):
        return {"outcome": "applied"}
    if isinstance(outcome, Rejected):
        return {"outcome": "rejected", "reason": outcome.reason}
    if isinstance(outcome, Pending):
        return {"outcome": "pending", "missing": sorted(m.hex() for m in outcome.missing)}
    assert isinstance(outcome, Duplicate)
    return {"outcome": "duplicate"}


def _final(replica: Replica, ops: list[Any]) -> list[dict[str, Any]]:
    statuses = []
    for op in ops:
        if op.id in replica:
            statuses.append({"status": "valid"})
        elif op.id in replica.pending:
            missing = sorted(m.hex() for m in replica.pending[op.id])
            statuses.append({"status": "pending", "missing": missing})
        else:
            outcome = replica.apply(op).outcome
            assert isinstance(outcome, Rejected)
            statuses.append({"status": "rejected", "reason": outcome.reason})
    return statuses


@pytest.mark.parametrize(
    "story", load("causal_rules.json")["stories"], ids=_names("causal_rules.json", "stories")
)
def test_causal_rule_story(story: dict[str, Any]) -> None:
    ops = [decode_operation(bytes.fromhex(h)) for h in story["operations"]]
    replica = Replica()
    for step in story["steps"]:
        op = ops[step["index"]]
        assert op.id.hex() == step["id"]
        result = replica.apply(op)
        expected = {k: step[k] for k in ("outcome", "reason", "missing") if k in step}
        assert _outcome_json(result.outcome) == expected, step["label"]
        released = sorted(
            ({"id": o.id.hex(), **_outcome_json(out)} for o, out in result.released),
            key=lambda entry: entry["id"],
        )
        assert released == step.get("released", []), step["label"]
    final = [{k: v for k, v in f.items() if k not in ("label", "id")} for f in story["final"]]
    assert _final(replica, ops) == final
    for thread_hex, expected_view in story["views"].items():
        view = replica.view(bytes.fromhex(thread_hex))
        assert _view_json(view) == expected_view["view"]
        preimage = bytes.fromhex(expected_view["view_digest_preimage"])
        assert hashlib.sha256(preimage).hexdigest() == expected_view["view_digest"]
        assert view.digest().hex() == expected_view["view_digest"]
    for order in story["shuffled_orders"]:
        other = Replica()
        for index in order:
            other.apply(ops[index])
        assert _final(other, ops) == final
        for thread_hex, expected_view in story["views"].items():
            digest = other.view(bytes.fromhex(thread_hex)).digest().hex()
            assert digest == expected_view["view_digest"]
    never = set(story["never_delivered"])
    assert not never & {op.id.hex() for op in ops}


def test_causal_stories_show_the_rules() -> None:
    stories = load("causal_rules.json")["stories"]
    reasons = {f.get("reason") for s in stories for f in s["final"]}
    assert {"wrong-thread", "bad-reference", "not-author", "not-owner", "not-moderator"} <= reasons
    assert "bad-field" in reasons  # the owner can't be removed
    assert any(f["status"] == "pending" for s in stories for f in s["final"])
    assert any(step.get("released") for s in stories for step in s["steps"])
    views = [v["view"] for s in stories for v in s["views"].values()]
    assert any(v["owner"] in v["moderators"] for v in views)
    assert any(len(v["moderators"]) >= 3 for v in views)
    comments = [c for v in views for c in v["comments"]]
    assert any(c["retracted"] and c["reactions"] for c in comments)
    by_id = {c["id"]: c for c in comments}
    assert any(  # a reply flagged under a retracted parent
        c["parent_edited_after"] and by_id[c["parent"]]["retracted"]
        for c in comments
        if c["parent"] in by_id
    )
    assert not any(c["parent_edited_after"] for c in comments if c["depth"] == 0)
    assert any(len(r["authors"]) >= 4 for c in comments for r in c["reactions"])
    assert any(c["after_close"] and c["reply_count"] for c in comments)


# -- text_form_rules.json ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "vector",
    load("text_form_rules.json")["parse"],
    ids=_names("text_form_rules.json", "parse", "label"),
)
def test_text_form_rule_vector(vector: dict[str, Any]) -> None:
    expect = vector["expect"]
    kinds = None if expect is None else frozenset(TextKind(k) for k in expect)
    if vector["bytes"] is None:
        with pytest.raises(TextFormError):
            parse_id(vector["text"], expect=kinds)
    else:
        assert parse_id(vector["text"], expect=kinds).hex() == vector["bytes"]


def test_text_form_prefixes() -> None:
    document = load("text_form_rules.json")
    assert document["kinds"] == [k.value for k in TextKind]
    for entry in document["prefixes"]:
        kind = TextKind(entry["prefix"])
        assert entry["example"].startswith(kind.value + "_")
        assert parse_id(entry["example"], expect=frozenset({kind}))


_SMALL_ORDER_Y = {
    ed.encode(ed.mul(k, ed.torsion_point_of_order_8()))[:31]
    + bytes([ed.encode(ed.mul(k, ed.torsion_point_of_order_8()))[31] & 0x7F])
    for k in range(8)
}


def _spec_5_2(author: bytes, message: bytes, signature: bytes) -> bool:
    """SPEC §5.2 rules 1-4 as written, implemented from the text (not from libsodium)."""

    def y_bytes(encoding: bytes) -> bytes:
        return encoding[:31] + bytes([encoding[31] & 0x7F])

    def small_order(encoding: bytes) -> bool:
        y = int.from_bytes(y_bytes(encoding), "little")
        reduced = (y % ed.P).to_bytes(32, "little")  # y + p for y = 0 and 1
        return y_bytes(encoding) in _SMALL_ORDER_Y or reduced in _SMALL_ORDER_Y

    r_bytes, s = signature[:32], int.from_bytes(signature[32:], "little")
    if s >= ed.L or small_order(r_bytes) or small_order(author):  # rules 1 and 2
        return False
    if int.from_bytes(y_bytes(author), "little") >= ed.P:  # rule 3
        return False
    a_point = ed.decode_strict(author)
    if a_point is None:
        return False
    h = ed.challenge(r_bytes, author, message)
    x, y, z, t = ed.mul(h, a_point)
    check = ed.add(ed.mul(s, ed.BASE), (-x % ed.P, y, z, -t % ed.P))  # [S]B - [h]A
    return ed.encode(check) == r_bytes  # rule 4


@pytest.mark.parametrize(
    "vector", load("signature_rules.json")["vectors"], ids=_names("signature_rules.json", "vectors")
)
def test_the_spec_text_of_signatures_gives_every_vector(vector: dict[str, Any]) -> None:
    author = bytes.fromhex(vector["author"])
    message = bytes.fromhex(vector["signing_message_hex"])
    signature = bytes.fromhex(vector["signature"])
    assert _spec_5_2(author, message, signature) is vector["valid"]


# -- the SPEC's text as a second decoder ------------------------------------------------------


def _decoding_vectors() -> list[tuple[str, bytes, str | None]]:
    cases = []
    for v in load("rejection_order.json")["vectors"]:
        cases.append((f"rejection_order/{v['name']}", _bytes_of(v), v["reason"]))
    for v in load("signature_rules.json")["vectors"]:
        cases.append((f"signature_rules/{v['name']}", bytes.fromhex(v["encoded"]), v["reason"]))
    for v in load("invalid_operations.json")["vectors"]:
        data = (
            bytes.fromhex(v["encoded"])
            if "encoded" in v
            else b"\x99" + b"\x00" * (v["size"] - 1)  # the one pattern gen_vectors.py uses
        )
        cases.append((f"invalid_operations/{v['name']}", data, v["reason"]))
    for v in load("operations.json")["vectors"]:
        cases.append((f"operations/{v['name']}", bytes.fromhex(v["encoded"]), None))
    provenance = load("provenance.json")
    for v in provenance["valid"]:
        data = bytes.fromhex(v["operation"]["encoded"])
        cases.append((f"provenance/{v['label']}", data, None))
    for v in provenance["invalid"]:
        cases.append((f"provenance/{v['label']}", bytes.fromhex(v["encoded"]), v["reason"]))
    for v in load("page_threads.json")["not_page_threads"]:
        if "encoded" in v and "reason" in v:
            cases.append(
                (
                    f"page_threads/{v.get('label', v.get('name'))}",
                    bytes.fromhex(v["encoded"]),
                    v["reason"],
                )
            )
    return cases


@pytest.mark.parametrize(
    ("data", "reason"),
    [(data, reason) for _, data, reason in _decoding_vectors()],
    ids=[name for name, _, _ in _decoding_vectors()],
)
def test_a_decoder_written_from_the_spec_agrees(data: bytes, reason: str | None) -> None:
    """tests/core/spec_decoder.py implements SPEC §5.1 from its text; it must give every
    vector's reason, so the text says what the code does."""
    got: str | None = None
    try:
        spec_decoder.decode(data)
    except spec_decoder.OutOfScope as why:
        pytest.skip(str(why))
    except spec_decoder.Refused as refused:
        got = refused.reason
    assert got == reason


_texts = st.lists(
    st.sampled_from(["a", "é", "e\u0301", " ", "\u00a0", "\u3000", "\u200b", "\x1f", "\x00"])
    | st.sampled_from(["\n", "\t", "\r", "\x85", "\u212b", "\U0001f600", "\uffff", "x" * 40]),
    max_size=6,
).map("".join)
_field_values = _values(
    _leaves | _texts | st.binary(min_size=32, max_size=32) | st.integers(min_value=0, max_value=10)
)


@given(
    base=st.sampled_from(load("operations.json")["vectors"]),
    position=st.integers(0, 7),
    inner=st.integers(0, 5),
    value=_field_values,
)
def test_the_spec_decoder_agrees_on_changed_fields(
    base: dict[str, Any], position: int, inner: int, value: Any
) -> None:
    """Any one field (or one element of the payload, refs or deps) replaced by any value, signed
    again by its signer: the decoder written from the SPEC and the reference agree on the
    reason."""
    from nacl.signing import SigningKey

    key = SigningKey(bytes.fromhex(base["signer"]["seed"]))
    fields = list(msgpack.unpackb(bytes.fromhex(base["unsigned_hex"]), use_list=False, raw=False))
    replacement = Raw(msgpack.packb(value, use_bin_type=True))
    target = fields[position]
    if type(target) is tuple and target and position in (4, 5, 7):
        fields[position] = tuple(
            replacement if i == inner % len(target) else item for i, item in enumerate(target)
        )
    else:
        fields[position] = replacement
    data = sign_fields(key, tuple(fields))
    try:
        decode_operation(data)
        expected = None
    except InvalidOperation as error:
        expected = error.reason
    got: str | None = None
    try:
        spec_decoder.decode(data)
    except spec_decoder.OutOfScope:
        return
    except spec_decoder.Refused as refused:
        got = refused.reason
    assert got == expected


@given(
    base=st.sampled_from(
        load("operations.json")["vectors"] + load("rejection_order.json")["vectors"]
    ),
    edits=st.lists(
        st.tuples(st.integers(0, 2**16), st.integers(0, 255), st.booleans()), max_size=3
    ),
)
def test_the_spec_decoder_agrees_on_changed_bytes(
    base: dict[str, Any], edits: list[tuple[int, int, bool]]
) -> None:
    """Bytes overwritten or inserted anywhere: both decoders give the same reason."""
    data = bytearray(bytes.fromhex(base["encoded"])) if "encoded" in base else bytearray(b"\x99")
    for where, byte, insert in edits:
        at = where % (len(data) + 1)
        if insert or at == len(data):
            data.insert(at, byte)
        else:
            data[at] = byte
    try:
        decode_operation(bytes(data))
        expected = None
    except InvalidOperation as error:
        expected = error.reason
    got: str | None = None
    try:
        spec_decoder.decode(bytes(data))
    except spec_decoder.OutOfScope:
        return
    except spec_decoder.Refused as refused:
        got = refused.reason
    assert got == expected


# -- the SPEC's text as a second validity and view implementation ----------------------------


def _spec_final(ops: list[Any]) -> list[dict[str, Any]]:
    status = spec_view.decide(ops)
    final = []
    for op in ops:
        state, reason = status[op.id]
        entry: dict[str, Any] = {"status": state}
        if reason is not None:
            entry["reason"] = reason
        final.append(entry)
    return final


@pytest.mark.parametrize(
    "story", load("causal_rules.json")["stories"], ids=_names("causal_rules.json", "stories")
)
def test_a_view_written_from_the_spec_agrees_on_the_stories(story: dict[str, Any]) -> None:
    ops = [decode_operation(bytes.fromhex(h)) for h in story["operations"]]
    expected = [{k: v for k, v in f.items() if k in ("status", "reason")} for f in story["final"]]
    assert _spec_final(ops) == expected
    for thread_hex, expected_view in story["views"].items():
        assert spec_view.view_json(ops, bytes.fromhex(thread_hex)) == expected_view["view"]


@pytest.mark.parametrize(
    "history",
    [*load("thread_views.json")["histories"], load("page_threads.json")["history"]],
    ids=[*_names("thread_views.json", "histories"), "page_threads"],
)
def test_a_view_written_from_the_spec_agrees_on_the_histories(history: dict[str, Any]) -> None:
    ops = [decode_operation(bytes.fromhex(h)) for h in history["operations"]]
    status = spec_view.decide(ops)
    for op, outcome in zip(ops, history["outcomes"], strict=True):
        state, reason = status[op.id]
        assert (state == "valid") == (outcome["outcome"] == "applied"), outcome["label"]
        assert reason == outcome.get("reason"), outcome["label"]
    assert spec_view.view_json(ops, bytes.fromhex(history["thread_id"])) == history["view"]


@given(history=histories())
def test_a_view_written_from_the_spec_agrees_on_random_histories(history: Any) -> None:
    ops = list(history.ops)
    replica = Replica()
    for op in ops:
        replica.apply(op)
    assert _spec_final(ops) == [
        {k: v for k, v in f.items() if k != "missing"} for f in _final(replica, ops)
    ]
    for thread_id in replica.threads:
        assert spec_view.view_json(ops, thread_id) == _view_json(replica.view(thread_id))


def _spec_parse_id(text: str, expect: list[str] | None) -> bytes | None:
    """SPEC §7's parsing rules, from the text: the bytes, or None when refused."""
    import base64
    import binascii

    stripped = _strip_white_space(text)
    if len(stripped) == 64 and all(c in "0123456789abcdefABCDEF" for c in stripped):
        return bytes.fromhex(stripped)
    if not stripped.isascii() or stripped.count("_") != 1:
        return None
    prefix, body = stripped.lower().split("_")
    if prefix not in ("key", "thr", "cmt", "op") or (expect is not None and prefix not in expect):
        return None
    if len(body) != 56 or any(c not in "abcdefghijklmnopqrstuvwxyz234567" for c in body):
        return None
    try:
        raw = base64.b32decode(body.upper())
    except binascii.Error:
        return None
    return raw[:32] if hashlib.sha256(raw[:32]).digest()[:3] == raw[32:] else None


def _strip_white_space(text: str) -> str:
    return text.strip("".join(map(chr, spec_decoder.WHITE_SPACE)))


def test_text_forms_parsed_by_the_spec_text() -> None:
    for vector in load("text_form_rules.json")["parse"]:
        assert _spec_parse_id(vector["text"], vector["expect"]) == (
            None if vector["bytes"] is None else bytes.fromhex(vector["bytes"])
        ), vector["label"]
    document = load("text_forms.json")
    for entry in document["valid"]:
        for text in entry["forms"].values():
            assert _spec_parse_id(text, None) == bytes.fromhex(entry["bytes"])
    for entry in document["invalid"]:
        assert _spec_parse_id(entry["text"], None) is None, entry["label"]
