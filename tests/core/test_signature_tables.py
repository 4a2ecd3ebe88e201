"""The key tables of `_signatures.open_all` (core/_ed25519.c) accept exactly what libsodium's
crypto_sign_open accepts: valid signatures, and none of the forms libsodium refuses (s not
below L, R or the key of small order, a key's y not below p, torsion in R), with keys of mixed
order included, whose signatures depend on h being reduced mod L exactly as libsodium does.

`table_accepts` is what the tables alone say (1: accepted), never asking libsodium: it must
accept every valid signature (else the arithmetic is wrong, and only slow) and nothing libsodium
refuses (else a forgery could pass). The crafted cases use the pure-Python Ed25519 of
scripts/ed25519_math.py; the signature rule vectors (protocol/vectors/signature_rules.json) run
through the tables too."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl._sodium import ffi, lib

from p2pcomments.core import ops

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import ed25519_math as ed

signatures = pytest.importorskip("p2pcomments.core._signatures")

SIGN_OPEN = int(ffi.cast("uintptr_t", ffi.addressof(lib, "crypto_sign_open")))
SHA512 = int(ffi.cast("uintptr_t", ffi.addressof(lib, "crypto_hash_sha512")))
MESSAGE_BYTES = 50  # as an operation's: the signing domain and a 32-byte id

P = ed.P
L = ed.L
BASE = ed.BASE
T8 = ed.torsion_point_of_order_8()
SMALL_ORDER = [ed.mul(k, T8) for k in range(8)]
add, times, encode, challenge = ed.add, ed.mul, ed.encode, ed.challenge


def negate(point: ed.Point) -> ed.Point:
    x, y, z, t = point
    return (-x % P, y, z, -t % P)


# -- what libsodium and the tables say -----------------------------------------------------------


def libsodium(signed: bytes, key: bytes) -> int:
    return int(lib.crypto_sign_open(ffi.NULL, ffi.NULL, signed, len(signed), key) == 0)


def verdicts(items: list[tuple[bytes, bytes]], min_uses: int = 1) -> list[int]:
    blob = b"".join(signed for signed, _ in items)
    keys = b"".join(key for _, key in items)
    return list(signatures.open_all(SIGN_OPEN, SHA512, blob, len(items[0][0]), keys, min_uses))


def table_verdicts(items: list[tuple[bytes, bytes]]) -> list[int]:
    blob = b"".join(signed for signed, _ in items)
    keys = b"".join(key for _, key in items)
    return list(signatures.table_accepts(SHA512, blob, len(items[0][0]), keys))


def assert_libsodiums(items: list[tuple[bytes, bytes]]) -> None:
    expected = [libsodium(signed, key) for signed, key in items]
    assert verdicts(items) == expected
    assert verdicts(items, min_uses=0) == expected
    tables = table_verdicts(items)
    assert all(not accepted or ok for accepted, ok in zip(tables, expected, strict=True))


def signed_by(key: nacl.signing.SigningKey, message: bytes) -> tuple[bytes, bytes]:
    return bytes(key.sign(message)), bytes(key.verify_key)


SIGNERS = [nacl.signing.SigningKey(bytes([index + 1]) * 32) for index in range(6)]


def test_tables_are_ready() -> None:
    assert signatures.tables_ready == 1


def test_tables_accept_every_valid_signature() -> None:
    items = [signed_by(SIGNERS[i % 6], os.urandom(MESSAGE_BYTES)) for i in range(300)]
    items += [signed_by(nacl.signing.SigningKey.generate(), os.urandom(50)) for _ in range(30)]
    assert table_verdicts(items) == [1] * len(items)
    assert verdicts(items) == [1] * len(items)
    assert verdicts(items, min_uses=4) == [1] * len(items)


@settings(max_examples=300, deadline=None)
@given(
    signer=st.integers(0, 5),
    message=st.binary(min_size=MESSAGE_BYTES, max_size=MESSAGE_BYTES),
    flips=st.lists(
        st.tuples(st.integers(0, 64 + MESSAGE_BYTES + 31), st.integers(0, 7)), max_size=3
    ),
)
def test_tampered_signatures_get_libsodiums_verdict(
    signer: int, message: bytes, flips: list[tuple[int, int]]
) -> None:
    signed, key = signed_by(SIGNERS[signer], message)
    data = bytearray(signed + key)
    for position, bit in flips:
        data[position] ^= 1 << bit
    tampered = (bytes(data[: len(signed)]), bytes(data[len(signed) :]))
    # beside untampered ones by the same key, so that key has a table
    assert_libsodiums([tampered] + [signed_by(SIGNERS[signer], os.urandom(50)) for _ in range(3)])


def test_s_not_below_the_order_is_refused() -> None:
    """s + L passes the group equation mod L: libsodium refuses it as non-canonical."""
    signed, key = signed_by(SIGNERS[0], os.urandom(MESSAGE_BYTES))
    s = int.from_bytes(signed[32:64], "little")
    for high in (s + L, s + 2 * L, s + 15 * L):
        forged = signed[:32] + high.to_bytes(32, "little") + signed[64:]
        assert libsodium(forged, key) == 0
        assert table_verdicts([(forged, key)]) == [0]
        assert_libsodiums([(forged, key), (signed, key)])


def sign_with_scalar(
    a: int, key: bytes, message: bytes, torsion: ed.Point = ed.IDENTITY
) -> tuple[bytes, int]:
    """(R || s, h) with R = rB + torsion and s = r + h a mod L, r from the message."""
    r = int.from_bytes(hashlib.sha512(b"r" + message).digest(), "little") % L
    big_r = encode(add(times(r, BASE), torsion))
    h = challenge(big_r, key, message)
    return big_r + ((r + h * a) % L).to_bytes(32, "little"), h


def test_mixed_order_keys_get_libsodiums_verdicts() -> None:
    """A key aB + T (T of order 8) is one libsodium takes; a signature by it passes the
    cofactorless equation only where R carries the torsion -hT, which needs h exactly mod L.
    Such signatures are accepted by both; the same with other torsion in R by neither."""
    a = 0x1234567 * 2**200 + 987654321
    key = encode(add(times(a, BASE), T8))
    accepted = refused = 0
    items: list[tuple[bytes, bytes]] = []
    for attempt in range(200):
        message = attempt.to_bytes(2, "big") * (MESSAGE_BYTES // 2)
        for k in range(8):
            signature, h = sign_with_scalar(a, key, message, SMALL_ORDER[k])
            # sB - hA = rB + h aB - h aB - hT: equals R = rB + kT iff k = -h mod 8
            valid = (k + h) % 8 == 0
            signed = signature + message
            assert libsodium(signed, key) == int(valid)
            if valid:
                accepted += 1
                items.append((signed, key))
            elif refused < 20:
                refused += 1
                items.append((signed, key))
        if accepted >= 4 and refused >= 20:
            break
    assert accepted >= 4
    assert table_verdicts([item for item in items if libsodium(*item)]) == [1] * accepted
    assert_libsodiums(items)


def test_small_order_keys_and_r_are_refused() -> None:
    """Every small-order point as the key (with s = 0 and R the identity: the group equation
    holds) and as R of an otherwise valid equation: libsodium refuses all, so do the tables."""
    message = bytes(MESSAGE_BYTES)
    items: list[tuple[bytes, bytes]] = []
    for point in SMALL_ORDER:
        for key in {encode(point), encode(negate(point))}:
            for r in SMALL_ORDER[:2]:
                items.append((encode(r) + bytes(32) + message, key))
    # a small-order key with R = sB - jA where h = j mod 8: the equation holds, R is no
    # small-order point, only the key's order refuses it
    for key_point in (T8, times(2, T8), times(4, T8)):
        key = encode(key_point)
        found = False
        for s in range(1, 400):
            for j in range(8):
                big_r = encode(add(times(s, BASE), negate(times(j, key_point))))
                if challenge(big_r, key, message) % 8 == j:
                    items.append((big_r + s.to_bytes(32, "little") + message, key))
                    found = True
                    break
            if found:
                break
        assert found
    # a mixed-order key whose signature's R is itself of small order: s = h a, R = -hT
    a = 0x2BAD * 2**190 + 12345
    crafted = 0
    for attempt in range(64):
        message = attempt.to_bytes(MESSAGE_BYTES, "big")
        key = encode(add(times(a, BASE), T8))
        for point in SMALL_ORDER:
            big_r = encode(point)
            h = challenge(big_r, key, message)
            if ed.equal(times(h, T8), negate(point)):  # R = sB - hA with s = h a
                items.append((big_r + (h * a % L).to_bytes(32, "little") + message, key))
                crafted += 1
        if crafted >= 3:
            break
    assert crafted >= 3
    assert all(libsodium(signed, key) == 0 for signed, key in items)
    assert table_verdicts(items) == [0] * len(items)
    assert_libsodiums(items)


def test_keys_whose_y_is_not_below_p_are_refused() -> None:
    """y + p (for the few y below 19 on the curve): libsodium refuses the key, as do tables."""
    items: list[tuple[bytes, bytes]] = []
    for y in range(19):
        for sign in (0, 1):
            if ed.point_with_y(y) is None:
                continue
            key = ((y + P) | sign << 255).to_bytes(32, "little")
            signed = encode(BASE) + (1).to_bytes(32, "little") + bytes(MESSAGE_BYTES)
            items.append((signed, key))
    assert items
    assert all(libsodium(signed, key) == 0 for signed, key in items)
    assert table_verdicts(items) == [0] * len(items)


def test_keys_that_are_no_point_are_refused() -> None:
    items = []
    for y in range(2, 60):
        key = y.to_bytes(32, "little")
        if ed.point_with_y(y) is None:
            items.append((encode(BASE) + bytes(32) + bytes(MESSAGE_BYTES), key))
    assert items
    assert table_verdicts(items) == [0] * len(items)
    assert_libsodiums(items)


def test_forgeries_that_ignore_the_key_are_refused() -> None:
    """Forms a wrong table or challenge would accept: R = sB (h taken as 0), R = sB - A (h as
    1), R = sB + A (the key's sign lost)."""
    key_point = times(0xC0FFEE, BASE)
    key = encode(key_point)
    items: list[tuple[bytes, bytes]] = []
    for s in (1, 2, 12345, L - 1):
        for shown in (
            times(s, BASE),
            add(times(s, BASE), negate(key_point)),
            add(times(s, BASE), key_point),
        ):
            items.append((encode(shown) + s.to_bytes(32, "little") + bytes(MESSAGE_BYTES), key))
    assert all(libsodium(signed, key) == 0 for signed, key in items)
    assert table_verdicts(items) == [0] * len(items)


def test_authentic_all_is_the_same_with_and_without_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from p2pcomments.core.ops import CommentPayload, ThreadPayload, make_operation

    thread = make_operation(SIGNERS[0], ThreadPayload(title="t", url=None), timestamp_ms=1)
    made = [thread] + [
        make_operation(
            SIGNERS[i % 3],
            CommentPayload(body=f"c{i}"),
            thread=thread.id,
            refs=(thread.id,),
            deps=(thread.id,),
            timestamp_ms=2 + i,
        )
        for i in range(40)
    ]
    forged = [ops._parse(op.encoded[:-1] + bytes([op.encoded[-1] ^ 1])) for op in made[::7]]
    everything = made + forged
    with_tables = ops.authentic_all(everything)
    monkeypatch.setattr(ops, "_TABLE_MIN_USES", 0)
    assert ops.authentic_all(everything) == with_tables
    assert with_tables == [True] * len(made) + [False] * len(forged)


def test_tables_shared_by_threads_give_libsodiums_verdicts() -> None:
    """More keys than the cache holds, checked from four threads at once (tables made, shared,
    evicted while others are in use): every verdict is still libsodium's."""
    import threading

    keys = [nacl.signing.SigningKey(bytes([7, index]) * 16) for index in range(100)]
    items = [signed_by(keys[i % 100], os.urandom(MESSAGE_BYTES)) for i in range(600)]
    items[::9] = [(signed[:-1] + bytes([signed[-1] ^ 1]), key) for signed, key in items[::9]]
    expected = [libsodium(signed, key) for signed, key in items]
    failures: list[str] = []

    def check(offset: int) -> None:
        for round_ in range(3):
            start = (offset * 150 + round_ * 50) % len(items)
            part = items[start:] + items[:start]
            if verdicts(part, min_uses=1) != expected[start:] + expected[:start]:
                failures.append(f"thread {offset} round {round_}")

    threads = [threading.Thread(target=check, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_the_signature_rule_vectors_get_their_verdicts_from_the_tables() -> None:
    vectors = json.loads(
        (Path(__file__).resolve().parents[2] / "protocol/vectors/signature_rules.json").read_text()
    )["vectors"]
    items = [
        (
            bytes.fromhex(vector["signature"]) + bytes.fromhex(vector["signing_message_hex"]),
            bytes.fromhex(vector["author"]),
        )
        for vector in vectors
    ]
    expected = [int(vector["valid"]) for vector in vectors]
    for item in items:  # one size per call: the messages of the vectors are all 50 bytes
        assert len(item[0]) == len(items[0][0])
    assert table_verdicts(items) == expected
    assert verdicts(items) == expected
    assert [libsodium(*item) for item in items] == expected
