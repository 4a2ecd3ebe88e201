"""Rateless IBLT (core/sketch.py): decoding yields exactly the symmetric difference, whatever the
two sets and batch sizes; the mapping is the one the spec writes down; a peer's bytes yield a
SketchError or nothing."""

from __future__ import annotations

import hashlib
import struct
from math import isqrt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcomments.core.sketch import (
    MAX_SYMBOLS,
    SYMBOL_SIZE,
    CodedSymbol,
    SketchDecoder,
    SketchEncoder,
    SketchError,
    decode_symbols,
    encode_symbols,
    mapped_indices,
    symbol_checksum,
)
from p2pcomments.errors import P2PCommentsError

KEY = bytes(range(16))


def short(n: int) -> bytes:
    return hashlib.sha256(b"sketch test %d" % n).digest()[:8]


def reconcile(
    ours: list[bytes], theirs: list[bytes], *, batch: int = 8, key: bytes = KEY
) -> SketchDecoder:
    """Decode ``theirs`` (the encoder's) against ``ours``, ``batch`` symbols at a time."""
    encoder = SketchEncoder(theirs, key=key)
    decoder = SketchDecoder(ours, key=key)
    while not decoder.decoded:
        decoder.receive(encoder.next_symbols(batch))
    return decoder


numbers = st.sets(st.integers(0, 400), max_size=200)


@given(ours=numbers, theirs=numbers, batch=st.integers(1, 64))
def test_decoding_yields_exactly_the_symmetric_difference(
    ours: set[int], theirs: set[int], batch: int
) -> None:
    decoder = reconcile([short(n) for n in ours], [short(n) for n in theirs], batch=batch)
    assert decoder.remote_only == {short(n) for n in theirs - ours}
    assert decoder.local_only == {short(n) for n in ours - theirs}


@given(common=st.integers(0, 3000), only_ours=st.integers(0, 40), only_theirs=st.integers(0, 40))
def test_symbols_needed_grow_with_the_difference_not_the_sets(
    common: int, only_ours: int, only_theirs: int
) -> None:
    ours = [short(n) for n in range(common + only_ours)]
    theirs = [short(n) for n in range(common)] + [short(-1 - n) for n in range(only_theirs)]
    decoder = reconcile(ours, theirs, batch=1)
    difference = only_ours + only_theirs
    assert len(decoder.remote_only) == only_theirs
    assert len(decoder.local_only) == only_ours
    # One symbol always shows that equal sets are equal; a difference needs at most a few times
    # its size (about 1.4 times for large differences).
    assert decoder.received <= max(1, 6 * difference)


def test_large_difference_costs_about_one_and_a_half_symbols_per_id() -> None:
    ours = [short(n) for n in range(2000)]
    theirs = [short(n) for n in range(500, 2500)]
    decoder = reconcile(ours, theirs, batch=50)
    assert len(decoder.remote_only) == len(decoder.local_only) == 500
    assert decoder.received <= 1.6 * 1000


def test_estimate_is_near_the_difference() -> None:
    ours = [short(n) for n in range(3000)]
    theirs = [short(n) for n in range(400, 3400)]
    encoder, decoder = SketchEncoder(theirs, key=KEY), SketchDecoder(ours, key=KEY)
    decoder.receive(encoder.next_symbols(128))
    assert not decoder.decoded
    assert 400 <= decoder.estimate_difference() <= 1300  # the difference is 800


def test_mapping_is_the_specified_integer_arithmetic() -> None:
    """Rule 3 written out again, independently of the module's loops."""
    for checksum in (0, 1, 2**64 - 1, 0x0123456789ABCDEF, symbol_checksum(short(7), KEY)):
        expected, index, state = [], 0, checksum
        while index < 5000:
            expected.append(index)
            state = state * 0xDA942042E4DD58B5 % 2**64
            q = isqrt(state) + 1
            index = index + 1 + (2 * index + 3) * (2**32 - q) // (2 * q)
        assert mapped_indices(checksum, 5000) == expected
    assert mapped_indices(12345, 1) == [0]


def test_coded_symbols_are_the_specified_sums() -> None:
    ids = [short(n) for n in range(50)]
    data = SketchEncoder(ids, key=KEY).next_symbols(40)
    symbols = decode_symbols(data)
    for index, symbol in enumerate(symbols):
        members = [s for s in ids if index in mapped_indices(symbol_checksum(s, KEY), index + 1)]
        assert symbol.count == len(members)
        assert symbol.value_sum == sum(int.from_bytes(s, "little") for s in members) % 2**64
        assert symbol.checksum_sum == sum(symbol_checksum(s, KEY) for s in members) % 2**64
    assert encode_symbols(symbols) == data
    assert symbols[0].count == 50  # every source symbol maps to index 0


def test_encoding_is_incremental() -> None:
    ids = [short(n) for n in range(300)]
    whole = SketchEncoder(ids, key=KEY).next_symbols(100)
    encoder = SketchEncoder(ids, key=KEY)
    parts = b"".join(encoder.next_symbols(n) for n in (1, 9, 40, 50))
    assert parts == whole
    assert encoder.produced == 100


def test_the_key_changes_every_symbol_but_the_first() -> None:
    ids = [short(n) for n in range(100)]
    one = decode_symbols(SketchEncoder(ids, key=KEY).next_symbols(20))
    other = decode_symbols(SketchEncoder(ids, key=bytes(16)).next_symbols(20))
    assert one[0].value_sum == other[0].value_sum
    assert one[0].checksum_sum != other[0].checksum_sum
    assert [s.count for s in one] != [s.count for s in other]


def test_short_ids_held_twice_by_one_side_never_decode_falsely() -> None:
    """Two operations sharing a short id (an author grinding ids) that the other side lacks: the
    cells holding both are never pure. The decoder never claims success with a wrong answer."""
    ours = [short(n) for n in range(100)]
    theirs = [*ours, short(1000), short(1000), short(1001)]
    encoder, decoder = SketchEncoder(theirs, key=KEY), SketchDecoder(ours, key=KEY)
    failure: SketchError | None = None
    for _ in range(20):
        try:
            decoder.receive(encoder.next_symbols(10))
        except SketchError as caught:
            failure = caught
            break
        assert not decoder.decoded
    assert failure is None or failure.reason == "inconsistent"
    assert short(1001) in decoder.remote_only


# -- a peer's bytes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "malformed"),
        (bytes(19), "malformed"),
        (bytes(41), "malformed"),
    ],
)
def test_malformed_symbols_are_refused(data: bytes, reason: str) -> None:
    decoder = SketchDecoder([short(1)], key=KEY)
    with pytest.raises(SketchError) as raised:
        decoder.receive(data)
    assert raised.value.reason == reason
    with pytest.raises(SketchError):  # a decoder that failed is spent
        decoder.receive(bytes(SYMBOL_SIZE))


def test_no_more_than_max_symbols() -> None:
    decoder = SketchDecoder([], key=KEY)
    with pytest.raises(SketchError) as raised:
        decoder.receive(bytes(SYMBOL_SIZE * (MAX_SYMBOLS + 1)))
    assert raised.value.reason == "too-many-symbols"
    with pytest.raises(ValueError):
        SketchEncoder([], key=KEY).next_symbols(MAX_SYMBOLS + 1)


def test_a_pure_cell_that_is_not_ours_is_inconsistent() -> None:
    """A symbol claiming one element of ours (count -1 against us) that we do not hold."""
    stranger = short(99)
    value = int.from_bytes(stranger, "little")
    checksum = symbol_checksum(stranger, KEY)
    # We hold nothing: the difference is the symbol itself, count 2**32 - 1 is -1.
    forged = struct.pack("<QQI", -value % 2**64, -checksum % 2**64, 2**32 - 1)
    decoder = SketchDecoder([], key=KEY)
    with pytest.raises(SketchError) as raised:
        decoder.receive(forged)
    assert raised.value.reason == "inconsistent"


def test_a_pure_cell_off_its_mapping_is_inconsistent() -> None:
    """Cell 1 claims an element whose mapping skips index 1 (cell 0 holds it too, as every
    element maps to 0; we leave cell 0 empty so the element is found in cell 1 first)."""
    for n in range(1000):
        candidate = short(n)
        checksum = symbol_checksum(candidate, KEY)
        if 1 not in mapped_indices(checksum, 2):
            break
    value = int.from_bytes(candidate, "little")
    forged = bytes(SYMBOL_SIZE) + struct.pack("<QQI", value, checksum, 1)
    decoder = SketchDecoder([], key=KEY)
    with pytest.raises(SketchError) as raised:
        decoder.receive(forged)
    assert raised.value.reason == "inconsistent"


@given(
    ours=st.sets(st.integers(0, 50), max_size=30),
    batches=st.lists(st.binary(max_size=200), min_size=1, max_size=8),
)
def test_garbage_symbols_yield_a_typed_error_or_nothing(
    ours: set[int], batches: list[bytes]
) -> None:
    decoder = SketchDecoder([short(n) for n in ours], key=KEY)
    failure: SketchError | None = None
    for data in batches:
        padded = data[: len(data) - len(data) % SYMBOL_SIZE] or bytes(SYMBOL_SIZE)
        try:
            decoder.receive(padded)
        except SketchError as caught:
            failure = caught
            break
        if decoder.decoded:
            break
    if failure is not None:
        assert isinstance(failure, P2PCommentsError)
        assert failure.reason in {"malformed", "too-many-symbols", "inconsistent"}
    # Whatever it decoded, what it calls ours is ours.
    assert decoder.local_only <= {short(n) for n in ours}


@given(
    ours=st.sets(st.integers(0, 100), max_size=60),
    theirs=st.sets(st.integers(0, 100), max_size=60),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
)
def test_corrupted_symbols_yield_a_typed_error_or_an_answer(
    ours: set[int], theirs: set[int], flips: list[tuple[int, int]]
) -> None:
    data = bytearray(SketchEncoder([short(n) for n in theirs], key=KEY).next_symbols(200))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    decoder = SketchDecoder([short(n) for n in ours], key=KEY)
    failure: SketchError | None = None
    try:
        decoder.receive(bytes(data))
    except SketchError as caught:
        failure = caught
    assert failure is None or failure.reason == "inconsistent"


def test_values_are_validated() -> None:
    with pytest.raises(ValueError):
        CodedSymbol(value_sum=-1, checksum_sum=0, count=0)
    with pytest.raises(ValueError):
        CodedSymbol(value_sum=0, checksum_sum=0, count=2**32)
    with pytest.raises(ValueError):
        SketchEncoder([b"short"], key=KEY)
    with pytest.raises(ValueError):
        SketchDecoder([], key=b"short key")


def test_the_spec_examples() -> None:
    """protocol/SPEC.md §9.7.2-9.7.3."""
    assert mapped_indices(0, 10) == [0]
    assert mapped_indices(1, 10) == [0, 1, 2, 3, 6]
    s = short(5)
    symbol = decode_symbols(SketchEncoder([s], key=KEY).next_symbols(1))[0]
    assert encode_symbols([symbol]) == s + symbol_checksum(s, KEY).to_bytes(8, "little") + (
        b"\x01\x00\x00\x00"
    )
    assert SketchEncoder([], key=KEY).next_symbols(3) == bytes(60)
