#!/usr/bin/env python3
"""Generate the rule vectors in protocol/vectors/: the rules of SPEC §5-§7 that a reader of the SPEC
could otherwise guess wrong, each pinned by inputs a wrong reading gets wrong.

    scripts/gen_rule_vectors.py           write the files
    scripts/gen_rule_vectors.py --check   regenerate in memory and compare with the files on disk;
                                          exit 1 with a summary of the differences

Files written (the other vector files belong to gen_vectors.py, gen_sync_vectors.py and
gen_reconcile_vectors.py):

- rejection_order.json   inputs that break several rules at once, or sit on a boundary between
                         two reasons (blank vs control, oversize vs bad-field, malformed vs
                         bad-field for maps, floats, booleans, extension types, negative ints,
                         wrong-type version and kind, invalid UTF-8, nesting): the reason a
                         decoder MUST report (SPEC §5.1), or that it MUST accept the input
- signature_rules.json   Ed25519 edge cases (SPEC §5.2): small-order and mixed-order keys,
                         non-canonical S, R and A; what libsodium (the rule) decides, and what RFC
                         8032 cofactored verification and ZIP-215 would decide instead
- causal_rules.json      small histories for the rules that need other operations (SPEC §5.3 and
                         §6): wrong-thread, references of the wrong kind in context, operations
                         depending on rejected or missing ones (pending outcomes), moderators,
                         close and reopen, edit history, reactions, parent_edited_after
- text_form_rules.json   text forms (SPEC §7): the prefix of each kind, case, white space, the
                         expected kind, hex

Everything is deterministic (fixed seeds and timestamps, deterministic signatures) and every
expectation is first checked against our own implementation.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import random
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, str(path))

import ed25519_math as ed  # noqa: E402
from gen_vectors import (  # noqa: E402
    ALICE,
    BOB,
    CAROL,
    MALLORY,
    OWNER,
    SIGNERS,
    T0,
    VECTORS,
    Raw,
    Signer,
    Wide,
    digest_preimage,
    encode,
    sign_fields,
    view_json,
)

from p2pcomments.core.ops import (  # noqa: E402
    MAX_BODY_BYTES,
    MAX_OPERATION_BYTES,
    OP_SIGNING_DOMAIN,
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
from p2pcomments.core.replica import Applied, Duplicate, Pending, Rejected, Replica  # noqa: E402
from p2pcomments.core.textform import TextKind, format_id, parse_id  # noqa: E402
from p2pcomments.errors import InvalidOperation, TextFormError  # noqa: E402

# -- rejection order (SPEC §5.1) ----------------------------------------------------------------

THREAD_ID = hashlib.sha256(b"p2pcomments rule vector: a thread").digest()
COMMENT_ID = hashlib.sha256(b"p2pcomments rule vector: a comment").digest()
DEP_ID = hashlib.sha256(b"p2pcomments rule vector: a dep").digest()
BAD_SIGNATURE = bytes(range(64))  # 64 bytes that are no one's signature of anything here


def fields(**replace: object) -> tuple[object, ...]:
    """The unsigned fields of a comment by alice, with some replaced."""
    base: dict[str, object] = {
        "version": 1,
        "kind": int(Kind.COMMENT),
        "author": ALICE.public,
        "thread": THREAD_ID,
        "refs": (COMMENT_ID,),
        "deps": (DEP_ID,),
        "timestamp_ms": T0,
        "payload": ("hello",),
    }
    unknown = set(replace) - set(base)
    if unknown:
        raise KeyError(unknown)
    base.update(replace)
    return tuple(base.values())


def signed(signature: bytes | None = None, **replace: object) -> bytes:
    """Alice's operation with these fields, signed as an honest author would (or carrying
    ``signature``), so that only the rules under test are broken."""
    unsigned = fields(**replace)
    if signature is not None:
        return encode((*unsigned, signature))
    return sign_fields(ALICE, unsigned)


def standalone(kind: Kind, payload: tuple[object, ...], **replace: object) -> bytes:
    base: dict[str, object] = {"kind": int(kind), "thread": None, "refs": (), "deps": ()}
    return signed(payload=payload, **{**base, **replace})


def moderate(action: int | object, subject: object, reason: object, **replace: object) -> bytes:
    at = {"refs": (THREAD_ID,)} if action in (3, 4, 5, 6) else {}
    return signed(kind=int(Kind.MODERATE), payload=(action, subject, reason), **{**at, **replace})


def nested(depth: int) -> Raw:
    """``depth`` arrays of one element, one inside the other, around 0."""
    return Raw(b"\x91" * depth + b"\x00")


def _map(entries: dict[object, object]) -> Raw:
    return Raw(bytes(msgpack.packb(entries, use_bin_type=True)))


def _deps(count: int) -> tuple[bytes, ...]:
    return tuple(sorted(hashlib.sha256(bytes([i])).digest() for i in range(count)))


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    reason: str | None  # None: the input MUST be accepted
    breaks: str  # what it breaks, in SPEC §5.1 step order; what a wrong reading answers
    data: bytes


def rejection_cases() -> list[Case]:
    wide_ts = Raw(b"\xcf" + (1000).to_bytes(8, "big"))  # 1000 as uint64, not uint16
    ascii_only = "x" * (MAX_BODY_BYTES + 1)
    return [
        # step 1: size, before anything is parsed
        Case(
            "oversize-not-msgpack",
            "oversize",
            "over 40,960 bytes (step 1) and not msgpack at all (0xc1, step 2)",
            b"\xc1" * (MAX_OPERATION_BYTES + 1),
        ),
        # step 2: parsing; what makes msgpack not well formed
        Case(
            "utf8-invalid-in-version",
            "malformed",
            "invalid UTF-8 (0xff) in a str where the version should be: parsing (step 2) fails "
            "before the version is looked at (step 4), so not unknown-version",
            signed(version=Raw(b"\xa1\xff")),
        ),
        Case(
            "utf8-invalid-in-body",
            "malformed",
            "a body that is not UTF-8 (0xff 0xfe): malformed, not bad-text",
            signed(payload=(Raw(b"\xa2\xff\xfe"),)),
        ),
        Case(
            "utf8-surrogate-in-body",
            "malformed",
            "a body holding the UTF-8 bytes of a surrogate (ED A0 80), which UTF-8 forbids: "
            "malformed, not bad-text",
            signed(payload=(Raw(b"\xa3\xed\xa0\x80"),)),
        ),
        Case(
            "utf8-overlong-in-body",
            "malformed",
            "an overlong UTF-8 form of '/' (C0 AF): malformed, not non-canonical",
            signed(payload=(Raw(b"\xa2\xc0\xaf"),)),
        ),
        Case(
            "utf8-invalid-in-signature-position",
            "malformed",
            "invalid UTF-8 in a str where the signature should be: parsing fails before the "
            "signature's type is checked (step 3)",
            encode((*fields(), Raw(b"\xa1\xff"))),
        ),
        Case(
            "timestamp-ext-wrong-length",
            "malformed",
            "an extension of type -1 (msgpack's timestamp) with 1 byte of data, which is no "
            "timestamp format: not well-formed msgpack, so malformed rather than bad-field",
            signed(timestamp_ms=Raw(b"\xd4\xff\x00")),
        ),
        Case(
            "timestamp-ext-bad-nanoseconds",
            "malformed",
            "a 64-bit msgpack timestamp with nanoseconds over 999,999,999: not well formed",
            signed(timestamp_ms=Raw(b"\xd7\xff" + b"\xff" * 8)),
        ),
        Case(
            "ext-reserved-type-in-body",
            "malformed",
            "a body that is an extension of type -2: msgpack reserves the negative types, and -2 "
            "is none it defines, so not well formed (an extension of type 1 is bad-field)",
            signed(payload=(Raw(b"\xd4\xfe\x00"),)),
        ),
        Case(
            "ext-reserved-type-in-version",
            "malformed",
            "the same where the version goes: parsing fails before the version is looked at",
            signed(version=Raw(b"\xd4\x80\x00")),
        ),
        Case(
            "nesting-1024",
            "bad-field",
            "a body that is an array nested 1,022 deep: with the operation's array and the "
            "payload's, 1,024 levels, which parse; the body is then of the wrong type",
            signed(payload=(nested(1022),)),
        ),
        Case(
            "nesting-1025",
            "malformed",
            "the same nested 1,023 deep: 1,025 levels of arrays are more than a decoder parses",
            signed(payload=(nested(1023),)),
        ),
        Case(
            "nesting-1024-empty-innermost",
            "bad-field",
            "1,021 arrays around an empty array as the body: 1,024 levels, the empty one counted",
            signed(payload=(Raw(b"\x91" * 1021 + b"\x90"),)),
        ),
        Case(
            "nesting-1025-empty-innermost",
            "malformed",
            "1,022 arrays around an empty array: 1,025 levels (an empty array counts as a level)",
            signed(payload=(Raw(b"\x91" * 1022 + b"\x90"),)),
        ),
        Case(
            "nesting-1025-maps",
            "malformed",
            "maps count as levels too: 1,023 maps, each the value of a nil key, as the body",
            signed(payload=(Raw(b"\x81\xc0" * 1023 + b"\x00"),)),
        ),
        Case(
            "top-level-map-of-nine",
            "malformed",
            "a map of 9 entries, not an array of 9 (step 3)",
            bytes(msgpack.packb({i: i for i in range(9)})),
        ),
        Case(
            "top-level-ext",
            "malformed",
            "an extension value with 9 bytes of data: not an array",
            b"\xc7\x09\x01" + b"\x00" * 9,
        ),
        # step 3: the array and the signature's shape, before the version
        Case(
            "signature-63-bytes-and-version-2",
            "bad-field",
            "a 63-byte signature and version 2: the signature's shape (step 3) comes before the "
            "version (step 4)",
            encode((*fields(version=2), b"\x00" * 63)),
        ),
        Case(
            "signature-as-str",
            "bad-field",
            "the signature as a str of 64 characters: the wrong type (step 3)",
            encode((*fields(), "s" * 64)),
        ),
        Case(
            "signature-as-bin16",
            "non-canonical",
            "a right signature in a bin 16: the right type and length (step 3), the wrong "
            "encoding (step 9), before the signature is verified (step 10)",
            b"\x99"
            + encode(fields())[1:]
            + b"\xc5\x00\x40"
            + ALICE.key.sign(
                OP_SIGNING_DOMAIN + hashlib.sha256(encode(fields())).digest()
            ).signature,
        ),
        # step 4-5: version, then kind; any value other than the integer is unknown
        Case(
            "version-2-and-kind-9",
            "unknown-version",
            "version 2 and kind 9: the version is checked before the kind",
            signed(version=2, kind=9),
        ),
        Case(
            "version-2-as-uint64",
            "unknown-version",
            "version 2 encoded as uint64: the version (step 4) is checked before the encoding "
            "(step 9), so unknown-version, not non-canonical",
            signed(version=Wide(2)),
        ),
        Case(
            "version-true",
            "unknown-version",
            "version true: a boolean is not 1",
            signed(version=True),
        ),
        Case(
            "version-float-1",
            "unknown-version",
            "version 1.0 as a float 64: not the integer 1",
            signed(version=1.0),
        ),
        Case(
            "version-float32-1",
            "unknown-version",
            "version 1.0 as a float 32",
            signed(version=Raw(b"\xca" + struct.pack(">f", 1.0))),
        ),
        Case("version-str", "unknown-version", 'version "1"', signed(version="1")),
        Case("version-nil", "unknown-version", "version nil", signed(version=None)),
        Case("version-negative", "unknown-version", "version -1", signed(version=-1)),
        Case("version-bin", "unknown-version", "version as bin 0x01", signed(version=b"\x01")),
        Case("version-array", "unknown-version", "version [1]", signed(version=(1,))),
        Case("version-map", "unknown-version", "version {1: 1}", signed(version=_map({1: 1}))),
        Case(
            "version-ext",
            "unknown-version",
            "version as an extension value (type 1, 1 byte 0x01)",
            signed(version=Raw(b"\xd4\x01\x01")),
        ),
        Case(
            "version-int8-1",
            "non-canonical",
            "version 1 as int8 (0xd0 0x01): the integer 1, so the version is known (step 4); "
            "the encoding is not the shortest (step 9)",
            signed(version=Raw(b"\xd0\x01")),
        ),
        Case(
            "kind-9-and-author-31-bytes",
            "unknown-kind",
            "kind 9 and a 31-byte author: the kind (step 5) before the fields (step 6)",
            signed(kind=9, author=ALICE.public[:31]),
        ),
        Case(
            "kind-8-as-uint8",
            "unknown-kind",
            "kind 8 as uint8: the kind before the encoding",
            signed(kind=Raw(b"\xcc\x08")),
        ),
        Case(
            "kind-true",
            "unknown-kind",
            "kind true: a decoder that reads booleans as integers would see kind 1, a thread",
            signed(kind=True, thread=None, refs=(), deps=(), payload=("t", None, None)),
        ),
        Case("kind-float-2", "unknown-kind", "kind 2.0 as a float", signed(kind=2.0)),
        Case("kind-negative", "unknown-kind", "kind -2", signed(kind=-2)),
        Case("kind-str", "unknown-kind", 'kind "2"', signed(kind="2")),
        Case(
            "kind-int8-2",
            "non-canonical",
            "kind 2 as int8 (0xd0 0x02): a known kind in the wrong encoding",
            signed(kind=Raw(b"\xd0\x02")),
        ),
        # step 6: the other fields of the envelope, before the payload and the encoding
        Case(
            "author-31-bytes-and-body-oversize",
            "bad-field",
            "a 31-byte author and a body over 32,768 bytes: the envelope (step 6) before the "
            "payload (step 7)",
            signed(author=ALICE.public[:31], payload=(ascii_only,)),
        ),
        Case(
            "author-31-bytes-and-wide-timestamp",
            "bad-field",
            "a 31-byte author and the timestamp as uint64: fields (step 6) before the encoding "
            "(step 9)",
            signed(author=ALICE.public[:31], timestamp_ms=wide_ts),
        ),
        Case("author-nil", "bad-field", "author nil", signed(author=None)),
        Case(
            "author-as-str",
            "bad-field",
            "the author key as a 32-character str",
            signed(author="a" * 32),
        ),
        Case("timestamp-true", "bad-field", "timestamp true", signed(timestamp_ms=True)),
        Case(
            "timestamp-false",
            "bad-field",
            "timestamp false (a 0 to some decoders)",
            signed(timestamp_ms=False),
        ),
        Case(
            "timestamp-float32",
            "bad-field",
            "timestamp 1000.0 as a float 32",
            signed(timestamp_ms=Raw(b"\xca" + struct.pack(">f", 1000.0))),
        ),
        Case(
            "timestamp-negative-fixint",
            "bad-field",
            "timestamp -1 as a negative fixint (0xff)",
            signed(timestamp_ms=Raw(b"\xff")),
        ),
        Case(
            "timestamp-ext-valid",
            "bad-field",
            "timestamp as a well-formed msgpack timestamp extension (type -1, 4 bytes): a value "
            "of the wrong type",
            signed(timestamp_ms=Raw(b"\xd6\xff" + (1_767_225_600).to_bytes(4, "big"))),
        ),
        Case(
            "timestamp-int8-positive",
            "non-canonical",
            "timestamp 5 as int8: the right value (step 6) in the wrong encoding (step 9)",
            signed(timestamp_ms=Raw(b"\xd0\x05")),
        ),
        Case("refs-map", "bad-field", "refs as an empty map", signed(refs=_map({}))),
        Case("refs-nil", "bad-field", "refs nil", signed(refs=None)),
        Case(
            "dep-31-bytes-and-17-deps",
            "bad-field",
            "17 deps of which one has 31 bytes: each dep's length is checked before their count",
            signed(deps=(*_deps(16), DEP_ID[:31])),
        ),
        Case(
            "thread-with-refs",
            "bad-field",
            "a thread operation with a ref",
            standalone(Kind.THREAD, ("t", None, None), refs=(COMMENT_ID,)),
        ),
        Case(
            "two-refs-and-17-deps",
            "bad-field",
            "two refs and 17 deps: the number of refs before the number of deps",
            signed(refs=(COMMENT_ID, DEP_ID), deps=_deps(17)),
        ),
        Case(
            "17-deps-unsorted",
            "oversize",
            "17 deps in descending order: their number (oversize) before their order (bad-field)",
            signed(deps=tuple(reversed(_deps(17)))),
        ),
        Case(
            "17-deps-and-bad-text",
            "oversize",
            "17 deps and a NUL in the body: the envelope before the payload",
            signed(deps=_deps(17), payload=("a\x00",)),
        ),
        Case(
            "wide-thread-and-17-deps",
            "oversize",
            "the thread id as bin 16 and 17 deps: fields before the encoding",
            signed(thread=Wide(THREAD_ID), deps=_deps(17)),
        ),
        # step 7: the payload, field by field; within a text: type, size, blank, characters, NFC
        Case(
            "payload-map-int-keys",
            "bad-field",
            "the payload as a map with integer keys: a value of the wrong type, whatever its keys",
            signed(payload=_map({1: "hello"})),
        ),
        Case(
            "payload-map-str-keys",
            "bad-field",
            "the payload as a map with a str key",
            signed(payload=_map({"body": "hello"})),
        ),
        Case(
            "body-map-with-map-key",
            "bad-field",
            "the body as a map whose key is a map",
            signed(payload=(Raw(b"\x81\x81\x01\x02\x03"),)),
        ),
        Case("body-nil", "bad-field", "body nil", signed(payload=(None,))),
        Case("body-true", "bad-field", "body true", signed(payload=(True,))),
        Case("body-int", "bad-field", "body 5", signed(payload=(5,))),
        Case(
            "body-ext",
            "bad-field",
            "the body as an extension value (type 1)",
            signed(payload=(Raw(b"\xd4\x01\x00"),)),
        ),
        Case(
            "body-bin-oversize",
            "bad-field",
            "a 32,769-byte body as bin: the type before the size",
            signed(payload=(b"x" * (MAX_BODY_BYTES + 1),)),
        ),
        Case(
            "body-oversize-blank",
            "oversize",
            "a body of 32,769 spaces: the size before blankness",
            signed(payload=(" " * (MAX_BODY_BYTES + 1),)),
        ),
        Case(
            "name-oversize-blank",
            "oversize",
            "a profile name of 22 ideographic spaces (66 bytes): the size before blankness",
            standalone(Kind.PROFILE, ("\u3000" * 22,)),
        ),
        Case(
            "reaction-oversize-with-space",
            "oversize",
            "a 33-byte reaction with a leading space: the size before the white space rule",
            signed(kind=int(Kind.REACT), payload=(" " + "r" * 32,)),
        ),
        Case(
            "body-unit-separator",
            "bad-field",
            "a body of U+001F alone: U+001F is white space, so the body is blank (bad-field) "
            "before it is a control character (bad-text)",
            signed(payload=("\x1f",)),
        ),
        Case(
            "body-unit-separator-in-text",
            "bad-text",
            "U+001F after a letter: not blank, so the control character counts",
            signed(payload=("a\x1f",)),
        ),
        Case(
            "body-cr-alone",
            "bad-field",
            "a body of CR alone: blank (CR is white space) before bad-text",
            signed(payload=("\r",)),
        ),
        Case(
            "body-next-line-alone",
            "bad-field",
            "a body of U+0085 (NEXT LINE, a C1 control and white space) alone: blank",
            signed(payload=("\x85",)),
        ),
        Case(
            "body-no-break-space",
            "bad-field",
            "a body of U+00A0 NO-BREAK SPACE: white space, so blank",
            signed(payload=("\u00a0",)),
        ),
        Case(
            "body-ideographic-space",
            "bad-field",
            "a body of U+3000 IDEOGRAPHIC SPACE and U+2028 LINE SEPARATOR: blank",
            signed(payload=("\u3000\u2028",)),
        ),
        Case(
            "body-zero-width-space",
            None,
            "a body of U+200B ZERO WIDTH SPACE: not white space (it is a format character), so "
            "not blank, and not a control character: accepted",
            signed(payload=("\u200b",)),
        ),
        Case(
            "name-mongolian-vowel-separator",
            None,
            "a profile name of U+180E: white space before Unicode 6.3, not since: accepted",
            standalone(Kind.PROFILE, ("\u180e",)),
        ),
        Case(
            "body-line-separator-in-text",
            None,
            "U+2028 LINE SEPARATOR inside a body: white space, but not a control character",
            signed(payload=("a\u2028b",)),
        ),
        Case(
            "body-noncharacter",
            None,
            "U+FFFF (a noncharacter) in a body: no rule refuses it",
            signed(payload=("a\uffff",)),
        ),
        Case(
            "body-control-before-nfc",
            "bad-text",
            "a NUL and a decomposed e-acute: both bad-text",
            signed(payload=("e\u0301\x00",)),
        ),
        Case(
            "body-angstrom-sign",
            "bad-text",
            "U+212B ANGSTROM SIGN, which NFC maps to U+00C5: not NFC",
            signed(payload=("\u212b",)),
        ),
        Case(
            "title-blank-without-url",
            "bad-field",
            "a title of spaces and no url: a blank title counts as none",
            standalone(Kind.THREAD, ("  ", None, None)),
        ),
        Case(
            "title-blank-with-url",
            None,
            "a title of spaces with a url: accepted (a title may be blank when there is a url)",
            standalone(Kind.THREAD, ("  ", "https://blog.example/p", None)),
        ),
        Case(
            "title-next-line-without-url",
            "bad-text",
            "a title of U+0085 and no url: the title's characters are checked (bad-text) before "
            "the title-or-url rule (bad-field)",
            standalone(Kind.THREAD, ("\x85", None, None)),
        ),
        Case(
            "title-oversize-and-url-blank",
            "oversize",
            "a 513-byte title and a blank url: the fields of a payload in order, title first",
            standalone(Kind.THREAD, ("t" * 513, " ", None)),
        ),
        Case(
            "url-blank-and-site-oversize",
            "bad-field",
            "a blank url and a 254-byte site: url before site",
            standalone(Kind.THREAD, ("t", " ", "s" * 254)),
        ),
        Case(
            "site-empty",
            "bad-field",
            "an empty site: nil means none, the empty text is refused",
            standalone(Kind.THREAD, ("t", None, "")),
        ),
        Case(
            "site-no-break-space",
            "bad-field",
            "a site of U+00A0: blank",
            standalone(Kind.THREAD, ("t", None, "\u00a0")),
        ),
        Case(
            "reaction-no-break-space",
            "bad-text",
            "a reaction starting with U+00A0: surrounding white space",
            signed(kind=int(Kind.REACT), payload=("\u00a0+1",)),
        ),
        Case(
            "reaction-ideographic-space",
            "bad-text",
            "a reaction of U+3000 alone: white space around nothing is surrounding white space",
            signed(kind=int(Kind.REACT), payload=("\u3000",)),
        ),
        Case(
            "reaction-zero-width-space",
            None,
            "a reaction ending in U+200B: not white space, accepted",
            signed(kind=int(Kind.REACT), payload=("+1\u200b",)),
        ),
        Case(
            "reaction-tab",
            "bad-text",
            "a reaction with a TAB inside: a control character (TAB is allowed only in body and "
            "reason)",
            signed(kind=int(Kind.REACT), payload=("a\tb",)),
        ),
        Case(
            "reason-blank",
            None,
            "a hide whose reason is spaces and a LF: a reason may be empty or blank",
            moderate(int(ModAction.HIDE), None, "  \n"),
        ),
        Case(
            "reason-cr",
            "bad-text",
            "a reason holding CR",
            moderate(int(ModAction.HIDE), None, "spam\r"),
        ),
        Case(
            "action-true",
            "bad-field",
            "moderation action true: a decoder that reads booleans as integers would see hide",
            moderate(True, None, ""),
        ),
        Case("action-float", "bad-field", "moderation action 1.0", moderate(1.0, None, "")),
        Case("action-negative", "bad-field", "moderation action -1", moderate(-1, None, "")),
        Case(
            "action-unknown-and-subject",
            "bad-field",
            "moderation action 99 with a subject: the action is checked first",
            moderate(99, BOB.public, ""),
        ),
        Case(
            "subject-31-bytes-and-reason-nul",
            "bad-field",
            "an add-moderator with a 31-byte key and a NUL in the reason: subject before reason",
            moderate(int(ModAction.ADD_MODERATOR), BOB.public[:31], "\x00"),
        ),
        # step 8: references decidable from the operation alone, after the payload
        Case(
            "edit-of-thread-blank-body",
            "bad-field",
            "an edit of the thread itself with a blank body: the payload (step 7) before the "
            "reference (step 8)",
            signed(kind=int(Kind.EDIT), refs=(THREAD_ID,), payload=(" ",)),
        ),
        Case(
            "close-at-comment-reason-nul",
            "bad-text",
            "a close at a comment, its reason holding a NUL: the payload before the reference",
            signed(kind=int(Kind.MODERATE), payload=(int(ModAction.CLOSE), None, "\x00")),
        ),
        Case(
            "edit-of-thread-wide-timestamp",
            "bad-reference",
            "an edit of the thread with the timestamp as uint64: the reference (step 8) before "
            "the encoding (step 9)",
            signed(kind=int(Kind.EDIT), refs=(THREAD_ID,), timestamp_ms=wide_ts),
        ),
        Case(
            "edit-of-thread-bad-signature",
            "bad-reference",
            "an edit of the thread with a wrong signature: the reference before the signature",
            signed(BAD_SIGNATURE, kind=int(Kind.EDIT), refs=(THREAD_ID,)),
        ),
        Case(
            "retract-of-thread",
            "bad-reference",
            "a retract whose refs[0] is its thread",
            signed(kind=int(Kind.RETRACT), refs=(THREAD_ID,), payload=()),
        ),
        Case(
            "add-moderator-at-comment",
            "bad-reference",
            "an add-moderator whose refs[0] is a comment",
            moderate(int(ModAction.ADD_MODERATOR), BOB.public, "", refs=(COMMENT_ID,)),
        ),
        Case(
            "comment-of-thread",
            None,
            "a comment whose refs[0] is its thread (a top-level comment); deps may be empty",
            signed(refs=(THREAD_ID,), deps=()),
        ),
        Case(
            "deps-repeat-ref",
            None,
            "deps holding refs[0] again: allowed (refs and deps are separate lists)",
            signed(deps=tuple(sorted((COMMENT_ID, DEP_ID)))),
        ),
        Case(
            "deps-hold-thread",
            None,
            "deps holding the thread id (the thread operation belongs to its thread)",
            signed(deps=(THREAD_ID,)),
        ),
        # step 9: the encoding, before the signature
        Case(
            "wide-timestamp-bad-signature",
            "non-canonical",
            "the timestamp as uint64 and a wrong signature: the encoding before the signature",
            signed(BAD_SIGNATURE, timestamp_ms=wide_ts),
        ),
        Case(
            "wide-timestamp-body-nul",
            "bad-text",
            "the timestamp as uint64 and a NUL in the body: the payload before the encoding",
            signed(timestamp_ms=wide_ts, payload=("a\x00",)),
        ),
        Case(
            "wide-array-17-deps",
            "oversize",
            "17 deps in an array 16 (not the shortest header): their number before the encoding",
            signed(deps=Wide(_deps(17))),
        ),
        # step 10: the signature last
        Case(
            "body-nul-bad-signature",
            "bad-text",
            "a NUL in the body and a wrong signature: bad-text, not bad-signature",
            signed(BAD_SIGNATURE, payload=("a\x00",)),
        ),
        Case(
            "unsigned-but-valid",
            "bad-signature",
            "everything right but the signature",
            signed(BAD_SIGNATURE),
        ),
    ]


def decode_outcome(data: bytes) -> str | None:
    try:
        decode_operation(data)
    except InvalidOperation as error:
        return error.reason
    return None


def rejection_order() -> dict[str, Any]:
    vectors = []
    names: set[str] = set()
    for case in rejection_cases():
        if case.name in names:
            raise AssertionError(f"duplicate vector name {case.name}")
        names.add(case.name)
        got = decode_outcome(case.data)
        if got != case.reason:
            raise AssertionError(f"{case.name}: expected {case.reason}, our decoder says {got}")
        entry: dict[str, Any] = {
            "name": case.name,
            "reason": case.reason,
            "breaks": case.breaks,
            "size": len(case.data),
        }
        if len(case.data) > MAX_OPERATION_BYTES:
            pattern = case.data[:1]
            if case.data != pattern * len(case.data):
                raise AssertionError(f"{case.name}: only repeated bytes may be abbreviated")
            entry["encoded_pattern"] = f"{len(case.data)} bytes {pattern.hex()}"
            entry["encoded_sha256"] = hashlib.sha256(case.data).hexdigest()
        else:
            entry["encoded"] = case.data.hex()
        vectors.append(entry)
    return {
        "description": (
            "Inputs on the boundaries between rejection reasons, and inputs that break several "
            "rules (SPEC §5.1). Decoding `encoded` MUST fail with `reason`, or succeed when "
            "`reason` is null. `breaks` says what each breaks, in the order of SPEC §5.1's "
            "steps; the first broken step gives the reason. Encodings over the size limit are "
            "given by `encoded_pattern` (one byte repeated) and `encoded_sha256`. Signed by alice "
            "of operations.json."
        ),
        "signer": ALICE.describe(),
        "vectors": vectors,
    }


# -- signatures (SPEC §5.2) ---------------------------------------------------------------------


def _scalar(label: str) -> int:
    return (
        int.from_bytes(
            hashlib.sha512(f"p2pcomments rule vector: {label}".encode()).digest(), "little"
        )
        % ed.L
    )


def _profile_fields(author: bytes, index: int) -> tuple[object, ...]:
    return (1, int(Kind.PROFILE), author, None, (), (), T0 + index, ("edge case",))


def _message(unsigned: tuple[object, ...]) -> bytes:
    return OP_SIGNING_DOMAIN + hashlib.sha256(encode(unsigned)).digest()


def _nonce_where(
    label: str, a_bytes: bytes, message: bytes, wanted: Any, r_bytes: bytes | None = None
) -> tuple[int, bytes, int]:
    """The first nonce r (from a fixed sequence) whose challenge h satisfies ``wanted(h)``."""
    for attempt in range(1000):
        r = _scalar(f"{label} nonce {attempt}")
        rb = r_bytes if r_bytes is not None else ed.encode(ed.mul(r, ed.BASE))
        h = ed.challenge(rb, a_bytes, message)
        if wanted(h):
            return r, rb, h
        if r_bytes is not None:
            break
    raise AssertionError(f"{label}: no nonce found")


@dataclass(frozen=True, slots=True)
class SignatureCase:
    name: str
    description: str
    author: bytes
    signature: bytes
    unsigned: tuple[object, ...]


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


def signature_cases() -> list[SignatureCase]:
    cases: list[SignatureCase] = []

    def add(name: str, description: str, author: bytes, make_signature: Any) -> None:
        unsigned = _profile_fields(author, len(cases))
        signature = make_signature(_message(unsigned))
        cases.append(SignatureCase(name, description, author, signature, unsigned))

    a = _scalar("secret scalar")
    a_bytes = ed.encode(ed.mul(a, ed.BASE))

    def honest(message: bytes, author: bytes = a_bytes, secret: int = a) -> bytes:
        r, rb, h = _nonce_where("honest", author, message, lambda h: True)
        return rb + _le((r + h * secret) % ed.L)

    add(
        "honest", "an ordinary signature by a key of prime order: valid everywhere", a_bytes, honest
    )

    def s_plus_l(message: bytes) -> bytes:
        signature = honest(message)
        return signature[:32] + _le(int.from_bytes(signature[32:], "little") + ed.L)

    add(
        "s-not-canonical",
        "the valid signature's S plus L (the group order): S >= L is refused by libsodium, RFC "
        "8032 and ZIP-215; a verifier that checks only S's top three bits (the original ref10 "
        "code) accepts it, which would give one operation two valid signatures",
        a_bytes,
        s_plus_l,
    )
    torsion8 = ed.torsion_point_of_order_8()
    small = {ed.order_of_torsion(ed.mul(k, torsion8)): ed.mul(k, torsion8) for k in (0, 4, 2, 1)}
    for order, point in sorted(small.items()):
        key = ed.encode(point)

        def small_key(message: bytes, key: bytes = key, order: int = order) -> bytes:
            # [h]A is the identity when order divides h, so R = [r]B, S = r satisfies the
            # equation without the cofactor as well as with it.
            r, rb, _ = _nonce_where(f"small {order}", key, message, lambda h: h % order == 0)
            return rb + _le(r)

        add(
            f"small-order-key-order-{order}",
            f"an author key of order {order} ({key.hex()[:8]}…) and a signature that satisfies "
            "the verification equation with and without the cofactor: RFC 8032 and ZIP-215 "
            "accept it (it 'verifies' for any message a signer picks), libsodium refuses "
            "small-order keys",
            key,
            small_key,
        )
    identity_non_canonical = _le(ed.P + 1)  # y = p + 1, the identity with y not reduced
    identity_sign_bit = _le(1 | 1 << 255)  # y = 1, x = 0 with the sign bit set

    def trivial(label: str, key: bytes) -> Any:
        def make(message: bytes) -> bytes:
            r, rb, _ = _nonce_where(label, key, message, lambda h: True)
            return rb + _le(r)

        return make

    add(
        "key-identity-not-canonical",
        "the identity as an author key with y = p + 1 (not reduced mod p): ZIP-215 accepts "
        "non-canonical encodings and the identity, RFC 8032 refuses y >= p, libsodium refuses "
        "both",
        identity_non_canonical,
        trivial("identity non-canonical", identity_non_canonical),
    )
    add(
        "key-identity-sign-bit",
        "the identity as an author key with x = 0 and the sign bit set: ZIP-215 accepts it, "
        "RFC 8032 refuses x = 0 with the sign bit, libsodium refuses it (small order)",
        identity_sign_bit,
        trivial("identity sign bit", identity_sign_bit),
    )
    identity = ed.encode(ed.IDENTITY)
    for label, r_bytes, text in (
        ("r-small-order", identity, "R is the identity, canonically encoded"),
        ("r-not-canonical", identity_non_canonical, "R is the identity with y = p + 1"),
    ):

        def small_r(message: bytes, r_bytes: bytes = r_bytes) -> bytes:
            h = ed.challenge(r_bytes, a_bytes, message)
            return r_bytes + _le(h * a % ed.L)  # [S]B = [h]A, so [S]B - [h]A = identity = R

        add(
            label,
            f"{text}, S = h·a: the equation holds with and without the cofactor. "
            + (
                "RFC 8032 and ZIP-215 accept it; libsodium refuses a small-order R"
                if label == "r-small-order"
                else "ZIP-215 accepts it; RFC 8032 refuses y >= p; libsodium refuses it (small "
                "order, and R is compared as bytes with the canonical encoding of [S]B - [h]A)"
            ),
            a_bytes,
            small_r,
        )
    mixed = ed.encode(ed.add(ed.mul(a, ed.BASE), torsion8))
    for label, wanted, text in (
        (
            "mixed-order-key-refused",
            lambda h: h % 8 != 0,
            "h is not a multiple of 8, so the equation holds only with the cofactor: RFC 8032 "
            "and ZIP-215 accept it, libsodium (no cofactor) refuses it",
        ),
        (
            "mixed-order-key-accepted",
            lambda h: h % 8 == 0,
            "h is a multiple of 8, so [h]T is the identity and the equation holds without the "
            "cofactor too: valid. libsodium does not check that a key is in the prime-order "
            "subgroup; a verifier that does refuses it",
        ),
    ):

        def mixed_sig(message: bytes, label: str = label, wanted: Any = wanted) -> bytes:
            r, rb, h = _nonce_where(label, mixed, message, wanted)
            return rb + _le((r + h * a) % ed.L)

        add(
            label,
            f"an author key [a]B + T of mixed order (T of order 8), signed with a: {text}",
            mixed,
            mixed_sig,
        )
    y = 2
    while ed.point_with_y(y) is not None:
        y += 1
    off_curve = _le(y)
    add(
        "key-not-a-point",
        f"an author key whose y = {y} has no x on the curve: bad-signature (a decoder checks "
        "only that the key is 32 bytes; whether it is a point is the signature check's)",
        off_curve,
        honest,
    )
    return cases


def signature_rules() -> dict[str, Any]:
    vectors = []
    for case in signature_cases():
        data = encode((*case.unsigned, case.signature))
        reason = decode_outcome(data)
        if reason not in (None, "bad-signature"):
            raise AssertionError(f"{case.name}: {reason}")
        message = _message(case.unsigned)
        vectors.append(
            {
                "name": case.name,
                "description": case.description,
                "valid": reason is None,
                "reason": reason,
                "author": case.author.hex(),
                "signing_message_hex": message.hex(),
                "signature": case.signature.hex(),
                "encoded": data.hex(),
                "other_rules": {
                    "rfc8032_cofactored": ed.verify_rfc8032(case.author, message, case.signature),
                    "zip215": ed.verify_zip215(case.author, message, case.signature),
                },
            }
        )
    valid = [v["name"] for v in vectors if v["valid"]]
    if valid != ["honest", "mixed-order-key-accepted"]:
        raise AssertionError(f"unexpected valid signatures: {valid}")
    return {
        "description": (
            "Ed25519 edge cases (SPEC §5.2). Each is a profile operation whose `author` is the "
            "key under test. Decoding `encoded` MUST succeed when `valid`, else fail with "
            "`reason` (bad-signature). `other_rules` says what RFC 8032's cofactored check and "
            "ZIP-215 would decide: where they differ from `valid`, a verifier following them "
            "disagrees with every other node."
        ),
        "vectors": vectors,
    }


# -- causal rules (SPEC §5.3, §6) ---------------------------------------------------------------


@dataclass
class Story:
    """Operations written by hand for one case; each names what its author had seen (deps)."""

    name: str
    description: str
    clock: int = T0
    ops: list[tuple[str, Signer, Operation]] = field(default_factory=list)
    order: list[int] | None = None  # the order to apply them in; None: as written
    withheld: set[bytes] = field(default_factory=set)  # ids that are never delivered

    def add(
        self,
        label: str,
        signer: Signer,
        payload: Payload,
        *,
        thread: Operation | bytes | None = None,
        ref: Operation | bytes | None = None,
        seen: tuple[Operation | bytes, ...] = (),
        ts: int | None = None,
        withhold: bool = False,
    ) -> Operation:
        self.clock += 60_000

        def ident(x: Operation | bytes) -> bytes:
            return x.id if isinstance(x, Operation) else x

        op = make_operation(
            signer.key,
            payload,
            timestamp_ms=self.clock if ts is None else ts,
            thread=None if thread is None else ident(thread),
            refs=() if ref is None else (ident(ref),),
            deps=frozenset(ident(s) for s in seen),
        )
        if withhold:
            self.withheld.add(op.id)
        else:
            self.ops.append((label, signer, op))
        return op

    def thread(self, label: str = "owner's thread", title: str = "A thread") -> Operation:
        return self.add(label, OWNER, ThreadPayload(title=title))

    def say(
        self,
        label: str,
        who: Signer,
        body: str,
        t: Operation,
        to: Operation,
        seen: tuple[Operation | bytes, ...],
        **kw: Any,
    ) -> Operation:
        return self.add(label, who, CommentPayload(body=body), thread=t, ref=to, seen=seen, **kw)

    def mod(
        self,
        label: str,
        who: Signer,
        action: ModAction,
        t: Operation,
        at: Operation,
        seen: tuple[Operation | bytes, ...],
        subject: Signer | None = None,
    ) -> Operation:
        payload = ModeratePayload(action=action, subject=subject.public if subject else None)
        return self.add(label, who, payload, thread=t, ref=at, seen=seen)


def _outcome(outcome: object) -> dict[str, Any]:
    if isinstance(outcome, Applied):
        return {"outcome": "applied"}
    if isinstance(outcome, Rejected):
        return {"outcome": "rejected", "reason": outcome.reason}
    if isinstance(outcome, Pending):
        return {"outcome": "pending", "missing": sorted(m.hex() for m in outcome.missing)}
    if isinstance(outcome, Duplicate):
        return {"outcome": "duplicate"}
    raise TypeError(outcome)


def _final(replica: Replica, ops: list[Operation]) -> list[dict[str, Any]]:
    """Each operation's status once everything was delivered: what every order agrees on."""
    result = []
    for op in ops:
        if op.id in replica:
            result.append({"status": "valid"})
        elif op.id in replica.pending:
            result.append(
                {"status": "pending", "missing": sorted(m.hex() for m in replica.pending[op.id])}
            )
        else:
            reason = replica.apply(op).outcome
            assert isinstance(reason, Rejected), reason
            result.append({"status": "rejected", "reason": reason.reason})
    return result


def _thread_ids(ops: list[Operation]) -> list[bytes]:
    return [op.id for op in ops if op.kind is Kind.THREAD]


def story_json(story: Story) -> dict[str, Any]:
    ops = [op for _, _, op in story.ops]
    order = story.order if story.order is not None else list(range(len(ops)))
    if sorted(order) != list(range(len(ops))):
        raise AssertionError(f"{story.name}: the order must name every operation once")
    replica = Replica()
    steps = []
    for index in order:
        label, signer, op = story.ops[index]
        result = replica.apply(op)
        step: dict[str, Any] = {
            "index": index,
            "label": label,
            "signer": signer.name,
            "id": op.id.hex(),
            **_outcome(result.outcome),
        }
        if result.released:
            step["released"] = sorted(  # a set: the order of release is the node's own
                (
                    {"id": released.id.hex(), **_outcome(outcome)}
                    for released, outcome in result.released
                ),
                key=lambda entry: entry["id"],
            )
        steps.append(step)
    final = _final(replica, ops)
    views = {}
    for thread_id in _thread_ids(ops):
        if thread_id in replica.threads:
            view = replica.view(thread_id)
            views[thread_id.hex()] = {
                "view": view_json(view),
                "view_digest_preimage": digest_preimage(view).hex(),
                "view_digest": view.digest().hex(),
            }
    shuffled = []
    for seed in (1, 2, 3, None):
        other_order = list(range(len(ops)))
        if seed is None:
            other_order.reverse()
        else:
            random.Random(seed).shuffle(other_order)
        other = Replica()
        for index in other_order:
            other.apply(ops[index])
        if _final(other, ops) != final:
            raise AssertionError(f"{story.name}: order {other_order} decides differently")
        for thread_hex, expected in views.items():
            if other.view(bytes.fromhex(thread_hex)).digest().hex() != expected["view_digest"]:
                raise AssertionError(f"{story.name}: order {other_order} gives another view")
        shuffled.append(other_order)
    return {
        "name": story.name,
        "description": story.description,
        "operations": [op.encoded.hex() for op in ops],
        "labels": [label for label, _, _ in story.ops],
        "never_delivered": sorted(i.hex() for i in story.withheld),
        "steps": steps,
        "final": [
            {"label": label, "id": op.id.hex(), **status}
            for (label, _, op), status in zip(story.ops, final, strict=True)
        ],
        "views": views,
        "shuffled_orders": shuffled,
    }


def wrong_thread_story() -> Story:
    s = Story(
        "wrong-thread",
        "References across threads, to a profile, and a thread field that names a comment: "
        "wrong-thread, decided only once every reference is known (SPEC §5.3 step 1-2).",
    )
    t1 = s.thread("owner's first thread", "First")
    t2 = s.add("bob's second thread", BOB, ThreadPayload(title="Second"))
    a = s.say("alice comments in the first", ALICE, "In the first", t1, t1, (t1,))
    profile = s.add("carol's profile", CAROL, ProfilePayload(name="Carol"))
    s.say("a reply in the second thread to a comment of the first", BOB, "Cross", t2, a, (t2,))
    s.say("a top-level comment in the second whose dep is in the first", BOB, "Dep", t2, t2, (a,))
    s.say("a comment whose thread field names a comment", CAROL, "Not a thread", a, a, (a,))
    s.say("a comment whose dep is a profile", CAROL, "Profile dep", t1, t1, (profile,))
    s.say(
        "a comment whose ref is the first thread but whose thread is the second",
        ALICE,
        "Mixed",
        t2,
        t1,
        (t1,),
    )
    s.say("a valid comment in the second thread", ALICE, "Fine here", t2, t2, (t2,))
    return s


def reference_story() -> Story:
    s = Story(
        "references-in-context",
        "What a reference may point at, known only once it arrives: a comment whose parent is "
        "an edit, a retract or a moderate; an edit, react, retract or hide whose target is not "
        "a comment; bad-reference comes before not-author and not-moderator (SPEC §5.3).",
    )
    t = s.thread()
    a = s.say("alice comments", ALICE, "Hello", t, t, (t,))
    edit = s.add("alice edits it", ALICE, EditPayload(body="Hello!"), thread=t, ref=a, seen=(a,))
    react = s.add("bob reacts", BOB, ReactPayload(reaction="+1"), thread=t, ref=a, seen=(a,))
    hide = s.mod("owner hides it", OWNER, ModAction.HIDE, t, a, (a,))
    s.say("a reply whose parent is the edit", BOB, "Re: edit", t, edit, (edit,))
    s.say("a reply whose parent is the reaction", BOB, "Re: react", t, react, (react,))
    s.say("a reply whose parent is the hide", BOB, "Re: hide", t, hide, (hide,))
    s.add("alice edits her edit", ALICE, EditPayload(body="x"), thread=t, ref=edit, seen=(edit,))
    s.add(
        "bob edits alice's edit: bad-reference before not-author",
        BOB,
        EditPayload(body="y"),
        thread=t,
        ref=edit,
        seen=(edit,),
    )
    s.add(
        "carol reacts to the reaction",
        CAROL,
        ReactPayload(reaction="?"),
        thread=t,
        ref=react,
        seen=(react,),
    )
    s.add("bob retracts his reaction", BOB, RetractPayload(), thread=t, ref=react, seen=(react,))
    s.mod(
        "mallory hides the edit: bad-reference before not-moderator",
        MALLORY,
        ModAction.HIDE,
        t,
        edit,
        (edit,),
    )
    retract = s.add(
        "alice retracts her comment", ALICE, RetractPayload(), thread=t, ref=a, seen=(edit,)
    )
    s.say("a reply whose parent is the retract", CAROL, "Re: retract", t, retract, (retract,))
    s.say(
        "a reply to the retracted comment itself: valid", CAROL, "Re: tombstone", t, a, (retract,)
    )
    return s


def dependency_story() -> Story:
    s = Story(
        "rejected-and-missing-dependencies",
        "An operation that depends on a rejected one is rejected (bad-reference), and so is "
        "everything after it; one whose references never arrive stays pending, as does what "
        "depends on it; an operation applied before its parent waits and is released when the "
        "parent arrives (SPEC §5.3 step 1). Applied in an order that puts children first.",
    )
    t = s.thread()
    a = s.say("alice comments", ALICE, "Root", t, t, (t,))
    bad = s.add(
        "bob edits alice's comment: not-author",
        BOB,
        EditPayload(body="Mine now"),
        thread=t,
        ref=a,
        seen=(a,),
    )
    c = s.say("carol replies, having seen bob's edit", CAROL, "Sees the bad edit", t, a, (bad,))
    s.say("a reply to carol's reply", ALICE, "Deeper", t, c, (c,))
    s.add(
        "a reaction whose dep is the rejected edit",
        MALLORY,
        ReactPayload(reaction="x"),
        thread=t,
        ref=a,
        seen=(bad,),
    )
    unseen = s.say("a comment never delivered", BOB, "Lost", t, t, (t,), withhold=True)
    waiting = s.say(
        "a reply to the comment never delivered", CAROL, "Waiting", t, unseen, (unseen,)
    )
    s.say("a reply to that reply", ALICE, "Still waiting", t, waiting, (waiting,))
    s.say(
        "a comment in a thread never delivered",
        ALICE,
        "Where?",
        hashlib.sha256(b"p2pcomments rule vector: no such thread").digest(),
        hashlib.sha256(b"p2pcomments rule vector: no such thread").digest(),
        (),
    )
    late = s.say("bob replies to alice", BOB, "Late parent", t, a, (a,))
    s.say(
        "carol replies to bob's reply (delivered before it)", CAROL, "Early child", t, late, (late,)
    )
    s.say(
        "a comment whose deps repeat its ref and hold a non-head",
        ALICE,
        "Deps",
        t,
        late,
        (late, a, t),
    )
    # Rejected or a profile: thread, refs[0], then the deps in order; the first decides.
    profile = s.add("carol's profile", CAROL, ProfilePayload(name="Carol"))
    s.say(
        "a reply to the rejected edit whose dep is a profile: refs[0] comes first",
        ALICE,
        "Ref first",
        t,
        bad,
        (profile,),
    )
    s.say(
        "a comment whose thread is a profile and whose parent the rejected edit: thread first",
        ALICE,
        "Thread first",
        profile,
        bad,
        (),
    )
    s.say(
        "a comment whose deps are the profile and the rejected edit: the lower id decides",
        ALICE,
        "Deps in order",
        t,
        a,
        (profile, bad),
    )
    # children first: the reply to bob's reply (10) before bob's reply (9), the reply chain to
    # carol's reply (3) before carol's (2), and alice's comment (1) after what depends on it.
    s.order = [0, 3, 2, 4, 5, 6, 7, 10, 1, 9, 8, 11, 13, 14, 15, 12]
    return s


def moderator_story() -> Story:
    s = Story(
        "moderators",
        "Who moderates (SPEC §5.3 step 3, §6 rule 7): the owner may be added (and is then "
        "listed) but never removed; a non-owner's removal of the owner is not-owner; an add "
        "wins over a remove that did not see it; a removal that saw the add ends it; a remove "
        "of a key never added is valid and changes nothing; moderation is judged by the "
        "operation's own causal past, not by arrival; the header lists the moderators in "
        "ascending byte order.",
    )
    t = s.thread()
    a = s.say("alice comments", ALICE, "Hello", t, t, (t,))
    add_owner = s.mod(
        "owner adds herself as moderator: valid",
        OWNER,
        ModAction.ADD_MODERATOR,
        t,
        t,
        (a,),
        subject=OWNER,
    )
    s.mod(
        "owner removes herself: bad-field",
        OWNER,
        ModAction.REMOVE_MODERATOR,
        t,
        t,
        (add_owner,),
        subject=OWNER,
    )
    s.mod(
        "bob removes the owner: not-owner first",
        BOB,
        ModAction.REMOVE_MODERATOR,
        t,
        t,
        (add_owner,),
        subject=OWNER,
    )
    add_bob = s.mod("owner adds bob", OWNER, ModAction.ADD_MODERATOR, t, t, (a,), subject=BOB)
    s.mod(
        "bob hides alice's comment, his dep being the add itself",
        BOB,
        ModAction.HIDE,
        t,
        a,
        (add_bob,),
    )
    remove_bob = s.mod(
        "owner removes bob, having seen the add",
        OWNER,
        ModAction.REMOVE_MODERATOR,
        t,
        t,
        (add_bob,),
        subject=BOB,
    )
    s.mod(
        "bob unhides after his removal (seen): not-moderator",
        BOB,
        ModAction.UNHIDE,
        t,
        a,
        (remove_bob,),
    )
    s.mod(
        "bob unhides concurrently with his removal: valid", BOB, ModAction.UNHIDE, t, a, (add_bob,)
    )
    s.mod(
        "owner adds bob again, concurrently with the removal: the add wins",
        OWNER,
        ModAction.ADD_MODERATOR,
        t,
        t,
        (add_bob,),
        subject=BOB,
    )
    add_carol = s.mod("owner adds carol", OWNER, ModAction.ADD_MODERATOR, t, t, (a,), subject=CAROL)
    s.mod(
        "owner removes carol without having seen the add: the add wins",
        OWNER,
        ModAction.REMOVE_MODERATOR,
        t,
        t,
        (a,),
        subject=CAROL,
    )
    remove_mallory = s.mod(
        "owner removes mallory, never added: valid, no effect",
        OWNER,
        ModAction.REMOVE_MODERATOR,
        t,
        t,
        (a,),
        subject=MALLORY,
    )
    s.mod("mallory closes: not-moderator", MALLORY, ModAction.CLOSE, t, t, (a,))
    add_mallory = s.mod(
        "owner adds mallory, having seen the removal: appointed",
        OWNER,
        ModAction.ADD_MODERATOR,
        t,
        t,
        (remove_mallory,),
        subject=MALLORY,
    )
    s.mod("mallory hides, her add in her past", MALLORY, ModAction.HIDE, t, a, (add_mallory,))
    s.mod(
        "carol hides after her add arrived, without it in her past: not-moderator",
        CAROL,
        ModAction.HIDE,
        t,
        a,
        (add_bob,),
    )
    s.mod("carol hides, her past holding her add", CAROL, ModAction.HIDE, t, a, (add_carol,))
    s.mod(
        "bob appoints mallory: not-owner",
        BOB,
        ModAction.ADD_MODERATOR,
        t,
        t,
        (add_bob,),
        subject=MALLORY,
    )
    return s


def close_story() -> Story:
    s = Story(
        "close-and-reopen",
        "Close suppression (SPEC §6 rule 8): a comment concurrent with a close is suppressed "
        "unless a reopen of that close has it in its causal past (the reopener saw it) or it "
        "has the reopen in its past; retracts, hides and unhides after a close take effect "
        "(only comments, edits and reacts are suppressed); a reopen that saw no close changes "
        "nothing; a reopen by a non-moderator is rejected; a second close that no reopen saw "
        "leaves the thread closed.",
    )
    t = s.thread()
    a = s.say("alice comments", ALICE, "Before", t, t, (t,))
    b = s.say("bob comments", BOB, "Also before", t, t, (t,))
    early_reopen = s.mod(
        "owner reopens before any close: valid, no effect", OWNER, ModAction.REOPEN, t, t, (a,)
    )
    close = s.mod(
        "owner closes, having seen alice's and bob's",
        OWNER,
        ModAction.CLOSE,
        t,
        t,
        (a, b, early_reopen),
    )
    seen = s.say(
        "carol comments concurrently with the close; the reopen sees it", CAROL, "Seen", t, t, (a,)
    )
    unseen = s.say(
        "mallory comments concurrently; no reopen sees it", MALLORY, "Unseen", t, t, (a,)
    )
    s.add(
        "bob retracts his comment after the close: takes effect",
        BOB,
        RetractPayload(),
        thread=t,
        ref=b,
        seen=(close,),
    )
    s.mod(
        "owner hides alice's after the close: takes effect", OWNER, ModAction.HIDE, t, a, (close,)
    )
    s.add(
        "alice edits after the close: suppressed",
        ALICE,
        EditPayload(body="Edited while closed"),
        thread=t,
        ref=a,
        seen=(close,),
    )
    s.add(
        "carol reacts after the close: suppressed",
        CAROL,
        ReactPayload(reaction="+1"),
        thread=t,
        ref=a,
        seen=(close,),
    )
    s.mod("alice reopens: not-moderator", ALICE, ModAction.REOPEN, t, t, (close,))
    reopen = s.mod(
        "owner reopens, having seen carol's comment", OWNER, ModAction.REOPEN, t, t, (close, seen)
    )
    s.say("alice comments after the reopen", ALICE, "After", t, t, (reopen,))
    s.say(
        "bob replies to mallory's unseen comment after the reopen",
        BOB,
        "Re: unseen",
        t,
        unseen,
        (reopen, unseen),
    )
    s.mod("owner closes again, having seen everything", OWNER, ModAction.CLOSE, t, t, s_heads(s, t))
    return s


def view_rules_story() -> Story:
    s = Story(
        "view-rules",
        "The view's orderings and flags (SPEC §6): the edit history in (timestamp, id) order "
        "whatever the arrival order, with ties by id; reactions sorted by their UTF-8 bytes "
        "(not UTF-16 units), each with its authors in ascending byte order; a same-timestamp "
        "reaction tie won by the greater id; reactions stay on a retracted comment; an edit "
        "after a retraction is valid but not shown; parent_edited_after never for a top-level "
        "comment, and for a retracted parent as if it were not retracted; an edit suppressed by "
        "a close does not flag replies.",
    )
    t = s.thread()
    a = s.say("alice comments", ALICE, "Original", t, t, (t,))
    reply = s.say("bob replies before any edit", BOB, "Answer", t, a, (a,))
    s.add(
        "alice edits at time T+10 (applied first)",
        ALICE,
        EditPayload(body="Late edit"),
        thread=t,
        ref=a,
        seen=(reply,),
        ts=T0 + 10 * 60_000 + 10,
    )
    s.add(
        "alice edits at time T (applied second)",
        ALICE,
        EditPayload(body="Tie one"),
        thread=t,
        ref=a,
        seen=(reply,),
        ts=T0 + 10 * 60_000,
    )
    s.add(
        "alice edits at time T too (tie by id)",
        ALICE,
        EditPayload(body="Tie two"),
        thread=t,
        ref=a,
        seen=(reply,),
        ts=T0 + 10 * 60_000,
    )
    for who in (MALLORY, CAROL, BOB, OWNER):
        s.add(
            f"{who.name} reacts with a fullwidth exclamation mark",
            who,
            ReactPayload(reaction="\uff01"),
            thread=t,
            ref=a,
            seen=(a,),
        )
    s.add(
        "alice reacts with an emoji (after U+FF01 in UTF-8, before it in UTF-16)",
        ALICE,
        ReactPayload(reaction="\U0001f600"),
        thread=t,
        ref=a,
        seen=(a,),
    )
    s.add(
        "bob reacts with +1 (ASCII sorts first)",
        BOB,
        ReactPayload(reaction="+1"),
        thread=t,
        ref=reply,
        seen=(reply,),
    )
    tie_ts = T0 + 20 * 60_000
    s.add(
        "carol reacts 'x' to bob's reply",
        CAROL,
        ReactPayload(reaction="x"),
        thread=t,
        ref=reply,
        seen=(reply,),
        ts=tie_ts,
    )
    s.add(
        "carol reacts 'y' at the same time: the greater id wins",
        CAROL,
        ReactPayload(reaction="y"),
        thread=t,
        ref=reply,
        seen=(reply,),
        ts=tie_ts,
    )
    s.add(
        "bob edits his reply",
        BOB,
        EditPayload(body="Answer, edited"),
        thread=t,
        ref=reply,
        seen=(reply,),
    )
    grandchild = s.say(
        "carol replies to bob's reply without seeing his edit",
        CAROL,
        "Re: answer",
        t,
        reply,
        (reply,),
    )
    first_retract = s.add(
        "bob retracts his reply: carol's reply stays flagged",
        BOB,
        RetractPayload(),
        thread=t,
        ref=reply,
        seen=(grandchild,),
    )
    s.add(
        "bob edits his retracted reply: valid, never shown",
        BOB,
        EditPayload(body="Ghost"),
        thread=t,
        ref=reply,
        seen=(grandchild,),
    )
    s.add(
        "bob retracts his reply again: valid, nothing changes",
        BOB,
        RetractPayload(),
        thread=t,
        ref=reply,
        seen=(first_retract,),
    )
    s.add(
        "mallory reacts to the retracted reply: counted",
        MALLORY,
        ReactPayload(reaction="+1"),
        thread=t,
        ref=reply,
        seen=(grandchild,),
    )
    other = s.say("carol comments", CAROL, "Top", t, t, (t,))
    s.say("alice replies to carol's", ALICE, "Re: top", t, other, (other,))
    close = s.mod(
        "owner closes, having seen everything", OWNER, ModAction.CLOSE, t, t, s_heads(s, t)
    )
    s.add(
        "carol edits after the close: suppressed, so alice's reply is not flagged",
        CAROL,
        EditPayload(body="Top, edited"),
        thread=t,
        ref=other,
        seen=(close,),
    )
    return s


def s_heads(story: Story, thread: Operation) -> tuple[Operation, ...]:
    """Every operation of ``thread`` written so far that no other one references."""
    replica = Replica()
    for _, _, op in story.ops:
        replica.apply(op)
    state = replica.thread(thread.id)
    return tuple(state.ops[h] for h in sorted(state.heads))


def causal_rules() -> dict[str, Any]:
    stories = [
        wrong_thread_story(),
        reference_story(),
        dependency_story(),
        moderator_story(),
        close_story(),
        view_rules_story(),
    ]
    return {
        "description": (
            "Histories for the rules that need other operations (SPEC §5.3) and for the view "
            "(SPEC §6). Apply `operations` (hex) in the order of `steps` (`index` into "
            "`operations`): each MUST have the step's outcome (applied, rejected with reason, "
            "pending with the ids it misses, or duplicate), and release the listed operations "
            "with theirs (in any order). `final` is each operation's status once everything "
            "was delivered, the same in every order (`shuffled_orders`); `never_delivered` "
            "are ids no one receives. "
            "`views` holds, per thread, the view and its digest (SPEC §6.4, §6.5). Signers are "
            "those of thread_views.json."
        ),
        "signers": [s.describe() for s in SIGNERS],
        "stories": [story_json(story) for story in stories],
    }


# -- text forms (SPEC §7) -----------------------------------------------------------------------


def text_form_rules() -> dict[str, Any]:
    attempt = 0
    while True:  # an id whose text form has a k, for the Kelvin sign below
        raw = hashlib.sha256(f"p2pcomments rule vector: a text form {attempt}".encode()).digest()
        forms = {kind: format_id(kind, raw) for kind in TextKind}
        body = forms[TextKind.COMMENT].partition("_")[2]
        if "k" in body:
            break
        attempt += 1
    kinds = [k.value for k in TextKind]
    cases: list[tuple[str, str, list[str] | None, bool]] = [
        ("comment form, any kind accepted", forms[TextKind.COMMENT], None, True),
        ("comment form where a comment is expected", forms[TextKind.COMMENT], ["cmt"], True),
        ("comment form where a thread is expected", forms[TextKind.COMMENT], ["thr"], False),
        ("operation form where a comment is expected", forms[TextKind.OPERATION], ["cmt"], False),
        (
            "operation form where an operation or a comment is expected",
            forms[TextKind.OPERATION],
            ["cmt", "op"],
            True,
        ),
        ("key form where a thread is expected", forms[TextKind.KEY], ["thr"], False),
        ("thread form where a key is expected", forms[TextKind.THREAD], ["key"], False),
        ("upper-case prefix", "CMT_" + body, ["cmt"], True),
        ("upper-case body", "cmt_" + body.upper(), ["cmt"], True),
        ("mixed case", "Cmt_" + body[:20].upper() + body[20:], ["cmt"], True),
        (
            "leading and trailing spaces and a newline",
            "  " + forms[TextKind.COMMENT] + "\n",
            ["cmt"],
            True,
        ),
        (
            "a no-break space around it (white space too)",
            "\u00a0" + forms[TextKind.COMMENT],
            ["cmt"],
            True,
        ),
        ("a space inside", "cmt_ " + body[1:], None, False),
        (
            "the Kelvin sign U+212A for a k: it lower-cases to k, but is not ASCII",
            "cmt_" + body.replace("k", "\u212a", 1),
            None,
            False,
        ),
        ("no underscore", "cmt" + body, None, False),
        ("a dash for the underscore", "cmt-" + body, None, False),
        ("padding added", forms[TextKind.COMMENT] + "====", None, False),
        (
            "the same body under the thread prefix: the prefix is not checksummed",
            "thr_" + body,
            ["thr"],
            True,
        ),
        ("64 hex digits, lower case", raw.hex(), ["thr"], True),
        (
            "64 hex digits, upper case, where a key is expected (hex has no kind)",
            raw.hex().upper(),
            ["key"],
            True,
        ),
        ("hex with a 0x prefix", "0x" + raw.hex(), None, False),
        ("65 hex digits", raw.hex() + "0", None, False),
        ("the empty string", "", None, False),
    ]
    vectors = []
    for label, text, expect, accepted in cases:
        wanted = None if expect is None else frozenset(TextKind(k) for k in expect)
        try:
            got = parse_id(text, expect=wanted)
        except TextFormError:
            if accepted:
                raise AssertionError(f"{label}: refused") from None
            vectors.append({"label": label, "text": text, "expect": expect, "bytes": None})
            continue
        if not accepted or got != raw:
            raise AssertionError(f"{label}: parsed to {got.hex()}")
        vectors.append({"label": label, "text": text, "expect": expect, "bytes": raw.hex()})
    by_kind = []
    samples = [
        ("thread", "thr", "the id of a thread operation"),
        ("comment", "cmt", "the id of a comment operation"),
        ("author key", "key", "an author's public key"),
        ("any other operation (edit, retract, react, moderate, profile)", "op", "any operation id"),
    ]
    for what, prefix, meaning in samples:
        by_kind.append(
            {
                "names": what,
                "prefix": prefix,
                "meaning": meaning,
                "example": format_id(TextKind(prefix), raw),
            }
        )
    return {
        "description": (
            "Text forms (SPEC §7). `prefixes` says which prefix goes with what. Each `parse` "
            "entry: parsing `text` while expecting one of the kinds in `expect` (any kind when "
            "null) MUST give `bytes`, or fail when `bytes` is null."
        ),
        "kinds": kinds,
        "prefixes": by_kind,
        "parse": vectors,
    }


# -- files --------------------------------------------------------------------------------------


def build() -> dict[str, str]:
    documents = {
        "rejection_order.json": rejection_order(),
        "signature_rules.json": signature_rules(),
        "causal_rules.json": causal_rules(),
        "text_form_rules.json": text_form_rules(),
    }
    return {
        name: json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        for name, doc in documents.items()
    }


def check(files: dict[str, str]) -> int:
    stale = []
    for name, expected in files.items():
        path = VECTORS / name
        if path.exists() and path.read_text(encoding="utf-8") == expected:
            print(f"{name}: ok")
            continue
        stale.append(name)
        if not path.exists():
            print(f"{name}: missing")
            continue
        diff = difflib.unified_diff(
            path.read_text(encoding="utf-8").splitlines(),
            expected.splitlines(),
            f"{name} (on disk)",
            f"{name} (generated)",
            lineterm="",
            n=1,
        )
        print(f"{name}: differs; first differences:")
        for line in list(diff)[:24]:
            print(f"    {line[:160]}")
    if stale:
        print(f"{len(stale)} file(s) out of date: run scripts/gen_rule_vectors.py, review the diff")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the files on disk")
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
