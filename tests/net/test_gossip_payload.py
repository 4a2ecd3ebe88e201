"""Pure tests of the gossip batch payload (net/gossip_payload.py, protocol/SPEC.md §8.4)."""

from __future__ import annotations

import itertools

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcomments.net.errors import GossipPayloadError
from p2pcomments.net.gossip_payload import (
    MAX_OPS_PER_BATCH,
    MAX_PAYLOAD_BYTES,
    batch_op_count,
    decode_batch,
    encode_batch,
    encode_batches,
)

ops_strategy = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=40)


@given(ops_strategy)
def test_round_trip_and_header_count(ops: list[bytes]) -> None:
    payload = encode_batch(ops)
    assert decode_batch(payload) == ops
    assert batch_op_count(payload) == len(ops)


@given(ops_strategy, st.integers(min_value=310, max_value=4000))
def test_splitting_keeps_order_and_respects_the_limit(ops: list[bytes], limit: int) -> None:
    payloads = list(encode_batches(ops, max_payload_bytes=limit, max_ops=7))
    assert [op for p in payloads for op in decode_batch(p)] == ops
    assert all(len(p) <= limit for p in payloads)
    assert all(len(decode_batch(p)) <= 7 for p in payloads)
    # greedy: no two neighbours could have been merged
    for first, second in itertools.pairwise(payloads):
        merged = decode_batch(first) + decode_batch(second)
        assert len(merged) > 7 or len(encode_batch(merged)) > limit


def test_known_bytes() -> None:
    assert encode_batch([b"\x01"]) == b"\x91\xc4\x01\x01"
    sixteen = [b"x"] * 16
    assert encode_batch(sixteen)[:3] == b"\xdc\x00\x10"
    assert encode_batch([b"y" * 256])[:4] == b"\x91\xc5\x01\x00"


def test_a_max_size_batch_fits_and_one_more_byte_does_not() -> None:
    op = b"z" * (MAX_PAYLOAD_BYTES - 6)  # fixarray(1) + bin32 header(5)
    assert len(encode_batch([op])) == MAX_PAYLOAD_BYTES
    with pytest.raises(ValueError):
        encode_batch([op + b"z"])
    with pytest.raises(ValueError):
        list(encode_batches([op + b"z"]))


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "empty"),
        (b"\x90", "no operations"),
        (b"\xc4\x01a", "not an array"),
        (b"\x91\xa1a", "str, not bin"),
        (b"\x91\xc4\x00", "empty operation"),
        (b"\x91\xc5\x00\x01a", "bin16 where bin8 is enough"),
        (b"\xdc\x00\x01\xc4\x01a", "array16 where fixarray is enough"),
        (b"\x91\xc4\x01a\x00", "trailing bytes"),
        (b"\x92\xc4\x01a", "truncated"),
        (b"\x91\x91\xc4\x01a", "nested array"),
        (b"\x91\x81\xc4\x01a\xc4\x01b", "map"),
        (b"\xdd\x00\x00\x27\x11" + b"\xc4\x01a" * (MAX_OPS_PER_BATCH + 1), "too many"),
    ],
)
def test_non_canonical_or_malformed_payloads_are_rejected(payload: bytes, why: str) -> None:
    with pytest.raises(GossipPayloadError):
        decode_batch(payload)


def test_oversized_payload_is_rejected_before_parsing() -> None:
    payload = msgpack.packb([b"a" * MAX_PAYLOAD_BYTES], use_bin_type=True)
    with pytest.raises(GossipPayloadError):
        decode_batch(payload)


@pytest.mark.parametrize("ops", [[], [b""], ["text"]])
def test_encoding_refuses_what_a_decoder_would_reject(ops: list[bytes]) -> None:
    with pytest.raises(ValueError):
        encode_batch(ops)


def test_message_ids_are_of_the_data_and_of_the_topic_too_on_inbox_topics() -> None:
    """SPEC §8.3: a batch on an inbox topic has another id than the same batch elsewhere."""
    import hashlib

    from p2pcomments.net.gossip_payload import message_id

    data = encode_batch([b"\x01\x02"])
    assert message_id(["p2pc/1/site/blog.example"], data) == hashlib.sha256(data).digest()
    inbox = message_id(["p2pc/1/inbox/b6"], data)
    assert inbox == hashlib.sha256(b"p2pc/1/inbox/b6\x00" + data).digest()
    assert inbox != message_id(["p2pc/1/inbox/b7"], data)


def test_message_id_vectors() -> None:
    import json
    from pathlib import Path

    from p2pcomments.net.gossip_payload import decode_batch, message_id

    path = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "inbox_topics.json"
    vectors = json.loads(path.read_text(encoding="utf-8"))["message_ids"]
    assert len({v["id"] for v in vectors}) == len(vectors) == 2  # one batch, two topics
    for vector in vectors:
        data = bytes.fromhex(vector["data"])
        decode_batch(data)  # a real batch payload
        assert message_id([vector["topic"]], data).hex() == vector["id"]
