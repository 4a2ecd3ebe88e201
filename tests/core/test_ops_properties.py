"""core.ops properties: round trips, total decoding, and mutation fuzzing of valid encodings.

Invariant 2 (DESIGN.md §5) at the byte level: whatever bytes arrive, `decode_operation` returns the
one operation those exact bytes sign, or raises a typed error. Nothing else gets through.
"""

from __future__ import annotations

from unittest import mock

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from p2pcomments.core import ops as ops_module
from p2pcomments.core.ops import (
    Operation,
    decode_operation,
    decode_operations,
    load_stored_operation,
    page_thread,
)
from p2pcomments.errors import DecodeError, InvalidOperation

from .strategies import KEYS, budget, operations
from .wire import comment_fields, encode, sign_fields


def _decode_or_reason(data: bytes) -> Operation | str:
    """Decode, or the reason code; any other exception fails the test."""
    try:
        return decode_operation(data)
    except InvalidOperation as error:
        reason = error.reason
    assert isinstance(reason, str)
    assert reason
    return reason


@given(op=operations())
def test_encode_decode_round_trip(op: Operation) -> None:
    decoded = decode_operation(op.encoded)
    assert decoded == op
    assert decoded.encoded == op.encoded
    assert decode_operation(op.encoded, verify=False) == op


@settings(max_examples=budget(5))
@given(data=st.binary(max_size=400))
@example(data=b"\x99")
@example(data=b"\xdd\xff\xff\xff\xff")
@example(data=b"\xdb\xff\xff\xff\xff")
@example(data=b"\x91" * 5000)
def test_any_bytes_decode_or_raise_typed_error(data: bytes) -> None:
    _decode_or_reason(data)


_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.binary(max_size=40),
    st.sampled_from([b"\x00" * 32, b"\x00" * 64, 1, 2, 7]),
)
_msgpack_values = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=10),
        st.dictionaries(st.text(max_size=4), children, max_size=3),
    ),
    max_leaves=30,
)


@settings(max_examples=budget(0.5))
@given(value=_msgpack_values)
def test_any_msgpack_value_decodes_or_raises_typed_error(value: object) -> None:
    _decode_or_reason(msgpack.packb(value, use_bin_type=True))


@settings(max_examples=budget(0.3))
@given(fields=st.lists(st.one_of(_leaf, st.lists(_leaf, max_size=4)), min_size=9, max_size=9))
def test_any_nine_fields_decode_or_raise_typed_error(fields: list[object]) -> None:
    result = _decode_or_reason(msgpack.packb(fields, use_bin_type=True))
    assert not isinstance(result, Operation)  # a random 9th field is not a signature


@given(
    kind=st.integers(1, 7),
    thread=st.one_of(st.none(), st.just(b"\x11" * 32)),
    refs=st.lists(st.sampled_from([b"\x11" * 32, b"\x22" * 32]), max_size=2).map(tuple),
    deps=st.lists(st.binary(min_size=32, max_size=32), max_size=3).map(tuple),
    payload=st.lists(
        st.one_of(st.none(), st.integers(0, 8), st.text(max_size=5), st.just(b"\x01" * 32)),
        max_size=3,
    ).map(tuple),
)
def test_signed_structures_are_valid_only_when_every_rule_holds(
    kind: int,
    thread: bytes | None,
    refs: tuple[bytes, ...],
    deps: tuple[bytes, ...],
    payload: tuple[object, ...],
) -> None:
    """Correctly signed, near-valid shapes: when decoding accepts, the result re-encodes to the
    same bytes and every field reads back as written."""
    key = KEYS[0]
    fields = comment_fields(key, kind=kind, thread=thread, refs=refs, deps=deps, payload=payload)
    data = sign_fields(key, fields)
    result = _decode_or_reason(data)
    if isinstance(result, Operation):
        assert result.encoded == data
        assert int(result.kind) == kind
        assert result.thread == thread
        assert result.refs == refs
        assert result.deps == deps
        assert result.author == bytes(key.verify_key)


def _mutations() -> st.SearchStrategy[tuple[str, object]]:
    return st.one_of(
        st.tuples(
            st.just("flip"),
            st.lists(st.tuples(st.integers(0), st.integers(0, 7)), min_size=1, max_size=4),
        ),
        st.tuples(st.just("truncate"), st.integers(0)),
        st.tuples(st.just("extend"), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("set"), st.tuples(st.integers(0), st.integers(0, 255))),
        st.tuples(
            st.just("splice"), st.tuples(st.integers(0), st.integers(0), st.binary(max_size=8))
        ),
        st.tuples(st.just("graft"), st.tuples(st.integers(0), st.integers(0), st.integers(0))),
    )


def _mutate(data: bytes, other: bytes, mutation: tuple[str, object]) -> bytes:
    name, arg = mutation
    size = len(data)
    if name == "flip":
        out = bytearray(data)
        for position, bit in arg:  # type: ignore[attr-defined]
            out[position % size] ^= 1 << bit
        return bytes(out)
    if name == "truncate":
        return data[: arg % size]  # type: ignore[operator]
    if name == "extend":
        return data + arg  # type: ignore[operator]
    if name == "set":
        position, value = arg  # type: ignore[misc]
        return data[: position % size] + bytes([value]) + data[position % size + 1 :]
    if name == "splice":
        start, length, insert = arg  # type: ignore[misc]
        start %= size
        return data[:start] + insert + data[start + length % 9 :]
    # graft: a slice of another valid operation put in place of a slice of this one
    start, length, source = arg  # type: ignore[misc]
    start %= size
    length %= 80
    source %= len(other)
    return data[:start] + other[source : source + length] + data[start + length :]


@settings(max_examples=budget(2))
@given(op=operations(), other=operations(), mutation=_mutations())
def test_mutated_encodings_are_rejected(
    op: Operation, other: Operation, mutation: tuple[str, object]
) -> None:
    """A changed byte string never decodes: signatures and canonical form leave no slack."""
    mutated = _mutate(op.encoded, other.encoded, mutation)
    result = _decode_or_reason(mutated)
    if mutated == op.encoded:
        assert result == op
    else:
        assert not isinstance(result, Operation), f"accepted a mutated encoding ({mutation[0]})"


@given(op=operations(), data=st.data())
def test_swapping_signatures_between_operations_fails(op: Operation, data: st.DataObject) -> None:
    other: Operation = data.draw(operations())
    if other.id == op.id:
        return
    swapped = op.encoded[:-64] + other.signature
    assert _decode_or_reason(swapped) == "bad-signature"


@given(op=operations())
def test_re_encoding_a_decoded_operation_gives_the_same_bytes(op: Operation) -> None:
    fields = msgpack.unpackb(op.encoded, use_list=False, raw=False)
    assert encode(fields) == op.encoded


@given(op=operations())
def test_stored_operations_load_back_identical(op: Operation) -> None:
    assert load_stored_operation(op.encoded) == op


@given(data=st.binary(max_size=200))
def test_loading_broken_stored_bytes_raises_a_typed_error(data: bytes) -> None:
    # Short random bytes are never one canonical operation: loading must say so, typed.
    with pytest.raises(InvalidOperation) as raised:
        load_stored_operation(data)
    assert raised.value.reason


@given(op=operations(), cut=st.integers(min_value=1, max_value=64))
def test_loading_a_truncated_stored_operation_raises_a_typed_error(op: Operation, cut: int) -> None:
    with pytest.raises(InvalidOperation) as raised:
        load_stored_operation(op.encoded[:-cut])
    assert raised.value.reason


_batch_items = st.lists(
    st.one_of(
        operations().map(lambda op: op.encoded),
        st.tuples(operations(), operations(), _mutations()).map(
            lambda args: _mutate(args[0].encoded, args[1].encoded, args[2])
        ),
        st.tuples(operations(), operations()).map(  # parses, but signed by another
            lambda pair: pair[0].encoded[:-64] + pair[1].signature
        ),
        st.binary(max_size=60),
    ),
    max_size=12,
)


@settings(max_examples=budget(2))
@given(items=_batch_items)
def test_decoding_a_batch_judges_each_item_as_decoding_it_alone(items: list[bytes]) -> None:
    """`decode_operations` verifies after parsing the whole batch; the outcome per item must not
    change: the same operation, or an error of the same type and reason."""
    batch = decode_operations(items)
    assert len(batch) == len(items)
    for data, result in zip(items, batch, strict=True):
        alone = _decode_or_reason(data)
        if isinstance(alone, Operation):
            assert result == alone
        else:
            assert isinstance(result, InvalidOperation)
            assert result.reason == alone
            # A DecodeError means not an operation; anything else parsed, and has an id.
            assert isinstance(result, DecodeError) == (alone != "bad-signature")


def _signed_elsewhere(pair: tuple[Operation, Operation]) -> Operation:
    """The first operation carrying the second's signature: it parses, and is not authentic."""
    return decode_operation(pair[0].encoded[:-64] + pair[1].signature, verify=False)


_checked_ops = st.lists(
    st.one_of(
        operations(),
        st.tuples(operations(), operations()).map(_signed_elsewhere),
        st.tuples(
            st.sampled_from(KEYS),
            st.sampled_from(["https://blog.example/a", "https://b.example/p?q=1"]),
        )
        .map(lambda args: page_thread(args[0].verify_key.encode(), args[1]))
        .flatmap(  # as it is, or a page-thread form carrying some operation's signature
            lambda thread: st.one_of(
                st.just(thread), operations().map(lambda op: _signed_elsewhere((thread, op)))
            )
        ),
    ),
    max_size=12,
)


@settings(max_examples=budget(2))
@given(ops=_checked_ops)
def test_checking_many_signatures_at_once_says_what_checking_each_says(
    ops: list[Operation],
) -> None:
    """A chunk's signatures are checked in one call of the C helper (no GIL between them); each
    verdict must be the one-at-a-time check's, for signed operations, forged ones, page threads
    and page-thread forms carrying a signature, and with the helper absent."""
    alone = [ops_module._authentic(op) for op in ops]
    assert ops_module.authentic_all(ops) == alone
    with mock.patch.object(ops_module, "_open_all", None):
        assert ops_module.authentic_all(ops) == alone


def test_the_signature_helper_is_built_and_refuses_what_it_cannot_split() -> None:
    """`pip install -e .` builds the optional C helper; the tests run it, so here it must be."""
    from p2pcomments.core import _signatures

    assert ops_module._open_all is _signatures.open_all, "p2pcomments/core/_signatures.c not built"
    address = ops_module._SIGN_OPEN_ADDRESS
    sha512 = ops_module._SHA512_ADDRESS
    size = ops_module._SIGNED_BYTES

    def open_all(signed: bytes, keys: bytes, min_uses: int = 1) -> bytes:
        return _signatures.open_all(address, sha512, signed, size, keys, min_uses)

    assert open_all(b"", b"") == b""
    with pytest.raises(ValueError, match="whole multiples"):
        open_all(bytes(size + 1), bytes(32))
    with pytest.raises(ValueError, match="one key each"):
        open_all(bytes(2 * size), bytes(32))
    for min_uses in (0, 1, 4):
        assert open_all(bytes(2 * size), bytes(64), min_uses) == b"\x00\x00"
    assert _signatures.table_accepts(sha512, bytes(2 * size), size, bytes(64)) == b"\x00\x00"
