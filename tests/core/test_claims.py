"""Claims on imported comments (SPEC §2): encoding, the thread's rules, the view, vectors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    CommentPayload,
    EntryKind,
    ModAction,
    ModeratePayload,
    Operation,
    ProfilePayload,
    Provenance,
    ThreadPayload,
    decode_operation,
    make_operation,
)
from p2pcomments.core.replica import Applied, Rejected, Replica
from p2pcomments.errors import InvalidOperation

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors" / "claims.json"
OWNER = SigningKey(b"\x11" * 32)
ZOE = SigningKey(b"\x12" * 32)
MAX = SigningKey(b"\x13" * 32)
THREAD = make_operation(OWNER, ThreadPayload(title="Imported"), timestamp_ms=1)


def _imported(original_id: str, at: int) -> Operation:
    provenance = Provenance(
        source="wordpress",
        original_id=original_id,
        author_name="Zoé",
        author_url=None,
        original_timestamp_ms=at,
        entry_kind=EntryKind.COMMENT,
    )
    return make_operation(
        OWNER,
        CommentPayload(body=f"comment {original_id}", provenance=provenance),
        timestamp_ms=at,
        thread=THREAD.id,
        refs=(THREAD.id,),
    )


def _claim(key: SigningKey, target: Operation, at: int) -> Operation:
    return make_operation(
        key,
        ModeratePayload(action=ModAction.CLAIM),
        timestamp_ms=at,
        thread=THREAD.id,
        refs=(target.id,),
    )


def _accept(claim: Operation, at: int, deps: tuple[bytes, ...] = ()) -> Operation:
    return make_operation(
        OWNER,
        ModeratePayload(action=ModAction.ACCEPT_CLAIM, subject=claim.author),
        timestamp_ms=at,
        thread=THREAD.id,
        refs=(claim.id,),
        deps=deps,
    )


def test_gen_claim_vectors_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_claim_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return document


def test_valid_vectors_decode_to_what_they_state() -> None:
    for case in _document()["valid"]:
        vector = case["operation"]
        op = decode_operation(bytes.fromhex(vector["encoded"]))
        assert op.id.hex() == vector["id"]
        assert isinstance(op.payload, ModeratePayload)
        assert int(op.payload.action) == vector["unsigned"]["payload"]["action"]
        assert op.payload.action in (ModAction.CLAIM, ModAction.ACCEPT_CLAIM)


@pytest.mark.parametrize("case", _document()["invalid"], ids=lambda c: c["label"])
def test_invalid_vectors_are_refused_with_their_reason(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidOperation) as error:
        decode_operation(bytes.fromhex(case["encoded"]))
    assert error.value.reason == case["reason"]


@pytest.mark.parametrize("case", _document()["rejected"], ids=lambda c: c["label"])
def test_rejected_vectors_are_refused_by_the_thread(case: dict[str, Any]) -> None:
    replica = Replica()
    for encoded in case["before"]:
        assert isinstance(replica.apply(decode_operation(bytes.fromhex(encoded))).outcome, Applied)
    outcome = replica.apply(decode_operation(bytes.fromhex(case["operation"]))).outcome
    assert isinstance(outcome, Rejected)
    assert outcome.reason == case["reason"]


def test_history_vector_view_and_digest() -> None:
    history = _document()["history"]
    replica = Replica()
    for encoded in history["profiles"] + history["operations"]:
        assert isinstance(replica.apply(decode_operation(bytes.fromhex(encoded))).outcome, Applied)
    thread_id = bytes.fromhex(history["view"]["id"])
    view = replica.view(thread_id)
    assert view.digest().hex() == history["view_digest"]
    rows = {row["id"]: row for row in history["view"]["comments"]}
    for comment in view.comments:
        row = rows[comment.id.hex()]
        assert row.get("claimed_by") == (comment.claimed_by.hex() if comment.claimed_by else None)
        assert row.get("claimed_by_name") == comment.claimed_by_name
    assert sum(1 for c in view.comments if c.claimed_by) == 1


def test_an_unclaimed_view_keeps_its_digest_rows() -> None:
    """Claims unaccepted change nothing shown: the digest is that of the thread without them."""
    first = _imported("1", 10)
    without = Replica()
    with_claims = Replica()
    for op in (THREAD, first):
        without.apply(op)
        with_claims.apply(op)
    with_claims.apply(_claim(ZOE, first, 20))
    assert with_claims.view(THREAD.id).digest() == without.view(THREAD.id).digest()
    assert with_claims.view(THREAD.id).comments[0].claimed_by is None


def _scenario() -> tuple[list[Operation], Operation]:
    first, second = _imported("1", 10), _imported("2", 11)
    zoe_claim, max_claim = _claim(ZOE, first, 20), _claim(MAX, first, 21)
    zoe_second = _claim(ZOE, second, 22)
    ops = [
        THREAD,
        first,
        second,
        zoe_claim,
        max_claim,
        zoe_second,
        _accept(zoe_claim, 30),
        _accept(max_claim, 30),  # same timestamp: the greater id wins
        _accept(zoe_second, 31, deps=(max_claim.id,)),
        make_operation(ZOE, ProfilePayload(name="Zoé Martin"), timestamp_ms=5),
        make_operation(MAX, ProfilePayload(name="Max"), timestamp_ms=5),
    ]
    return ops, first


@settings(max_examples=150, deadline=None)
@given(st.permutations(list(range(11))))
def test_any_arrival_order_gives_the_same_view(order: list[int]) -> None:
    ops, first = _scenario()
    reference = Replica()
    for op in ops:
        assert isinstance(reference.apply(op).outcome, Applied)
    replica = Replica()
    for index in order:
        replica.apply(ops[index])  # some wait as pending until what they need arrives
    assert not replica.pending
    expected, got = reference.view(THREAD.id), replica.view(THREAD.id)
    assert got == expected
    assert got.digest() == expected.digest()
    claimed = {c.id: (c.claimed_by, c.claimed_by_name) for c in got.comments}
    winner = max(ops[6:8], key=lambda op: (op.timestamp_ms, op.id))
    assert claimed[first.id][0] == winner.payload.subject  # type: ignore[union-attr]
    assert claimed[first.id][1] == (
        "Zoé Martin" if winner.payload.subject == bytes(ZOE.verify_key) else "Max"
    )  # type: ignore[union-attr]
    assert all(
        value[0] == bytes(ZOE.verify_key) for key, value in claimed.items() if key != first.id
    )


def test_the_spec_text_decoder_agrees_with_the_claim_vectors() -> None:
    """tests/core/spec_decoder.py reads SPEC §2 (claims): it accepts and refuses as we do."""
    from tests.core import spec_decoder

    document = _document()
    for case in document["valid"]:
        spec_decoder.decode(bytes.fromhex(case["operation"]["encoded"]))
    for encoded in document["history"]["operations"]:
        spec_decoder.decode(bytes.fromhex(encoded))
    for case in document["invalid"]:
        with pytest.raises(spec_decoder.Refused) as caught:
            spec_decoder.decode(bytes.fromhex(case["encoded"]))
        assert caught.value.reason == case["reason"], case["label"]


def test_the_spec_text_view_agrees_with_the_claim_vectors() -> None:
    """tests/core/spec_view.py computes §5.3 and §6 (rule 12) from scratch: the history's view
    and every refusal in claims.json are what it finds too."""
    from tests.core import spec_view

    document = _document()
    history = document["history"]
    ops = [decode_operation(bytes.fromhex(h)) for h in history["profiles"] + history["operations"]]
    assert spec_view.view_json(ops, bytes.fromhex(history["view"]["id"])) == history["view"]
    for case in document["rejected"]:
        before = [decode_operation(bytes.fromhex(h)) for h in case["before"]]
        op = decode_operation(bytes.fromhex(case["operation"]))
        assert spec_view.decide([*before, op])[op.id] == ("rejected", case["reason"]), case["label"]
