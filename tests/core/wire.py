"""Hand-made wire bytes for tests: any field values, canonical or deliberately not.

`encode` writes msgpack like the protocol does (smallest forms) except where a value is wrapped in
`Wide` (written in a larger form than needed) or `Raw` (spliced in as given). `sign_fields` signs
arbitrary unsigned fields exactly as an honest author would, so a test can show that a rule is
enforced even when the signature is good.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import msgpack
from nacl.signing import SigningKey

from p2pcomments.core.ops import OP_SIGNING_DOMAIN, PROTOCOL_VERSION, Kind


@dataclass(frozen=True, slots=True)
class Wide:
    """Encode ``value`` (int, str, bytes or tuple) in a wider msgpack form than the smallest."""

    value: object


@dataclass(frozen=True, slots=True)
class Raw:
    """Splice these bytes into the encoding as they are."""

    data: bytes


def _wide(value: object) -> bytes:
    if isinstance(value, bool) or value is None:
        raise TypeError(f"no wider form for {value!r}")
    if isinstance(value, int):
        if value >= 0:
            return b"\xcf" + struct.pack(">Q", value)
        return b"\xd3" + struct.pack(">q", value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return b"\xda" + struct.pack(">H", len(data)) + data
    if isinstance(value, bytes):
        return b"\xc5" + struct.pack(">H", len(value)) + value
    if isinstance(value, tuple):
        return b"\xdc" + struct.pack(">H", len(value)) + b"".join(encode(v) for v in value)
    raise TypeError(f"no wider form for {value!r}")


def encode(value: object) -> bytes:
    """msgpack of ``value``: smallest forms, tuples as arrays, `Wide` and `Raw` honoured."""
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, Wide):
        return _wide(value.value)
    if isinstance(value, tuple):
        size = len(value)
        header = bytes([0x90 | size]) if size < 16 else b"\xdc" + struct.pack(">H", size)
        return header + b"".join(encode(v) for v in value)
    return msgpack.packb(value, use_bin_type=True)


def op_id_of(unsigned: tuple[object, ...]) -> bytes:
    return hashlib.sha256(encode(unsigned)).digest()


def sign_fields(key: SigningKey, unsigned: tuple[object, ...]) -> bytes:
    """The signed encoding of 8 unsigned fields (whatever they hold), signed by ``key``."""
    signature = key.sign(OP_SIGNING_DOMAIN + op_id_of(unsigned)).signature
    return encode((*unsigned, signature))


def comment_fields(
    key: SigningKey,
    *,
    version: object = PROTOCOL_VERSION,
    kind: object = int(Kind.COMMENT),
    thread: object = b"\x11" * 32,
    refs: object = (b"\x11" * 32,),
    deps: object = (b"\x11" * 32,),
    timestamp_ms: object = 1_700_000_000_000,
    payload: object = ("hello",),
) -> tuple[object, ...]:
    """The unsigned fields of a well-formed comment, with any of them replaced."""
    author = bytes(key.verify_key)
    return (version, kind, author, thread, refs, deps, timestamp_ms, payload)
