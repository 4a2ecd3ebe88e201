#!/usr/bin/env python3
"""Generate the protocol test vectors in protocol/vectors/ (SPEC §2-§7) from fixed seeds.

    scripts/gen_vectors.py           write the files
    scripts/gen_vectors.py --check   regenerate in memory and compare with the files on disk;
                                     exit 1 with a summary of the differences

Everything is deterministic: keys come from fixed 32-byte seeds, timestamps are constants, and
Ed25519 signatures are deterministic. Every expectation written here is first checked against our
own implementation, so a vector can never disagree with the code that generated it; another
implementation reads the files as a conformance suite.

Files written (sync_reconcile.json belongs to scripts/gen_reconcile_vectors.py):

- operations.json          valid operations of every kind and moderation action: seed, key,
                           unsigned fields, canonical bytes, id, signature, text forms
- invalid_operations.json  encodings every decoder must refuse, each with its reason code (§5)
- thread_views.json        thread histories: operations in order, each one's outcome, the
                           expected view and its digest, and shuffled orders giving that digest
- text_forms.json          text forms of keys and ids, and typed strings that must not parse (§7)
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import random
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
from nacl.signing import SigningKey

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from p2pcomments.core.ops import (  # noqa: E402
    MAX_BODY_BYTES,
    MAX_DEPS,
    MAX_OPERATION_BYTES,
    OP_SIGNING_DOMAIN,
    PROTOCOL_VERSION,
    CommentPayload,
    EditPayload,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    Payload,
    ProfilePayload,
    ReactPayload,
    RetractPayload,
    ThreadPayload,
    decode_operation,
    make_operation,
)
from p2pcomments.core.replica import Applied, Pending, Rejected, Replica  # noqa: E402
from p2pcomments.core.textform import TextKind, format_id, parse_id  # noqa: E402
from p2pcomments.core.thread_state import ThreadView  # noqa: E402
from p2pcomments.errors import InvalidOperation, TextFormError  # noqa: E402

VECTORS = ROOT / "protocol" / "vectors"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


# -- keys ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signer:
    name: str
    seed: bytes

    @property
    def key(self) -> SigningKey:
        return SigningKey(self.seed)

    @property
    def public(self) -> bytes:
        return bytes(self.key.verify_key)

    def describe(self) -> dict[str, str]:
        return {
            "name": self.name,
            "seed": self.seed.hex(),
            "public_key": self.public.hex(),
            "public_key_text": format_id(TextKind.KEY, self.public),
        }


def _signer(name: str) -> Signer:
    return Signer(name, hashlib.sha256(f"p2pcomments vector key: {name}".encode()).digest())


OWNER, ALICE, BOB, CAROL, MALLORY = (
    _signer(n) for n in ("owner", "alice", "bob", "carol", "mallory")
)
SIGNERS = (OWNER, ALICE, BOB, CAROL, MALLORY)
SIGNER_BY_PUBLIC = {s.public: s for s in SIGNERS}


# -- hand-made msgpack (for encodings that must be refused) ---------------------------------------


@dataclass(frozen=True, slots=True)
class Wide:
    """Encode the value (int, str, bytes or tuple) in a wider form than the smallest."""

    value: object


@dataclass(frozen=True, slots=True)
class Raw:
    """Splice these bytes in as they are."""

    data: bytes


def encode(value: object) -> bytes:
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, Wide):
        inner = value.value
        if isinstance(inner, int) and not isinstance(inner, bool):
            return b"\xcf" + struct.pack(">Q", inner)
        if isinstance(inner, str):
            data = inner.encode("utf-8")
            return b"\xda" + struct.pack(">H", len(data)) + data
        if isinstance(inner, bytes):
            return b"\xc5" + struct.pack(">H", len(inner)) + inner
        if isinstance(inner, tuple):
            return b"\xdc" + struct.pack(">H", len(inner)) + b"".join(encode(v) for v in inner)
        raise TypeError(inner)
    if isinstance(value, tuple):
        header = (
            bytes([0x90 | len(value)])
            if len(value) < 16
            else b"\xdc" + struct.pack(">H", len(value))
        )
        return header + b"".join(encode(v) for v in value)
    return bytes(msgpack.packb(value, use_bin_type=True))


def sign_fields(
    signer: Signer, unsigned: tuple[object, ...], *, domain: bytes = OP_SIGNING_DOMAIN
) -> bytes:
    op_id = hashlib.sha256(encode(unsigned)).digest()
    return encode((*unsigned, signer.key.sign(domain + op_id).signature))


# -- JSON forms ----------------------------------------------------------------------------------


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def payload_json(payload: Payload) -> dict[str, Any]:
    match payload:
        case ThreadPayload(title=title, url=url, site=site):
            return {"title": title, "url": url, "site": site}
        case CommentPayload(body=body) | EditPayload(body=body):
            return {"body": body}
        case RetractPayload():
            return {}
        case ReactPayload(reaction=reaction):
            return {"reaction": reaction}
        case ModeratePayload(action=action, subject=subject, reason=reason):
            return {
                "action": int(action),
                "action_name": ModAction(action).name.lower(),
                "subject": _hex(subject),
                "reason": reason,
            }
        case ProfilePayload(name=name):
            return {"name": name}
    raise TypeError(payload)


_ID_TEXT_KIND = {Kind.THREAD: TextKind.THREAD, Kind.COMMENT: TextKind.COMMENT}


def operation_json(op: Operation) -> dict[str, Any]:
    unsigned = op.encoded[: -(2 + 64)]
    unsigned = b"\x98" + unsigned[1:]
    return {
        "unsigned": {
            "version": op.version,
            "kind": int(op.kind),
            "kind_name": op.kind.name.lower(),
            "author": op.author.hex(),
            "thread": _hex(op.thread),
            "refs": [r.hex() for r in op.refs],
            "deps": [d.hex() for d in op.deps],
            "timestamp_ms": op.timestamp_ms,
            "payload": payload_json(op.payload),
        },
        "unsigned_hex": unsigned.hex(),
        "id": op.id.hex(),
        "id_text": format_id(_ID_TEXT_KIND.get(op.kind, TextKind.OPERATION), op.id),
        "signing_message_hex": (OP_SIGNING_DOMAIN + op.id).hex(),
        "signature": op.signature.hex(),
        "encoded": op.encoded.hex(),
    }


def view_json(view: ThreadView) -> dict[str, Any]:
    return {
        "id": view.id.hex(),
        "owner": view.owner.hex(),
        "owner_name": view.owner_name,
        "title": view.title,
        "url": view.url,
        "site": view.site,
        "timestamp_ms": view.timestamp_ms,
        "closed": view.closed,
        "moderators": [m.hex() for m in view.moderators],
        "operation_count": view.operation_count,
        "comments": [
            {
                "id": c.id.hex(),
                "author": c.author.hex(),
                "author_name": c.author_name,
                "parent": c.parent.hex(),
                "depth": c.depth,
                "timestamp_ms": c.timestamp_ms,
                "body": c.body,
                "edits": [
                    {"id": e.id.hex(), "timestamp_ms": e.timestamp_ms, "body": e.body}
                    for e in c.edits
                ],
                "retracted": c.retracted,
                "hidden": c.hidden,
                "hidden_by": _hex(c.hidden_by),
                "reactions": [
                    {"reaction": r.reaction, "authors": [a.hex() for a in r.authors]}
                    for r in c.reactions
                ],
                "parent_edited_after": c.parent_edited_after,
                "after_close": c.after_close,
                "reply_count": c.reply_count,
            }
            for c in view.comments
        ],
    }


def digest_preimage(view: ThreadView) -> bytes:
    """SPEC §6.4 spelled out, so other implementations can compare bytes, not just hashes. A
    claimed comment's row ends with ``claimed_by, claimed_by_name or nil``; any other row is as
    before claims existed."""
    header = (
        view.id,
        view.owner,
        view.owner_name,
        view.title,
        view.url,
        view.site,
        view.closed,
        tuple(view.moderators),
    )
    rows = tuple(
        (
            c.id,
            c.author,
            c.author_name,
            c.parent,
            c.depth,
            c.timestamp_ms,
            c.body,
            tuple(e.id for e in c.edits),
            c.retracted,
            c.hidden,
            c.hidden_by,
            tuple((r.reaction, tuple(r.authors)) for r in c.reactions),
            c.parent_edited_after,
            c.after_close,
        )
        + (() if c.claimed_by is None else (c.claimed_by, c.claimed_by_name))
        for c in view.comments
    )
    preimage = bytes(msgpack.packb((header, rows), use_bin_type=True))
    if hashlib.sha256(preimage).digest() != view.digest():
        raise AssertionError("SPEC §6.4 as written here disagrees with ThreadView.digest")
    return preimage


# -- valid operations ----------------------------------------------------------------------------


def _make(
    signer: Signer,
    payload: Payload,
    ts: int,
    *,
    thread: Operation | None = None,
    ref: Operation | bytes | None = None,
    deps: tuple[Operation, ...] = (),
) -> Operation:
    ref_id = ref.id if isinstance(ref, Operation) else ref
    return make_operation(
        signer.key,
        payload,
        timestamp_ms=ts,
        thread=thread.id if thread else None,
        refs=(ref_id,) if ref_id is not None else (),
        deps=frozenset(d.id for d in deps),
    )


def valid_operations() -> dict[str, Any]:
    thread = _make(
        OWNER,
        ThreadPayload(title="Hello, world", url="https://blog.example/hello", site="blog.example"),
        T0,
    )
    comment = _make(
        ALICE, CommentPayload(body="First!"), T0 + 1_000, thread=thread, ref=thread, deps=(thread,)
    )
    entries: list[tuple[str, str, Signer, Operation]] = [
        ("thread", "a thread with title, url and site", OWNER, thread),
        (
            "thread-title-only",
            "a thread about a title alone (url and site nil)",
            OWNER,
            _make(OWNER, ThreadPayload(title="Ask me anything"), T0 + 5),
        ),
        (
            "thread-url-only",
            "an empty title is allowed when a url is given",
            OWNER,
            _make(OWNER, ThreadPayload(title="", url="https://例え.jp/記事?id=2"), T0 + 6),
        ),
        ("comment", "a top-level comment: refs[0] is the thread", ALICE, comment),
    ]
    reply = _make(
        BOB,
        CommentPayload(body="Ünïcødé reply,\nwith a second line\tand a tab. 👍🏽"),
        T0 + 2_000,
        thread=thread,
        ref=comment,
        deps=(comment,),
    )
    entries += [
        ("reply", "a reply to a comment; NFC text with LF and TAB", BOB, reply),
        (
            "edit",
            "the comment's author edits it",
            ALICE,
            _make(
                ALICE,
                EditPayload(body="First! (edited)"),
                T0 + 3_000,
                thread=thread,
                ref=comment,
                deps=(reply,),
            ),
        ),
        (
            "retract",
            "the reply's author retracts it",
            BOB,
            _make(BOB, RetractPayload(), T0 + 4_000, thread=thread, ref=reply, deps=(reply,)),
        ),
        (
            "react",
            "a reaction",
            CAROL,
            _make(
                CAROL,
                ReactPayload(reaction="❤️"),
                T0 + 5_000,
                thread=thread,
                ref=comment,
                deps=(reply,),
            ),
        ),
        (
            "react-withdraw",
            "the empty reaction withdraws the author's reaction",
            CAROL,
            _make(
                CAROL,
                ReactPayload(reaction=""),
                T0 + 6_000,
                thread=thread,
                ref=comment,
                deps=(reply,),
            ),
        ),
    ]
    moderation: list[tuple[ModAction, Signer | None, Operation, str]] = [
        (ModAction.HIDE, None, comment, "spam"),
        (ModAction.UNHIDE, None, comment, ""),
        (ModAction.ADD_MODERATOR, BOB, thread, ""),
        (ModAction.REMOVE_MODERATOR, BOB, thread, "stepped down"),
        (ModAction.CLOSE, None, thread, "discussion over"),
        (ModAction.REOPEN, None, thread, ""),
    ]
    for index, (action, subject, target, reason) in enumerate(moderation):
        payload = ModeratePayload(
            action=action, subject=subject.public if subject else None, reason=reason
        )
        op = _make(OWNER, payload, T0 + 7_000 + index, thread=thread, ref=target, deps=(reply,))
        where = "the thread" if target is thread else "a comment"
        entries.append(
            (
                f"moderate-{action.name.lower().replace('_', '-')}",
                f"{action.name.lower()} at {where}",
                OWNER,
                op,
            )
        )
    entries.append(
        (
            "profile",
            "a display name",
            ALICE,
            _make(ALICE, ProfilePayload(name="Alice Ünïcødé"), T0 + 9_000),
        )
    )
    many_deps = tuple(
        _make(
            CAROL,
            CommentPayload(body=f"concurrent {i}"),
            T0 + 10_000 + i,
            thread=thread,
            ref=thread,
            deps=(thread,),
        )
        for i in range(MAX_DEPS)
    )
    entries.append(
        (
            "comment-max-deps",
            f"{MAX_DEPS} causal dependencies (the limit), sorted ascending",
            BOB,
            _make(
                BOB,
                CommentPayload(body="I saw them all"),
                T0 + 20_000,
                thread=thread,
                ref=thread,
                deps=many_deps,
            ),
        )
    )
    for ts, width in (
        (0, "positive fixint"),
        (200, "uint8"),
        (60_000, "uint16"),
        (4_000_000_000, "uint32"),
        (2**63 - 1, "uint64 (the largest allowed)"),
    ):
        entries.append(
            (
                f"timestamp-{ts}",
                f"timestamp {ts} encoded as {width}",
                ALICE,
                _make(ALICE, ProfilePayload(name="Alice"), ts),
            )
        )
    vectors = []
    for name, description, signer, op in entries:
        if decode_operation(op.encoded) != op:
            raise AssertionError(f"{name} does not round-trip")
        vectors.append(
            {
                "name": name,
                "description": description,
                "signer": signer.describe(),
                **operation_json(op),
            }
        )
    return {
        "description": (
            "Valid operations (SPEC §2-§4): decoding `encoded` MUST succeed and yield these "
            "fields, id and signature; encoding the fields MUST give `encoded`."
        ),
        "protocol_version": PROTOCOL_VERSION,
        "signing_domain_hex": OP_SIGNING_DOMAIN.hex(),
        "vectors": vectors,
    }


# -- invalid encodings ---------------------------------------------------------------------------

THREAD_ID = hashlib.sha256(b"p2pcomments vector: some thread").digest()
COMMENT_ID = hashlib.sha256(b"p2pcomments vector: some comment").digest()
DEP_ID = hashlib.sha256(b"p2pcomments vector: some dep").digest()


def _fields(signer: Signer = ALICE, **replace: object) -> tuple[object, ...]:
    fields: dict[str, object] = {
        "version": PROTOCOL_VERSION,
        "kind": int(Kind.COMMENT),
        "author": signer.public,
        "thread": THREAD_ID,
        "refs": (COMMENT_ID,),
        "deps": (DEP_ID,),
        "timestamp_ms": T0,
        "payload": ("hello",),
    }
    fields.update(replace)
    return tuple(fields.values())


def _signed(**replace: object) -> bytes:
    return sign_fields(ALICE, _fields(**replace))


def _standalone(kind: Kind, payload: tuple[object, ...]) -> bytes:
    return _signed(kind=int(kind), thread=None, refs=(), deps=(), payload=payload)


def invalid_cases() -> list[tuple[str, str, str, bytes]]:
    """(name, reason, description, encoding)."""
    good = _signed()
    good_unsigned = _fields()
    good_id = hashlib.sha256(encode(good_unsigned)).digest()
    flipped = bytearray(good)
    flipped[-20] ^= 0x01
    sorted_deps = tuple(sorted([DEP_ID, COMMENT_ID]))
    many = tuple(sorted(hashlib.sha256(bytes([i])).digest() for i in range(MAX_DEPS + 1)))
    return [
        # malformed
        ("empty", "malformed", "no bytes at all", b""),
        ("reserved-byte", "malformed", "0xc1 is never used by msgpack", b"\xc1"),
        ("truncated", "malformed", "a valid operation missing its last byte", good[:-1]),
        (
            "trailing-byte",
            "malformed",
            "a valid operation followed by one more byte",
            good + b"\x00",
        ),
        ("arity-8", "malformed", "the unsigned form alone (8 elements)", encode(good_unsigned)),
        ("arity-10", "malformed", "10 elements", encode((*good_unsigned, b"\x00" * 64, 0))),
        ("map", "malformed", "a map instead of an array", bytes(msgpack.packb({"version": 1}))),
        ("not-an-array", "malformed", "a bare integer", b"\x01"),
        ("extension", "malformed", "a msgpack extension type", b"\xd4\x01\x00"),
        # oversize
        (
            "oversize-total",
            "oversize",
            f"{MAX_OPERATION_BYTES + 1} bytes: refused before parsing",
            b"\x99" + b"\x00" * MAX_OPERATION_BYTES,
        ),
        (
            "oversize-body",
            "oversize",
            f"a {MAX_BODY_BYTES + 1}-byte body",
            _signed(payload=("x" * (MAX_BODY_BYTES + 1),)),
        ),
        (
            "oversize-body-utf8",
            "oversize",
            "a body under the limit in characters, over it in UTF-8 bytes",
            _signed(payload=("€" * (MAX_BODY_BYTES // 3 + 1),)),
        ),
        ("oversize-deps", "oversize", f"{MAX_DEPS + 1} deps", _signed(deps=many)),
        (
            "oversize-title",
            "oversize",
            "a 513-byte title",
            _standalone(Kind.THREAD, ("t" * 513, None, None)),
        ),
        (
            "oversize-name",
            "oversize",
            "a 65-byte profile name",
            _standalone(Kind.PROFILE, ("n" * 65,)),
        ),
        (
            "oversize-reaction",
            "oversize",
            "a 33-byte reaction",
            _signed(kind=int(Kind.REACT), payload=("r" * 33,)),
        ),
        # non-canonical
        ("wide-version", "non-canonical", "version 1 as uint64", _signed(version=Wide(1))),
        (
            "wide-kind-uint8",
            "non-canonical",
            "kind 2 as uint8 (0xcc 0x02)",
            _signed(kind=Raw(b"\xcc\x02")),
        ),
        (
            "wide-timestamp",
            "non-canonical",
            "timestamp 1000 as uint64",
            _signed(timestamp_ms=Wide(1_000)),
        ),
        (
            "wide-timestamp-uint32",
            "non-canonical",
            "timestamp 1000 as uint32",
            _signed(timestamp_ms=Raw(b"\xce" + (1000).to_bytes(4, "big"))),
        ),
        (
            "signed-int-timestamp",
            "non-canonical",
            "a positive timestamp as int64",
            _signed(timestamp_ms=Raw(b"\xd3" + T0.to_bytes(8, "big"))),
        ),
        (
            "wide-str8",
            "non-canonical",
            "a 5-byte body as str8 instead of fixstr",
            _signed(payload=(Raw(b"\xd9\x05hello"),)),
        ),
        (
            "wide-str16",
            "non-canonical",
            "a 5-byte body as str16",
            _signed(payload=(Wide("hello"),)),
        ),
        (
            "wide-bin16",
            "non-canonical",
            "the thread id as bin16 instead of bin8",
            _signed(thread=Wide(THREAD_ID)),
        ),
        (
            "wide-array16",
            "non-canonical",
            "refs as array16 instead of fixarray",
            _signed(refs=Wide((COMMENT_ID,))),
        ),
        (
            "wide-top-array32",
            "non-canonical",
            "the operation as array32",
            b"\xdd\x00\x00\x00\x09" + good[1:],
        ),
        # unknown version and kind
        ("version-0", "unknown-version", "version 0", _signed(version=0)),
        ("version-2", "unknown-version", "version 2", _signed(version=2)),
        ("kind-0", "unknown-kind", "kind 0", _signed(kind=0)),
        ("kind-8", "unknown-kind", "kind 8", _signed(kind=8)),
        # bad-field
        (
            "author-31-bytes",
            "bad-field",
            "a 31-byte author key",
            sign_fields(ALICE, _fields(author=ALICE.public[:31])),
        ),
        ("comment-without-thread", "bad-field", "thread nil on a comment", _signed(thread=None)),
        (
            "thread-with-thread",
            "bad-field",
            "a thread operation naming a thread",
            _signed(kind=int(Kind.THREAD), refs=(), deps=(), payload=("t", None, None)),
        ),
        ("two-refs", "bad-field", "a comment with two refs", _signed(refs=(COMMENT_ID, DEP_ID))),
        ("no-refs", "bad-field", "a comment with no ref", _signed(refs=())),
        (
            "deps-unsorted",
            "bad-field",
            "deps not in ascending byte order",
            _signed(deps=tuple(reversed(sorted_deps))),
        ),
        ("deps-repeated", "bad-field", "the same dep twice", _signed(deps=(DEP_ID, DEP_ID))),
        ("timestamp-negative", "bad-field", "timestamp -1", _signed(timestamp_ms=-1)),
        ("timestamp-2^63", "bad-field", "timestamp 2^63", _signed(timestamp_ms=2**63)),
        ("timestamp-float", "bad-field", "timestamp as a float", _signed(timestamp_ms=float(T0))),
        (
            "payload-arity",
            "bad-field",
            "a comment payload with two elements",
            _signed(payload=("a", "b")),
        ),
        (
            "body-as-bin",
            "bad-field",
            "the body as bin instead of str",
            _signed(payload=(b"hello",)),
        ),
        ("body-empty", "bad-field", "an empty body", _signed(payload=("",))),
        ("body-blank", "bad-field", "a body of white space", _signed(payload=(" \n\t",))),
        (
            "thread-neither-title-nor-url",
            "bad-field",
            "a thread with an empty title and no url",
            _standalone(Kind.THREAD, ("", None, None)),
        ),
        (
            "thread-blank-url",
            "bad-field",
            "a blank url",
            _standalone(Kind.THREAD, ("t", " ", None)),
        ),
        (
            "moderate-unknown-action",
            "bad-field",
            "moderation action 200 (none: 8-17 are rules, SPEC §11)",
            _signed(kind=int(Kind.MODERATE), payload=(200, None, "")),
        ),
        (
            "hide-with-subject",
            "bad-field",
            "a hide naming a moderator key",
            _signed(kind=int(Kind.MODERATE), payload=(int(ModAction.HIDE), BOB.public, "")),
        ),
        (
            "add-moderator-without-subject",
            "bad-field",
            "an add-moderator without a key",
            _signed(
                kind=int(Kind.MODERATE),
                refs=(THREAD_ID,),
                payload=(int(ModAction.ADD_MODERATOR), None, ""),
            ),
        ),
        (
            "signature-63-bytes",
            "bad-field",
            "a 63-byte signature",
            good[:-66] + b"\xc4\x3f" + good[-64:-1],
        ),
        # bad-text
        ("body-nul", "bad-text", "U+0000 in a body", _signed(payload=("a\x00b",))),
        (
            "body-escape",
            "bad-text",
            "an ANSI escape (U+001B) in a body",
            _signed(payload=("\x1b[31mred",)),
        ),
        ("body-cr", "bad-text", "CR in a body (clients send LF)", _signed(payload=("a\r\nb",))),
        ("body-c1", "bad-text", "U+0085 (a C1 control) in a body", _signed(payload=("a\x85b",))),
        ("body-del", "bad-text", "U+007F in a body", _signed(payload=("a\x7fb",))),
        (
            "body-not-nfc",
            "bad-text",
            "e + combining acute: not NFC",
            _signed(payload=("cafe\u0301",)),
        ),
        (
            "title-newline",
            "bad-text",
            "LF in a title",
            _standalone(Kind.THREAD, ("two\nlines", None, None)),
        ),
        ("name-tab", "bad-text", "TAB in a profile name", _standalone(Kind.PROFILE, ("a\tb",))),
        (
            "reaction-spaces",
            "bad-text",
            "a reaction with a trailing space",
            _signed(kind=int(Kind.REACT), payload=("+1 ",)),
        ),
        # bad-signature
        (
            "signature-flipped-bit",
            "bad-signature",
            "one bit of the signature flipped",
            bytes(flipped),
        ),
        (
            "signature-other-key",
            "bad-signature",
            "signed by bob, claiming alice",
            sign_fields(BOB, good_unsigned),
        ),
        (
            "signature-without-domain",
            "bad-signature",
            "alice's signature over the bare id",
            encode((*good_unsigned, ALICE.key.sign(good_id).signature)),
        ),
        (
            "signature-other-domain",
            "bad-signature",
            "alice's signature under another domain prefix",
            sign_fields(ALICE, good_unsigned, domain=b"p2pcomments/op/v2\x00"),
        ),
        ("signature-zero", "bad-signature", "64 zero bytes", good[:-64] + b"\x00" * 64),
        # bad-reference (decidable from the operation alone)
        (
            "edit-of-thread",
            "bad-reference",
            "an edit whose refs[0] is its thread",
            _signed(kind=int(Kind.EDIT), refs=(THREAD_ID,)),
        ),
        (
            "react-to-thread",
            "bad-reference",
            "a reaction whose refs[0] is its thread",
            _signed(kind=int(Kind.REACT), refs=(THREAD_ID,), payload=("+1",)),
        ),
        (
            "hide-thread",
            "bad-reference",
            "a hide whose refs[0] is the thread",
            _signed(
                kind=int(Kind.MODERATE), refs=(THREAD_ID,), payload=(int(ModAction.HIDE), None, "")
            ),
        ),
        (
            "close-at-comment",
            "bad-reference",
            "a close whose refs[0] is a comment",
            _signed(kind=int(Kind.MODERATE), payload=(int(ModAction.CLOSE), None, "")),
        ),
    ]


def decode_reason(data: bytes) -> str | None:
    try:
        decode_operation(data)
    except InvalidOperation as error:
        return error.reason
    return None


def invalid_operations() -> dict[str, Any]:
    vectors = []
    names = set()
    for name, reason, description, data in invalid_cases():
        if name in names:
            raise AssertionError(f"duplicate vector name {name}")
        names.add(name)
        got = decode_reason(data)
        if got != reason:
            raise AssertionError(
                f"invalid vector {name}: expected {reason}, our decoder says {got}"
            )
        entry = {"name": name, "reason": reason, "description": description, "size": len(data)}
        if len(data) > MAX_OPERATION_BYTES:  # keep the file small: describe the bytes instead
            entry["encoded_pattern"] = f"0x99 followed by {len(data) - 1} zero bytes"
            entry["encoded_sha256"] = hashlib.sha256(data).hexdigest()
        else:
            entry["encoded"] = data.hex()
        vectors.append(entry)
    return {
        "description": (
            "Encodings every decoder MUST refuse, each with the reason code it MUST report (SPEC "
            "§5). Checks run in the order of SPEC §2-§4; where one input breaks several rules, "
            "the reason listed is the first broken. Signers are those of operations.json."
        ),
        "signers": [s.describe() for s in (ALICE, BOB)],
        "vectors": vectors,
    }


# -- thread histories ----------------------------------------------------------------------------


def outcome_json(outcome: object) -> dict[str, Any]:
    if isinstance(outcome, Applied):
        return {"outcome": "applied"}
    if isinstance(outcome, Rejected):
        return {"outcome": "rejected", "reason": outcome.reason}
    if isinstance(outcome, Pending):
        return {"outcome": "pending"}
    raise TypeError(outcome)


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    label: str
    signer: Signer
    op: Operation


class History:
    """Operations written by hand: each names what it has seen (its deps)."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.clock = T0
        self._replica = Replica()

    def add(
        self,
        label: str,
        signer: Signer,
        payload: Payload,
        *,
        thread: Operation | None = None,
        ref: Operation | None = None,
        seen: tuple[Operation, ...] = (),
        ts: int | None = None,
    ) -> Operation:
        self.clock += 60_000
        op = _make(
            signer, payload, self.clock if ts is None else ts, thread=thread, ref=ref, deps=seen
        )
        self.steps.append(Step(label=label, signer=signer, op=op))
        self._replica.apply(op)
        return op

    def heads(self, thread: Operation) -> tuple[Operation, ...]:
        """Everything valid written so far in ``thread`` (its heads): what a writer that has
        seen it all depends on."""
        state = self._replica.thread(thread.id)
        return tuple(state.ops[head] for head in sorted(state.heads))


def main_history() -> tuple[str, str, History]:
    h = History()
    t = h.add("thread", OWNER, ThreadPayload(title="On gardens", url="https://blog.example/g"))

    def say(
        label: str,
        who: Signer,
        body: str,
        to: Operation,
        seen: tuple[Operation, ...],
        ts: int | None = None,
    ) -> Operation:
        return h.add(label, who, CommentPayload(body=body), thread=t, ref=to, seen=seen, ts=ts)

    def edit(
        label: str,
        who: Signer,
        body: str,
        of: Operation,
        seen: tuple[Operation, ...],
        ts: int | None = None,
    ) -> Operation:
        return h.add(label, who, EditPayload(body=body), thread=t, ref=of, seen=seen, ts=ts)

    def react(
        label: str, who: Signer, reaction: str, to: Operation, seen: tuple[Operation, ...]
    ) -> Operation:
        return h.add(label, who, ReactPayload(reaction=reaction), thread=t, ref=to, seen=seen)

    def moderate(
        label: str,
        who: Signer,
        action: ModAction,
        at: Operation,
        seen: tuple[Operation, ...],
        subject: Signer | None = None,
        reason: str = "",
    ) -> Operation:
        payload = ModeratePayload(
            action=action, subject=subject.public if subject else None, reason=reason
        )
        return h.add(label, who, payload, thread=t, ref=at, seen=seen)

    h.add("owner's profile", OWNER, ProfilePayload(name="The Gardener"))
    h.add("alice's profile, old", ALICE, ProfilePayload(name="alice"))
    h.add("alice's profile, newer", ALICE, ProfilePayload(name="Alice"))
    a = say("alice comments", ALICE, "Lovely roses.", t, (t,))
    b = say("bob replies to alice", BOB, "Which variety?", a, (a,))
    c = say("carol comments, concurrently with bob", CAROL, "Tulips > roses", t, (a,))
    e1 = edit("alice edits after bob's reply", ALICE, "Lovely roses (Gloire de Dijon).", a, (b, c))
    edit("bob edits alice's comment: not-author", BOB, "Ugly roses.", a, (e1,))
    d = say("carol replies after the edit", CAROL, "Gorgeous climber.", a, (e1,))
    edit("an older concurrent edit loses", ALICE, "Roses.", a, (b, c), ts=e1.timestamp_ms - 1)
    r1 = react("bob reacts", BOB, "🌹", a, (d,))
    react("carol reacts", CAROL, "🌹", a, (d,))
    react("mallory reacts", MALLORY, "👎", a, (d,))
    react("mallory withdraws", MALLORY, "", a, (r1,))
    react("bob changes his reaction", BOB, "❤️", a, (r1,))
    spam = say("mallory spams", MALLORY, "Buy cheap seeds!!!", t, h.heads(t))
    moderate("mallory hides carol's: not-moderator", MALLORY, ModAction.HIDE, c, (spam,))
    add = moderate("owner appoints bob", OWNER, ModAction.ADD_MODERATOR, t, (spam,), subject=BOB)
    moderate("bob hides the spam", BOB, ModAction.HIDE, spam, (add,), reason="spam")
    moderate("carol hides the spam: not-moderator", CAROL, ModAction.HIDE, spam, (add,))
    moderate(
        "bob appoints carol: not-owner", BOB, ModAction.ADD_MODERATOR, t, (add,), subject=CAROL
    )
    hide_c = moderate("bob hides carol's comment", BOB, ModAction.HIDE, c, (add,))
    tomb = say("carol comments, then regrets", CAROL, "Hmm, actually…", t, (add,))
    reply_to_tomb = say("alice replies to it", ALICE, "Go on?", tomb, (tomb,))
    h.add(
        "carol retracts: the reply stays attached",
        CAROL,
        RetractPayload(),
        thread=t,
        ref=tomb,
        seen=(reply_to_tomb,),
    )
    h.add(
        "bob retracts carol's: not-author",
        BOB,
        RetractPayload(),
        thread=t,
        ref=c,
        seen=(reply_to_tomb,),
    )
    before_close = h.heads(t)
    close = moderate("owner closes", OWNER, ModAction.CLOSE, t, before_close, reason="season over")
    say(
        "mallory comments after the close, forging an early timestamp",
        MALLORY,
        "I was here first!",
        t,
        (close,),
        ts=T0 + 1,
    )
    say(
        "bob comments concurrently with the close; the reopen does not see it",
        BOB,
        "Late thought",
        t,
        before_close,
    )
    edit("alice edits after the close: suppressed", ALICE, "Edited while closed", a, (close,))
    react("carol reacts after the close: suppressed", CAROL, "🥀", a, (close,))
    reopen = moderate("bob (a moderator) reopens", BOB, ModAction.REOPEN, t, (close,))
    say("carol comments after the reopen", CAROL, "Spring again!", t, (reopen,))
    moderate("owner removes bob", OWNER, ModAction.REMOVE_MODERATOR, t, (reopen,), subject=BOB)
    moderate(
        "bob unhides carol's, concurrently with his removal: valid",
        BOB,
        ModAction.UNHIDE,
        c,
        (reopen, hide_c),
    )
    return (
        "gardens",
        "Comments, replies, edits (last writer wins, an older concurrent edit, one by a "
        "non-author), reactions (last writer wins per author, a withdrawal), moderation (appoint, "
        "hide, non-moderators' hides, a remove concurrent with an unhide), a retraction with a "
        "reply, close and reopen (a forged early timestamp after the close, a comment concurrent "
        "with it), and profiles.",
        h,
    )


def closed_history() -> tuple[str, str, History]:
    h = History()
    t = h.add("thread with url only", OWNER, ThreadPayload(title="", url="https://例え.jp/記事"))
    a = h.add(
        "alice comments", ALICE, CommentPayload(body="最初のコメント"), thread=t, ref=t, seen=(t,)
    )
    h.add(
        "owner hides it", OWNER, ModeratePayload(action=ModAction.HIDE), thread=t, ref=a, seen=(a,)
    )
    close = h.add(
        "owner closes", OWNER, ModeratePayload(action=ModAction.CLOSE), thread=t, ref=t, seen=(a,)
    )
    h.add(
        "owner unhides it while closed",
        OWNER,
        ModeratePayload(action=ModAction.UNHIDE),
        thread=t,
        ref=a,
        seen=(close,),
    )
    h.add(
        "bob replies after the close",
        BOB,
        CommentPayload(body="返信"),
        thread=t,
        ref=a,
        seen=(close,),
    )
    h.add(
        "bob reacts after the close",
        BOB,
        ReactPayload(reaction="+1"),
        thread=t,
        ref=a,
        seen=(close,),
    )
    return (
        "closed",
        "A url-only thread that ends closed: what came after the close is kept but suppressed.",
        h,
    )


def history_json(name: str, description: str, history: History) -> dict[str, Any]:
    ops = [s.op for s in history.steps]
    replica = Replica()
    outcomes = []
    for step in history.steps:
        outcome = replica.apply(step.op).outcome
        outcomes.append(
            {
                "label": step.label,
                "signer": step.signer.name,
                "id": step.op.id.hex(),
                **outcome_json(outcome),
            }
        )
    thread_id = ops[0].id
    view = replica.view(thread_id)
    preimage = digest_preimage(view)
    orders = []
    for seed in (1, 2, 3):
        order = list(range(len(ops)))
        random.Random(seed).shuffle(order)
        orders.append(order)
    orders.append(list(reversed(range(len(ops)))))
    for order in orders:
        other = Replica()
        other.merge(ops[i] for i in order)
        if other.view(thread_id).digest() != view.digest() or other.pending:
            raise AssertionError(f"history {name}: order {order} gives another view")
        for index, entry in enumerate(outcomes):
            op_id = ops[index].id
            applied = op_id in other
            if applied != (entry["outcome"] == "applied"):
                raise AssertionError(f"history {name}: {entry['label']} decided differently")
    return {
        "name": name,
        "description": description,
        "thread_id": thread_id.hex(),
        "operations": [op.encoded.hex() for op in ops],
        "outcomes": outcomes,
        "view": view_json(view),
        "view_digest_preimage": preimage.hex(),
        "view_digest": view.digest().hex(),
        "shuffled_orders": [
            {"order": order, "view_digest": view.digest().hex()} for order in orders
        ],
    }


def thread_views() -> dict[str, Any]:
    return {
        "description": (
            "Thread histories (SPEC §5-§6). Apply `operations` (hex) in the order given: each "
            "MUST have the listed outcome, and the view MUST be `view` with digest `view_digest` "
            "(SHA-256 of `view_digest_preimage`). Applying them in any of `shuffled_orders` "
            "(indices into `operations`; operations whose parents are missing wait) MUST give the "
            "same digest. Display names come from the profile operations in the history."
        ),
        "signers": [s.describe() for s in SIGNERS],
        "histories": [history_json(*main_history()), history_json(*closed_history())],
    }


# -- text forms ----------------------------------------------------------------------------------


def text_forms() -> dict[str, Any]:
    raws = [
        bytes(32),
        bytes(range(32)),
        OWNER.public,
        hashlib.sha256(b"p2pcomments vector: an id").digest(),
    ]
    valid = []
    for raw in raws:
        forms = {kind.value: format_id(kind, raw) for kind in TextKind}
        for form in forms.values():
            if parse_id(form) != raw:
                raise AssertionError(form)
        valid.append({"bytes": raw.hex(), "forms": forms})
    sample = format_id(TextKind.COMMENT, raws[1])
    body = sample.partition("_")[2]
    wrong_char = sample[:10] + ("a" if sample[10] != "a" else "b") + sample[11:]
    swapped = sample[:10] + sample[11] + sample[10] + sample[12:]
    invalid = [
        ("wrong character", wrong_char),
        ("two characters swapped", swapped),
        ("missing character", sample[:-1]),
        ("extra character", sample + "a"),
        ("unknown prefix", f"cmd_{body}"),
        ("no prefix", body),
        ("digit 1 is not in the alphabet", sample[:12] + "1" + sample[13:]),
        ("63 hex digits", raws[1].hex()[:-1]),
    ]
    for label, text in invalid:
        try:
            parse_id(text)
        except TextFormError:
            continue
        raise AssertionError(f"text form {label!r} parsed")
    return {
        "description": (
            "Text forms (SPEC §7): `<prefix>_` + lowercase base32 (no padding) of the 32 bytes "
            "and the first 3 bytes of their SHA-256. Each `forms` entry MUST parse to `bytes`; 64 "
            "hex digits MUST parse too; every `invalid` string MUST be refused."
        ),
        "valid": valid,
        "hex_accepted": [{"text": raw.hex(), "bytes": raw.hex()} for raw in raws[1:2]],
        "invalid": [{"label": label, "text": text} for label, text in invalid],
    }


# -- files ---------------------------------------------------------------------------------------


def build() -> dict[str, str]:
    """File name → content, exactly as written to protocol/vectors/."""
    documents = {
        "operations.json": valid_operations(),
        "invalid_operations.json": invalid_operations(),
        "thread_views.json": thread_views(),
        "text_forms.json": text_forms(),
    }
    return {
        name: json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        for name, doc in documents.items()
    }


def check(files: dict[str, str]) -> int:
    problems = 0
    for name, expected in files.items():
        path = VECTORS / name
        if not path.exists():
            print(f"{name}: missing (run scripts/gen_vectors.py)")
            problems += 1
            continue
        actual = path.read_text(encoding="utf-8")
        if actual == expected:
            print(f"{name}: ok")
            continue
        problems += 1
        diff = list(
            difflib.unified_diff(
                actual.splitlines(),
                expected.splitlines(),
                f"{name} (on disk)",
                f"{name} (generated)",
                lineterm="",
                n=1,
            )
        )
        changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
        print(f"{name}: differs ({changed} changed lines); first differences:")
        for line in diff[:24]:
            print(f"    {line[:160]}")
    if problems:
        print(
            f"{problems} vector file(s) out of date: run scripts/gen_vectors.py and review the diff"
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the files on disk; exit 1 on a difference",
    )
    args = parser.parse_args(argv)
    files = build()
    if args.check:
        return check(files)
    VECTORS.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (VECTORS / name).write_text(content, encoding="utf-8")
        print(f"wrote {VECTORS.relative_to(ROOT) / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
