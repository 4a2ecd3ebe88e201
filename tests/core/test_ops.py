"""core.ops: every kind builds and round-trips; each structural rule rejects with its reason."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import msgpack
import pytest
from nacl.signing import SigningKey, VerifyKey

from p2pcomments.core.ops import (
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
    decode_operations,
    make_operation,
    verify_signature,
)
from p2pcomments.errors import DecodeError, InvalidOperation, P2PCommentsError

from .strategies import KEYS
from .wire import Raw, Wide, comment_fields, encode, op_id_of, sign_fields

ALICE, BOB = KEYS[1], KEYS[2]
THREAD = hashlib.sha256(b"a thread").digest()
COMMENT = hashlib.sha256(b"a comment").digest()
DEP = hashlib.sha256(b"a dep").digest()
TS = 1_700_000_000_000


def _op(payload: Payload, *, ref: bytes = COMMENT, key: SigningKey = ALICE) -> Operation:
    if isinstance(payload, ThreadPayload | ProfilePayload):
        return make_operation(key, payload, timestamp_ms=TS)
    return make_operation(key, payload, timestamp_ms=TS, thread=THREAD, refs=(ref,), deps=(DEP,))


EVERY_KIND: dict[str, Operation] = {
    "thread": _op(ThreadPayload(title="Hello", url="https://blog.example/1", site="blog.example")),
    "thread-url-only": _op(ThreadPayload(title="", url="https://blog.example/2")),
    "comment-on-thread": _op(CommentPayload(body="first!"), ref=THREAD),
    "reply": _op(CommentPayload(body="a reply\nwith two lines\tand a tab")),
    "edit": _op(EditPayload(body="fixed typo")),
    "retract": _op(RetractPayload()),
    "react": _op(ReactPayload(reaction="👍")),
    "react-withdraw": _op(ReactPayload(reaction="")),
    "hide": _op(ModeratePayload(action=ModAction.HIDE, reason="spam")),
    "unhide": _op(ModeratePayload(action=ModAction.UNHIDE)),
    "add-moderator": _op(
        ModeratePayload(action=ModAction.ADD_MODERATOR, subject=bytes(BOB.verify_key)), ref=THREAD
    ),
    "remove-moderator": _op(
        ModeratePayload(action=ModAction.REMOVE_MODERATOR, subject=bytes(BOB.verify_key)),
        ref=THREAD,
    ),
    "close": _op(ModeratePayload(action=ModAction.CLOSE, reason="done"), ref=THREAD),
    "reopen": _op(ModeratePayload(action=ModAction.REOPEN), ref=THREAD),
    "profile": _op(ProfilePayload(name="Alice Ünïcødé")),
}


# -- building, encoding, identity ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(EVERY_KIND))
def test_every_kind_round_trips(name: str) -> None:
    op = EVERY_KIND[name]
    decoded = decode_operation(op.encoded)
    assert decoded == op
    assert decoded.encoded == op.encoded
    assert decode_operation(bytearray(op.encoded)) == op
    assert decode_operation(memoryview(op.encoded)) == op


@pytest.mark.parametrize("name", list(EVERY_KIND))
def test_id_is_sha256_of_unsigned_form_and_signature_is_domain_separated(name: str) -> None:
    op = EVERY_KIND[name]
    fields = msgpack.unpackb(op.encoded, use_list=False)
    assert len(fields) == 9
    unsigned = msgpack.packb(fields[:8], use_bin_type=True)
    assert op.id == hashlib.sha256(unsigned).digest()
    assert fields[8] == op.signature
    VerifyKey(op.author).verify(OP_SIGNING_DOMAIN + op.id, op.signature)
    assert fields[0] == PROTOCOL_VERSION
    assert fields[1] == int(op.kind)


def test_fields_are_in_the_specified_order() -> None:
    op = EVERY_KIND["reply"]
    fields = msgpack.unpackb(op.encoded, use_list=False)
    assert fields[:8] == (
        1,
        2,
        op.author,
        THREAD,
        (COMMENT,),
        (DEP,),
        TS,
        ("a reply\nwith two lines\tand a tab",),
    )


def test_kind_and_accessors() -> None:
    thread = EVERY_KIND["thread"]
    assert thread.kind is Kind.THREAD
    assert thread.thread is None
    assert thread.thread_id == thread.id
    reply = EVERY_KIND["reply"]
    assert reply.thread_id == THREAD
    assert reply.target == COMMENT
    assert reply.parents == (COMMENT, DEP)
    assert EVERY_KIND["profile"].thread_id is None


def test_signing_is_deterministic() -> None:
    again = _op(CommentPayload(body="first!"), ref=THREAD)
    assert again.encoded == EVERY_KIND["comment-on-thread"].encoded


def test_deps_are_sorted_and_may_be_a_set() -> None:
    deps = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    op = make_operation(
        ALICE,
        CommentPayload(body="x"),
        timestamp_ms=TS,
        thread=THREAD,
        refs=(THREAD,),
        deps=frozenset(deps),
    )
    assert op.deps == tuple(sorted(deps))
    assert decode_operation(op.encoded) == op


def test_verify_false_skips_only_the_signature() -> None:
    op = EVERY_KIND["reply"]
    forged = op.encoded[:-1] + bytes([op.encoded[-1] ^ 1])
    assert decode_operation(forged, verify=False).id == op.id
    with pytest.raises(InvalidOperation) as caught:
        decode_operation(forged)
    assert caught.value.reason == "bad-signature"


def test_verify_signature_directly() -> None:
    op = EVERY_KIND["edit"]
    verify_signature(op.author, op.id, op.signature)
    with pytest.raises(InvalidOperation, match="signature"):
        verify_signature(bytes(BOB.verify_key), op.id, op.signature)


def test_limits_are_inclusive() -> None:
    body = "x" * MAX_BODY_BYTES
    op = make_operation(
        ALICE, CommentPayload(body=body), timestamp_ms=TS, thread=THREAD, refs=(THREAD,)
    )
    assert decode_operation(op.encoded).payload == CommentPayload(body=body)
    deps = frozenset(hashlib.sha256(bytes([i])).digest() for i in range(MAX_DEPS))
    op = make_operation(
        ALICE,
        CommentPayload(body="x"),
        timestamp_ms=2**63 - 1,
        thread=THREAD,
        refs=(THREAD,),
        deps=deps,
    )
    assert len(decode_operation(op.encoded).deps) == MAX_DEPS


# -- building rejects what decoding would reject -------------------------------------------------


def _make_reason(payload: Payload, **kw: object) -> str:
    with pytest.raises(InvalidOperation) as caught:
        make_operation(ALICE, payload, **kw)  # type: ignore[arg-type]
    return caught.value.reason


@pytest.mark.parametrize(
    ("payload", "kw", "reason"),
    [
        (CommentPayload(body=""), {"thread": THREAD, "refs": (THREAD,)}, "bad-field"),
        (CommentPayload(body=" \n\t "), {"thread": THREAD, "refs": (THREAD,)}, "bad-field"),
        (CommentPayload(body="a\x00b"), {"thread": THREAD, "refs": (THREAD,)}, "bad-text"),
        (CommentPayload(body="e\u0301"), {"thread": THREAD, "refs": (THREAD,)}, "bad-text"),
        (CommentPayload(body="\ud800"), {"thread": THREAD, "refs": (THREAD,)}, "bad-text"),
        (
            CommentPayload(body="x" * (MAX_BODY_BYTES + 1)),
            {"thread": THREAD, "refs": (THREAD,)},
            "oversize",
        ),
        (CommentPayload(body="x"), {}, "bad-field"),
        (CommentPayload(body="x"), {"thread": THREAD, "refs": ()}, "bad-field"),
        (CommentPayload(body="x"), {"thread": THREAD, "refs": (THREAD, COMMENT)}, "bad-field"),
        (EditPayload(body="x"), {"thread": THREAD, "refs": (THREAD,)}, "bad-reference"),
        (ThreadPayload(title=""), {}, "bad-field"),
        (ThreadPayload(title="t"), {"thread": THREAD}, "bad-field"),
        (ThreadPayload(title="t"), {"deps": (DEP,)}, "bad-field"),
        (ProfilePayload(name=""), {}, "bad-field"),
        (ProfilePayload(name="a\nb"), {}, "bad-text"),
        (ReactPayload(reaction=" +1"), {"thread": THREAD, "refs": (COMMENT,)}, "bad-text"),
        (
            ModeratePayload(action=ModAction.CLOSE),
            {"thread": THREAD, "refs": (COMMENT,)},
            "bad-reference",
        ),
        (
            ModeratePayload(action=ModAction.HIDE, subject=bytes(32)),
            {"thread": THREAD, "refs": (COMMENT,)},
            "bad-field",
        ),
    ],
)
def test_make_operation_applies_the_structural_rules(
    payload: Payload, kw: dict[str, object], reason: str
) -> None:
    assert _make_reason(payload, timestamp_ms=TS, **kw) == reason


def test_make_operation_rejects_negative_timestamp() -> None:
    assert _make_reason(ProfilePayload(name="a"), timestamp_ms=-1) == "bad-field"


# -- decoding: one test per reason code ----------------------------------------------------------


def _reason(data: bytes) -> str:
    with pytest.raises(InvalidOperation) as caught:
        decode_operation(data)
    assert isinstance(caught.value, P2PCommentsError)
    return caught.value.reason


def _signed_comment(**fields: object) -> bytes:
    return sign_fields(ALICE, comment_fields(ALICE, **fields))


def test_hand_made_canonical_comment_decodes() -> None:
    """The test encoder agrees with the protocol's, so failures below are the rule under test."""
    data = _signed_comment()
    op = decode_operation(data)
    assert op.encoded == data
    assert op.id == op_id_of(comment_fields(ALICE))


@pytest.mark.parametrize("version", [0, 2, 255, -1, "1", None])
def test_unknown_version(version: object) -> None:
    assert _reason(_signed_comment(version=version)) == "unknown-version"


@pytest.mark.parametrize("kind", [0, 8, 127, -2, "comment", None])
def test_unknown_kind(kind: object) -> None:
    assert _reason(_signed_comment(kind=kind)) == "unknown-kind"


@pytest.mark.parametrize(
    ("fields", "label"),
    [
        ({"thread": b"\x11" * 31}, "31-byte thread"),
        ({"thread": None}, "comment without thread"),
        ({"thread": "x" * 32}, "thread as text"),
        ({"refs": ()}, "no reference"),
        ({"refs": (b"\x11" * 32, b"\x12" * 32)}, "two references"),
        ({"refs": (b"\x11" * 33,)}, "33-byte reference"),
        ({"refs": b"\x11" * 32}, "refs not an array"),
        ({"deps": (b"\x11" * 31,)}, "short dependency"),
        ({"deps": None}, "deps nil"),
        ({"timestamp_ms": -1}, "negative timestamp"),
        ({"timestamp_ms": 2**63}, "timestamp too large"),
        ({"timestamp_ms": "1"}, "timestamp as text"),
        ({"payload": ()}, "payload arity 0"),
        ({"payload": ("a", "b")}, "payload arity 2"),
        ({"payload": "hello"}, "payload not an array"),
        ({"payload": (b"hello",)}, "body as bytes"),
        ({"payload": ("",)}, "empty body"),
        ({"payload": ("  \n ",)}, "blank body"),
    ],
)
def test_bad_field(fields: dict[str, object], label: str) -> None:
    assert _reason(_signed_comment(**fields)) == "bad-field", label


def test_bad_field_author() -> None:
    fields = list(comment_fields(ALICE))
    fields[2] = b"\x01" * 31
    assert _reason(sign_fields(ALICE, tuple(fields))) == "bad-field"


@pytest.mark.parametrize(
    "payload",
    [
        (8, None, ""),  # unknown action
        (int(ModAction.HIDE), b"\x01" * 32, ""),  # hide takes no subject
        (int(ModAction.ADD_MODERATOR), None, ""),  # add needs a subject
        (int(ModAction.REMOVE_MODERATOR), b"\x01" * 31, ""),  # short subject
        (int(ModAction.HIDE), None, None),  # reason nil
    ],
)
def test_bad_field_moderation(payload: tuple[object, ...]) -> None:
    action = payload[0]
    at_thread = action in (int(ModAction.ADD_MODERATOR), int(ModAction.REMOVE_MODERATOR))
    refs = (b"\x11" * 32,) if at_thread else (b"\x22" * 32,)
    data = _signed_comment(kind=int(Kind.MODERATE), refs=refs, payload=payload)
    assert _reason(data) == "bad-field"


def test_bad_field_thread_kind() -> None:
    def thread(thread: object, refs: object, payload: object) -> bytes:
        return _signed_comment(
            kind=int(Kind.THREAD), thread=thread, refs=refs, deps=(), payload=payload
        )

    assert _reason(thread(None, (), ("", None, None))) == "bad-field"  # neither title nor url
    assert _reason(thread(b"\x11" * 32, (), ("t", None, None))) == "bad-field"
    assert _reason(thread(None, (b"\x11" * 32,), ("t", None, None))) == "bad-field"
    assert _reason(thread(None, (), ("t", "   ", None))) == "bad-field"  # blank url
    assert decode_operation(thread(None, (), ("t", None, None))).kind is Kind.THREAD


def test_bad_field_signature_shape() -> None:
    unsigned = comment_fields(ALICE)
    assert _reason(encode((*unsigned, b"\x00" * 63))) == "bad-field"
    assert _reason(encode((*unsigned, "x" * 64))) == "bad-field"
    assert _reason(encode((*unsigned, None))) == "bad-field"


@pytest.mark.parametrize(
    ("payload", "label"),
    [
        (("a\x00b",), "NUL"),
        (("bell\x07",), "BEL"),
        (("esc \x1b[31m red",), "ANSI escape"),
        (("carriage\rreturn",), "CR"),
        (("del\x7f",), "DEL"),
        (("next line\x85",), "C1 NEL"),
        (("csi\x9b",), "C1 CSI"),
        (("e\u0301",), "decomposed e + acute (not NFC)"),
        (("\u212b",), "angstrom sign (NFC is U+00C5)"),
        (("\ufb01 ok",), "ligature is NFC"),
    ],
)
def test_bad_text_in_body(payload: tuple[str], label: str) -> None:
    data = _signed_comment(payload=payload)
    if label == "ligature is NFC":  # compatibility characters are NFC: only NFKC would change them
        assert decode_operation(data).payload == CommentPayload(body=payload[0])
        return
    assert _reason(data) == "bad-text", label


def test_bad_text_single_line_fields() -> None:
    thread = _signed_comment(
        kind=int(Kind.THREAD), thread=None, refs=(), deps=(), payload=("two\nlines", None, None)
    )
    assert _reason(thread) == "bad-text"
    react = _signed_comment(kind=int(Kind.REACT), refs=(b"\x22" * 32,), payload=("+1 ",))
    assert _reason(react) == "bad-text"
    react_tab = _signed_comment(kind=int(Kind.REACT), refs=(b"\x22" * 32,), payload=("\t",))
    assert _reason(react_tab) == "bad-text"


def test_oversize_body() -> None:
    assert _reason(_signed_comment(payload=("x" * (MAX_BODY_BYTES + 1),))) == "oversize"
    # 3 bytes per character in UTF-8: under the limit in characters, over it in bytes
    body = "€" * (MAX_BODY_BYTES // 3 + 1)
    assert len(body) < MAX_BODY_BYTES
    assert _reason(_signed_comment(payload=(body,))) == "oversize"


def test_oversize_total() -> None:
    data = _signed_comment(payload=("x" * (MAX_OPERATION_BYTES + 10),))
    assert len(data) > MAX_OPERATION_BYTES
    assert _reason(data) == "oversize"
    assert _reason(b"\x00" * (MAX_OPERATION_BYTES + 1)) == "oversize"


def test_oversize_deps() -> None:
    deps = tuple(sorted(hashlib.sha256(bytes([i])).digest() for i in range(MAX_DEPS + 1)))
    assert _reason(_signed_comment(deps=deps)) == "oversize"


def test_oversize_short_fields() -> None:
    profile = _signed_comment(
        kind=int(Kind.PROFILE), thread=None, refs=(), deps=(), payload=("n" * 65,)
    )
    assert _reason(profile) == "oversize"
    react = _signed_comment(kind=int(Kind.REACT), refs=(b"\x22" * 32,), payload=("r" * 33,))
    assert _reason(react) == "oversize"
    title = _signed_comment(
        kind=int(Kind.THREAD), thread=None, refs=(), deps=(), payload=("t" * 513, None, None)
    )
    assert _reason(title) == "oversize"


@pytest.mark.parametrize(
    ("fields", "label"),
    [
        ({"timestamp_ms": Wide(1_000)}, "small timestamp as uint64"),
        ({"timestamp_ms": Raw(b"\xce" + (1_000).to_bytes(4, "big"))}, "timestamp as uint32"),
        ({"timestamp_ms": Raw(b"\xd3" + (2**32).to_bytes(8, "big"))}, "positive as int64"),
        ({"version": Wide(1)}, "version as uint64"),
        ({"kind": Raw(b"\xcc\x02")}, "kind as uint8"),
        ({"kind": Raw(b"\xd0\x02")}, "kind as int8"),
        ({"payload": (Wide("hello"),)}, "short text as str16"),
        ({"payload": (Raw(b"\xd9\x05hello"),)}, "short text as str8"),
        ({"thread": Wide(b"\x11" * 32)}, "32 bytes as bin16"),
        ({"refs": Wide((b"\x11" * 32,))}, "short array as array16"),
        ({"payload": Wide(("hello",))}, "payload as array16"),
    ],
)
def test_non_canonical_widths(fields: dict[str, object], label: str) -> None:
    data = _signed_comment(**fields)
    assert msgpack.unpackb(data, use_list=False)[1] == 2  # the same values, in a wider form
    assert _reason(data) == "non-canonical", label


@pytest.mark.parametrize("timestamp", [0, 127, 128, 255, 256, 2**16, 2**32 - 1, 2**32, 2**63 - 1])
def test_integer_widths_at_their_boundaries_are_canonical(timestamp: int) -> None:
    assert decode_operation(_signed_comment(timestamp_ms=timestamp)).timestamp_ms == timestamp


def test_non_canonical_array32() -> None:
    unsigned = comment_fields(ALICE)
    signature = ALICE.sign(OP_SIGNING_DOMAIN + op_id_of(unsigned)).signature
    array32 = b"\xdd\x00\x00\x00\x09" + encode((*unsigned, signature))[1:]
    assert _reason(array32) == "non-canonical"


@pytest.mark.parametrize(
    "deps",
    [
        (b"\x02" * 32, b"\x01" * 32),
        (b"\x01" * 32, b"\x01" * 32),
    ],
    ids=["unsorted", "repeated"],
)
def test_unsorted_or_repeated_deps_are_refused(deps: tuple[bytes, ...]) -> None:
    """SPEC §5: deps not strictly ascending is `bad-field` (not `non-canonical`: the decoded
    values themselves break a rule, whatever their byte form)."""
    assert _reason(_signed_comment(deps=deps)) == "bad-field"


def test_bad_signature_flipped_bit() -> None:
    data = bytearray(_signed_comment())
    data[-10] ^= 0x04
    assert _reason(bytes(data)) == "bad-signature"


def test_bad_signature_from_another_key() -> None:
    unsigned = comment_fields(ALICE)  # claims Alice wrote it
    assert _reason(sign_fields(BOB, unsigned)) == "bad-signature"


def test_bad_signature_without_domain() -> None:
    unsigned = comment_fields(ALICE)
    signature = ALICE.sign(op_id_of(unsigned)).signature
    assert _reason(encode((*unsigned, signature))) == "bad-signature"


def test_bad_signature_of_another_operation() -> None:
    other = EVERY_KIND["reply"]
    assert _reason(encode((*comment_fields(ALICE), other.signature))) == "bad-signature"


def test_bad_signature_zero_and_small_order_key() -> None:
    fields = list(comment_fields(ALICE))
    fields[2] = b"\x00" * 32  # a small-order point: no signature may verify under it
    assert _reason(encode((*fields, b"\x00" * 64))) == "bad-signature"
    fields[2] = b"\x01" + b"\x00" * 31  # the neutral element
    assert _reason(encode((*fields, b"\x01" + b"\x00" * 63))) == "bad-signature"


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (b"", "empty"),
        (b"\xc1", "reserved byte"),
        (b"\x99", "array header only"),
        (b"\x93\x01\x02", "truncated array"),
        (encode(("x",)) + b"\x00", "trailing bytes"),
        (encode((1, 2, 3, 4, 5, 6, 7, 8)), "arity 8"),
        (encode(tuple(range(10))), "arity 10"),
        (msgpack.packb({"version": 1}), "map"),
        (msgpack.packb(1.5), "float"),
        (msgpack.packb(True), "bool"),
        (msgpack.packb(None), "nil"),
        (msgpack.packb("text"), "text"),
        (b"\xd4\x01\x00", "extension type"),
    ],
)
def test_malformed(data: bytes, label: str) -> None:
    assert _reason(data) == "malformed", label


def test_malformed_trailing_bytes_after_valid_operation() -> None:
    op = EVERY_KIND["reply"]
    assert _reason(op.encoded + b"\x00") == "malformed"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"version": 1.0}, "unknown-version"),
        ({"version": True}, "unknown-version"),
        ({"kind": 2.0}, "unknown-kind"),
        ({"kind": True}, "unknown-kind"),
        ({"timestamp_ms": 1.5}, "bad-field"),
        ({"timestamp_ms": False}, "bad-field"),
        ({"payload": (1.5,)}, "bad-field"),
        ({"payload": (True,)}, "bad-field"),
        ({"refs": {"a": 1}}, "bad-field"),
        ({"payload": {"body": "x"}}, "bad-field"),
        ({"deps": Raw(b"\xc7\x00\x05")}, "bad-field"),
    ],
)
def test_floats_bools_maps_and_extensions_inside_fields(
    fields: dict[str, object], reason: str
) -> None:
    """Rejected at the field that holds them (the reason names the field's rule)."""
    assert _reason(_signed_comment(**fields)) == reason


@pytest.mark.parametrize(
    ("kind", "refs", "payload", "label"),
    [
        (Kind.EDIT, (b"\x11" * 32,), ("x",), "edit of the thread"),
        (Kind.RETRACT, (b"\x11" * 32,), (), "retract of the thread"),
        (Kind.REACT, (b"\x11" * 32,), ("+1",), "reaction to the thread"),
        (Kind.MODERATE, (b"\x11" * 32,), (int(ModAction.HIDE), None, ""), "hide the thread"),
        (Kind.MODERATE, (b"\x22" * 32,), (int(ModAction.CLOSE), None, ""), "close a comment"),
        (
            Kind.MODERATE,
            (b"\x22" * 32,),
            (int(ModAction.ADD_MODERATOR), b"\x01" * 32, ""),
            "add at comment",
        ),
    ],
)
def test_bad_reference(
    kind: Kind, refs: tuple[bytes, ...], payload: tuple[object, ...], label: str
) -> None:
    assert (
        _reason(_signed_comment(kind=int(kind), refs=refs, payload=payload)) == "bad-reference"
    ), label


def test_errors_are_typed() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_operation(b"\xc1")
    error = caught.value
    assert isinstance(error, InvalidOperation)
    assert isinstance(error, ValueError)
    assert error.http_status == 422
    assert error.to_dict() == {"code": "malformed", "message": error.message}


@pytest.mark.parametrize("code", range(0x100))
def test_every_character_below_256_is_judged_as_spec_section_3_says(code: int) -> None:
    # ASCII text is checked with byte tables, other text with a regular expression: both must
    # refuse exactly C0 controls but tab and newline (bodies), all C0 (single lines), DEL and C1.
    char = chr(code)
    control = code < 0x20 or 0x7F <= code <= 0x9F
    body_ok = not control or char in "\t\n"
    for text in (f"a{char}b", f"é{char}b"):  # ASCII, then the same with a non-ASCII letter
        comment = CommentPayload(body=text)
        if body_ok:
            make_operation(ALICE, comment, timestamp_ms=TS, thread=THREAD, refs=(THREAD,))
        else:
            with pytest.raises(InvalidOperation) as caught:
                make_operation(ALICE, comment, timestamp_ms=TS, thread=THREAD, refs=(THREAD,))
            assert caught.value.reason == "bad-text"
        profile = ProfilePayload(name=text)
        if not control:
            make_operation(ALICE, profile, timestamp_ms=TS)
        else:
            with pytest.raises(InvalidOperation) as caught:
                make_operation(ALICE, profile, timestamp_ms=TS)
            assert caught.value.reason == "bad-text"


def test_verify_signature_refuses_wrong_lengths_with_a_typed_error() -> None:
    op = EVERY_KIND["edit"]
    for author, op_id, signature in (
        (op.author[:31], op.id, op.signature),
        (op.author + b"\x00", op.id, op.signature),
        (op.author, op.id[:31], op.signature),
        (op.author, op.id, op.signature[:63]),
        (op.author, op.id, op.signature + b"\x00"),
    ):
        with pytest.raises(InvalidOperation) as caught:
            verify_signature(author, op_id, signature)
        assert caught.value.reason == "bad-signature"


def test_decoding_from_many_threads_at_once_gives_every_operation_back() -> None:
    # Decoding re-encodes with packers from a shared pool; threads must never share one.
    ops = [
        make_operation(
            ALICE,
            CommentPayload(body=f"comment {i} " + "x" * (i % 300)),
            timestamp_ms=TS + i,
            thread=THREAD,
            refs=(THREAD,),
        )
        for i in range(400)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        singly = list(pool.map(lambda op: decode_operation(op.encoded), ops * 5))
        batches = [ops[i : i + 50] for i in range(0, len(ops), 50)] * 5
        batched = list(pool.map(lambda b: decode_operations([op.encoded for op in b]), batches))
    assert singly == ops * 5
    assert [op for batch in batched for op in batch] == ops * 5
