"""Proof of work (SPEC §11.6; Nostr NIP-13 is the reference): mining a nonce so that an
operation's id has at least ``difficulty`` leading zero bits. Pure: no clock, no threads.

Rules:

1. The nonce is the payload's last element, a ``bin`` of 8 bytes here (SPEC allows 1-32),
   tried as a big-endian counter from ``start``. It is the last thing in the unsigned form, so
   the hash of everything before it is computed once and only the nonce's 8 bytes are hashed per
   attempt (the id is SHA-256 of the unsigned form, `core.ops` rule 3).
2. Mining is deterministic: the same operation, difficulty and ``start`` give the same nonce.
3. ``progress(attempts)`` is called every `PROGRESS_EVERY` attempts (and once at the end); it
   may raise to stop mining (the exception propagates). ``max_attempts`` bounds the work:
   `MiningExhausted` past it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

import msgpack
from nacl.signing import SigningKey

from p2pcomments.core.ops import MAX_DIFFICULTY, Operation, Payload, make_operation, unsigned_fields
from p2pcomments.core.rules import leading_zero_bits
from p2pcomments.errors import InvalidOperation

__all__ = [
    "NONCE_BYTES",
    "PROGRESS_EVERY",
    "MiningExhausted",
    "find_nonce",
    "mine",
    "unsigned_prefix",
]

NONCE_BYTES: Final = 8
PROGRESS_EVERY: Final = 1 << 16
_NONCE_HEADER: Final = bytes((0xC4, NONCE_BYTES))  # bin8 of 8 bytes


class MiningExhausted(InvalidOperation):
    """No nonce within ``max_attempts`` gave the difficulty asked for."""

    default_reason = "unpaid"


def unsigned_prefix(
    author: bytes,
    payload: Payload,
    *,
    timestamp_ms: int,
    thread: bytes | None,
    refs: tuple[bytes, ...],
    deps: tuple[bytes, ...],
) -> bytes:
    """The unsigned form of the operation with an 8-byte nonce, less the nonce's 8 bytes: what
    every attempt's hash starts with (rule 1). A browser mines from the same bytes."""
    fields = unsigned_fields(
        author,
        payload,
        timestamp_ms=timestamp_ms,
        thread=thread,
        refs=refs,
        deps=deps,
        nonce=bytes(NONCE_BYTES),
    )
    unsigned: bytes = msgpack.packb(fields, use_bin_type=True)
    assert unsigned.endswith(_NONCE_HEADER + bytes(NONCE_BYTES))
    return unsigned[:-NONCE_BYTES]


def find_nonce(
    prefix: bytes,
    difficulty: int,
    *,
    start: int = 0,
    max_attempts: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """The first 8-byte nonce from ``start`` such that SHA-256(prefix + nonce) has at least
    ``difficulty`` leading zero bits (rules 1-3)."""
    if not 0 <= difficulty <= MAX_DIFFICULTY:
        raise InvalidOperation(f"difficulty is 0-{MAX_DIFFICULTY}", reason="bad-field")
    base = hashlib.sha256(prefix)
    shift = 64 - difficulty
    counter = start
    attempts = 0
    limit = max_attempts if max_attempts is not None else 1 << 64
    to_bytes = int.to_bytes
    from_bytes = int.from_bytes
    while attempts < limit:
        batch_end = min(attempts + PROGRESS_EVERY, limit)
        while attempts < batch_end:
            nonce = to_bytes(counter & 0xFFFFFFFFFFFFFFFF, NONCE_BYTES, "big")
            digest = base.copy()
            digest.update(nonce)
            attempts += 1
            counter += 1
            if from_bytes(digest.digest()[:8], "big") >> shift == 0:
                if progress is not None:
                    progress(attempts)
                return nonce
        if progress is not None:
            progress(attempts)
    raise MiningExhausted(f"no nonce of difficulty {difficulty} within {limit} attempts")


def mine(
    signing_key: SigningKey,
    payload: Payload,
    *,
    difficulty: int,
    timestamp_ms: int,
    thread: bytes | None = None,
    refs: tuple[bytes, ...] = (),
    deps: tuple[bytes, ...] = (),
    start: int = 0,
    max_attempts: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Operation:
    """An operation like `make_operation`'s whose id has at least ``difficulty`` leading zero
    bits, its nonce found by `find_nonce`."""
    prefix = unsigned_prefix(
        bytes(signing_key.verify_key),
        payload,
        timestamp_ms=timestamp_ms,
        thread=thread,
        refs=refs,
        deps=deps,
    )
    nonce = find_nonce(
        prefix, difficulty, start=start, max_attempts=max_attempts, progress=progress
    )
    op = make_operation(
        signing_key,
        payload,
        timestamp_ms=timestamp_ms,
        thread=thread,
        refs=refs,
        deps=deps,
        nonce=nonce,
    )
    assert leading_zero_bits(op.id) >= difficulty
    return op
