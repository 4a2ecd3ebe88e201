"""The sync conversation (core/sync_protocol.py): two in-memory sides converge to the union of
their operation sets whatever the sets and limits; a peer's bytes end a session with a typed
error only; protocol/vectors/sync_messages.json holds what the code does."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    Operation,
    ProfilePayload,
    ThreadPayload,
    decode_operation,
    make_operation,
)
from p2pcomments.core.reconcile import INFINITY, MIN_BOUND, SortedItems
from p2pcomments.core.sketch import MAX_SYMBOLS, SYMBOL_SIZE
from p2pcomments.core.sync_protocol import (
    MIN_FRAME_BYTES,
    SYNC_VERSION,
    MessageType,
    OpsReceived,
    SyncError,
    SyncLimits,
    SyncMode,
    SyncSession,
    claimed_id,
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
    reconcile_message_limit,
    sketch_key,
    sketch_symbol_limit,
)

POOL_SIZE = 400


@cache
def pool() -> tuple[Operation, ...]:
    """Signed operations to draw sets from (profiles: they stand alone, so any subset is valid).
    Timestamps repeat so that many items share one and bounds need id prefixes."""
    keys = [SigningKey(bytes([n + 1]) * 32) for n in range(4)]
    return tuple(
        make_operation(
            keys[n % 4], ProfilePayload(name=f"name {n}"), timestamp_ms=1_000 + (n * 7919) % 97
        )
        for n in range(POOL_SIZE)
    )


class Side:
    """One node: a set of operations, what its session received, and its session."""

    def __init__(self, ops: Iterable[Operation]) -> None:
        held = list(ops)
        self.ops: dict[bytes, bytes] = {op.id: op.encoded for op in held}
        self.items = SortedItems((op.timestamp_ms, op.id) for op in held)
        self.received: list[bytes] = []

    def get_encoded(self, op_ids: Sequence[bytes]) -> Mapping[bytes, bytes]:
        return {i: self.ops[i] for i in op_ids if i in self.ops}

    def session(self, *, initiator: bool, **options: object) -> SyncSession:
        return SyncSession(self.items, self, initiator=initiator, now=0.0, **options)  # type: ignore[arg-type]

    def absorb(self, session: SyncSession) -> None:
        while (event := session.next_event()) is not None:
            assert isinstance(event, OpsReceived)
            self.received.extend(event.ops)


def converse(
    a: SyncSession, b: SyncSession, side_a: Side, side_b: Side, *, now: float = 0.0
) -> list[tuple[str, bytes]]:
    """Carry frames between the two sessions until neither has anything to say; return them."""
    transcript: list[tuple[str, bytes]] = []
    progress = True
    while progress:
        progress = False
        for name, source, target, target_side in (("a", a, b, side_b), ("b", b, a, side_a)):
            while (frame := source.next_frame()) is not None:
                progress = True
                transcript.append((name, frame))
                if not target.done:
                    target.receive_frame(frame, now=now)
                    target_side.absorb(target)
    return transcript


def ids_of(encoded: Iterable[bytes]) -> set[bytes]:
    by_bytes = {op.encoded: op.id for op in pool()}
    return {by_bytes[data] for data in encoded}


def sync(
    a_ops: Iterable[Operation], b_ops: Iterable[Operation], **options: object
) -> tuple[Side, Side, SyncSession, SyncSession, list[tuple[str, bytes]]]:
    side_a, side_b = Side(a_ops), Side(b_ops)
    initiator = side_a.session(initiator=True, **options)
    responder = side_b.session(initiator=False, **options)
    transcript = converse(initiator, responder, side_a, side_b)
    return side_a, side_b, initiator, responder, transcript


subsets = st.sets(st.integers(0, POOL_SIZE - 1), max_size=POOL_SIZE)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=subsets, b=subsets, small=st.booleans(), sketch=st.booleans())
def test_two_sides_converge_to_the_union(
    a: set[int], b: set[int], small: bool, sketch: bool
) -> None:
    limits = SyncLimits(sketch=sketch)
    if small:  # small frames and reconcile messages: many rounds, deferred ranges, split OPS
        limits = SyncLimits(
            max_frame_bytes=MIN_FRAME_BYTES,
            max_ops_frame_bytes=MIN_FRAME_BYTES,
            branching=3,
            id_list_threshold=4,
            sketch=sketch,
        )
    ops = pool()
    side_a, side_b, initiator, responder, _ = sync(
        [ops[i] for i in a], [ops[i] for i in b], limits=limits
    )
    assert initiator.done
    assert responder.done
    assert initiator.error is None
    assert responder.error is None
    union = {ops[i].id for i in a | b}
    assert set(side_a.ops) | ids_of(side_a.received) == union
    assert set(side_b.ops) | ids_of(side_b.received) == union
    # Only what was missing travelled, each operation once.
    assert len(side_a.received) == len(ids_of(side_a.received)) == len(b - a)
    assert len(side_b.received) == len(b.__class__(a - b))
    result = initiator.result()
    assert result.ops_sent == len(a - b)
    assert result.ops_received == len(b - a)
    assert result.equal == (a == b)
    if a == b:
        assert result.mode is SyncMode.NONE
    elif not a or not b:
        assert result.mode is SyncMode.ALL  # nothing to reconcile against an empty side
    else:
        assert result.mode is (SyncMode.SKETCH if sketch else SyncMode.RANGE)
    assert responder.result().mode is result.mode


def test_equal_sets_end_after_hellos_and_dones() -> None:
    ops = pool()[:50]
    _, _, initiator, responder, transcript = sync(ops, ops)
    kinds = [(name, decode_message(frame).type) for name, frame in transcript]
    assert kinds == [
        ("a", MessageType.HELLO),
        ("b", MessageType.HELLO),
        ("a", MessageType.DONE),
        ("b", MessageType.DONE),
    ]
    assert initiator.result().equal
    assert responder.result().equal
    # The initiator knows after one round trip: it is done once its DONE is out.
    assert initiator.done


def test_message_order_when_sets_differ_range() -> None:
    ops = pool()
    _, _, _, _, transcript = sync(ops[:30], ops[20:60], limits=SyncLimits(sketch=False))
    kinds = [(name, decode_message(frame).type) for name, frame in transcript]
    assert kinds[:2] == [("a", MessageType.HELLO), ("b", MessageType.HELLO)]
    body = kinds[2:]
    reconcile = list(itertools.takewhile(lambda k: k[1] is MessageType.RECONCILE, body))
    assert [name for name, _ in reconcile] == ["a", "b"] * (len(reconcile) // 2) + (
        ["a"] if len(reconcile) % 2 else []
    )
    rest = body[len(reconcile) :]
    initiator_part = list(itertools.takewhile(lambda k: k[0] == "a", rest))
    assert [k for _, k in initiator_part] == [MessageType.OPS, MessageType.WANT, MessageType.DONE]
    assert [k for _, k in rest[len(initiator_part) :]] == [MessageType.OPS, MessageType.DONE]


def test_message_order_when_sets_differ_sketch() -> None:
    ops = pool()
    _, _, initiator, _, transcript = sync(ops[:150], ops[100:260])
    kinds = [(name, decode_message(frame).type) for name, frame in transcript]
    assert kinds[:2] == [("a", MessageType.HELLO), ("b", MessageType.HELLO)]
    body = kinds[2:]
    sketch = list(
        itertools.takewhile(lambda k: k[1] in (MessageType.SKETCH_ASK, MessageType.SKETCH), body)
    )
    assert sketch == [("a", MessageType.SKETCH_ASK), ("b", MessageType.SKETCH)] * (len(sketch) // 2)
    rest = body[len(sketch) :]
    assert rest == [
        ("a", MessageType.OPS),
        ("a", MessageType.WANT_SHORT),
        ("a", MessageType.DONE),
        ("b", MessageType.OPS),
        ("b", MessageType.DONE),
    ]
    result = initiator.result()
    assert result.mode is SyncMode.SKETCH
    # 210 differing ids; about 1.4-1.7 coded symbols each, at 20 bytes.
    assert 210 <= result.sketch_symbols <= 2 * 210
    assert result.needed == 110
    assert result.rounds == len(sketch) // 2


@pytest.mark.parametrize(
    ("empty", "middle"),
    [
        ("initiator", [MessageType.WANT_ALL, MessageType.DONE, MessageType.OPS]),
        ("responder", [MessageType.OPS, MessageType.DONE]),
    ],
)
def test_an_empty_side_receives_everything_unreconciled(
    empty: str, middle: list[MessageType]
) -> None:
    ops = pool()[:120]
    held, nothing = (list(ops), [])
    a_ops, b_ops = (nothing, held) if empty == "initiator" else (held, nothing)
    side_a, side_b, initiator, _, transcript = sync(a_ops, b_ops)
    kinds = [decode_message(frame).type for _, frame in transcript]
    assert kinds == [MessageType.HELLO, MessageType.HELLO, *middle, MessageType.DONE]
    receiver = side_a if empty == "initiator" else side_b
    assert ids_of(receiver.received) == {op.id for op in ops}
    assert initiator.result().mode is SyncMode.ALL


def test_want_all_is_served_up_to_the_want_limit() -> None:
    ops = pool()
    side_a, side_b = Side([]), Side(ops[:50])
    initiator = side_a.session(initiator=True)
    responder = side_b.session(initiator=False, limits=SyncLimits(max_wanted_ids=20))
    converse(initiator, responder, side_a, side_b)
    assert initiator.error is None
    assert responder.error is None
    assert len(side_a.received) == 20  # the next session is no longer empty-handed


def test_targeted_want_fetches_without_reconciling() -> None:
    ops = pool()
    side_a, side_b = Side(ops[:10]), Side(ops[:100])
    wanted = [ops[50].id, ops[60].id, b"\x07" * 32]  # the last one nobody holds
    initiator = side_a.session(initiator=True, reconcile=False, want=wanted)
    responder = side_b.session(initiator=False)
    transcript = converse(initiator, responder, side_a, side_b)
    assert MessageType.RECONCILE not in {decode_message(f).type for _, f in transcript}
    assert ids_of(side_a.received) == {ops[50].id, ops[60].id}
    assert initiator.error is None
    assert responder.error is None
    assert initiator.result().wanted == 3


def test_ops_frames_respect_the_size_limit() -> None:
    ops = pool()
    limits = SyncLimits(max_frame_bytes=MIN_FRAME_BYTES, max_ops_frame_bytes=MIN_FRAME_BYTES)
    _, side_b, _, _, transcript = sync(ops, [], limits=limits)
    assert len(side_b.received) == POOL_SIZE
    assert all(len(frame) <= MIN_FRAME_BYTES for _, frame in transcript)


def test_reconcile_limit_is_the_same_on_both_sides() -> None:
    assert reconcile_message_limit(2**20, 2**16) == reconcile_message_limit(2**16, 2**20)
    assert reconcile_message_limit(2**20, 2**20) == 256 * 1024


# -- a peer's faults ----------------------------------------------------------------------------


def responder_after_hello(side: Side | None = None) -> SyncSession:
    side = side or Side(pool()[:20])
    responder = side.session(initiator=False)
    responder.receive_frame(encode_hello(3, b"\x01" * 16, 2**20), now=0.0)
    assert decode_message(responder.next_frame() or b"").type is MessageType.HELLO
    return responder


def ended_with(session: SyncSession, reason: str, *, peer_fault: bool) -> None:
    assert session.done
    error = session.error
    assert isinstance(error, SyncError)
    assert error.reason == reason
    assert error.peer_fault is peer_fault
    frame = session.next_frame()
    assert frame is not None
    message = decode_message(frame)
    assert message.type is MessageType.ERROR
    assert message.reason == reason


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "malformed"),
        (b"\xc1", "malformed"),
        (msgpack.packb([10]), "malformed"),
        (encode_sketch(bytes(SYMBOL_SIZE)), "unexpected-message"),  # no SKETCH to a responder
        (encode_sketch_ask(MAX_SYMBOLS), "bad-sketch-ask"),  # more than one frame holds
        (msgpack.packb({"a": 1}), "malformed"),
        (b"\x91\xcc\x04", "non-canonical"),  # DONE with an 8-bit type
        (encode_ops([b"not an operation"]), "bad-operation"),
        (encode_ops([pool()[300].encoded]), "unsolicited-operation"),
        (encode_reconcile(b"\x92\x02\x90"), "reconcile-unsupported-version"),
        (encode_hello(1, b"\x00" * 16, 2**20), "unexpected-message"),
    ],
)
def test_bad_frames_end_the_session_as_the_peers_fault(frame: bytes, reason: str) -> None:
    responder = responder_after_hello()
    responder.receive_frame(frame, now=0.0)
    ended_with(responder, reason, peer_fault=True)


def test_a_frame_over_our_limit_is_a_violation() -> None:
    responder = responder_after_hello()
    responder.receive_frame(encode_want([b"\x01" * 32] * 40_000), now=0.0)
    ended_with(responder, "frame-too-large", peer_fault=True)


def test_a_hello_announcing_tiny_frames_is_a_violation() -> None:
    responder = Side([]).session(initiator=False)
    responder.receive_frame(encode_hello(0, b"\x00" * 16, 1024), now=0.0)
    ended_with(responder, "bad-hello", peer_fault=True)


def test_another_version_ends_the_session_without_blame() -> None:
    responder = Side([]).session(initiator=False)
    responder.receive_frame(msgpack.packb([0, SYNC_VERSION + 1, 0, b"\x00" * 16, 2**20]), now=0.0)
    ended_with(responder, "unsupported-version", peer_fault=False)


def test_the_peers_error_ends_the_session_without_reply() -> None:
    responder = responder_after_hello()
    responder.receive_frame(encode_error("busy"), now=0.0)
    assert responder.done
    assert responder.error is not None
    assert responder.error.from_peer
    assert not responder.error.peer_fault
    assert responder.next_frame() is None


def test_an_out_of_turn_frame_is_a_violation() -> None:
    responder = Side([]).session(initiator=False)
    responder.receive_frame(encode_hello(0, b"\x00" * 16, 2**20), now=0.0)
    # Our HELLO is still waiting to be sent when the peer speaks again.
    responder.receive_frame(encode_done(), now=0.0)
    assert responder.error is not None
    assert responder.error.reason == "out-of-turn"


def test_deadline_ends_the_session() -> None:
    side = Side(pool()[:5])
    initiator = side.session(initiator=True, limits=SyncLimits(deadline_seconds=5))
    assert initiator.next_frame() is not None
    assert initiator.deadline == 5.0
    initiator.handle_timer(4.9)
    assert not initiator.done
    initiator.handle_timer(5.0)
    ended_with(initiator, "deadline", peer_fault=False)


def test_too_many_rounds_ends_the_session_without_blame() -> None:
    ops = pool()
    limits = SyncLimits(
        max_frame_bytes=MIN_FRAME_BYTES,
        max_ops_frame_bytes=MIN_FRAME_BYTES,
        max_rounds=1,
        branching=2,
        id_list_threshold=1,
        sketch=False,
    )
    _, _, initiator, responder, _ = sync(ops[:200], ops[100:], limits=limits)
    assert initiator.done
    assert responder.done
    errors = [s.error for s in (initiator, responder) if s.error is not None]
    assert errors
    assert {e.reason for e in errors} <= {"too-many-rounds"}
    assert not any(e.peer_fault for e in errors)


def test_session_byte_budget() -> None:
    key = SigningKey(b"\x09" * 32)
    ops = [
        make_operation(key, ThreadPayload(title=f"{n} " + "x" * 500), timestamp_ms=n)
        for n in range(500)
    ]
    limits = SyncLimits(
        max_frame_bytes=MIN_FRAME_BYTES,
        max_ops_frame_bytes=MIN_FRAME_BYTES,
        max_session_bytes=3 * MIN_FRAME_BYTES,
    )
    side_a, side_b = Side(ops), Side([])
    initiator = side_a.session(initiator=True)
    responder = side_b.session(initiator=False, limits=limits)
    converse(initiator, responder, side_a, side_b)
    assert responder.error is not None
    assert responder.error.reason == "session-bytes"
    assert 0 < len(side_b.received) < len(ops)  # what came before the limit is kept


def test_feeding_a_finished_session_is_the_callers_mistake() -> None:
    responder = responder_after_hello()
    responder.receive_frame(b"", now=0.0)
    with pytest.raises(RuntimeError):
        responder.receive_frame(encode_done(), now=0.0)


def test_encoders_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError):
        encode_ops([])
    with pytest.raises(ValueError):
        encode_want([b"short"])
    with pytest.raises(ValueError):
        encode_hello(0, b"short", 2**20)
    with pytest.raises(ValueError):
        SyncLimits(max_frame_bytes=1000)
    with pytest.raises(ValueError):
        Side([]).session(initiator=False, want=[b"\x00" * 32])


def valid_frames() -> list[bytes]:
    ops = pool()
    return [
        encode_hello(5, b"\x02" * 16, 2**20),
        encode_reconcile(b"\x92\x01\x90"),
        encode_ops([ops[0].encoded, ops[1].encoded]),
        encode_want([ops[0].id]),
        encode_done(),
        encode_error("busy"),
        encode_sketch_ask(40),
        encode_sketch(bytes(range(40)) * 2),
        encode_want_short([ops[0].id[:8]]),
        encode_want_all(),
    ]


def mutate(frame: bytes, position: int, value: int) -> bytes:
    if not frame:
        return bytes([value])
    index = position % len(frame)
    return frame[:index] + bytes([value]) + frame[index + 1 :]


@settings(max_examples=300, deadline=None)
@given(
    state=st.sampled_from(["fresh-responder", "after-hello", "initiator"]),
    frames=st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.builds(
                mutate,
                st.sampled_from(valid_frames()),
                st.integers(0, 1000),
                st.integers(0, 255),
            ),
            st.sampled_from(valid_frames()),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_any_bytes_yield_progress_or_a_typed_error(state: str, frames: list[bytes]) -> None:
    side = Side(pool()[:30])
    if state == "fresh-responder":
        session = side.session(initiator=False)
    elif state == "after-hello":
        session = responder_after_hello(side)
    else:
        session = side.session(initiator=True)
        session.next_frame()
    for frame in frames:
        while session.next_frame() is not None:
            pass
        if session.done:
            break
        session.receive_frame(frame, now=0.0)  # must not raise
        side.absorb(session)
    if session.error is not None:
        assert isinstance(session.error, SyncError)
        assert session.error.reason


def test_hello_carries_the_whole_set_fingerprint() -> None:
    side = Side(pool()[:25])
    frame = side.session(initiator=True).next_frame()
    assert frame is not None
    hello = decode_message(frame).hello
    assert hello is not None
    assert hello.item_count == 25
    assert hello.fingerprint == side.items.fingerprint(MIN_BOUND, INFINITY)


# -- protocol/vectors/sync_messages.json, read as another implementation would -----------------

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "protocol" / "vectors" / "sync_messages.json").read_text())


@pytest.mark.parametrize("script", ["gen_sync_vectors.py", "gen_reconcile_vectors.py"])
def test_vector_files_are_current(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("vector", VECTORS["messages"], ids=lambda v: v["name"])
def test_message_vectors_decode_to_their_fields(vector: dict[str, Any]) -> None:
    message = decode_message(bytes.fromhex(vector["hex"]))
    assert message.type.name == vector["name"]
    fields = vector["fields"]
    if message.hello is not None:
        assert message.hello.version == fields["version"]
        assert message.hello.item_count == fields["item_count"]
        assert message.hello.fingerprint.hex() == fields["fingerprint"]
        assert message.hello.max_frame_bytes == fields["max_frame_bytes"]
    elif vector["name"] == "RECONCILE":
        assert message.payload.hex() == fields["message"]
    elif vector["name"] == "OPS":
        assert [op.hex() for op in message.ops] == fields["operations"]
    elif vector["name"] == "WANT":
        assert message.payload.hex() == "".join(fields["ids"])
    elif vector["name"] == "WANT_SHORT":
        assert message.payload.hex() == "".join(fields["short_ids"])
    elif vector["name"] == "SKETCH_ASK":
        assert message.count == fields["count"]
    elif vector["name"] == "SKETCH":
        assert message.payload.hex() == fields["symbols"]
    elif vector["name"] == "ERROR":
        assert message.reason == fields["reason"]


@pytest.mark.parametrize("vector", VECTORS["invalid_frames"], ids=lambda v: v["note"])
def test_invalid_frame_vectors_are_refused(vector: dict[str, str]) -> None:
    responder = Side([]).session(initiator=False)
    responder.receive_frame(bytes.fromhex(vector["hex"]), now=0.0)
    assert responder.error is not None
    assert responder.error.reason == vector["reason"]
    assert responder.error.peer_fault


@pytest.mark.parametrize("vector", VECTORS["sessions"], ids=lambda v: v["name"])
def test_session_vectors_replay(vector: dict[str, Any]) -> None:
    """Each side, fed the other side's recorded frames, sends exactly the recorded frames and
    receives exactly the recorded operations."""
    limits = SyncLimits(
        max_frame_bytes=vector["max_frame_bytes"],
        max_ops_frame_bytes=min(vector["max_frame_bytes"], 256 * 1024),
        branching=vector["reconcile_policy"]["branching"],
        id_list_threshold=vector["reconcile_policy"]["id_list_threshold"],
        sketch=vector["initiator_sketches"],
    )
    frames = [(f["from"], bytes.fromhex(f["hex"])) for f in vector["frames"]]
    for role in ("initiator", "responder"):
        held = [decode_operation(bytes.fromhex(h)) for h in vector[f"{role}_operations"]]
        side = Side(held)
        if role == "initiator":
            session = side.session(
                initiator=True,
                limits=limits,
                reconcile=vector["initiator_reconciles"],
                want=[bytes.fromhex(i) for i in vector["initiator_wants"]],
            )
        else:
            session = side.session(initiator=False, limits=limits)
        for sender, frame in frames:
            if sender == role:
                assert session.next_frame() == frame
            elif not session.done:
                assert session.next_frame() is None
                session.receive_frame(frame, now=0.0)
                side.absorb(session)
        assert session.next_frame() is None
        assert session.done
        assert session.error is None
        received = sorted(decode_operation(d, verify=False).id.hex() for d in side.received)
        assert received == vector[f"{role}_received"]
    held = {
        role: SortedItems(
            (op.timestamp_ms, op.id)
            for op in (decode_operation(bytes.fromhex(h)) for h in vector[f"{role}_operations"])
        )
        for role in ("initiator", "responder")
    }
    fingerprints = [held[role].fingerprint(MIN_BOUND, INFINITY) for role in held]
    assert sketch_key(*fingerprints).hex() == vector["sketch_key"]


def test_claimed_id_is_the_operation_id_without_decoding() -> None:
    for op in pool()[:50]:
        assert claimed_id(op.encoded) == op.id
    assert claimed_id(b"") is None
    assert claimed_id(b"\x99" + bytes(100)) is None  # no 64-byte signature at the end
    assert claimed_id(pool()[0].encoded[:-1]) is None


# -- the sketch mode's bounds ------------------------------------------------------------------


class IdsOnly:
    """A side whose items are bare ids (no operation bytes): for what reconciliation finds."""

    def __init__(self, items: Iterable[tuple[int, bytes]]) -> None:
        self.items = SortedItems(items)

    def get_encoded(self, op_ids: Sequence[bytes]) -> Mapping[bytes, bytes]:
        return {}


def synthetic(n: int) -> tuple[int, bytes]:
    return (1_000 + n, hashlib.sha256(b"synthetic %d" % n).digest())


def converse_ids(a: IdsOnly, b: IdsOnly, limits: SyncLimits) -> tuple[SyncSession, SyncSession]:
    initiator = SyncSession(a.items, a, initiator=True, now=0.0, limits=limits)
    responder = SyncSession(b.items, b, initiator=False, now=0.0, limits=limits)
    progress = True
    while progress:
        progress = False
        for source, target in ((initiator, responder), (responder, initiator)):
            while (frame := source.next_frame()) is not None:
                progress = True
                if not target.done:
                    target.receive_frame(frame, now=0.0)
    return initiator, responder


def test_a_sketch_that_cannot_decode_falls_back_to_range_reconciliation() -> None:
    """Two of the responder's operations share a short id (an author ground them): their cells
    are never pure, so the initiator gives up on the sketch and reconciles by range."""
    shared = [synthetic(n) for n in range(300)]
    twin_a, twin_b = synthetic(1000), synthetic(1001)
    twin_b = (twin_b[0], twin_a[1][:8] + twin_b[1][8:])
    a = IdsOnly([*shared, synthetic(2000)])
    b = IdsOnly([*shared, twin_a, twin_b, synthetic(2001)])
    initiator, responder = converse_ids(a, b, SyncLimits())
    assert initiator.error is None
    assert responder.error is None
    result = initiator.result()
    assert result.mode is SyncMode.SKETCH_THEN_RANGE
    assert responder.result().mode is SyncMode.SKETCH_THEN_RANGE
    assert result.needed == 3  # the twins and 2001, found by range reconciliation
    assert 0 < result.sketch_symbols < 200  # gave up early, not at MAX_SYMBOLS


def test_sketch_rounds_count_against_the_round_limit() -> None:
    a = IdsOnly([synthetic(n) for n in range(0, 3000)])
    b = IdsOnly([synthetic(n) for n in range(400, 3400)])
    initiator, responder = converse_ids(a, b, SyncLimits(max_rounds=1))
    errors = [s.error for s in (initiator, responder) if s.error is not None]
    assert {e.reason for e in errors} == {"too-many-rounds"}


def test_a_sketch_of_the_wrong_length_is_a_violation() -> None:
    side = Side(pool()[:30])
    initiator = side.session(initiator=True)
    initiator.next_frame()
    initiator.receive_frame(encode_hello(3, b"\x01" * 16, 2**20), now=0.0)
    ask = decode_message(initiator.next_frame() or b"")
    assert ask.type is MessageType.SKETCH_ASK
    initiator.receive_frame(encode_sketch(bytes(SYMBOL_SIZE * (ask.count + 1))), now=0.0)
    ended_with(initiator, "bad-sketch", peer_fault=True)


def test_pushes_beyond_the_symbols_sent_are_unsolicited() -> None:
    """A responder that sent k coded symbols takes at most k pushed operations (rule 3)."""
    ops = pool()
    responder = responder_after_hello(Side(ops[:20]))
    responder.receive_frame(encode_sketch_ask(3), now=0.0)
    assert decode_message(responder.next_frame() or b"").type is MessageType.SKETCH
    responder.receive_frame(encode_ops([op.encoded for op in ops[100:103]]), now=0.0)
    assert not responder.done
    responder.receive_frame(encode_ops([ops[103].encoded]), now=0.0)
    ended_with(responder, "unsolicited-operation", peer_fault=True)


def test_a_pushed_operation_we_hold_is_skipped_not_blamed() -> None:
    ops = pool()
    side = Side(ops[:20])
    responder = responder_after_hello(side)
    responder.receive_frame(encode_sketch_ask(3), now=0.0)
    responder.next_frame()
    responder.receive_frame(encode_ops([ops[0].encoded, ops[100].encoded]), now=0.0)
    side.absorb(responder)
    assert ids_of(side.received) == {ops[100].id}
    assert responder.error is None


def test_no_sketch_after_range_reconciliation_began() -> None:
    responder = responder_after_hello(Side(pool()[:40]))
    responder.receive_frame(
        encode_reconcile(b"\x92\x01\x91\x94\x00\xc4\x00\x01\xc4\x10" + bytes(16)), now=0.0
    )
    assert decode_message(responder.next_frame() or b"").type is MessageType.RECONCILE
    responder.receive_frame(encode_sketch_ask(10), now=0.0)
    ended_with(responder, "unexpected-message", peer_fault=True)


def test_sketch_limits_follow_the_frame_size() -> None:
    assert sketch_symbol_limit(2**20, 2**20) == 256 * 1024 // SYMBOL_SIZE
    assert sketch_symbol_limit(MIN_FRAME_BYTES, 2**20) == (MIN_FRAME_BYTES - 16) // SYMBOL_SIZE


def test_a_responder_encodes_no_more_coded_symbols_than_its_budget() -> None:
    """SyncLimits.max_sketch_symbols (a node lowers it for a peer over its budget): asking for
    more is ERROR sketch-budget, not the peer's fault; what was asked within it is served."""
    side = Side(pool()[:20])
    responder = side.session(initiator=False, limits=SyncLimits(max_sketch_symbols=40))
    responder.receive_frame(encode_hello(3, b"\x01" * 16, 2**20), now=0.0)
    assert decode_message(responder.next_frame() or b"").type is MessageType.HELLO
    responder.receive_frame(encode_sketch_ask(32), now=0.0)
    assert decode_message(responder.next_frame() or b"").type is MessageType.SKETCH
    assert responder.sketch_symbols_served == 32
    responder.receive_frame(encode_sketch_ask(16), now=0.0)
    ended_with(responder, "sketch-budget", peer_fault=False)
    assert responder.sketch_symbols_served == 32
