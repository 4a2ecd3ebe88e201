#!/usr/bin/env python3
"""Generate (or, with --check, verify) protocol/vectors/sync_messages.json.

The sync stream's messages (protocol/SPEC.md §9): one example of each message type with its
fields and bytes, whole sessions between two small sets of real signed operations (every frame in
order, hex, and what each side received), and frames a receiver must refuse with the reason code.
Another implementation that follows the reference policies (range split §9.6.6, sketch asks
§9.7.4) must produce the same frames; any implementation must accept them and end with the same
operations. Each session also gives the sketch key its HELLOs imply.

Usage: .venv/bin/python scripts/gen_sync_vectors.py [--check]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgpack
from nacl.signing import SigningKey
from vector_file import write_or_check

from p2pcomments.core.ops import (
    CommentPayload,
    Operation,
    ProfilePayload,
    ThreadPayload,
    make_operation,
)
from p2pcomments.core.reconcile import INFINITY, MIN_BOUND, SortedItems
from p2pcomments.core.sync_protocol import (
    MIN_FRAME_BYTES,
    SYNC_VERSION,
    OpsReceived,
    SyncLimits,
    SyncSession,
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
    sketch_key,
)

OUTPUT = Path(__file__).resolve().parents[1] / "protocol" / "vectors" / "sync_messages.json"
BASE_TIME = 1_700_000_000_000


def key(n: int) -> SigningKey:
    return SigningKey(bytes([0x50 + n]) * 32)


def operations() -> list[Operation]:
    """Deterministic signed operations (Ed25519 signatures are deterministic): two threads with
    comments and replies, and profiles."""
    ops: list[Operation] = []
    for t in range(2):
        thread = make_operation(
            key(t), ThreadPayload(title=f"vector thread {t}"), timestamp_ms=BASE_TIME + t
        )
        ops.append(thread)
        parent = thread
        for c in range(12):
            comment = make_operation(
                key((t + c) % 3),
                CommentPayload(body=f"comment {c} in thread {t}"),
                timestamp_ms=BASE_TIME + 1000 * (c + 1) + t,
                thread=thread.id,
                refs=(parent.id if c % 3 == 2 else thread.id,),
            )
            ops.append(comment)
            parent = comment
    for n in range(3):
        ops.append(
            make_operation(key(n), ProfilePayload(name=f"author {n}"), timestamp_ms=BASE_TIME + n)
        )
    return ops


class _Side:
    def __init__(self, ops: Sequence[Operation]) -> None:
        self.ops = {op.id: op.encoded for op in ops}
        self.items = SortedItems((op.timestamp_ms, op.id) for op in ops)
        self.received: list[bytes] = []

    def get_encoded(self, op_ids: Sequence[bytes]) -> Mapping[bytes, bytes]:
        return {i: self.ops[i] for i in op_ids if i in self.ops}


def session(
    name: str,
    note: str,
    a_ops: Sequence[Operation],
    b_ops: Sequence[Operation],
    *,
    limits: SyncLimits | None = None,
    reconcile: bool = True,
    want: Sequence[bytes] = (),
) -> dict[str, Any]:
    a, b = _Side(a_ops), _Side(b_ops)
    initiator = SyncSession(
        a.items, a, initiator=True, now=0.0, limits=limits, reconcile=reconcile, want=want
    )
    responder = SyncSession(b.items, b, initiator=False, now=0.0, limits=limits)
    frames: list[dict[str, str]] = []
    progress = True
    while progress:
        progress = False
        for label, source, target, side in (
            ("initiator", initiator, responder, b),
            ("responder", responder, initiator, a),
        ):
            while (frame := source.next_frame()) is not None:
                progress = True
                frames.append(
                    {"from": label, "type": decode_message(frame).type.name, "hex": frame.hex()}
                )
                if not target.done:
                    target.receive_frame(frame, now=0.0)
                    while (event := target.next_event()) is not None:
                        assert isinstance(event, OpsReceived)
                        side.received.extend(event.ops)
    if not (initiator.done and responder.done) or initiator.error or responder.error:
        raise RuntimeError(f"session {name} did not end cleanly")
    by_bytes = {op.encoded: op.id for op in [*a_ops, *b_ops]}
    limits = limits or SyncLimits()
    key = sketch_key(
        a.items.fingerprint(MIN_BOUND, INFINITY), b.items.fingerprint(MIN_BOUND, INFINITY)
    )
    return {
        "name": name,
        "note": note,
        "mode": initiator.result().mode.value,
        "max_frame_bytes": limits.max_frame_bytes,
        "reconcile_policy": {
            "branching": limits.branching,
            "id_list_threshold": limits.id_list_threshold,
        },
        "initiator_sketches": limits.sketch,
        "sketch_key": key.hex(),
        "initiator_reconciles": reconcile,
        "initiator_wants": [i.hex() for i in want],
        "initiator_operations": [op.encoded.hex() for op in a_ops],
        "responder_operations": [op.encoded.hex() for op in b_ops],
        "frames": frames,
        "initiator_received": sorted(by_bytes[d].hex() for d in a.received),
        "responder_received": sorted(by_bytes[d].hex() for d in b.received),
    }


def message(name: str, fields: dict[str, Any], frame: bytes) -> dict[str, Any]:
    decode_message(frame)  # every example is valid
    return {"name": name, "fields": fields, "hex": frame.hex()}


def invalid(note: str, frame: bytes, reason: str) -> dict[str, str]:
    return {"note": note, "hex": frame.hex(), "reason": reason}


def generate() -> dict[str, Any]:
    ops = operations()
    thread_a = ops[:13]
    thread_b = ops[13:26]
    profiles = ops[26:]
    fingerprint = bytes(range(16))
    example_op = ops[1]
    return {
        "description": (
            "Sync stream (/p2pcomments/sync/2.0.0) test vectors, protocol/SPEC.md §9. Frames are "
            "the message bytes without the varint length prefix. Generated by "
            "scripts/gen_sync_vectors.py; do not edit by hand."
        ),
        "sync_version": SYNC_VERSION,
        "messages": [
            message(
                "HELLO",
                {
                    "version": SYNC_VERSION,
                    "item_count": 1234,
                    "fingerprint": fingerprint.hex(),
                    "max_frame_bytes": 1048576,
                },
                encode_hello(1234, fingerprint, 1048576),
            ),
            message(
                "RECONCILE",
                {"message": "920190"},
                encode_reconcile(bytes.fromhex("920190")),
            ),
            message(
                "OPS",
                {"operations": [example_op.encoded.hex()]},
                encode_ops([example_op.encoded]),
            ),
            message(
                "WANT",
                {"ids": [ops[2].id.hex(), ops[3].id.hex()]},
                encode_want([ops[2].id, ops[3].id]),
            ),
            message("DONE", {}, encode_done()),
            message("ERROR", {"reason": "deadline"}, encode_error("deadline")),
            message("SKETCH_ASK", {"count": 32}, encode_sketch_ask(32)),
            message(
                "SKETCH",
                {"symbols": (bytes(range(20)) + bytes(range(20, 40))).hex()},
                encode_sketch(bytes(range(20)) + bytes(range(20, 40))),
            ),
            message(
                "WANT_SHORT",
                {"short_ids": [ops[2].id[:8].hex(), ops[3].id[:8].hex()]},
                encode_want_short([ops[2].id[:8], ops[3].id[:8]]),
            ),
            message("WANT_ALL", {}, encode_want_all()),
        ],
        "sessions": [
            session(
                "equal",
                "Equal sets: HELLO, HELLO, DONE, DONE; nothing is reconciled.",
                ops,
                ops,
            ),
            session(
                "small-difference",
                "Each side lacks a few operations: SKETCH_ASK and SKETCH, then OPS, WANT_SHORT, "
                "DONE and the responder's OPS and DONE.",
                [*thread_a, *profiles[:2]],
                [*thread_a[:9], *thread_b[:4], *profiles[1:]],
            ),
            session(
                "small-difference-range",
                "The same sets with range reconciliation (the initiator does not sketch): "
                "RECONCILE rounds, then OPS, WANT, DONE and the responder's OPS and DONE.",
                [*thread_a, *profiles[:2]],
                [*thread_a[:9], *thread_b[:4], *profiles[1:]],
                limits=SyncLimits(sketch=False),
            ),
            session(
                "one-side-empty",
                "The responder holds nothing: the initiator pushes everything, unreconciled.",
                ops,
                [],
            ),
            session(
                "initiator-empty",
                "The initiator holds nothing: WANT_ALL, and the responder sends everything.",
                [],
                ops,
            ),
            session(
                "small-frames",
                "64 KiB frames and a small split policy, range reconciliation: more rounds.",
                [*thread_a, *thread_b[::2]],
                [*thread_b, *profiles],
                limits=SyncLimits(
                    max_frame_bytes=MIN_FRAME_BYTES,
                    max_ops_frame_bytes=MIN_FRAME_BYTES,
                    branching=3,
                    id_list_threshold=4,
                    sketch=False,
                ),
            ),
            session(
                "sketch-two-asks",
                "A difference larger than the first ask: a second SKETCH_ASK sized by the "
                "estimate (§9.7.4).",
                [*thread_a, *profiles],
                thread_b,
            ),
            session(
                "targeted-want",
                "No reconciliation: the initiator asks for two ids (one unknown to the responder).",
                thread_a[:3],
                ops,
                reconcile=False,
                want=[thread_a[5].id, bytes(32)],
            ),
        ],
        "invalid_frames": [
            invalid("not msgpack", b"\xc1", "malformed"),
            invalid("a map, not an array", msgpack.packb({"type": 4}), "malformed"),
            invalid("unknown message type 10", msgpack.packb([10]), "malformed"),
            invalid("DONE with an 8-bit type: not canonical", b"\x91\xcc\x04", "non-canonical"),
            invalid(
                "HELLO with a 15-byte fingerprint",
                msgpack.packb([0, SYNC_VERSION, 0, bytes(15), 1048576], use_bin_type=True),
                "bad-hello",
            ),
            invalid(
                "HELLO announcing frames under 65536 bytes",
                encode_hello(0, bytes(16), 1024),
                "bad-hello",
            ),
            invalid(
                "WANT with a 31-byte id",
                msgpack.packb([3, bytes(31)], use_bin_type=True),
                "malformed",
            ),
            invalid("OPS with no operation", msgpack.packb([2, []]), "malformed"),
            invalid(
                "OPS holding a text, not a binary",
                msgpack.packb([2, ["op"]], use_bin_type=True),
                "malformed",
            ),
            invalid("SKETCH_ASK for no symbols", msgpack.packb([6, 0]), "malformed"),
            invalid(
                "SKETCH of 19 bytes",
                msgpack.packb([7, bytes(19)], use_bin_type=True),
                "malformed",
            ),
            invalid(
                "WANT_SHORT with a 7-byte short id",
                msgpack.packb([8, bytes(7)], use_bin_type=True),
                "malformed",
            ),
            invalid("WANT_ALL with an argument", msgpack.packb([9, 0]), "malformed"),
            invalid(
                "ERROR with a binary reason",
                msgpack.packb([5, b"x"], use_bin_type=True),
                "malformed",
            ),
        ],
    }


def render() -> str:
    return json.dumps(generate(), indent=1) + "\n"


def main() -> int:
    return write_or_check(OUTPUT, render, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    raise SystemExit(main())
