"""Text forms for keys and ids that survive copy-paste and catch typos.

A text form is ``<prefix>_<56 base32 characters>``: lowercase RFC 4648 base32 (a-z, 2-7, no padding)
of the 32 bytes followed by a 3-byte checksum, the first 3 bytes of SHA-256 of those 32 bytes.
The prefix says what the bytes are (``key`` an author key, ``thr`` a thread, ``cmt`` a comment,
``op`` any operation) but is not covered by the checksum: an id is the same whatever it is called.
Parsing also accepts 64 hexadecimal digits, for tools that print raw hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from enum import StrEnum

from p2pcomments.errors import TextFormError

__all__ = ["TextKind", "display_id", "format_id", "parse_id"]

_CHECKSUM_BYTES = 3
_BODY_CHARS = 56  # (32 + 3) bytes * 8 / 5
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


class TextKind(StrEnum):
    """What a text form names; the value is its prefix."""

    KEY = "key"
    THREAD = "thr"
    COMMENT = "cmt"
    OPERATION = "op"


def format_id(kind: TextKind, raw: bytes) -> str:
    """The text form of a 32-byte key or id."""
    if len(raw) != 32:
        raise ValueError(f"a key or id is 32 bytes, got {len(raw)}")
    checked = raw + hashlib.sha256(raw).digest()[:_CHECKSUM_BYTES]
    return f"{kind.value}_{base64.b32encode(checked).decode('ascii').lower()}"


def display_id(kind: TextKind, raw: bytes) -> str:
    """The text form for a message: that of a 32-byte id, else the hex of whatever was given."""
    return format_id(kind, raw) if len(raw) == 32 else raw.hex()


def parse_id(text: str, *, expect: frozenset[TextKind] | None = None) -> bytes:
    """The 32 bytes a text form names.

    ``expect`` lists the prefixes acceptable here (any of them when None). Raises `TextFormError`
    with a message that says what is wrong: unknown prefix, wrong kind, length, alphabet, checksum.
    """
    cleaned = text.strip()
    if len(cleaned) == 64 and all(c in "0123456789abcdefABCDEF" for c in cleaned):
        return bytes.fromhex(cleaned)
    prefix, sep, body = cleaned.partition("_")
    if not sep:
        raise TextFormError(
            f"{text!r} is not an id: expected a prefix, an underscore and 56 characters ('cmt_…')"
        )
    try:
        kind = TextKind(prefix.lower())
    except ValueError:
        known = ", ".join(f"'{k.value}_'" for k in TextKind)
        raise TextFormError(
            f"unknown prefix '{prefix}_' in {text!r}: expected one of {known}"
        ) from None
    if expect is not None and kind not in expect:
        wanted = " or ".join(sorted(f"'{k.value}_'" for k in expect))
        raise TextFormError(f"{text!r} names a {kind.name.lower()}, expected {wanted}")
    if body.isascii():  # only then: "\u212a" (Kelvin sign).lower() is "k"
        body = body.lower()
    if len(body) != _BODY_CHARS:
        missing = "missing" if len(body) < _BODY_CHARS else "extra"
        raise TextFormError(
            f"{text!r} has {len(body)} characters after '{prefix}_', expected {_BODY_CHARS} "
            f"(characters {missing}?)"
        )
    bad = sorted({c for c in body if c not in _ALPHABET})
    if bad:
        raise TextFormError(
            f"{text!r} contains {', '.join(repr(c) for c in bad)}: ids use only a-z and 2-7"
        )
    try:
        checked = base64.b32decode(body.upper())
    except binascii.Error as error:  # pragma: no cover - alphabet and length were checked
        raise TextFormError(f"{text!r} does not decode: {error}") from None
    raw, checksum = checked[:32], checked[32:]
    if hashlib.sha256(raw).digest()[:_CHECKSUM_BYTES] != checksum:
        raise TextFormError(f"{text!r} fails its checksum: a character is mistyped or missing")
    return raw
