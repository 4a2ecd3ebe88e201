"""Hostile input at every boundary of a node, measured: shared by ``scripts/fuzz_boundaries.py``
(the campaign: 100,000 inputs per boundary and coverage-guided runs) and ``tests/fuzz`` (a small,
deterministic sample that CI runs).

Each boundary turns one input into exactly one of: accepted, rejected with a typed error (counted
by its reason code), a *crash* (any other exception, an HTTP 500, a CLI "internal error" or
traceback) or a *violation* (an invariant broken: something invalid accepted, stored or
forwarded, something valid lost, two decoders disagreeing). A run passes when crashes and
violations are both 0.

Inputs are structured mutations of valid ones (`mutate_bytes`: flip, set, insert, delete,
truncate, extend, splice; and per boundary: re-encoding a field non-canonically, swapping fields
between operations, replaying an operation or frame from another thread or conversation, with the
signature made good again so that the rule behind it is reached) and, for the coverage-guided
runs, whatever the fuzzer makes of the same seeds (each boundary's ``check_bytes``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import traceback
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import msgpack
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from p2pcomments.core.ops import (
    MAX_DEPS,
    OP_SIGNING_DOMAIN,
    PAGE_THREAD_SIGNATURE,
    CommentPayload,
    EditPayload,
    ModAction,
    ModeratePayload,
    Operation,
    ProfilePayload,
    ReactPayload,
    RetractPayload,
    ThreadPayload,
    claimed_id,
    decode_operation,
    decode_operations,
    is_page_thread,
    load_stored_operation,
    make_operation,
)
from p2pcomments.core.reconcile import SortedItems
from p2pcomments.core.replica import Rejected, Replica
from p2pcomments.core.sync_messages import (
    SyncError,
    decode_message,
    encode_done,
    encode_error,
    encode_hello,
    encode_ops,
    encode_reconcile,
    encode_sketch,
    encode_sketch_ask,
    encode_want,
    encode_want_all,
    encode_want_short,
)
from p2pcomments.core.sync_protocol import OpsReceived, SyncLimits, SyncSession
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.errors import InvalidOperation, P2PCommentsError
from p2pcomments.net.errors import GossipPayloadError
from p2pcomments.net.gossip_payload import decode_batch, encode_batch

try:  # an independent msgpack implementation, for the differential checks
    import umsgpack
except ImportError:  # pragma: no cover - libp2p depends on it
    umsgpack = None

__all__ = ["BOUNDARIES", "Tally", "mutate_bytes"]

KEYS = tuple(SigningKey(bytes([0x40 + n]) * 32) for n in range(3))
KEY_BY_AUTHOR = {bytes(key.verify_key): key for key in KEYS}
T0 = 1_700_000_000_000
MAX_EXAMPLES = 12  # examples kept per crash or violation kind


# -- the tally -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Finding:
    kind: str
    detail: str
    example: str


@dataclass(slots=True)
class Tally:
    """What one boundary made of its inputs."""

    boundary: str
    tried: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    crash_count: int = 0
    violation_count: int = 0
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    gaps: Counter[str] = field(default_factory=Counter)
    """Known limits, counted and printed but not failures (each is explained where counted)."""
    notes: Counter[str] = field(default_factory=Counter)
    """Checks beyond the verdict that passed, counted (what repair found and fixed...)."""

    def accept(self) -> None:
        self.accepted += 1

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def crash(self, error: BaseException | str, example: object) -> None:
        self.crash_count += 1
        if isinstance(error, BaseException):
            frames = traceback.extract_tb(error.__traceback__)
            ours = [f for f in frames if "/p2pcomments/" in f.filename] or frames[-1:]
            place = f" at {ours[-1].filename.rpartition('/p2pcomments/')[2]}:{ours[-1].lineno}"
            place = place if ours else ""
            key = f"crash {type(error).__name__}{place}"
            detail = f"{type(error).__name__}: {error}"[:300]
        else:
            key, detail = f"crash {error[:80]}", error[:300]
        self._keep(key, detail, example)

    def violate(self, what: str, example: object) -> None:
        self.violation_count += 1
        self._keep(f"violation {what}", what, example)

    def _keep(self, key: str, detail: str, example: object) -> None:
        kept = self.findings.setdefault(key, [])
        if len(kept) < MAX_EXAMPLES:
            text = example.hex() if isinstance(example, bytes) else repr(example)
            kept.append(Finding(kind=key, detail=detail, example=text[:400]))

    @property
    def ok(self) -> bool:
        return self.crash_count == 0 and self.violation_count == 0

    def merge(self, other: Tally) -> None:
        self.tried += other.tried
        self.accepted += other.accepted
        self.rejected.update(other.rejected)
        self.gaps.update(other.gaps)
        self.notes.update(other.notes)
        self.crash_count += other.crash_count
        self.violation_count += other.violation_count
        for key, kept in other.findings.items():
            mine = self.findings.setdefault(key, [])
            mine.extend(kept[: MAX_EXAMPLES - len(mine)])

    def to_json(self) -> dict[str, Any]:
        return {
            "boundary": self.boundary,
            "tried": self.tried,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "crashes": self.crash_count,
            "violations": self.violation_count,
            "gaps": dict(self.gaps),
            "notes": dict(self.notes),
            "findings": {
                key: [[f.detail, f.example] for f in kept] for key, kept in self.findings.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        tally = cls(boundary=data["boundary"], tried=data["tried"], accepted=data["accepted"])
        tally.rejected.update(data["rejected"])
        tally.crash_count, tally.violation_count = data["crashes"], data["violations"]
        tally.gaps.update(data.get("gaps", {}))
        tally.notes.update(data.get("notes", {}))
        for key, kept in data["findings"].items():
            tally.findings[key] = [Finding(kind=key, detail=d, example=e) for d, e in kept]
        return tally

    def summary(self) -> str:
        """A readable account of the failures, for an assertion message."""
        lines = [f"{self.boundary}: {self.crash_count} crashes, {self.violation_count} violations"]
        for key, kept in self.findings.items():
            lines.append(f"  {key}: {kept[0].detail}  e.g. {kept[0].example[:200]}")
        return "\n".join(lines)


PROGRESS: list[Callable[[Tally], None]] = []
"""Called now and then with a boundary's tally while it runs (the campaign prints progress)."""


def _tick(tally: Tally) -> None:
    if PROGRESS and tally.tried % 250 == 0:
        for report in PROGRESS:
            report(tally)


def reason_of(error: BaseException) -> str:
    """``Type:reason`` of a typed error; crashes never get here."""
    reason = getattr(error, "reason", None)
    return f"{type(error).__name__}:{reason}" if reason else type(error).__name__


# -- byte-level mutations --------------------------------------------------------------------------

_INTERESTING = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\x90",
    b"\x99",
    b"\xc0",
    b"\xc1",
    b"\xc2",
    b"\xc3",
    b"\xc4\x40",
    b"\xc5\xff\xff",
    b"\xc6\xff\xff\xff\xff",
    b"\xca\x00\x00\x00\x00",
    b"\xcb" + b"\x7f\xf8" + b"\x00" * 6,
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
    b"\xd4\x01\x00",
    b"\xdc\xff\xff",
    b"\xdd\xff\xff\xff\xff",
    b"\xde\x00\x01",
    b"\xdf\xff\xff\xff\xff",
    b"\xd9\x05hello",
    b"\xa3\xed\xa0\x80",  # a str of a UTF-8-encoded lone surrogate
    b"\xa2\xc3\x28",  # a str of invalid UTF-8
)


def mutate_bytes(rng: random.Random, data: bytes, others: Sequence[bytes] = ()) -> bytes:
    """One to three random byte-level edits of ``data``."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        choice = rng.randrange(11)
        position = rng.randrange(len(out) + 1)
        if choice == 0 and out:  # flip a bit
            index = min(position, len(out) - 1)
            out[index] ^= 1 << rng.randrange(8)
        elif choice == 1 and out:  # set a byte
            out[min(position, len(out) - 1)] = rng.randrange(256)
        elif choice == 2:  # insert random bytes
            out[position:position] = rng.randbytes(rng.choice((1, 1, 2, 4, 16)))
        elif choice == 3 and out:  # delete a range
            out[position : position + rng.choice((1, 1, 2, 8, 64))] = b""
        elif choice == 4:  # truncate
            del out[position:]
        elif choice == 5:  # extend
            out += rng.randbytes(rng.choice((1, 2, 8, 100)))
        elif choice == 6:  # an interesting msgpack token, inserted or overwriting
            token = rng.choice(_INTERESTING)
            end = position if rng.random() < 0.5 else position + len(token)
            out[position:end] = token
        elif choice == 7 and others:  # splice with another valid input
            other = rng.choice(others)
            cut = rng.randrange(len(other) + 1)
            out[position:] = other[cut:]
        elif choice == 8 and out:  # duplicate a chunk
            chunk = out[position : position + rng.randrange(1, 64)]
            out[position:position] = chunk
        elif choice == 9 and len(out) > 1:  # swap two bytes
            i, j = rng.randrange(len(out)), rng.randrange(len(out))
            out[i], out[j] = out[j], out[i]
        else:  # repeat the input (a replay glued to itself)
            out += out[: rng.randrange(len(out) + 1)]
    return bytes(out)


# -- a corpus of valid operations ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Corpus:
    ops: tuple[Operation, ...]
    threads: tuple[Operation, ...]
    comments: tuple[Operation, ...]

    @property
    def encoded(self) -> tuple[bytes, ...]:
        return tuple(op.encoded for op in self.ops)


@cache
def corpus() -> Corpus:
    """Two threads with comments, replies, edits, reactions, moderation, a retraction and
    profiles, by three authors: one operation of every kind and payload shape, all valid in
    order."""
    owner, other, third = KEYS
    ops: list[Operation] = []
    now = [T0]

    def add(key: SigningKey, payload: Any, *, thread: Operation | None = None,
            ref: Operation | None = None, deps: Sequence[Operation] = ()) -> Operation:  # fmt: skip
        now[0] += 1000
        op = make_operation(
            key,
            payload,
            timestamp_ms=now[0],
            thread=None if thread is None else thread.id,
            refs=() if ref is None else (ref.id,),
            deps=tuple(d.id for d in deps),
        )
        ops.append(op)
        return op

    threads, comments = [], []
    for n, (title, url, site) in enumerate(
        (("Hello", "https://blog.example/hello", "blog.example"), ("Ünïcode ✓", None, None))
    ):
        thread = add(owner, ThreadPayload(title=title, url=url, site=site))
        threads.append(thread)
        first = add(other, CommentPayload(body=f"First!\nline two {n}"), thread=thread, ref=thread)
        reply = add(
            third, CommentPayload(body="a reply 👍"), thread=thread, ref=first, deps=[first]
        )
        second = add(owner, CommentPayload(body="tab\there"), thread=thread, ref=thread)
        comments += [first, reply, second]
        add(other, EditPayload(body="First, edited"), thread=thread, ref=first, deps=[reply])
        add(third, ReactPayload(reaction="👍"), thread=thread, ref=first, deps=[first])
        add(owner, ReactPayload(reaction=""), thread=thread, ref=reply, deps=[reply])
        hide = ModeratePayload(action=ModAction.HIDE, reason="spam")
        add(owner, hide, thread=thread, ref=reply, deps=[reply])
        add(owner, ModeratePayload(action=ModAction.UNHIDE), thread=thread, ref=reply)
        add(owner, RetractPayload(), thread=thread, ref=second, deps=[second])
        appoint = ModeratePayload(action=ModAction.ADD_MODERATOR, subject=bytes(other.verify_key))
        add(owner, appoint, thread=thread, ref=thread)
        add(
            owner, ModeratePayload(action=ModAction.CLOSE, reason="done"), thread=thread, ref=thread
        )
        add(owner, ModeratePayload(action=ModAction.REOPEN), thread=thread, ref=thread)
    for n, key in enumerate(KEYS):
        add(key, ProfilePayload(name=f"author {n}"))
    return Corpus(ops=tuple(ops), threads=tuple(threads), comments=tuple(comments))


@cache
def far_future() -> tuple[Operation, ...]:
    """A thread and a comment at the last timestamps there are (2^63 - 2 and 2^63 - 1 ms): valid,
    and past every year a date can show."""
    key = KEYS[2]
    payload = ThreadPayload(title="Far", url="https://far.example/post", site="far.example")
    thread = make_operation(key, payload, timestamp_ms=2**63 - 2)
    comment = make_operation(
        key,
        CommentPayload(body="from the far future"),
        timestamp_ms=2**63 - 1,
        thread=thread.id,
        refs=(thread.id,),
    )
    return (thread, comment)


# -- independent checks of an accepted operation ------------------------------------------------


@lru_cache(maxsize=1 << 16)  # a pure function, called on the same stored bytes again and again
def independent_problem(data: bytes) -> str | None:
    """What a second implementation finds wrong with bytes the decoder accepted, or None:
    canonical by another msgpack library, NFC text, the signature by PyNaCl's own verify."""
    if umsgpack is not None:
        try:
            fields = umsgpack.unpackb(data)
        except Exception as error:
            return f"umsgpack can't read it: {error}"
        if not isinstance(fields, list) or len(fields) != 9:
            return "not an array of 9 for umsgpack"
        if umsgpack.packb(fields) != data:
            return "not canonical for umsgpack"
        unsigned = umsgpack.packb(fields[:8])
    else:  # pragma: no cover
        fields = list(msgpack.unpackb(data, raw=False))
        unsigned = msgpack.packb(fields[:8], use_bin_type=True)

    def texts(value: object) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, list | tuple):
            for item in value:
                yield from texts(item)

    for text in texts(fields):
        if unicodedata.normalize("NFC", text) != text:
            return "text not in NFC"
    op_id = hashlib.sha256(unsigned).digest()
    if bytes(fields[8]) == PAGE_THREAD_SIGNATURE:
        # SPEC §10.2: a page thread (all of it follows from owner and URL) is not signed.
        try:
            unsigned_op = decode_operation(data, verify=False)
        except InvalidOperation:
            return "zero signature on bytes that do not decode"
        return None if is_page_thread(unsigned_op) else "zero signature on a signed kind"
    try:
        VerifyKey(bytes(fields[2])).verify(OP_SIGNING_DOMAIN + op_id, bytes(fields[8]))
    except (BadSignatureError, ValueError, TypeError):
        return "signature does not verify with PyNaCl"
    return None


# -- structured mutations of operations ---------------------------------------------------------


def _pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def _wide(value: object) -> bytes | None:
    """``value`` in a wider msgpack form than the smallest (None if it has none)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return b"\xd3" + value.to_bytes(8, "big", signed=True) if value < 0 else (
            b"\xcf" + value.to_bytes(8, "big")
        )  # fmt: skip
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        return b"\xdb" + len(raw).to_bytes(4, "big") + raw
    if isinstance(value, bytes):
        return b"\xc6" + len(value).to_bytes(4, "big") + value
    if isinstance(value, tuple | list):
        return b"\xdd" + len(value).to_bytes(4, "big") + b"".join(_pack(v) for v in value)
    return None


def encode_fields(fields: Sequence[object], wide_index: int | None = None) -> bytes:
    """The msgpack array of ``fields``, one of them (``wide_index``) in a wider form if it has
    one. Elements that are `bytes` instances wrapped as ``("raw", b)`` are spliced verbatim."""
    parts = []
    for index, value in enumerate(fields):
        if isinstance(value, _Raw):
            parts.append(value.data)
            continue
        wide = _wide(value) if index == wide_index else None
        parts.append(wide if wide is not None else _pack(value))
    count = len(fields)
    header = bytes([0x90 | count]) if count < 16 else b"\xdc" + count.to_bytes(2, "big")
    return header + b"".join(parts)


@dataclass(frozen=True, slots=True)
class _Raw:
    data: bytes


def sign_unsigned(key: SigningKey, unsigned_bytes: bytes) -> bytes:
    """Signed operation bytes for an unsigned form given as bytes (8-array header included)."""
    signature = key.sign(OP_SIGNING_DOMAIN + hashlib.sha256(unsigned_bytes).digest()).signature
    return b"\x99" + unsigned_bytes[1:] + _pack(signature)


def _random_value(rng: random.Random, like: object) -> object:
    choice = rng.randrange(14)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice((True, False))
    if choice == 2:
        return rng.choice((-1, 0, 1, 2, 7, 8, 255, 2**31, 2**63 - 1, 2**64 - 1, -(2**63)))
    if choice == 3:
        return rng.random() * 1e9
    if choice == 4:
        return rng.randbytes(rng.choice((0, 1, 31, 32, 33, 64)))
    if choice == 5:
        return rng.choice(("", " ", "x", "a\u0301", "\x00", "\u202e", "😀" * 10, "x" * 600))
    if choice == 6:
        return ()
    if choice == 7:
        return tuple(rng.randbytes(32) for _ in range(rng.choice((1, 2, 17))))
    if choice == 8:
        return {"k": 1}
    if choice == 9:
        return _Raw(rng.choice(_INTERESTING))
    if choice == 10 and isinstance(like, int):
        return like + rng.choice((-1, 1, 2**40))
    if choice == 11 and isinstance(like, bytes) and like:
        return like[:-1] + bytes([like[-1] ^ 1])
    if choice == 12 and isinstance(like, tuple):
        return (*like, rng.randbytes(32)) if rng.random() < 0.5 else like[:-1]
    return like


def _payload_variant(rng: random.Random, kind: int, payload: tuple[Any, ...]) -> object:
    """A payload that breaks a text or shape rule of its kind (or keeps it, now and then)."""
    texts = (
        "",
        " padded ",
        "e\u0301",  # not NFC
        "bell\x07",
        "line\nbreak",
        "\u0085next",
        "x" * 40_000,
        "😀" * 9,
        "ok",
    )
    if not payload or rng.random() < 0.2:
        return tuple(_random_value(rng, None) for _ in range(rng.randrange(4)))
    items = list(payload)
    index = rng.randrange(len(items))
    if kind == 6 and index == 0:
        items[0] = rng.choice((0, 7, 1, 3, 5, -1, 255))
    elif kind == 2 and index == 0 and rng.random() < 0.5:  # a comment's provenance slot
        items.append(
            rng.choice(
                (
                    None,
                    ("wordpress", "12", "Ann", None, T0, 1),
                    ("", "", "", "", -1, 9),
                    ("disqus", "1", "B", "https://x.example", T0, 2, "extra"),
                    "provenance",
                )
            )
        )
    else:
        items[index] = rng.choice(texts) if rng.random() < 0.7 else _random_value(rng, None)
    return tuple(items)


def structured_op_mutation(rng: random.Random, ops: Sequence[Operation]) -> bytes:
    """A signed operation that differs from a valid one by a rule, not only by its signature:
    a field changed, swapped in from another operation, re-encoded in a wider form, or a
    replay into another thread; re-signed by the author's key (known for every corpus author)."""
    base = rng.choice(ops)
    fields = list(msgpack.unpackb(base.encoded, raw=False, use_list=False)[:8])
    choice = rng.randrange(8)
    wide = None
    if choice == 0:  # one field changed
        index = rng.randrange(8)
        fields[index] = _random_value(rng, fields[index])
    elif choice == 1:  # a field swapped in from another operation
        other = list(msgpack.unpackb(rng.choice(ops).encoded, raw=False, use_list=False)[:8])
        index = rng.randrange(8)
        fields[index] = other[index]
    elif choice == 2:  # non-canonical re-encoding of one field
        wide = rng.randrange(8)
    elif choice == 3:  # the payload breaks a rule of its kind
        fields[7] = _payload_variant(rng, fields[1], fields[7])
    elif choice == 4:  # replay into another thread (same reference)
        fields[3] = rng.choice([op.id for op in ops if op.kind == 1] + [rng.randbytes(32)])
    elif choice == 5:  # deps broken: unsorted, repeated, too many
        deps = sorted(rng.randbytes(32) for _ in range(rng.choice((2, 3, MAX_DEPS + 1))))
        if rng.random() < 0.5:
            deps.reverse()
        else:
            deps[1] = deps[0]
        fields[5] = tuple(deps)
    elif choice == 6:  # timestamps at and past the edges
        fields[6] = rng.choice((0, 2**63 - 1, 2**63, 2**64 - 1, -1))
    else:  # kind changed (payload shape of another kind)
        fields[1] = rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 8, 127))
    try:
        unsigned = encode_fields(fields, wide)
    except (TypeError, ValueError, OverflowError):
        unsigned = encode_fields([*fields[:7], ()])
    author = fields[2] if isinstance(fields[2], bytes) else b""
    key = KEY_BY_AUTHOR.get(author, rng.choice(KEYS))
    signed = sign_unsigned(key, unsigned)
    return mutate_bytes(rng, signed) if rng.random() < 0.1 else signed


# -- boundary: the operation decoder -------------------------------------------------------------


class OpDecoderBoundary:
    """`decode_operation` on arbitrary bytes: an Operation or an `InvalidOperation` with a
    reason; what it accepts passes an independent check and agrees with `decode_operations`,
    `claimed_id` and `load_stored_operation`; what it accepts is then applied to a replica
    holding the valid history, which must not raise; no valid operation is rejected."""

    name = "op-decoder"

    def __init__(self) -> None:
        self.corpus = corpus()
        self.seeds = self.corpus.encoded
        self.replica = Replica()
        self.replica.merge(self.corpus.ops)
        self.tally = Tally(self.name)

    def generate(self, rng: random.Random) -> bytes:
        roll = rng.random()
        if roll < 0.02:
            return rng.choice(self.seeds)
        if roll < 0.5:
            return mutate_bytes(rng, rng.choice(self.seeds), self.seeds)
        if roll < 0.95:
            return structured_op_mutation(rng, self.corpus.ops)
        return rng.randbytes(rng.randrange(200))

    def check_bytes(self, data: bytes) -> None:
        tally = self.tally
        tally.tried += 1
        try:
            try:
                op = decode_operation(data)
            except InvalidOperation as error:
                tally.reject(reason_of(error))
                self._check_rejection(data, error)
                return
            tally.accept()
            self._check_accepted(data, op)
        except Exception as error:
            tally.crash(error, data)

    def _check_rejection(self, data: bytes, error: InvalidOperation) -> None:
        batch = decode_operations([data])[0]
        if not isinstance(batch, InvalidOperation) or batch.reason != error.reason:
            self.tally.violate("decode_operations disagrees on a rejection", data)
        if data in self.seeds:
            self.tally.violate("a valid operation was rejected", data)
        if error.reason in ("non-canonical", "bad-signature") and independent_problem(data) is None:
            self.tally.violate(f"rejected as {error.reason}, fine for another decoder", data)

    def _check_accepted(self, data: bytes, op: Operation) -> None:
        tally = self.tally
        problem = independent_problem(data)
        if problem is not None:
            tally.violate(f"accepted, but {problem}", data)
        batch = decode_operations([data])[0]
        if not isinstance(batch, Operation) or batch.id != op.id:
            tally.violate("decode_operations disagrees on an accepted operation", data)
        if op.encoded != data or claimed_id(data) != op.id:
            tally.violate("accepted operation's bytes or claimed id differ", data)
        stored = load_stored_operation(data)
        if stored.id != op.id or stored.payload != op.payload or stored.parents != op.parents:
            tally.violate("load_stored_operation reads another operation", data)
        result = self.replica.apply(op)
        if isinstance(result.outcome, Rejected):
            tally.reject(f"replica:{result.outcome.reason}")

    def finish(self) -> None:
        for op in self.corpus.ops:
            if op.id not in self.replica:
                self.tally.violate("a valid operation left the replica", op.encoded)


# -- boundary: gossip batch payloads ------------------------------------------------------------


class GossipPayloadBoundary:
    """`decode_batch` on arbitrary payloads; an accepted payload re-encodes to itself, and its
    operations go through `decode_operations` into a replica (as the node's gossip handler
    does): only operations the decoder accepts are applied, and every valid operation of an
    accepted batch is applied or already held, whatever the other elements are."""

    name = "gossip-payload"

    def __init__(self) -> None:
        self.corpus = corpus()
        self.ops = self.corpus.encoded
        self.valid = set(self.ops)
        self.seeds = tuple(
            encode_batch(self.ops[start : start + size])
            for start, size in ((0, 1), (0, 5), (3, 17), (0, len(self.ops)))
        )
        self.replica = Replica()
        self.tally = Tally(self.name)

    def generate(self, rng: random.Random) -> bytes:
        roll = rng.random()
        if roll < 0.4:
            return mutate_bytes(rng, rng.choice(self.seeds), self.seeds)
        # structured: a batch of valid operations, mutated ones and junk, then re-encoded
        # canonically or not
        items: list[Any] = []
        for _ in range(rng.choice((1, 2, 3, 8, 16, 40))):
            pick = rng.random()
            if pick < 0.5:
                items.append(rng.choice(self.ops))
            elif pick < 0.75:
                items.append(structured_op_mutation(rng, self.corpus.ops))
            elif pick < 0.9:
                items.append(mutate_bytes(rng, rng.choice(self.ops)))
            else:
                items.append(_random_value(rng, b""))
        if rng.random() < 0.8:
            try:
                return _pack([item for item in items if not isinstance(item, _Raw)])
            except (TypeError, ValueError, OverflowError):
                return _pack([rng.choice(self.ops)])
        try:  # non-canonical: a wide header for the array or for one element
            wide_at = rng.randrange(len(items))
            body = b"".join(
                (_wide(item) or _pack(item)) if index == wide_at else _pack(item)
                for index, item in enumerate(items)
                if not isinstance(item, _Raw)
            )
        except (TypeError, ValueError, OverflowError):
            body = _pack(rng.choice(self.ops))
            items = [None]
        return b"\xdc" + len(items).to_bytes(2, "big") + body

    def check_bytes(self, data: bytes) -> None:
        tally = self.tally
        tally.tried += 1
        try:
            try:
                ops = decode_batch(data)
            except GossipPayloadError as error:
                tally.reject(reason_of(error))
                return
            tally.accept()
            if encode_batch(ops) != data:
                tally.violate("accepted payload does not re-encode to itself", data)
            for item, decoded in zip(ops, decode_operations(ops), strict=True):
                if isinstance(decoded, InvalidOperation):
                    tally.reject(f"element {reason_of(decoded)}")
                    if item in self.valid:
                        tally.violate("a valid operation in a batch was rejected", item)
                    continue
                if independent_problem(item) is not None:
                    tally.violate("an invalid element was accepted", item)
                outcome = self.replica.apply(decoded).outcome
                if isinstance(outcome, Rejected):
                    tally.reject(f"replica:{outcome.reason}")
                    if item in self.valid:
                        tally.violate("the replica rejected a valid operation", item)
        except Exception as error:
            tally.crash(error, data)

    def finish(self) -> None:
        for op_id, op in ((op.id, op) for op in self.corpus.ops):
            stored = self.replica.get(op_id)
            if stored is not None and stored.encoded != op.encoded:
                self.tally.violate("the replica holds other bytes under a valid id", op.encoded)


class _Host:
    """What `GossipIntake` asks of the host, and nothing else: no peer is connected."""

    def is_connected(self, peer: str) -> bool:
        return False


class _Fetcher:
    def __init__(self) -> None:
        self.calls = 0

    def after_ingest(self, peer: str, outcomes: Sequence[Any], *, blame: bool) -> None:
        self.calls += 1


class GossipIntakeBoundary:
    """The node's gossip intake (`net.gossip_intake.GossipIntake`) on a real Node (real
    SQLite): payloads decoded as `Gossip` does, then the pubsub validator, whose True means
    *forward*, then delivery into the Node. A forwarded batch holds only valid operations;
    what the Node stores is only valid operations; every valid operation of a forwarded batch
    is stored (or waits for what it references)."""

    name = "gossip-intake"

    def __init__(self) -> None:
        self.tally = Tally(self.name)
        self.payloads = GossipPayloadBoundary()

    def run(self, n: int, seed: int) -> Tally:
        import trio

        trio.run(self._run, n, seed)
        return self.tally

    async def _run(self, n: int, seed: int) -> None:
        from p2pcomments import open_node
        from p2pcomments.net.config import NetworkConfig
        from p2pcomments.net.gossip_intake import GossipIntake
        from p2pcomments.net.network_statistics import Tally as NetworkTally

        rng = random.Random(seed)
        with tempfile.TemporaryDirectory(prefix="p2pc-fuzz-intake-") as tmp:
            async with open_node(Path(tmp) / "data", create_identity=True) as node:
                intake = GossipIntake(
                    node,
                    _Host(),  # type: ignore[arg-type]
                    NetworkConfig(),
                    _Fetcher(),  # type: ignore[arg-type]
                    NetworkTally(),
                )
                # Half the corpus held already, so that batches mix new, held and invalid.
                await node.ingest(list(corpus().encoded[::2]))
                for _ in range(n):
                    await self._one(node, intake, self.payloads.generate(rng))
                    _tick(self.tally)
                for data in node.export_operations():
                    if independent_problem(data) is not None:
                        self.tally.violate("the node stored an invalid operation", data)

    async def _one(self, node: Any, intake: Any, payload: bytes) -> None:
        tally = self.tally
        tally.tried += 1
        try:
            try:
                ops = decode_batch(payload)
            except GossipPayloadError as error:
                tally.reject(reason_of(error))
                return
            if not intake.validate_batch("peer", ops):
                errors = [e for e in decode_operations(ops) if isinstance(e, InvalidOperation)]
                why = reason_of(errors[0]) if errors else "a thread rule (core's verdict)"
                tally.reject(f"not forwarded: {why}")
                return
            tally.accept()
            for item in ops:
                if independent_problem(item) is not None:
                    tally.violate("a batch with an invalid operation would be forwarded", item)
            await intake.on_batch("topic", "peer", ops)
            for item in ops:
                op_id = claimed_id(item)
                if op_id is None or node.get_operation(op_id) is None:
                    held = op_id is not None and op_id in node.replica.pending()
                    if not held:
                        tally.violate("a valid forwarded operation was not stored", item)
        except Exception as error:
            tally.crash(error, payload)

    def finish(self) -> None:
        pass


# -- boundary: sync messages --------------------------------------------------------------------


@cache
def sync_frames() -> tuple[bytes, ...]:
    """One valid frame of every message type, and every frame of a few real conversations."""
    ops = corpus().encoded
    frames = [
        encode_hello(3, b"\x01" * 16, 1 << 20),
        encode_reconcile(b"\x00\x01\x02"),
        encode_ops(list(ops[:4])),
        encode_want([hashlib.sha256(b"x").digest()]),
        encode_done(),
        encode_error("too-many-rounds"),
        encode_sketch_ask(32),
        encode_sketch(b"\x07" * 40),
        encode_want_short([b"\x01" * 8, b"\x02" * 8]),
        encode_want_all(),
    ]
    for a, b in (
        (slice(0, 20), slice(10, 34)),
        (slice(0, 0), slice(0, 30)),
        (slice(0, 34), slice(0, 33)),
    ):
        frames += [frame for _, frame in _clean_conversation(_side(ops[a]), _side(ops[b]))]
    return tuple(dict.fromkeys(frames))


class _Side:
    def __init__(self, encoded: Sequence[bytes]) -> None:
        self.ops: dict[bytes, bytes] = {}
        for data in encoded:
            op = decode_operation(data)
            self.ops[op.id] = data
        self.items = SortedItems(
            (decode_operation(data, verify=False).timestamp_ms, op_id)
            for op_id, data in self.ops.items()
        )

    def get_encoded(self, op_ids: Sequence[bytes]) -> dict[bytes, bytes]:
        return {i: self.ops[i] for i in op_ids if i in self.ops}

    def take(self, session: SyncSession) -> list[bytes]:
        received = []
        while (event := session.next_event()) is not None:
            assert isinstance(event, OpsReceived)
            received.extend(event.ops)
        return received

    def ingest(self, encoded: Sequence[bytes]) -> list[bytes]:
        """What a node does with received operations: only decodable, signed ones are kept.
        Returns the bytes it refused."""
        refused = []
        for data, decoded in zip(encoded, decode_operations(encoded), strict=True):
            if isinstance(decoded, Operation):
                self.ops.setdefault(decoded.id, data)
            else:
                refused.append(data)
        self.items = SortedItems(
            (load_stored_operation(data).timestamp_ms, op_id) for op_id, data in self.ops.items()
        )
        return refused


def _side(encoded: Sequence[bytes]) -> _Side:
    return _Side(encoded)


def _clean_conversation(a: _Side, b: _Side, **options: Any) -> list[tuple[str, bytes]]:
    initiator = SyncSession(a.items, a, initiator=True, now=0.0, **options)
    responder = SyncSession(b.items, b, initiator=False, now=0.0)
    transcript: list[tuple[str, bytes]] = []
    progress = True
    while progress:
        progress = False
        for name, source, target in (("a", initiator, responder), ("b", responder, initiator)):
            while (frame := source.next_frame()) is not None:
                progress = True
                transcript.append((name, frame))
                if not target.done:
                    target.receive_frame(frame, now=0.0)
    a.ingest(a.take(initiator))
    b.ingest(b.take(responder))
    return transcript


class SyncMessageBoundary:
    """`decode_message` on arbitrary frames: a `SyncMessage` or a `SyncError` marked as the
    peer's fault; what it accepts is canonical for another msgpack library too."""

    name = "sync-message"

    def __init__(self) -> None:
        self.seeds = sync_frames()
        self.tally = Tally(self.name)

    def generate(self, rng: random.Random) -> bytes:
        seed = rng.choice(self.seeds)
        if rng.random() < 0.8:
            return mutate_bytes(rng, seed, self.seeds)
        raw = list(msgpack.unpackb(seed, raw=False))
        index = rng.randrange(len(raw))
        raw[index] = _random_value(rng, raw[index])
        if rng.random() < 0.3:
            raw.append(_random_value(rng, None))
        try:
            return encode_fields(raw, rng.randrange(len(raw)) if rng.random() < 0.3 else None)
        except (TypeError, ValueError, OverflowError):
            return seed

    def check_bytes(self, data: bytes) -> None:
        tally = self.tally
        tally.tried += 1
        try:
            try:
                decode_message(data)
            except SyncError as error:
                tally.reject(reason_of(error))
                if not error.peer_fault:
                    tally.violate("a malformed frame is not marked as the peer's fault", data)
                return
            tally.accept()
            if umsgpack is not None and umsgpack.packb(umsgpack.unpackb(data)) != data:
                tally.violate("accepted frame is not canonical for umsgpack", data)
        except Exception as error:
            tally.crash(error, data)

    def finish(self) -> None:
        pass


# -- boundary: whole sync conversations ----------------------------------------------------------


class SyncConversationBoundary:
    """Two sessions talk through a hostile channel that flips, truncates and extends frames,
    drops, duplicates and reorders them, and replays frames from other conversations. Neither
    session may raise; each ends (at the latest at its deadline) with an ERROR frame for a
    violation; what either side keeps is only operations that verify; then a clean session
    between the same two sides brings both to the union (no valid operation lost)."""

    name = "sync-conversation"

    def __init__(self) -> None:
        self.ops = corpus().encoded
        self.ids = {op.id for op in corpus().ops}
        self.replays = sync_frames()
        self.tally = Tally(self.name)

    def generate(self, rng: random.Random) -> tuple[int, ...]:
        return tuple(rng.randrange(2**32) for _ in range(3))

    def check(self, plan: tuple[int, ...]) -> None:
        """One conversation; ``plan`` seeds the sets and the channel's choices."""
        tally = self.tally
        tally.tried += 1
        rng = random.Random(plan[0])
        ops = list(self.ops)
        a = _Side(rng.sample(ops, rng.randrange(len(ops) + 1)))
        b = _Side(rng.sample(ops, rng.randrange(len(ops) + 1)))
        union = set(a.ops) | set(b.ops)
        channel = random.Random(plan[1])
        hostility = (plan[2] % 100) / 100 * 0.5 + 0.02
        limits = SyncLimits(sketch=rng.random() < 0.7)
        try:
            initiator = SyncSession(a.items, a, initiator=True, now=0.0, limits=limits)
            responder = SyncSession(b.items, b, initiator=False, now=0.0)
            sent: list[bytes] = []
            for _ in range(400):
                moved = False
                for source, target in ((initiator, responder), (responder, initiator)):
                    while (frame := source.next_frame()) is not None:
                        moved = True
                        sent.append(frame)
                        for out in self._channel(channel, hostility, frame, sent):
                            if not target.done:
                                target.receive_frame(out, now=1.0)
                if not moved:
                    break
            for session in (initiator, responder):
                if not session.done:
                    session.handle_timer(session.deadline)
                    while session.next_frame() is not None:
                        pass
                if not session.done:
                    tally.violate("a session did not end at its deadline", plan)
                error = session.result().error
                tally.reject(f"session:{error.reason}" if error else "session:ok")
            for side, session in ((a, initiator), (b, responder)):
                side.ingest(side.take(session))
            # A frame replayed from another conversation may bring valid operations neither side
            # had (rule 3 lets a side that sent coded symbols, or holds nothing, take operations
            # it lacks): valid, so kept; anything kept must be a valid operation of the corpus.
            held = set(a.ops) | set(b.ops)
            if not held <= self.ids:
                tally.violate("a side holds an operation that no author signed", plan)
            for side in (a, b):
                for data in side.ops.values():
                    if independent_problem(data) is not None:
                        tally.violate("a side kept an invalid operation", data)
            _clean_conversation(a, b)
            if set(a.ops) != held or set(b.ops) != held or not union <= held:
                tally.violate("a clean sync after the hostile one did not reach the union", plan)
            tally.accept()
        except Exception as error:
            tally.crash(error, plan)

    def _channel(
        self, rng: random.Random, hostility: float, frame: bytes, sent: list[bytes]
    ) -> list[bytes]:
        if rng.random() >= hostility:
            return [frame]
        choice = rng.randrange(6)
        if choice == 0:
            return [mutate_bytes(rng, frame, self.replays)]
        if choice == 1:
            return []  # dropped
        if choice == 2:
            return [frame, frame]  # duplicated
        if choice == 3:
            return [rng.choice(self.replays)]  # from another conversation
        if choice == 4 and len(sent) > 1:
            return [rng.choice(sent[:-1])]  # a replay from earlier in this one
        return [frame, rng.choice(self.replays)]

    def check_bytes(self, data: bytes) -> None:
        """Coverage-guided form: the fuzzer's bytes are the frames a peer sends a responder
        and an initiator (split at 0xC1, a byte no msgpack value uses)."""
        tally = self.tally
        tally.tried += 1
        frames = data.split(b"\xc1")[:64]
        try:
            for initiator in (False, True):
                side = _Side(self.ops[:10])
                session = SyncSession(side.items, side, initiator=initiator, now=0.0)
                for frame in frames:
                    while session.next_frame() is not None:
                        pass
                    if session.done:
                        break
                    session.receive_frame(frame, now=0.0)
                refused = side.ingest(side.take(session))
                tally.reject(f"refused-ops:{min(len(refused), 1)}")
                error = session.result().error
                tally.reject(f"session:{error.reason}" if error else "session:open-or-ok")
            tally.accept()
        except Exception as error:
            tally.crash(error, data)

    def finish(self) -> None:
        pass


# -- boundary: HTTP request bodies, paths and query strings --------------------------------------

_JUNK_TEXT = (
    "",
    " ",
    "x",
    "thr_",
    "cmt_" + "a" * 56,
    "thr_" + "2" * 56,
    "op_" + "z" * 60,
    "key_" + "7" * 55,
    "0" * 64,
    "g" * 64,
    "%00",
    "%ff%fe",
    "..%2f..%2fetc",
    "😀",
    "\u202e",
    "a" * 5000,
    "-1",
    "1e309",
    "null",
    "[]",
)


class HttpApiBoundary:
    """Requests to the Starlette app of a real Node (real SQLite), in process through httpx's
    ASGI transport: every action with valid, wrong and junk path parameters, query strings,
    headers and bodies. No answer may be a 500; every error is the API's JSON error object;
    every write the API acknowledged (2xx with an id) is stored; at the end every stored
    operation verifies and the store passes its integrity check."""

    name = "http-api"

    def __init__(self) -> None:
        self.tally = Tally(self.name)
        self.acknowledged: set[bytes] = set()
        self.fresh_count = 0
        self.must_store: list[Operation] = []

    def run(self, n: int, seed: int) -> Tally:
        import trio

        trio.run(self._run, n, seed)
        return self.tally

    async def _run(self, n: int, seed: int) -> None:
        import httpx
        import trio

        from p2pcomments import open_node
        from p2pcomments.api.actions import ACTIONS
        from p2pcomments.api.app import build_app

        rng = random.Random(seed)
        with tempfile.TemporaryDirectory(prefix="p2pc-fuzz-http-") as tmp:
            async with open_node(Path(tmp) / "data", create_identity=True) as node:
                self.node = node
                app = build_app(node, token="fuzz-token", closing=trio.Event())
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://127.0.0.1"
                ) as client:
                    await node.ingest([*corpus().encoded, *(op.encoded for op in far_future())])
                    own = await node.create_thread("Own thread", url="https://own.example/")
                    mine = await node.comment(own.id, "my comment")
                    self.ids = {
                        "thread": [format_id(TextKind.THREAD, t.id) for t in corpus().threads]
                        + [format_id(TextKind.THREAD, own.id)]
                        + [format_id(TextKind.THREAD, far_future()[0].id)],
                        "comment": [format_id(TextKind.COMMENT, c.id) for c in corpus().comments]
                        + [format_id(TextKind.COMMENT, mine.id)],
                        "key": [format_id(TextKind.KEY, bytes(k.verify_key)) for k in KEYS],
                    }
                    actions = list(ACTIONS)
                    for _ in range(n):
                        await self._one(client, rng, rng.choice(actions))
                        _tick(self.tally)
                    await self._verify_store(node)

    def _path_value(self, rng: random.Random, name: str) -> str:
        roll = rng.random()
        if roll < 0.6 and name in self.ids:
            return rng.choice(self.ids[name])
        if roll < 0.8:
            pool = [v for values in self.ids.values() for v in values]
            value = rng.choice(pool)
            return mutate_text(rng, value)
        return rng.choice(_JUNK_TEXT)

    def _body(self, rng: random.Random, action: Any) -> tuple[bytes | None, dict[str, str]]:
        headers: dict[str, str] = {}
        if action.consumes == "bundle":
            ops = list(corpus().encoded)
            lines = [json.dumps(op.hex()) for op in rng.sample(ops, rng.randrange(1, 6))]
            for _ in range(rng.randrange(3)):
                bad = structured_op_mutation(rng, corpus().ops)
                lines.insert(rng.randrange(len(lines) + 1), json.dumps(bad.hex()))
            body = ("\n".join(lines) + "\n").encode()
            if rng.random() < 0.3:
                body = mutate_bytes(rng, body)
            return body, headers
        if action.consumes == "operations":
            return self._operations_body(rng, headers), headers
        if action.consumes == "export":
            document = rng.choice(_EXPORT_SEEDS)
            if rng.random() < 0.7:
                document = mutate_bytes(rng, document)
            return document, headers
        if action.consumes != "json":
            return (rng.randbytes(rng.randrange(20)) if rng.random() < 0.1 else None), headers
        document: dict[str, Any] = {}
        for f in action.fields:
            if f.required or rng.random() < 0.5:
                document[f.name] = self._field_value(rng, f.name)
        roll = rng.random()
        if roll < 0.55:
            text = json.dumps(document, ensure_ascii=rng.random() < 0.5)
            return text.encode("utf-8", "surrogatepass"), headers
        if roll < 0.7:  # a field of the wrong type, an unknown one, or one missing
            if document and rng.random() < 0.5:
                key = rng.choice(list(document))
                document[key] = rng.choice((1, 1.5, True, [], {}, ["x"], None, 10**400))
            elif document and rng.random() < 0.5:
                del document[rng.choice(list(document))]
            else:
                document[rng.choice(("bdoy", "", "__proto__", "body\x00"))] = "x"
            try:
                return json.dumps(document).encode(), headers
            except ValueError:
                return b'{"body": 1e999}', headers
        if roll < 0.85:
            return mutate_bytes(rng, json.dumps(document).encode("utf-8", "surrogatepass")), headers
        return rng.choice(
            (
                b"[" * 5000,
                b'{"a":' * 3000 + b"1" + b"}" * 3000,
                b"\xff\xfe{}",
                b'{"body": "\\ud800"}',
                b'{"body": "a", "body": "b"}',
                b'{"title": NaN}',
                b'{"body": "' + b"x" * 70_000 + b'"}',
                b"null",
                b'"string"',
                b"\x00",
            )
        ), headers

    def _operations_body(self, rng: random.Random, headers: dict[str, str]) -> bytes:
        """``POST /api/ops``: one operation or a gossip batch, valid (a fresh comment, which
        must then be stored), re-signed with a broken rule, or damaged bytes."""
        from p2pcomments.api.actions import OPERATION_MEDIA_TYPE, OPERATIONS_MEDIA_TYPE

        batch = rng.random() < 0.4
        headers["content-type"] = OPERATIONS_MEDIA_TYPE if batch else OPERATION_MEDIA_TYPE
        if rng.random() < 0.05:
            headers["content-type"] = rng.choice(("application/octet-stream", "text/plain"))
        items: list[bytes] = []
        fresh: list[Operation] = []
        for _ in range(rng.choice((1, 1, 2, 5)) if batch else 1):
            roll = rng.random()
            if roll < 0.4:
                self.fresh_count += 1
                thread = corpus().threads[0]
                op = make_operation(
                    KEYS[1],
                    CommentPayload(body=f"fresh comment {self.fresh_count}"),
                    timestamp_ms=T0 + 10**7 + self.fresh_count,
                    thread=thread.id,
                    refs=(thread.id,),
                )
                fresh.append(op)
                items.append(op.encoded)
            elif roll < 0.8:
                items.append(structured_op_mutation(rng, corpus().ops))
            else:
                items.append(mutate_bytes(rng, rng.choice(corpus().encoded)))
        body = encode_batch(items) if batch else items[0]
        if rng.random() < 0.15:
            body = mutate_bytes(rng, body)
        elif len(fresh) == len(items) and headers["content-type"] in (
            OPERATION_MEDIA_TYPE,
            OPERATIONS_MEDIA_TYPE,
        ):
            self.must_store = fresh  # all valid and sent as they are: each must be stored
        return body

    def _field_value(self, rng: random.Random, name: str) -> Any:
        roll = rng.random()
        if roll < 0.5:
            good = {
                "body": "a fuzzed comment",
                "title": "t",
                "url": "https://fuzz.example/p",
                "site": "fuzz.example",
                "reason": "",
                "reaction": "👍",
                "name": "fuzzer",
                "key": rng.choice(self.ids["key"]),
                "thread": rng.choice(self.ids["thread"]),
                "multiaddr": "/ip4/127.0.0.1/tcp/1/p2p/QmNotAPeer",
                "peer_id": None,
                "unread": rng.choice(("true", "false", "1", "0")),
                "limit": rng.choice(("1", "10", "0")),
                "owner": rng.choice(self.ids["key"]),
                "alias": "https://blog.example/hello?x=1",
                "dry_run": "true",
            }
            return good.get(name, "x")
        if roll < 0.8:
            return rng.choice(
                (
                    "",
                    " ",
                    "bell\x07",
                    "e\u0301",
                    "x" * 33_000,
                    "😀" * 20,
                    "\u0085",
                    "line\nbreak",
                    "\ud800",
                    None,
                    "https://",
                    "a.b.c." * 50,
                )
            )
        return mutate_text(rng, rng.choice(_JUNK_TEXT + tuple(self.ids["thread"])))

    async def _one(self, client: Any, rng: random.Random, action: Any) -> None:
        import httpx

        tally = self.tally
        tally.tried += 1
        path = action.path
        for name in ("thread", "comment", "key"):
            if "{" + name + "}" in path:
                value = self._path_value(rng, name)
                if action.name.endswith("events"):
                    value = mutate_text(rng, value)
                path = path.replace("{" + name + "}", _quote(value))
        pairs = [  # values cut to 2,000 characters: httpx refuses URLs over 64 KiB
            f"{_quote(f.name)}={_quote(str(self._field_value(rng, f.name))[:2000])}"
            for f in action.query
            if rng.random() < 0.6
        ]
        if rng.random() < 0.1:
            pairs += [
                f"{_quote(rng.choice(_JUNK_TEXT))}={_quote(rng.choice(_JUNK_TEXT))}"
                for _ in range(rng.randrange(1, 4))
            ]
        if pairs and rng.random() < 0.1:
            pairs.append(rng.choice(pairs))  # a parameter given twice
        if pairs:
            path += "?" + "&".join(rng.sample(pairs, len(pairs)))
        self.must_store = []
        body, headers = self._body(rng, action)
        if rng.random() < 0.95:
            headers["authorization"] = "Bearer fuzz-token"
        elif rng.random() < 0.5:
            value = rng.choice(("Bearer", "Bearer x", "\u00ff", "Basic a"))
            headers["authorization"] = value.encode("latin-1")  # type: ignore[assignment]
        if rng.random() < 0.2:
            headers["content-type"] = rng.choice(
                ("text/plain", "application/json; charset=latin-1", "multipart/form-data", "")
            )
        method = action.method if rng.random() < 0.97 else rng.choice(("PATCH", "GET", "DELETE"))
        example = (method, path[:200], (body or b"")[:200])
        try:
            response = await client.request(method, path, content=body, headers=headers)
        except httpx.HTTPError as error:
            tally.crash(error, example)
            return
        except Exception as error:
            tally.crash(error, example)
            return
        self._judge(action, method, response, example)
        if method == action.method and self.must_store:
            self._check_submitted(response)

    def _check_submitted(self, response: Any) -> None:
        """Valid operations sent as they are: acknowledged means stored; a refusal may only be
        for what the thread's state says (closed, not allowed), never for their bytes."""
        tally = self.tally
        if response.status_code < 300:
            for op in self.must_store:
                if self.node.get_operation(op.id) is None:
                    tally.violate("an acknowledged submitted operation is not stored", op.encoded)
            return
        with contextlib.suppress(ValueError, KeyError, TypeError):
            code = response.json()["error"]["code"]
            if code in _BYTE_LEVEL_CODES:
                tally.violate(
                    f"a valid operation was refused as {code}", self.must_store[0].encoded
                )

    def _judge(self, action: Any, method: str, response: Any, example: object) -> None:
        tally = self.tally
        status = response.status_code
        if status >= 500 and status != 502 and status != 503:
            tally.crash(f"HTTP {status}: {response.text[:200]}", example)
            return
        if status >= 400:
            try:
                error = response.json()["error"]
                code, message = error["code"], error["message"]
            except (ValueError, KeyError, TypeError):
                tally.crash(f"HTTP {status} without the JSON error object", example)
                return
            if not isinstance(message, str) or not message or not isinstance(code, str):
                tally.crash(f"HTTP {status} with an empty error message", example)
                return
            tally.reject(f"{status} {code}")
            return
        tally.accept()
        if method != "GET" and response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            document = response.json()
            if isinstance(document, dict) and isinstance(document.get("id"), str):
                from p2pcomments.core.textform import parse_id

                with contextlib.suppress(P2PCommentsError):
                    self.acknowledged.add(parse_id(document["id"]))

    async def _verify_store(self, node: Any) -> None:
        tally = self.tally
        for op_id in self.acknowledged:
            if node.get_operation(op_id) is None:
                tally.violate("an acknowledged write is not stored", op_id)
        for data in node.export_operations():
            if independent_problem(data) is not None:
                tally.violate("the store holds an invalid operation", data)
        problems = await node.integrity_check()
        if problems:
            tally.violate(f"integrity check: {problems[:3]}", b"")

    def finish(self) -> None:
        pass


_EXPORT_SEEDS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"'
    b' xmlns:wp="http://wordpress.org/export/1.2/"'
    b' xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
    b"<title>Blog</title><link>https://blog.example</link><item><title>Hello</title>"
    b"<link>https://blog.example/hello</link><wp:post_id>1</wp:post_id>"
    b"<wp:comment><wp:comment_id>7</wp:comment_id><wp:comment_author>Ann</wp:comment_author>"
    b"<wp:comment_date_gmt>2020-01-02 03:04:05</wp:comment_date_gmt>"
    b"<wp:comment_content><![CDATA[Nice post]]></wp:comment_content>"
    b"<wp:comment_approved>1</wp:comment_approved><wp:comment_parent>0</wp:comment_parent>"
    b"</wp:comment></item></channel></rss>",
    b'<?xml version="1.0"?><disqus xmlns="http://disqus.com"'
    b' xmlns:dsq="http://disqus.com/disqus-internals"><thread dsq:id="1"><link>'
    b"https://blog.example/hello</link><title>Hello</title></thread>"
    b'<post dsq:id="2"><message><![CDATA[Hi]]></message><createdAt>2020-01-02T03:04:05Z'
    b'</createdAt><author><name>Bo</name></author><thread dsq:id="1"/></post></disqus>',
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    b"<rss><channel><item><title>&b;</title></item></channel></rss>",
)
"""Import documents (WordPress WXR, Disqus, an entity bomb) to mutate."""


_BYTE_LEVEL_CODES = frozenset(
    {"malformed", "non-canonical", "bad-signature", "bad-batch", "oversize", "bad-field"}
)
"""Refusals that judge an operation's bytes (a valid operation must never get one)."""


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def mutate_text(rng: random.Random, text: str) -> str:
    """A text form or name, changed the way people and hostile clients change them."""
    choice = rng.randrange(8)
    if not text:
        return rng.choice(_JUNK_TEXT)
    index = rng.randrange(len(text))
    if choice == 0:
        return text[:index] + text[index + 1 :]
    if choice == 1:
        return text[:index] + rng.choice("aZ0_-é😀\x00 ") + text[index:]
    if choice == 2:
        return text.upper()
    if choice == 3:
        return text[:index]
    if choice == 4:
        return text + text
    if choice == 5:
        return " " + text + "\t"
    if choice == 6:
        return text.replace("_", rng.choice(("-", "", "__")), 1)
    return rng.choice(("thr", "cmt", "op", "key", "xyz")) + "_" + text.partition("_")[2]


# -- boundary: CLI arguments ---------------------------------------------------------------------

_CLI_WORDS = (
    "--json",
    "--help",
    "--data-dir",
    "--body",
    "--title",
    "--url",
    "--site",
    "--reason",
    "--name",
    "--all",
    "--remove",
    "--force",
    "--rebuild-views",
    "-o",
    "--output",
    "--peer",
    "--passphrase-stdin",
    "-",
    "--",
    "=",
    "",
    "--body=",
    "-x",
    "--no-such-option",
)


class CliBoundary:
    """``p2pc`` argument lists, run in process on a sandbox data dir (``P2PC_HOME``, the working
    directory a temp dir): every exit is a code with a one-line message, never a traceback or an
    internal error (exit 5); nothing but SystemExit from argparse leaves `main`."""

    name = "cli"
    SKIP = frozenset({"daemon", "watch"})  # they run until interrupted
    RESET_EVERY = 500

    def __init__(self) -> None:
        self.tally = Tally(self.name)

    def run(self, n: int, seed: int) -> Tally:
        from p2pcomments.cli.main import build_parser, main

        parser = build_parser()  # built once: building it is most of an in-process run

        def run_main(argv: Sequence[str]) -> int:
            return main(argv, parser=parser)

        rng = random.Random(seed)
        with tempfile.TemporaryDirectory(prefix="p2pc-fuzz-cli-", dir=_scratch_dir()) as tmp:
            sandbox = Path(tmp)
            data = sandbox / "data"
            self._populate(data)
            # Written commands grow the store, and every command loads it: put the data dir
            # back as it was every `RESET_EVERY` inputs, so the rate stays what it was.
            files = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
            saved = (os.getcwd(), os.environ.get("P2PC_HOME"), os.environ.get("P2PC_DEBUG"))
            os.chdir(sandbox)
            os.environ["P2PC_HOME"] = str(data)
            os.environ.pop("P2PC_DEBUG", None)
            try:
                for index in range(n):
                    if index and index % self.RESET_EVERY == 0:
                        _restore(sandbox, data, files)
                    argv = self.generate(rng)
                    if self.SKIP & set(argv):
                        continue
                    self.check(run_main, argv)
                    _tick(self.tally)
            finally:
                os.chdir(saved[0])
                for name, value in (("P2PC_HOME", saved[1]), ("P2PC_DEBUG", saved[2])):
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
        return self.tally

    def _populate(self, data: Path) -> None:
        import trio

        from p2pcomments import open_node

        async def fill() -> None:
            async with open_node(data, create_identity=True) as node:
                await node.ingest([*corpus().encoded, *(op.encoded for op in far_future())])
                thread = await node.create_thread("cli thread")
                comment = await node.comment(thread.id, "cli comment")
                self.ids = [
                    format_id(TextKind.THREAD, thread.id),
                    format_id(TextKind.COMMENT, comment.id),
                    format_id(TextKind.THREAD, corpus().threads[0].id),
                    format_id(TextKind.COMMENT, corpus().comments[0].id),
                    format_id(TextKind.KEY, bytes(KEYS[1].verify_key)),
                ]
                self.far_thread = format_id(TextKind.THREAD, far_future()[0].id)

        trio.run(fill)

    def templates(self) -> list[list[str]]:
        t, c, t2, c2, k = self.ids
        return [
            ["id"],
            ["threads"],
            ["show", t],
            ["show", t2, "--all"],
            ["show", self.far_thread],
            ["thread", "new", "--title", "a title", "--url", "https://x.example/"],
            ["comment", t, "--body", "hello"],
            ["reply", c, "--body", "hi"],
            ["edit", c, "--body", "edited"],
            ["retract", c2],
            ["react", c, "👍"],
            ["react", c, "--remove"],
            ["moderate", "hide", c2, "--reason", "r"],
            ["moderate", "close", t],
            ["moderate", "add-mod", t, k],
            ["profile", "set", "--name", "me"],
            ["profile", "show"],
            ["key", "export"],
            ["export", t],
            ["export", "--all", "-o", "out.jsonl"],
            ["import", "missing.jsonl"],
            ["statistics"],
            ["repair"],
            ["follows"],
            ["follow", "blog.example"],
            ["unfollow", t],
            ["peers"],
            ["sync"],
            ["connect", "/ip4/127.0.0.1/tcp/1/p2p/QmX"],
            ["init"],
        ]

    def generate(self, rng: random.Random) -> list[str]:
        argv = list(rng.choice(self.templates()))
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            choice = rng.randrange(6)
            index = rng.randrange(len(argv) + 1)
            if choice == 0 and argv:
                i = min(index, len(argv) - 1)
                argv[i] = mutate_text(rng, argv[i])
            elif choice == 1:
                argv.insert(index, rng.choice(_CLI_WORDS + _JUNK_TEXT))
            elif choice == 2 and argv:
                del argv[min(index, len(argv) - 1)]
            elif choice == 3 and len(argv) > 1:
                i, j = rng.randrange(len(argv)), rng.randrange(len(argv))
                argv[i], argv[j] = argv[j], argv[i]
            elif choice == 4:
                argv.insert(index, rng.choice(self.ids))
            else:
                argv.insert(0, "--json")
        # The data dir stays the sandbox; any path given must be a relative one inside it. No
        # argument holds a NUL: execve can't pass one (argv entries are C strings).
        argv = [a.replace("\x00", "") for a in argv]
        return [a if not a.startswith("/") or a.startswith("/ip4") else a.lstrip("/") for a in argv]

    def check(self, main: Callable[[Sequence[str]], int], argv: list[str]) -> None:
        tally = self.tally
        tally.tried += 1
        stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        code: object
        try:
            with (
                contextlib.redirect_stdout(stdout),
                contextlib.redirect_stderr(stderr),
                _stdin(""),
            ):
                try:
                    code = main(argv)
                except SystemExit as exit_:
                    code = exit_.code
        except BaseException as error:
            tally.crash(error, argv)
            return
        stderr.flush()
        text = stderr.buffer.getvalue().decode("utf-8", "replace")  # type: ignore[attr-defined]
        if "Traceback" in text or code == 5 or "internal error" in text:
            tally.crash(f"exit {code}: {text.strip()[:200]}", argv)
            return
        if code in (0, None):
            tally.accept()
            return
        if code != 2 and (not text.strip().startswith(("p2pc:", "{")) or len(text.strip()) < 6):
            tally.crash(f"exit {code} without a readable message: {text[:100]!r}", argv)
            return
        first = text.strip().splitlines()[-1] if text.strip() else ""
        tally.reject(f"exit {code}: {_message_class(first)}")

    def finish(self) -> None:
        pass


def _restore(sandbox: Path, data: Path, files: dict[str, bytes]) -> None:
    """The sandbox as `CliBoundary.run` made it: the data dir's files, nothing else."""
    for entry in os.scandir(sandbox):
        if entry.path != str(data):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    for entry in os.scandir(data):
        if entry.name not in files:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    for name, content in files.items():
        path = data / name
        if path.is_dir():
            shutil.rmtree(path)
        path.write_bytes(content)


def _message_class(line: str) -> str:
    """A short, stable label for a CLI error line: its first words, ids and quotes removed."""
    words = []
    for word in line.replace("p2pc:", "").split()[:5]:
        if any(ch.isdigit() for ch in word) or "'" in word or '"' in word or "_" in word:
            break
        words.append(word)
    return " ".join(words)[:50] or "usage"


@contextlib.contextmanager
def _stdin(text: str) -> Iterator[None]:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


# -- boundary: config.json -----------------------------------------------------------------------


class ConfigFileBoundary:
    """``config.json`` in the data dir, as the daemon reads it: `read_bootstrap_config`, then
    each address parsed as the host parses it. A `ConfigError` (or ValueError naming the
    address) with a message, or the addresses."""

    name = "config-file"

    def __init__(self) -> None:
        self.tally = Tally(self.name)
        self.dir = Path(tempfile.mkdtemp(prefix="p2pc-fuzz-config-"))
        good = "/ip4/127.0.0.1/tcp/4737/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
        self.seeds = (
            json.dumps({"bootstrap": [good]}).encode(),
            json.dumps(
                {"bootstrap": [good, "/ip6/::1/tcp/1/p2p/" + good.rsplit("/", 1)[1]]}
            ).encode(),
            b"{}",
            json.dumps({"bootstrap": [], "other": {"x": [1, 2]}}).encode(),
        )

    def generate(self, rng: random.Random) -> bytes:
        seed = rng.choice(self.seeds)
        roll = rng.random()
        if roll < 0.5:
            return mutate_bytes(rng, seed, self.seeds)
        document = json.loads(seed)
        choice = rng.randrange(5)
        if choice == 0:
            document["bootstrap"] = _random_json(rng)
        elif choice == 1:
            document["bootstrap"] = [mutate_text(rng, a) for a in document.get("bootstrap", ["x"])]
        elif choice == 2:
            document = _random_json(rng)
        elif choice == 3:
            return rng.choice((b"[" * 100_000, b'{"bootstrap": ' * 50_000, b"\xef\xbb\xbf{}"))
        else:
            document["bootstrap"] = [rng.choice((*_JUNK_TEXT, "/ip4/1.2.3.4", "/p2p/x", "/dns/"))]
        return json.dumps(document).encode("utf-8", "surrogatepass")

    def check_bytes(self, data: bytes) -> None:
        from p2pcomments.net.interface import ConfigError, read_bootstrap_config

        tally = self.tally
        tally.tried += 1
        (self.dir / "config.json").write_bytes(data)
        try:
            try:
                addresses = read_bootstrap_config(self.dir)
            except ConfigError as error:
                text = error.message.replace(str(self.dir / "config.json"), "config.json")
                tally.reject(f"{reason_of(error)}: {re.sub(r'[0-9]+', 'N', text)[:60]}")
                if not error.message:
                    tally.violate("a config error without a message", data)
                return
            for address in addresses:
                try:
                    _parse_peer_address(address)
                except ValueError:
                    tally.reject("bad-bootstrap-address")
                    return
            tally.accept()
        except Exception as error:
            tally.crash(error, data)

    def finish(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _parse_peer_address(address: str) -> None:
    from p2pcomments.net.host import _parse_peer_multiaddr

    _parse_peer_multiaddr(address)


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(7 if depth < 3 else 4)
    if choice == 0:
        return rng.choice((None, True, 0, -1, 1.5, 10**30))
    if choice in (1, 2):
        return rng.choice((*_JUNK_TEXT, "/ip4/127.0.0.1/tcp/1"))
    if choice == 3:
        return "\ud800" if rng.random() < 0.2 else "x"
    if choice in (4, 5):
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(("bootstrap", "", "x")): _random_json(rng, depth + 1)}


# -- boundary: the data dir ------------------------------------------------------------------------


class DataDirBoundary:
    """A data dir damaged the ways disks and people damage them (the SQLite file truncated,
    bytes or whole pages overwritten, the WAL garbled or cut, the key file missing, empty,
    garbled or a directory), then opened as a node and read in full. Either it opens and every
    operation it serves verifies and every view reads, or opening fails with a typed error and
    a message; never another exception. When it opened but serves an operation whose signature
    was damaged on disk (open does not verify signatures again), ``p2pc repair`` must find it
    and take it out, and the repaired data dir must open and serve only valid operations.

    Fast enough for 100,000 cases: the template's files are kept in memory and written over one
    case directory on a tmpfs where there is one, and every case is opened in process by one
    long-lived worker thread (a hang is still caught: the worker is given up after 60 s)."""

    name = "data-dir"

    def __init__(self) -> None:
        self.tally = Tally(self.name)
        self.root = Path(tempfile.mkdtemp(prefix="p2pc-fuzz-datadir-", dir=_scratch_dir()))
        self.template = self.root / "template"
        self.files: dict[str, bytes] = {}
        self.worker = _Worker()

    def run(self, n: int, seed: int) -> Tally:
        import trio

        from p2pcomments import open_node

        async def make_template() -> None:
            async with open_node(self.template, create_identity=True) as node:
                await node.ingest([*corpus().encoded, *(op.encoded for op in far_future())])
                thread = await node.create_thread("data dir thread")
                await node.comment(thread.id, "a comment")

        trio.run(make_template)
        self.files = {p.name: p.read_bytes() for p in self.template.iterdir() if p.is_file()}
        rng = random.Random(seed)
        try:
            for _ in range(n):
                self.check(rng)
                _tick(self.tally)
        finally:
            self.worker.stop()
            shutil.rmtree(self.root, ignore_errors=True)
        return self.tally

    def _reset(self, target: Path) -> None:
        """``target`` made a copy of the template again, writing only what differs."""
        target.mkdir(exist_ok=True)
        for entry in os.scandir(target):
            if entry.name not in self.files:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        for name, data in self.files.items():
            path = target / name
            if path.is_dir():
                shutil.rmtree(path)
            path.write_bytes(data)

    def _damage(self, rng: random.Random, target: Path) -> str:
        database = target / "operations.sqlite3"
        key = target / "author.key"
        choice = rng.randrange(11)
        if choice <= 3:
            data = bytearray(self.files["operations.sqlite3"])
            if choice == 0:
                cut = rng.randrange(len(data))
                database.write_bytes(bytes(data[:cut]))
                return "db-truncated"
            if choice == 1:
                for _ in range(rng.choice((1, 4, 32))):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                database.write_bytes(bytes(data))
                return "db-bytes"
            if choice == 2:
                page = 4096
                start = rng.randrange(max(1, len(data) // page)) * page
                data[start : start + page] = rng.choice((b"\x00", b"\xff", rng.randbytes(1))) * page
                database.write_bytes(bytes(data[: len(data)]))
                return "db-page"
            database.write_bytes(rng.choice((b"", b"SQLite format 3\x00", rng.randbytes(4096))))
            return "db-replaced"
        if choice == 4:
            database.unlink()
            return "db-missing"
        if choice == 5:
            key.unlink()
            return "key-missing"
        if choice == 6:
            key.write_bytes(mutate_bytes(rng, self.files["author.key"]))
            return "key-garbled"
        if choice == 7:
            key.write_bytes(
                rng.choice((b"", b"{}", b"\xff" * 10, b"null", b"[1,2]", b"x" * 10_000))
            )
            return "key-replaced"
        if choice == 8:
            key.unlink()
            key.mkdir()
            return "key-directory"
        if choice == 10:  # the libp2p peer key: what the daemon's network reads at start
            peer_key = target / "libp2p-identity.key"
            roll = rng.randrange(3)
            if roll == 0:
                peer_key.mkdir()
            else:
                peer_key.write_bytes(rng.randbytes(rng.choice((0, 31, 33))) if roll else b"")
            return "peer-key-damaged"
        journal = target / "operations.sqlite3-wal"
        journal.write_bytes(rng.randbytes(rng.choice((8, 32, 4096 + 24))))
        return "wal-garbled"

    def check(self, rng: random.Random) -> None:
        tally = self.tally
        tally.tried += 1
        target = self.root / "case"
        self._reset(target)
        damage = self._damage(rng, target)
        # A damaged store once made opening loop forever: a hang is a finding, not a stall.
        finished, outcome = self.worker.call(
            lambda: self._open_and_read(target, damage), timeout=60
        )
        if not finished:
            tally.crash(f"{damage}: opening the data dir did not end within 60 s", damage)
            self.worker = _Worker()  # the stuck one keeps its case directory: use another
            self.root = Path(tempfile.mkdtemp(prefix="p2pc-fuzz-datadir-", dir=_scratch_dir()))
            return
        try:
            if isinstance(outcome, BaseException):
                raise outcome
        except P2PCommentsError as error:
            if not error.message:
                tally.crash(f"{damage}: {type(error).__name__} without a message", damage)
            else:
                tally.reject(f"{damage} -> {reason_of(error)}")
            return
        except Exception as error:
            tally.crash(error, damage)
            return
        if outcome is not None:
            tally.violate(f"{damage}: {outcome}", damage)
            return
        tally.accept()
        tally.reject(f"{damage} -> opened")

    def _open_and_read(self, target: Path, damage: str) -> str | None:
        import trio

        if (target / "libp2p-identity.key").exists():
            from p2pcomments.net.host import load_or_create_identity

            load_or_create_identity(target)  # a StoreError when damaged, as the daemon gets
        problem, damaged = trio.run(_serve_all, target)
        if problem is not None:
            return problem
        if damaged:
            # Known gap of opening (it does not verify signatures again), covered by repair.
            self.tally.gaps["served an operation whose signature was damaged on disk"] += 1
        if not damaged and not damage.startswith(("db-", "wal-")):
            return None
        return self._repair(target, damaged)

    def _repair(self, target: Path, damaged: int) -> str | None:
        """``p2pc repair`` on a damaged store that opened: it must find every bad signature
        served, leave nothing wrong, and the repaired data dir must open and serve only valid
        operations."""
        import trio

        from p2pcomments.node.maintenance import repair_data_dir

        try:
            report = repair_data_dir(target)
        except P2PCommentsError as error:
            return f"repair failed on a data dir that opens: {type(error).__name__}: {error}"
        if report.bad_signatures < damaged:
            return f"repair found {report.bad_signatures} of {damaged} bad signatures"
        if report.problems_after:
            return f"problems left after repair: {report.problems_after[:2]}"
        for finding in report.findings:
            self.tally.notes[f"repair: {finding.kind}"] += 1
        problem, damaged = trio.run(_serve_all, target)
        if problem is not None or damaged:
            return f"after repair: {problem or f'{damaged} bad signatures served'}"
        self.tally.notes["repaired, then opened and served only valid operations"] += 1
        return None

    def finish(self) -> None:
        pass


async def _serve_all(target: Path) -> tuple[str | None, int]:
    """Open ``target`` as a node and read everything it serves: the first invalid operation
    served (its problem), else None; and how many served operations have a signature that was
    damaged on disk (their bytes parse; only the 64 signature bytes are wrong)."""
    from p2pcomments import open_node

    damaged = 0
    async with open_node(target) as node:
        for data in node.export_operations():
            problem = independent_problem(data)
            damaged_signature = (
                "signature does not verify with PyNaCl",
                "zero signature on a signed kind",  # a cut file's missing pages read as 0
            )
            if problem in damaged_signature and _parses(data):
                damaged += 1
            elif problem is not None:
                return f"serves an operation that is not valid: {problem}", damaged
        for summary in node.threads():
            node.thread_view(summary.id)
        node.statistics()
    return None, damaged


def _scratch_dir() -> str | None:
    """A tmpfs for the cases when there is one (Linux's /dev/shm), else the default temp dir."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


class _Worker:
    """One long-lived thread that runs calls for the data-dir boundary, so that a call that
    never returns (a hang) can be given up on instead of stalling the campaign."""

    def __init__(self) -> None:
        import queue

        self.jobs: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self.results: queue.Queue[Any] = queue.Queue()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                self.results.put(job())
            except BaseException as error:
                self.results.put(error)

    def call(self, job: Callable[[], Any], *, timeout: float) -> tuple[bool, Any]:
        """(True, what ``job`` returned or raised), or (False, None) after ``timeout`` s."""
        import queue

        self.jobs.put(job)
        try:
            return True, self.results.get(timeout=timeout)
        except queue.Empty:
            return False, None

    def stop(self) -> None:
        self.jobs.put(None)


def _parses(data: bytes) -> bool:
    try:
        decode_operation(data, verify=False)
    except InvalidOperation:
        return False
    return True


# -- running -------------------------------------------------------------------------------------

BOUNDARIES: dict[str, Callable[[], Any]] = {
    "op-decoder": OpDecoderBoundary,
    "gossip-payload": GossipPayloadBoundary,
    "gossip-intake": GossipIntakeBoundary,
    "sync-message": SyncMessageBoundary,
    "sync-conversation": SyncConversationBoundary,
    "http-api": HttpApiBoundary,
    "cli": CliBoundary,
    "config-file": ConfigFileBoundary,
    "data-dir": DataDirBoundary,
    "event-streams": lambda: _web().EventStreamBoundary(),
    "feeds-inbox": lambda: _web().FeedsInboxBoundary(),
    "public-gateway": lambda: _web().PublicGatewayBoundary(),
    "import-file": lambda: _web().ImportFileBoundary(),
}
"""Every boundary by name."""


def _web() -> Any:
    """tests/fuzz/web_boundaries.py, which imports this module (so it is loaded on use)."""
    from tests.fuzz import web_boundaries

    return web_boundaries


def run_boundary(name: str, n: int, seed: int) -> Tally:
    """``n`` structured inputs into boundary ``name`` from ``random.Random(seed)``."""
    boundary = BOUNDARIES[name]()
    if hasattr(boundary, "run"):
        return boundary.run(n, seed)  # type: ignore[no-any-return]
    rng = random.Random(seed)
    checker = boundary.check if hasattr(boundary, "check") else boundary.check_bytes
    for _ in range(n):
        checker(boundary.generate(rng))
        _tick(boundary.tally)
    boundary.finish()
    return boundary.tally  # type: ignore[no-any-return]


def seed_inputs(name: str, count: int, seed: int = 1) -> list[bytes]:
    """Byte inputs for a coverage-guided fuzzer's starting corpus."""
    boundary = BOUNDARIES[name]()
    rng = random.Random(seed)
    seeds = list(getattr(boundary, "seeds", ()))
    if name == "sync-conversation":
        frames = sync_frames()
        return [b"\xc1".join(rng.sample(frames, rng.randrange(1, 6))) for _ in range(count)]
    while len(seeds) < count:
        seeds.append(boundary.generate(rng))
    return [s for s in seeds if isinstance(s, bytes)]
