"""`SyncSession.prepare_frame` (core/sync_protocol.py rule 8): the coded-symbol work done ahead,
in a worker thread as the sync runner does, changes nothing a session sends or decides."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcomments.core.sketch import MAX_SYMBOLS, SYMBOL_SIZE, SketchDecoder, SketchEncoder
from p2pcomments.core.sync_protocol import (
    SyncLimits,
    SyncSession,
    encode_sketch,
    encode_sketch_ask,
)

from .test_sync_protocol import POOL_SIZE, Side, converse, pool, responder_after_hello


def _build_into(session: SyncSession, built: list[bytes | None]) -> None:
    built.append(session.next_frame())


def converse_preparing(
    a: SyncSession, b: SyncSession, side_a: Side, side_b: Side
) -> tuple[list[tuple[str, bytes]], int]:
    """`converse`, but every frame a session calls costly is prepared first in another thread,
    and every frame a session says reads operations is built in another thread (and is the
    only kind that is OPS); returns the transcript and how many frames were prepared."""
    transcript: list[tuple[str, bytes]] = []
    prepared = 0
    progress = True
    while progress:
        progress = False
        for name, source, target, target_side in (("a", a, b, side_b), ("b", b, a, side_a)):
            while True:
                built: list[bytes | None] = []
                reads = source.next_frame_reads_operations()
                if reads:
                    builder = threading.Thread(target=_build_into, args=(source, built))
                    builder.start()
                    builder.join()
                else:
                    built.append(source.next_frame())
                frame = built[0]
                if frame is None:
                    break
                assert reads or frame[1] != 2  # an OPS frame ([2, ...]) was said to read
                progress = True
                transcript.append((name, frame))
                if target.done:
                    continue
                if target.frame_is_costly(frame):
                    worker = threading.Thread(target=target.prepare_frame, args=(frame,))
                    worker.start()
                    worker.join()
                    prepared += 1
                target.receive_frame(frame, now=0.0)
                target_side.absorb(target)
    return transcript, prepared


subsets = st.sets(st.integers(0, POOL_SIZE - 1), max_size=POOL_SIZE)


@settings(max_examples=40, deadline=None)
@given(a=subsets, b=subsets, sketch=st.booleans())
def test_preparing_frames_changes_nothing(a: set[int], b: set[int], sketch: bool) -> None:
    ops = pool()
    limits = SyncLimits(sketch=sketch)
    plain_a, plain_b = Side(ops[i] for i in a), Side(ops[i] for i in b)
    plain = converse(
        plain_a.session(initiator=True, limits=limits),
        plain_b.session(initiator=False, limits=limits),
        plain_a,
        plain_b,
    )
    side_a, side_b = Side(ops[i] for i in a), Side(ops[i] for i in b)
    initiator = side_a.session(initiator=True, limits=limits)
    responder = side_b.session(initiator=False, limits=limits)
    transcript, prepared = converse_preparing(initiator, responder, side_a, side_b)
    assert transcript == plain
    assert side_a.received == plain_a.received
    assert side_b.received == plain_b.received
    assert initiator.error is None
    assert responder.error is None
    sketches = sum(1 for _, frame in plain if frame[1] in (6, 7))  # SKETCH_ASK, SKETCH
    # Each coded-symbol frame was costly, the HELLO answered with a sketch, and the DONE
    # after the initiator's wants (WANT, WANT_SHORT, WANT_ALL); nothing else.
    hello = 1 if sketch and a else 0
    wants = 1 if any(frame[1] in (3, 8, 9) for _, frame in plain) else 0
    assert prepared == sketches + hello + wants


def test_a_preparation_not_taken_is_discarded() -> None:
    shorts = [op.id[:8] for op in pool()[:300]]
    key = bytes(16)
    reference = SketchEncoder(shorts, key=key).next_symbols(40)
    encoder = SketchEncoder(shorts, key=key)
    encoder.prepare(25)  # then asked for another count: computed afresh
    first = encoder.next_symbols(10)
    encoder.prepare(30)
    assert first + encoder.next_symbols(30) == reference
    decoder = SketchDecoder(shorts[:-5], key=key)
    decoder.prepare(reference[: 7 * SYMBOL_SIZE])  # not what comes next
    decoder.receive(reference[: 2 * SYMBOL_SIZE])
    assert not decoder.decoded
    decoder.prepare(reference[2 * SYMBOL_SIZE :])
    decoder.receive(reference[2 * SYMBOL_SIZE :])
    fresh = SketchDecoder(shorts[:-5], key=key)
    fresh.receive(reference)
    assert decoder.decoded == fresh.decoded
    assert decoder.remote_only == fresh.remote_only == frozenset(shorts[-5:])


def test_preparing_any_bytes_never_raises_nor_changes_the_outcome() -> None:
    frames = [
        b"",
        b"\x92",
        encode_sketch_ask(1),
        encode_sketch_ask(MAX_SYMBOLS),
        encode_sketch_ask(20),
        encode_sketch(bytes(SYMBOL_SIZE)),
        b"\x92\x06\xc0",
        b"\x92\x07\xc4\x03abc",
    ]
    for frame in frames:
        plain = responder_after_hello()
        plain.receive_frame(frame, now=0.0)
        session = responder_after_hello()
        session.prepare_frame(frame)
        session.receive_frame(frame, now=0.0)
        assert session.done == plain.done
        assert repr(session.error) == repr(plain.error)
        assert getattr(session.error, "reason", None) == getattr(plain.error, "reason", None)
        assert session.next_frame() == plain.next_frame()
