"""A second decoder of operations, written from protocol/SPEC.md §2-§5.2 (and §11's rule actions,
site threads and nonce) alone: its own msgpack
parser, its own canonical encoder, the decoding steps of §5.1 in order. It shares no code with
`p2pcomments.core.ops`, so where the two agree on every vector the SPEC's text says what the
code does (tests/core/test_rule_vectors.py runs both over every decoding vector).

It takes two things from elsewhere: §10.1's URL normal form from the reference, to tell page
threads (§10.2), and Ed25519 itself from libsodium through PyNaCl (SPEC §5.2 is checked
separately, from its text, in the same test file).
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import sys
import unicodedata
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

DOMAIN = b"p2pcomments/op/v1\x00"
WHITE_SPACE = frozenset(  # SPEC §2's list
    (*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028)
) | {0x2029, 0x202F, 0x205F, 0x3000}
LIMITS = {"title": 512, "url": 2048, "site": 253, "body": 32_768, "name": 64, "reaction": 32}
LIMITS |= {"source": 32, "original_id": 256, "author_name": 256, "author_url": 2048}


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutOfScope(Exception):
    pass


@dataclass(frozen=True)
class Value:
    """One parsed msgpack value: its type (nil, bool, int, float, str, bin, array, map, ext)
    and what it holds."""

    type: str
    value: Any


# -- msgpack, as msgpack.org specifies it ------------------------------------------------------


class _Parser:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise Refused("malformed")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def value(self, depth: int) -> Value:
        b = self.take(1)[0]
        if b <= 0x7F:
            return Value("int", b)
        if b >= 0xE0:
            return Value("int", b - 0x100)
        if 0x80 <= b <= 0x8F:
            return self.map(b & 0x0F, depth)
        if 0x90 <= b <= 0x9F:
            return self.array(b & 0x0F, depth)
        if 0xA0 <= b <= 0xBF:
            return self.str(b & 0x1F)
        simple = {0xC0: Value("nil", None), 0xC2: Value("bool", False), 0xC3: Value("bool", True)}
        if b in simple:
            return simple[b]
        if b == 0xC1:
            raise Refused("malformed")
        if b in (0xC4, 0xC5, 0xC6):
            return Value("bin", self.take(self.uint(1 << (b - 0xC4))))
        if b in (0xC7, 0xC8, 0xC9):
            return self.ext(self.uint(1 << (b - 0xC7)))
        if b == 0xCA:
            return Value("float", struct.unpack(">f", self.take(4))[0])
        if b == 0xCB:
            return Value("float", struct.unpack(">d", self.take(8))[0])
        if 0xCC <= b <= 0xCF:
            return Value("int", self.uint(1 << (b - 0xCC)))
        if 0xD0 <= b <= 0xD3:
            return Value("int", int.from_bytes(self.take(1 << (b - 0xD0)), "big", signed=True))
        if 0xD4 <= b <= 0xD8:
            return self.ext(1 << (b - 0xD4))
        if 0xD9 <= b <= 0xDB:
            return self.str(self.uint(1 << (b - 0xD9)))
        if b in (0xDC, 0xDD):
            return self.array(self.uint(2 if b == 0xDC else 4), depth)
        return self.map(self.uint(2 if b == 0xDE else 4), depth)  # 0xde, 0xdf

    def str(self, n: int) -> Value:
        try:
            return Value("str", self.take(n).decode("utf-8"))  # strict: no surrogates, overlongs
        except UnicodeDecodeError:
            raise Refused("malformed") from None

    def ext(self, n: int) -> Value:
        kind = int.from_bytes(self.take(1), "big", signed=True)
        data = self.take(n)
        if kind < -1:  # reserved by msgpack for types it may define: not well formed here
            raise Refused("malformed")
        if kind == -1:  # msgpack's timestamp: 32, 64 or 96 bits, nanoseconds < 10^9
            if n == 8 and int.from_bytes(data, "big") >> 34 > 999_999_999:
                raise Refused("malformed")
            if n == 12 and int.from_bytes(data[:4], "big") > 999_999_999:
                raise Refused("malformed")
            if n not in (4, 8, 12):
                raise Refused("malformed")
        return Value("ext", (kind, data))

    def array(self, n: int, depth: int) -> Value:
        if depth + 1 > 1024:
            raise Refused("malformed")
        return Value("array", [self.value(depth + 1) for _ in range(n)])

    def map(self, n: int, depth: int) -> Value:
        if depth + 1 > 1024:
            raise Refused("malformed")
        return Value("map", [(self.value(depth + 1), self.value(depth + 1)) for _ in range(n)])


def parse(data: bytes) -> Value:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 6000))
    try:
        parser = _Parser(data)
        value = parser.value(0)
    finally:
        sys.setrecursionlimit(limit)
    if parser.at != len(data):
        raise Refused("malformed")
    return value


def canonical(value: Value) -> bytes:
    """The shortest encoding of the types an operation holds (SPEC §3)."""
    if value.type == "nil":
        return b"\xc0"
    if value.type == "int":
        n = value.value
        if n < 0x80:
            return bytes([n])
        for head, size in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
            if n < 1 << (8 * size):
                return bytes([head]) + n.to_bytes(size, "big")
    if value.type in ("str", "bin"):
        data = value.value.encode("utf-8") if value.type == "str" else value.value
        n = len(data)
        if value.type == "str" and n < 32:
            return bytes([0xA0 | n]) + data
        base = 0xD9 if value.type == "str" else 0xC4
        for offset, size in enumerate((1, 2, 4)):
            if n < 1 << (8 * size):
                return bytes([base + offset]) + n.to_bytes(size, "big") + data
    if value.type == "array":
        items = value.value
        head = (
            bytes([0x90 | len(items)])
            if len(items) < 16
            else (b"\xdc" + len(items).to_bytes(2, "big"))
            if len(items) < 1 << 16
            else b"\xdd" + len(items).to_bytes(4, "big")
        )
        return head + b"".join(canonical(item) for item in items)
    raise AssertionError(value)  # every other type was refused before step 9


# -- SPEC §5.1 ---------------------------------------------------------------------------------


def _text(value: Value, field: str, *, blank_ok: bool, multiline: bool) -> str:
    if value.type != "str":
        raise Refused("bad-field")
    text = value.value
    if len(text.encode("utf-8")) > LIMITS.get(field, 512):
        raise Refused("oversize")
    if not blank_ok and all(ord(c) in WHITE_SPACE for c in text):
        raise Refused("bad-field")
    for c in text:
        code = ord(c)
        if (code < 0x20 or 0x7F <= code <= 0x9F) and not (multiline and c in "\n\t"):
            raise Refused("bad-text")
    if not unicodedata.is_normalized("NFC", text):
        raise Refused("bad-text")
    return text


def _key(value: Value) -> bytes:
    if value.type != "bin" or len(value.value) != 32:
        raise Refused("bad-field")
    return bytes(value.value)


def _strip(text: str) -> str:
    start, end = 0, len(text)
    while start < end and ord(text[start]) in WHITE_SPACE:
        start += 1
    while end > start and ord(text[end - 1]) in WHITE_SPACE:
        end -= 1
    return text[start:end]


_VALUE_ACTIONS = {8: 2**63 - 1, 13: 3, 14: 2, 15: 64, 17: 1}  # §11.1: action -> greatest value
_SUBJECT_ACTIONS = {3, 4, 8, 9, 10, 11, 12, 16, 17, 19}  # 19: §2, claims


def _payload(kind: int, value: Value, timestamp: int) -> list[Any]:
    if value.type != "array":
        raise Refused("bad-field")
    items = value.value
    if items and items[-1].type == "bin":  # §11.6: the nonce, set aside
        if not 1 <= len(items[-1].value) <= 32:
            raise Refused("bad-field")
        items = items[:-1]
    arity = {1: 3, 2: 1, 3: 1, 4: 0, 5: 1, 6: 3, 7: 1}[kind]
    if kind == 6 and len(items) == 4:  # §11.1: then the arity of the action
        arity = 4
    if kind == 2 and len(items) == 2:  # §2 Provenance
        body = _text(items[0], "body", blank_ok=False, multiline=True)
        _provenance(items[1])
        return [body]
    if len(items) != arity:
        raise Refused("bad-field")
    if kind in (2, 3):
        return [_text(items[0], "body", blank_ok=False, multiline=True)]
    if kind == 1:
        title = _text(items[0], "title", blank_ok=True, multiline=False)
        url, site = (
            None if item.type == "nil" else _text(item, field, blank_ok=False, multiline=False)
            for item, field in ((items[1], "url"), (items[2], "site"))
        )
        if (
            not _strip(title)
            and url is None
            and not (timestamp == 0 and title == "" and site is not None and _normal_host(site))
        ):  # §11.2: the site thread is the one thread without title or url
            raise Refused("bad-field")
        return [title, url, site]
    if kind == 5:
        reaction = _text(items[0], "reaction", blank_ok=True, multiline=False)
        if _strip(reaction) != reaction:
            raise Refused("bad-text")
        return [reaction]
    if kind == 6:
        action, subject, reason = items[:3]
        if action.type != "int" or action.value not in range(1, 20):  # 18-19: §2, claims
            raise Refused("bad-field")
        if (len(items) == 4) != (action.value in _VALUE_ACTIONS):
            raise Refused("bad-field")
        if action.value in _SUBJECT_ACTIONS:
            _key(subject)
        elif subject.type != "nil":
            raise Refused("bad-field")
        _text(
            reason,
            "title" if action.value == 7 else "reason",
            blank_ok=True,
            multiline=action.value != 7,
        )
        if len(items) == 4:
            rule_value = items[3]
            greatest = _VALUE_ACTIONS[action.value]
            if rule_value.type != "int" or not 0 <= rule_value.value <= greatest:
                raise Refused("bad-field")
        return [action.value]
    if kind == 7:
        return [_text(items[0], "name", blank_ok=False, multiline=False)]
    return []


def _provenance(value: Value) -> None:
    if value.type != "array" or len(value.value) != 6:
        raise Refused("bad-field")
    source, original_id, name, url, timestamp, entry_kind = value.value
    _text(source, "source", blank_ok=False, multiline=False)
    _text(original_id, "original_id", blank_ok=False, multiline=False)
    _text(name, "author_name", blank_ok=True, multiline=False)
    if url.type != "nil":
        _text(url, "author_url", blank_ok=False, multiline=False)
    if timestamp.type != "int" or not 0 <= timestamp.value < 2**63:
        raise Refused("bad-field")
    if entry_kind.type != "int" or entry_kind.value not in (1, 2, 3):
        raise Refused("bad-field")


def _normal_url(url: str) -> tuple[str, str] | None:
    """§10.1's normal form of ``url`` and its site, from the reference (the one rule here not
    written again from the text: §10.1 has vectors of its own, page_urls.json)."""
    from p2pcomments.core.page_url import normalise_page_url, page_site
    from p2pcomments.errors import PageUrlError

    try:
        normal = normalise_page_url(url)
    except PageUrlError:
        return None
    return normal, page_site(normal)


def _normal_host(site: str) -> bool:
    """§11.2: ``site`` is a host in §10.1's normal form."""
    return _normal_url(f"https://{site}/") == (f"https://{site}/", site)


def decode(data: bytes) -> None:
    """Raise `Refused` with the SPEC's reason, or return for a valid operation."""
    if len(data) > 40_960:  # step 1
        raise Refused("oversize")
    top = parse(data)  # step 2
    if top.type != "array" or len(top.value) != 9:  # step 3
        raise Refused("malformed")
    version, kind, author, thread, refs, deps, timestamp, payload, signature = top.value
    if signature.type != "bin" or len(signature.value) != 64:
        raise Refused("bad-field")
    if version.type != "int" or version.value != 1:  # step 4
        raise Refused("unknown-version")
    if kind.type != "int" or kind.value not in range(1, 8):  # step 5
        raise Refused("unknown-kind")
    _key(author)  # step 6
    if timestamp.type != "int" or not 0 <= timestamp.value < 2**63:
        raise Refused("bad-field")
    if refs.type != "array" or deps.type != "array":
        raise Refused("bad-field")
    ref_ids = [_key(r) for r in refs.value]
    dep_ids = [_key(d) for d in deps.value]
    standalone = kind.value in (1, 7)
    if standalone:
        if thread.type != "nil" or ref_ids or dep_ids:
            raise Refused("bad-field")
    else:
        thread_id = _key(thread)
        if len(ref_ids) != 1:
            raise Refused("bad-field")
        if len(dep_ids) > 16:
            raise Refused("oversize")
        if any(a >= b for a, b in itertools.pairwise(dep_ids)):
            raise Refused("bad-field")
    parsed = _payload(kind.value, payload, timestamp.value)  # step 7
    if not standalone:  # step 8
        at_thread = ref_ids[0] == thread_id
        if kind.value == 6:
            if (3 <= parsed[0] <= 17) != at_thread:  # 1, 2, 18, 19 aim at an operation
                raise Refused("bad-reference")
        elif kind.value != 2 and at_thread:
            raise Refused("bad-reference")
    if canonical(top) != data:  # step 9
        raise Refused("non-canonical")
    page_form = (
        kind.value == 1
        and timestamp.value == 0
        and parsed[0] == ""
        and len(payload.value) == 3  # no nonce (§11.6)
        and (
            (parsed[1] is not None and _normal_url(parsed[1]) == (parsed[1], parsed[2]))
            or (parsed[1] is None and parsed[2] is not None and _normal_host(parsed[2]))
        )  # a page thread (§10.2) or a site thread (§11.2)
    )
    if page_form:  # §10.2: exactly the zero signature, and no other
        if signature.value == bytes(64):
            return
        raise Refused("bad-signature")
    if signature.value == bytes(64):  # never a signature outside page form
        raise Refused("bad-signature")
    op_id = hashlib.sha256(canonical(Value("array", top.value[:8]))).digest()
    try:
        VerifyKey(_key(author)).verify(DOMAIN + op_id, bytes(signature.value))
    except (CryptoError, ValueError, TypeError):
        raise Refused("bad-signature") from None
