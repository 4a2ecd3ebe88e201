"""The sync protocol's messages on ``/p2pcomments/sync/2.0.0``: their wire forms, encoders and
the decoder (protocol/SPEC.md §9). The conversation made of them is `core.sync_protocol`'s.

Rules this module enforces:

1. Every frame holds one message, a canonical msgpack array whose first element is its type:
   HELLO ``[0, version, item_count, fingerprint, max_frame_bytes]``, RECONCILE ``[1, message]``,
   OPS ``[2, [op, ...]]``, WANT ``[3, ids]``, DONE ``[4]``, ERROR ``[5, reason]``, SKETCH_ASK
   ``[6, count]``, SKETCH ``[7, symbols]``, WANT_SHORT ``[8, short_ids]``, WANT_ALL ``[9]``. The
   decoder re-encodes what it read and refuses any difference.
2. No frame we send exceeds the agreed size ``min(ours, peer's max_frame_bytes)``; no frame we
   accept exceeds ours. Reconcile messages are bounded by ``min(262144, agreed - 16)`` on both
   sides (the reconcile layer needs both peers to use the same bound); so are the coded symbols
   of one SKETCH, and a decoder takes at most `sketch.MAX_SYMBOLS` in a session.
3. A peer's malformed bytes raise `SyncError` with ``peer_fault`` set (`violation`); the session
   turns that into an ERROR frame and a result, never an exception out of its caller's handler.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeGuard

import msgpack

from p2pcomments.core.reconcile import DEFAULT_MAX_MESSAGE_BYTES, FINGERPRINT_SIZE, SHORT_ID_SIZE
from p2pcomments.core.sketch import KEY_SIZE, MAX_SYMBOLS, SYMBOL_SIZE
from p2pcomments.errors import P2PCommentsError

__all__ = [
    "BIN_HEADER_MAX",
    "DEFAULT_MAX_FRAME_BYTES",
    "ID_SIZE",
    "MAX_ERROR_REASON_BYTES",
    "MIN_FRAME_BYTES",
    "OPS_HEADER_BYTES",
    "PROTOCOL_ID",
    "RECONCILE_FRAME_OVERHEAD",
    "SYNC_VERSION",
    "Hello",
    "MessageType",
    "SyncError",
    "SyncMessage",
    "decode_message",
    "encode_done",
    "encode_error",
    "encode_hello",
    "encode_ops",
    "encode_reconcile",
    "encode_sketch",
    "encode_sketch_ask",
    "encode_want",
    "encode_want_all",
    "encode_want_short",
    "reconcile_message_limit",
    "sketch_key",
    "sketch_symbol_limit",
    "violation",
]

PROTOCOL_ID: Final = "/p2pcomments/sync/2.0.0"
SYNC_VERSION: Final = 2
DEFAULT_MAX_FRAME_BYTES: Final = 1024 * 1024
MIN_FRAME_BYTES: Final = 64 * 1024
"""The smallest ``max_frame_bytes`` a HELLO may announce: every operation fits one OPS frame."""
RECONCILE_FRAME_OVERHEAD: Final = 16
"""Bytes of a frame reserved around a reconcile message (type, array and bin headers)."""
MAX_ERROR_REASON_BYTES: Final = 64
ID_SIZE: Final = 32
OPS_HEADER_BYTES: Final = 1 + 1 + 5  # outer fixarray, type, array32 header at most
BIN_HEADER_MAX: Final = 5
_SKETCH_KEY_DOMAIN: Final = b"p2pcomments/sync/v2/sketch-key\x00"


class MessageType(IntEnum):
    """The first element of every sync message; the integer is what goes on the wire."""

    HELLO = 0
    RECONCILE = 1
    OPS = 2
    WANT = 3
    DONE = 4
    ERROR = 5
    SKETCH_ASK = 6
    SKETCH = 7
    WANT_SHORT = 8
    WANT_ALL = 9


class SyncError(P2PCommentsError, ValueError):
    """Why a session ended early. ``reason`` is a stable code; ``peer_fault`` is True when the
    peer broke the protocol (the caller counts it against the peer); ``from_peer`` is True when
    the peer ended the session with an ERROR message of its own, ``reason`` being what it said."""

    http_status = 502
    default_reason = "sync-protocol"

    def __init__(
        self, message: str, *, reason: str, peer_fault: bool = False, from_peer: bool = False
    ) -> None:
        super().__init__(message, reason=reason)
        self.peer_fault = peer_fault
        self.from_peer = from_peer


def reconcile_message_limit(our_max_frame: int, their_max_frame: int) -> int:
    """The reconcile message bound both peers derive from the two HELLOs (rule 2)."""
    agreed = min(our_max_frame, their_max_frame)
    return min(DEFAULT_MAX_MESSAGE_BYTES, agreed - RECONCILE_FRAME_OVERHEAD)


def sketch_symbol_limit(our_max_frame: int, their_max_frame: int) -> int:
    """The most coded symbols one SKETCH_ASK may ask for (rule 2)."""
    return reconcile_message_limit(our_max_frame, their_max_frame) // SYMBOL_SIZE


def sketch_key(initiator_fingerprint: bytes, responder_fingerprint: bytes) -> bytes:
    """The session's sketch key (SPEC §9.7.1): SHA-256 of a domain tag and the two HELLO
    fingerprints, first 16 bytes. No author can grind ids against it ahead of a session."""
    digest = hashlib.sha256(_SKETCH_KEY_DOMAIN + initiator_fingerprint + responder_fingerprint)
    return digest.digest()[:KEY_SIZE]


def _pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def encode_hello(item_count: int, fingerprint: bytes, max_frame_bytes: int) -> bytes:
    if len(fingerprint) != FINGERPRINT_SIZE or item_count < 0:
        raise ValueError("a HELLO needs a 16-byte fingerprint and a count >= 0")
    return _pack([MessageType.HELLO, SYNC_VERSION, item_count, fingerprint, max_frame_bytes])


def encode_reconcile(message: bytes) -> bytes:
    return _pack([MessageType.RECONCILE, message])


def encode_ops(ops: Sequence[bytes]) -> bytes:
    if not ops or any(type(op) is not bytes or not op for op in ops):
        raise ValueError("OPS carries one or more non-empty operations")
    return _pack([MessageType.OPS, list(ops)])


def encode_want(ids: Sequence[bytes]) -> bytes:
    if not ids or any(len(i) != ID_SIZE for i in ids):
        raise ValueError("WANT carries one or more 32-byte ids")
    return _pack([MessageType.WANT, b"".join(ids)])


def encode_sketch_ask(count: int) -> bytes:
    if not 1 <= count <= MAX_SYMBOLS:
        raise ValueError(f"SKETCH_ASK asks for 1 to {MAX_SYMBOLS} coded symbols")
    return _pack([MessageType.SKETCH_ASK, count])


def encode_sketch(symbols: bytes) -> bytes:
    if not symbols or len(symbols) % SYMBOL_SIZE:
        raise ValueError("SKETCH carries one or more 20-byte coded symbols")
    return _pack([MessageType.SKETCH, symbols])


def encode_want_short(short_ids: Sequence[bytes]) -> bytes:
    if not short_ids or any(len(i) != SHORT_ID_SIZE for i in short_ids):
        raise ValueError("WANT_SHORT carries one or more 8-byte short ids")
    return _pack([MessageType.WANT_SHORT, b"".join(short_ids)])


def encode_want_all() -> bytes:
    return _pack([MessageType.WANT_ALL])


def encode_done() -> bytes:
    return _pack([MessageType.DONE])


def encode_error(reason: str) -> bytes:
    reason = reason.encode("ascii", "replace").decode("ascii")[:MAX_ERROR_REASON_BYTES]
    return _pack([MessageType.ERROR, reason])


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    version: int
    item_count: int
    fingerprint: bytes
    max_frame_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncMessage:
    """One decoded frame. Which fields are set depends on ``type``: ``hello`` for HELLO,
    ``payload`` for RECONCILE (the reconcile message), WANT and WANT_SHORT (ids or short ids,
    concatenated) and SKETCH (coded symbols), ``ops`` for OPS, ``count`` for SKETCH_ASK,
    ``reason`` for ERROR."""

    type: MessageType
    hello: Hello | None = None
    payload: bytes = b""
    ops: tuple[bytes, ...] = ()
    count: int = 0
    reason: str = ""


_RECORD_SIZES: Final = {
    MessageType.WANT: ID_SIZE,
    MessageType.WANT_SHORT: SHORT_ID_SIZE,
    MessageType.SKETCH: SYMBOL_SIZE,
}


def violation(reason: str, message: str) -> SyncError:
    return SyncError(message, reason=reason, peer_fault=True)


def _is_uint(value: object) -> TypeGuard[int]:
    return type(value) is int and value >= 0


def decode_message(data: bytes) -> SyncMessage:
    """Decode one frame (rule 1). Raises `SyncError` (``peer_fault``) for anything malformed."""
    try:
        raw = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, TypeError, OverflowError, RecursionError, msgpack.UnpackException) as error:
        raise violation("malformed", f"not a msgpack message: {error}") from None
    if type(raw) is not list or not raw or not _is_uint(raw[0]) or raw[0] > max(MessageType):
        raise violation("malformed", "a sync message is an array starting with a known type")
    kind = MessageType(raw[0])
    message = _decode_body(kind, raw)
    if _pack(raw) != data:
        raise violation("non-canonical", "not the canonical msgpack encoding")
    return message


def _decode_body(kind: MessageType, raw: list[object]) -> SyncMessage:
    arity = {
        MessageType.HELLO: 5,
        MessageType.RECONCILE: 2,
        MessageType.OPS: 2,
        MessageType.WANT: 2,
        MessageType.DONE: 1,
        MessageType.ERROR: 2,
        MessageType.SKETCH_ASK: 2,
        MessageType.SKETCH: 2,
        MessageType.WANT_SHORT: 2,
        MessageType.WANT_ALL: 1,
    }[kind]
    if len(raw) != arity:
        raise violation("malformed", f"a {kind.name} message has {arity} elements")
    if kind is MessageType.HELLO:
        _, version, count, fingerprint, max_frame = raw
        numbers = [value for value in (version, count, max_frame) if _is_uint(value)]
        if len(numbers) != 3:
            raise violation("bad-hello", "HELLO fields must be unsigned integers")
        if type(fingerprint) is not bytes or len(fingerprint) != FINGERPRINT_SIZE:
            raise violation("bad-hello", "a HELLO fingerprint is 16 bytes")
        hello = Hello(
            version=numbers[0],
            item_count=numbers[1],
            fingerprint=fingerprint,
            max_frame_bytes=numbers[2],
        )
        return SyncMessage(type=kind, hello=hello)
    if kind is MessageType.RECONCILE:
        if type(raw[1]) is not bytes:
            raise violation("malformed", "RECONCILE carries a binary reconcile message")
        return SyncMessage(type=kind, payload=raw[1])
    if kind is MessageType.OPS:
        ops = raw[1]
        if type(ops) is not list or not ops or not all(type(op) is bytes and op for op in ops):
            raise violation("malformed", "OPS carries an array of one or more binary operations")
        return SyncMessage(type=kind, ops=tuple(ops))
    if kind in _RECORD_SIZES:
        # WANT, WANT_SHORT and SKETCH: one binary of fixed-size records, at least one.
        size, records = _RECORD_SIZES[kind], raw[1]
        if type(records) is not bytes or not records or len(records) % size:
            raise violation("malformed", f"{kind.name} carries {size}-byte records, at least one")
        return SyncMessage(type=kind, payload=records)
    if kind is MessageType.SKETCH_ASK:
        count = raw[1]
        if not _is_uint(count) or not 1 <= count <= MAX_SYMBOLS:
            raise violation("malformed", f"SKETCH_ASK asks for 1 to {MAX_SYMBOLS} symbols")
        return SyncMessage(type=kind, count=count)
    if kind is MessageType.ERROR:
        reason = raw[1]
        if type(reason) is not str or len(reason) > MAX_ERROR_REASON_BYTES:
            raise violation("malformed", "ERROR carries a short reason text")
        return SyncMessage(type=kind, reason=reason)
    return SyncMessage(type=kind)
