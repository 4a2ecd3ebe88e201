"""Comment provenance on the wire (SPEC §2): encoding, limits, vectors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    CommentPayload,
    EntryKind,
    Provenance,
    ThreadPayload,
    decode_operation,
    load_stored_operation,
    make_operation,
)
from p2pcomments.core.replica import Replica
from p2pcomments.errors import InvalidOperation

ROOT = Path(__file__).resolve().parents[2]
KEY = SigningKey(b"\x03" * 32)
THREAD = make_operation(KEY, ThreadPayload(title="t"), timestamp_ms=1)


def _comment(provenance: Provenance | None, body: str = "hello") -> bytes:
    op = make_operation(
        KEY,
        CommentPayload(body=body, provenance=provenance),
        timestamp_ms=5,
        thread=THREAD.id,
        refs=(THREAD.id,),
    )
    return op.encoded


def test_gen_provenance_vectors_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_provenance_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_vectors_decode_and_refuse_as_stated() -> None:
    document = json.loads((ROOT / "protocol" / "vectors" / "provenance.json").read_text())
    for case in document["valid"]:
        vector = case["operation"]
        op = decode_operation(bytes.fromhex(vector["encoded"]))
        assert op.id.hex() == vector["id"]
        assert isinstance(op.payload, CommentPayload)
        assert op.payload.provenance is not None
        expected = vector["unsigned"]["payload"]["provenance"]
        assert op.payload.provenance.original_id == expected["original_id"]
        assert int(op.payload.provenance.entry_kind) == expected["entry_kind"]
    for case in document["invalid"]:
        with pytest.raises(InvalidOperation) as caught:
            decode_operation(bytes.fromhex(case["encoded"]))
        assert caught.value.reason == case["reason"], case["label"]
    replica = Replica()
    ops = [decode_operation(bytes.fromhex(h)) for h in document["history"]["operations"]]
    replica.merge(ops)
    view = replica.view(ops[0].id)
    assert view.digest().hex() == document["history"]["view_digest"]


def test_a_comment_without_provenance_keeps_its_old_bytes() -> None:
    plain = _comment(None)
    assert decode_operation(plain).payload == CommentPayload(body="hello")
    assert plain[-66 - 7 :].startswith(b"\x91\xa5hello")  # payload still [body]


@given(
    source=st.sampled_from(["wordpress", "disqus", "x"]),
    original_id=st.text(min_size=1, max_size=40).filter(lambda t: t.isprintable() and t.strip()),
    name=st.text(max_size=40).filter(str.isprintable),
    url=st.none() | st.just("https://example.org/"),
    timestamp=st.integers(min_value=0, max_value=2**63 - 1),
    kind=st.sampled_from(list(EntryKind)),
)
def test_provenance_round_trips(
    source: str, original_id: str, name: str, url: str | None, timestamp: int, kind: EntryKind
) -> None:
    import unicodedata

    if not unicodedata.is_normalized("NFC", original_id + name):
        return
    provenance = Provenance(
        source=source,
        original_id=original_id,
        author_name=name,
        author_url=url,
        original_timestamp_ms=timestamp,
        entry_kind=kind,
    )
    try:
        encoded = _comment(provenance)
    except InvalidOperation:
        return  # a text the wire refuses (an unprintable line separator...): refused when built
    decoded = decode_operation(encoded)
    assert isinstance(decoded.payload, CommentPayload)
    assert decoded.payload.provenance == provenance
    assert load_stored_operation(encoded).payload == decoded.payload
