"""The sync conversation on ``/p2pcomments/sync/2.0.0``, sans-IO (protocol/SPEC.md §9). The
messages it is made of (forms, encoders, decoder) are in `core.sync_messages`.

Two nodes bring their sets of applied operations together: a quick equality check; when the sets
differ, a rateless IBLT sketch (`core.sketch`) or range-based set reconciliation
(`core.reconcile`) to find the difference, or nothing at all when one side is empty; then the
operations each lacks. The session is driven with bytes and time (aioquic style): push each frame
the peer sent into `SyncSession.receive_frame` with ``now``, pull frames to send from
`SyncSession.next_frame` and events (`OpsReceived`) from `SyncSession.next_event`;
`SyncSession.result` says how it ended.

Rules this module enforces:

1. Every frame holds one message (`core.sync_messages` rule 1: the forms, and canonical
   decoding).
2. The conversation is half-duplex, so neither side ever waits on a peer that waits on it:
   initiator HELLO; responder HELLO; if the whole-set fingerprints differ (and the initiator asked
   for reconciliation) the initiator finds the difference, by one of: SKETCH_ASK / SKETCH pairs
   until its decoder knows the difference; RECONCILE messages alternating from the initiator until
   the reconcile session is over (also after a sketch that did not decode); or nothing, when one
   side is empty. Then the initiator sends OPS (what the responder lacks), WANT_ALL, WANT_SHORT and
   WANT (what it lacks and does not hold pending, plus any ids it was asked to fetch) and DONE;
   the responder answers the wants with OPS, then DONE. Equal fingerprints skip reconciliation:
   HELLO, HELLO, DONE, DONE. Operations go in item order (timestamp, id), so parents tend to
   precede what cites them.
3. Operations arrive only when asked for. The responder accepts pushed OPS only for ids its range
   reconciliation found it lacks; or, when it sent coded symbols instead (or holds nothing), for
   ids it does not hold, at most as many as it sent symbols (or the initiator announced items):
   no decoder learns more elements than it received symbols. The initiator accepts only ids it
   wanted, by full or short id, or any up to the responder's item count after WANT_ALL. Each id
   once. Their validity is not judged here (the node ingests them); their ids are.
4. Frame sizes: `core.sync_messages` rule 2.
5. Per-session limits: received bytes (``max_session_bytes``; the frame that reaches it is still
   applied, so every session makes progress), reconcile rounds (``max_rounds``: RECONCILE and
   SKETCH messages together), ids a peer may
   WANT (``max_wanted_ids``) and a deadline (``deadline_seconds`` after the start, on the
   caller's clock). Reaching one ends the session with an ERROR frame to the peer; only a
   protocol violation counts as the peer's fault (`SyncError.peer_fault`).
6. A peer's bytes never raise out of `receive_frame`: a violation ends the session with an ERROR
   frame queued for the peer and a `SyncError` in the result. Only the caller's own mistakes
   (feeding a finished session, bad arguments) raise. Coded symbols that do not decode (which
   honest peers produce only by short-id collisions) are not a violation: the initiator falls back
   to range reconciliation in the same session.
7. Which way the initiator reconciles, and how many coded symbols it asks for at a time, is local
   policy (`SyncLimits.sketch`, the reference policy in SPEC §9.7.4); a responder answers either.
8. The costly part of taking a frame, hashing or folding every item into coded symbols (the
   HELLO an initiator may answer with a sketch, a SKETCH_ASK we answer, a SKETCH we decode:
   O(items) each), or walking every item for what the peer wants (the DONE ending its wants),
   may run ahead in a worker thread: `SyncSession.frame_is_costly` says when,
   `SyncSession.prepare_frame` does it touching only the session's own coded-symbol state and
   the answer it prepares; `receive_frame` then behaves exactly as without it. So may building
   an OPS frame, which reads up to 256 KiB of operations from the `OpSource` (a store: ~500
   random reads): `SyncSession.next_frame_reads_operations` says when, provided the source may
   be read from another thread.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, Protocol

from p2pcomments.core import sync_messages
from p2pcomments.core.ops import claimed_id
from p2pcomments.core.reconcile import (
    DEFAULT_BRANCHING,
    DEFAULT_ID_LIST_THRESHOLD,
    INFINITY,
    MIN_BOUND,
    SHORT_ID_SIZE,
    ItemSet,
    ReconcileError,
    ReconcileSession,
)
from p2pcomments.core.sketch import (
    MAX_SYMBOLS,
    SYMBOL_SIZE,
    SketchDecoder,
    SketchEncoder,
    SketchError,
)

# Every message name stays importable from here, as before the messages had a module of their own.
from p2pcomments.core.sync_messages import *  # noqa: F403
from p2pcomments.core.sync_messages import (
    BIN_HEADER_MAX,
    DEFAULT_MAX_FRAME_BYTES,
    ID_SIZE,
    MIN_FRAME_BYTES,
    OPS_HEADER_BYTES,
    SYNC_VERSION,
    Hello,
    MessageType,
    SyncError,
    SyncMessage,
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
    violation,
)

__all__ = [
    "OpSource",
    "OpsReceived",
    "SyncLimits",
    "SyncMode",
    "SyncResult",
    "SyncSession",
    "claimed_id",
]
__all__ += sync_messages.__all__

_FETCH_CHUNK: Final = 64
# The reference ask policy (SPEC §9.7.4): coded symbols per differing id expected, plus slack.
_SKETCH_FIRST_ASK: Final = 32
_SKETCH_SYMBOLS_PER_ID: Final = 1.6
_SKETCH_SLACK: Final = 16
# Asks made from an estimate (SPEC §9.7.4 step 4) take more per id than the first ask: an
# estimate from 32 symbols is off by ~25%, and 1.6 per id took a third sketch round in half of
# the 1%-of-100k syncs (5 round trips); 2.0 took none in 8 of 8, at 1.096x bytes at worst
# instead of 1.079x (scripts/bench_reconcile.py).
_SKETCH_SYMBOLS_PER_ESTIMATED_ID: Final = 2.0
_SKETCH_GROWTH: Final = 1.25
_SKETCH_GIVE_UP_PER_ID: Final = 3
_SKETCH_GIVE_UP_SLACK: Final = 64


class SyncMode(Enum):
    """How a session found the difference between the two sets."""

    NONE = "none"
    """It did not: the sets were equal, or the initiator only fetched ids it named."""
    ALL = "all"
    """One side held nothing, so everything the other holds went across without reconciling."""
    SKETCH = "sketch"
    """Coded symbols of a rateless IBLT (SPEC §9.7)."""
    RANGE = "range"
    """Range-based set reconciliation (SPEC §9.6)."""
    SKETCH_THEN_RANGE = "sketch-then-range"
    """The coded symbols did not decode within the bounds; range reconciliation found it."""


class OpSource(Protocol):
    """Where a session gets the bytes of operations it sends."""

    def get_encoded(self, op_ids: Sequence[bytes]) -> Mapping[bytes, bytes]:
        """The canonical bytes of those of ``op_ids`` held here (valid or pending), by id; ids not
        held are left out. Also tells the initiator which needed ids it holds after all."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncLimits:
    """Per-session bounds (rule 5). Frame sizes are whole message bytes, without framing."""

    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    """The largest frame we accept; announced in our HELLO."""
    max_ops_frame_bytes: int = 256 * 1024
    """OPS frames we send are at most this (and the agreed frame size)."""
    max_session_bytes: int = 64 * 1024 * 1024
    """Bytes we accept from the peer in one session."""
    max_rounds: int = 64
    """Reconcile messages we accept from the peer in one session."""
    max_wanted_ids: int = 500_000
    """Ids a peer may ask for in one session."""
    max_sketch_symbols: int = MAX_SYMBOLS
    """Coded symbols we encode for the peer in one session as responder (SPEC §9.7); a node
    lowers it for a peer over its budget. More asked for: ERROR ``sketch-budget``."""
    deadline_seconds: float = 120.0
    branching: int = DEFAULT_BRANCHING
    id_list_threshold: int = DEFAULT_ID_LIST_THRESHOLD
    sketch: bool = True
    """As initiator, find a difference with coded symbols (SPEC §9.7) when the set sizes allow;
    False: range reconciliation only. Responders answer both ways whatever this says."""

    def __post_init__(self) -> None:
        if not MIN_FRAME_BYTES <= self.max_frame_bytes < 2**28:
            raise ValueError(f"max_frame_bytes must be in [{MIN_FRAME_BYTES}, 2**28)")
        if self.max_ops_frame_bytes < MIN_FRAME_BYTES:
            raise ValueError(f"max_ops_frame_bytes must be at least {MIN_FRAME_BYTES}")
        if self.max_session_bytes < self.max_frame_bytes or self.max_rounds < 1:
            raise ValueError("max_session_bytes must hold a frame and max_rounds be >= 1")
        if self.max_wanted_ids < 0 or self.deadline_seconds <= 0:
            raise ValueError("max_wanted_ids must be >= 0 and deadline_seconds > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpsReceived:
    """Operations the peer sent, as it sent them (one OPS frame): ingest them. Their ids were
    asked for (rule 3); nothing else about them has been checked."""

    ops: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    """How a session went. ``equal``: the HELLO fingerprints matched (nothing to reconcile).
    ``needed``: ids (or short ids) reconciliation found we lack; ``wanted``: ids and short ids we
    asked for in all (after WANT_ALL: the ids the responder announced); ``mode``: how the
    difference was found; ``sketch_symbols``: coded symbols sent or received."""

    initiator: bool
    equal: bool
    ops_sent: int
    ops_received: int
    needed: int
    wanted: int
    rounds: int
    frames_sent: int
    frames_received: int
    bytes_sent: int
    bytes_received: int
    error: SyncError | None
    mode: SyncMode = SyncMode.NONE
    sketch_symbols: int = 0


# -- the session -------------------------------------------------------------------------------


class _State(Enum):
    SEND_HELLO = "send-hello"  # initiator, before anything
    AWAIT_HELLO = "await-hello"
    SKETCHING = "sketching"  # initiator: a SKETCH_ASK is out
    RECONCILING = "reconciling"
    SEND_REQUESTS = "send-requests"  # initiator: OPS, wants, DONE going out
    AWAIT_OPS = "await-ops"  # initiator: answers to its wants, until DONE
    AWAIT_REQUESTS = "await-requests"  # responder: SKETCH_ASK, RECONCILE, OPS, wants until DONE
    SEND_ANSWERS = "send-answers"  # responder: OPS answering the wants, then DONE
    FINISHED = "finished"


@dataclass(slots=True)
class _Counters:
    ops_sent: int = 0
    ops_received: int = 0
    rounds: int = 0
    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    wanted: int = 0
    needed: int = 0


@dataclass(slots=True)
class _Outbox:
    """Frames ready to go, and ids whose OPS and WANT frames are built on demand (so a large
    answer is never all in memory at once), then one closing frame."""

    frames: deque[bytes] = field(default_factory=deque)
    op_ids: deque[bytes] = field(default_factory=deque)
    short_want_ids: deque[bytes] = field(default_factory=deque)
    want_ids: deque[bytes] = field(default_factory=deque)
    final: bytes | None = None


@dataclass(slots=True)
class _Acceptance:
    """Which pushed or answered operations we take (rule 3), beyond ids asked for by full id."""

    short_ids: set[bytes] = field(default_factory=set)
    """Short ids we asked for: every operation with one of them."""
    unknown_budget: int = 0
    """How many more operations we take that are not our items (after sending coded symbols,
    holding nothing, or asking for all)."""
    taken: set[bytes] = field(default_factory=set)
    """Ids taken through the two ways above, each once."""


class SyncSession:
    """One side of one sync conversation (module rules 1-7).

    ``items`` is this node's set snapshot (it must not change while the session runs); ``ops``
    gives the bytes of operations to send. The initiator reconciles when ``reconcile`` is True
    and the fingerprints differ, and asks for ``want`` in any case (a targeted fetch of
    operations that pending ones are waiting for). ``now`` is seconds on the caller's clock.
    """

    def __init__(
        self,
        items: ItemSet,
        ops: OpSource,
        *,
        initiator: bool,
        now: float,
        limits: SyncLimits | None = None,
        reconcile: bool = True,
        want: Sequence[bytes] = (),
    ) -> None:
        if any(type(i) is not bytes or len(i) != ID_SIZE for i in want):
            raise ValueError("want holds 32-byte ids")
        if want and not initiator:
            raise ValueError("only the initiator asks for ids")
        self.initiator = initiator
        self.limits = limits or SyncLimits()
        self._items = items
        self._ops = ops
        self._reconcile_wanted = reconcile
        self._targeted = list(dict.fromkeys(want))
        self._deadline = now + self.limits.deadline_seconds
        self._count = items.count(MIN_BOUND, INFINITY)
        self._fingerprint = items.fingerprint(MIN_BOUND, INFINITY)
        self._state = _State.SEND_HELLO if initiator else _State.AWAIT_HELLO
        self._peer_max_frame = MIN_FRAME_BYTES
        self._peer_count = 0
        self._peer_fingerprint = b""
        self._mode = SyncMode.NONE
        self._reconciler: ReconcileSession | None = None
        self._encoder: SketchEncoder | None = None  # responder
        self._prepared_encoder: SketchEncoder | None = None  # made by `prepare_frame` (rule 8)
        self._prepared_decoder: tuple[bytes, SketchDecoder] | None = None  # and its key
        self._prepared_answer: list[bytes] | None = None  # `_wanted_items`, made ahead too
        self._decoder: SketchDecoder | None = None  # initiator
        self._asked = 0  # coded symbols asked for in the SKETCH_ASK that is out
        self._equal = False
        self._expected: set[bytes] = set()  # ids we accept in OPS (rule 3)
        self._acceptance = _Acceptance()
        self._own_ids: frozenset[bytes] | None = None
        self._peer_wants: list[bytes] = []
        self._peer_wants_seen: set[bytes] = set()
        self._peer_wants_short: set[bytes] = set()
        self._peer_wants_all = False
        self._outbox = _Outbox()
        self._events: deque[OpsReceived] = deque()
        self._counters = _Counters()
        self._error: SyncError | None = None
        if initiator:
            self._outbox.frames.append(
                encode_hello(self._count, self._fingerprint, self.limits.max_frame_bytes)
            )
            self._state = _State.AWAIT_HELLO

    # -- reading the state -------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """The session is over for us: nothing more will be accepted. Frames may still be
        waiting in `next_frame` (our DONE or ERROR): send them before closing the stream."""
        return self._state is _State.FINISHED

    @property
    def expects_frame(self) -> bool:
        """Whether it is the peer's turn: true when nothing is left to send and we are not done."""
        return not self.done and not self._has_outgoing()

    @property
    def deadline(self) -> float:
        """When the session gives up (on the caller's clock); see `handle_timer`."""
        return self._deadline

    @property
    def error(self) -> SyncError | None:
        return self._error

    def result(self) -> SyncResult:
        counters = self._counters
        symbols = 0
        if self._encoder is not None:
            symbols = self._encoder.produced
        elif self._decoder is not None:
            symbols = self._decoder.received
        return SyncResult(
            initiator=self.initiator,
            equal=self._equal,
            ops_sent=counters.ops_sent,
            ops_received=counters.ops_received,
            needed=counters.needed,
            wanted=counters.wanted,
            rounds=counters.rounds,
            frames_sent=counters.frames_sent,
            frames_received=counters.frames_received,
            bytes_sent=counters.bytes_sent,
            bytes_received=counters.bytes_received,
            error=self._error,
            mode=self._mode,
            sketch_symbols=symbols,
        )

    # -- driving -----------------------------------------------------------------------------

    def next_frame_reads_operations(self) -> bool:
        """Whether `next_frame` would read operations from the `OpSource` to build an OPS frame
        (rule 8): a caller keeping an event loop live may call it in a worker thread, provided
        its source may be read there and nothing else uses the session meanwhile."""
        box = self._outbox
        return not box.frames and bool(box.op_ids)

    def next_frame(self) -> bytes | None:
        """The next frame to send, or None when it is the peer's turn or nothing is left."""
        frame = self._take_outgoing()
        if frame is not None:
            self._counters.frames_sent += 1
            self._counters.bytes_sent += len(frame)
        return frame

    def next_event(self) -> OpsReceived | None:
        """The next thing the peer told us that the caller must act on, or None."""
        return self._events.popleft() if self._events else None

    def frame_is_costly(self, data: bytes) -> bool:
        """Whether taking ``data`` next may fold every item into coded symbols (rule 8): a
        caller keeping an event loop live runs `prepare_frame` in a worker thread first. Looks
        at the message type only (a canonical frame's second byte)."""
        if self.done or len(data) < 2:
            return False
        if self.initiator:
            if data[1] == MessageType.HELLO and self._state is _State.AWAIT_HELLO:
                return self.limits.sketch and self._reconcile_wanted and self._count > 0
            return data[1] == MessageType.SKETCH and self._state is _State.SKETCHING
        if self._state is not _State.AWAIT_REQUESTS:
            return False
        if data[1] == MessageType.DONE:  # the wants are in: finding them walks every item
            return bool(self._peer_wants or self._peer_wants_short or self._peer_wants_all)
        return data[1] == MessageType.SKETCH_ASK

    def prepare_frame(self, data: bytes) -> None:
        """Do ahead the costly part of `receive_frame` ``(data)`` (rule 8): fold the items into
        the coded symbols a SKETCH_ASK asks for, or into the cells of a SKETCH. It may run in a
        worker thread, provided nothing else uses the session meanwhile; it touches only the
        session's coded-symbol state and changes nothing `receive_frame` decides (a frame it
        cannot use is left to `receive_frame`). Never raises for the peer's bytes."""
        if not self.frame_is_costly(data) or len(data) > self.limits.max_frame_bytes:
            return
        try:
            message = decode_message(bytes(data))
        except SyncError:
            return
        if message.type is MessageType.DONE:
            self._prepared_answer = self._wanted_items()
        elif message.type is MessageType.HELLO:
            hello = message.hello
            assert hello is not None
            if hello.item_count and hello.fingerprint != self._fingerprint:
                key = sketch_key(self._fingerprint, hello.fingerprint)
                self._prepared_decoder = (key, SketchDecoder(self._short_ids(), key=key))
        elif message.type is MessageType.SKETCH_ASK and self._may_sketch():
            count = message.count
            if count > self._symbol_limit():
                return
            encoder = self._encoder
            if encoder is None:
                encoder = self._prepared_encoder
                if encoder is None:
                    encoder = SketchEncoder(self._short_ids(), key=self._sketch_key())
                    self._prepared_encoder = encoder
            if encoder.produced + count <= min(MAX_SYMBOLS, self.limits.max_sketch_symbols):
                encoder.prepare(count)
        elif (
            message.type is MessageType.SKETCH
            and self._decoder is not None
            and len(message.payload) == self._asked * SYMBOL_SIZE
        ):
            self._decoder.prepare(message.payload)

    def receive_frame(self, data: bytes, *, now: float) -> None:
        """Apply one frame from the peer (rules 1-6). Never raises for the peer's bytes; raises
        RuntimeError if the session is already done (a caller's mistake)."""
        if self.done:
            raise RuntimeError("the sync session is over; no frame is expected")
        if type(data) is not bytes:
            data = bytes(data)
        counters = self._counters
        counters.frames_received += 1
        counters.bytes_received += len(data)
        if now >= self._deadline:
            self._end(SyncError("the session ran past its deadline", reason="deadline"))
            return
        if len(data) > self.limits.max_frame_bytes:
            self._end(violation("frame-too-large", f"a {len(data)}-byte frame"))
            return
        if self._has_outgoing():
            self._end(violation("out-of-turn", "the peer sent a frame while it was our turn"))
            return
        try:
            message = decode_message(data)
            self._dispatch(message)
        except SyncError as error:
            self._end(error)
            return
        # The frame that reaches the byte budget is still taken (each session makes progress);
        # then the session ends, and the caller may start another.
        if not self.done and counters.bytes_received >= self.limits.max_session_bytes:
            self._end(SyncError("the peer sent too much in one session", reason="session-bytes"))

    def handle_timer(self, now: float) -> None:
        """Call when the clock reaches `deadline`: ends the session (an ERROR for the peer)."""
        if not self.done and now >= self._deadline:
            self._end(SyncError("the session ran past its deadline", reason="deadline"))

    def abort(self, error: SyncError) -> None:
        """End the session because of something outside it (the stream failed, the node is
        stopping). Nothing more is sent."""
        if not self.done:
            self._error = error
            self._state = _State.FINISHED
            self._outbox = _Outbox()

    # -- incoming ----------------------------------------------------------------------------

    def _dispatch(self, message: SyncMessage) -> None:
        kind, state = message.type, self._state
        requests = state is _State.AWAIT_REQUESTS
        if kind is MessageType.ERROR:
            self._error = SyncError(
                f"the peer ended the session: {message.reason}",
                reason=message.reason or "peer-error",
                from_peer=True,
            )
            self._state = _State.FINISHED
            self._outbox = _Outbox()
            return
        if state is _State.AWAIT_HELLO and kind is MessageType.HELLO:
            assert message.hello is not None
            self._on_hello(message.hello)
        elif kind is MessageType.SKETCH_ASK and requests and self._may_sketch():
            self._on_sketch_ask(message.count)
        elif kind is MessageType.SKETCH and state is _State.SKETCHING:
            self._on_sketch(message.payload)
        elif kind is MessageType.RECONCILE and (
            state is _State.RECONCILING or (requests and self._may_reconcile())
        ):
            self._on_reconcile(message.payload)
        elif kind is MessageType.OPS and state in (_State.AWAIT_OPS, _State.AWAIT_REQUESTS):
            self._on_ops(message.ops)
        elif kind is MessageType.WANT and requests:
            self._on_want(message.payload)
        elif kind is MessageType.WANT_SHORT and requests:
            self._on_want_short(message.payload)
        elif kind is MessageType.WANT_ALL and requests and not self._peer_wants_all:
            self._peer_wants_all = True
            self._mode = SyncMode.ALL
        elif kind is MessageType.DONE and state is _State.AWAIT_OPS:
            self._state = _State.FINISHED
        elif kind is MessageType.DONE and requests:
            if self._reconciler is not None and not self._reconciler.done:
                raise violation("unexpected-message", "DONE in the middle of reconciliation")
            self._answer_wants()
        else:
            raise violation("unexpected-message", f"{kind.name} is not expected now")

    def _requests_started(self) -> bool:
        """Whether the initiator has begun its requests (which follow any reconciliation)."""
        return bool(
            self._peer_wants
            or self._peer_wants_short
            or self._peer_wants_all
            or self._counters.ops_received
        )

    def _may_reconcile(self) -> bool:
        """A responder accepts RECONCILE only while reconciliation can still be going on: the sets
        differ, and no OPS or want has come yet (they follow reconciliation). RECONCILE may follow
        SKETCH_ASKs (a sketch that did not decode), never the other way round."""
        if self._equal or self._requests_started():
            return False
        return self._reconciler is None or not self._reconciler.done

    def _may_sketch(self) -> bool:
        return not self._equal and not self._requests_started() and self._reconciler is None

    def _on_hello(self, hello: Hello) -> None:
        if hello.version != SYNC_VERSION:
            # A newer peer is not at fault; there is just nothing we can say to each other.
            raise SyncError(
                f"the peer speaks sync version {hello.version}", reason="unsupported-version"
            )
        if hello.max_frame_bytes < MIN_FRAME_BYTES:
            raise violation("bad-hello", f"max_frame_bytes below {MIN_FRAME_BYTES}")
        self._peer_max_frame = hello.max_frame_bytes
        self._peer_count = hello.item_count
        self._peer_fingerprint = hello.fingerprint
        self._equal = hello.item_count == self._count and hello.fingerprint == self._fingerprint
        if not self.initiator:
            self._outbox.frames.append(
                encode_hello(self._count, self._fingerprint, self.limits.max_frame_bytes)
            )
            self._state = _State.AWAIT_REQUESTS
            if self._count == 0 and not self._equal:
                # Rule 3: we hold nothing, so whatever the initiator pushes is new to us.
                self._acceptance.unknown_budget = hello.item_count
                self._mode = SyncMode.ALL
            return
        if not self._reconcile_wanted or self._equal:
            self._send_requests()
        elif self._peer_count == 0 or self._count == 0:
            self._mode = SyncMode.ALL
            self._send_requests()
        elif self.limits.sketch and self._sketch_first_ask() <= MAX_SYMBOLS:
            self._mode = SyncMode.SKETCH
            key = self._sketch_key()
            prepared, self._prepared_decoder = self._prepared_decoder, None
            if prepared is not None and prepared[0] == key:
                self._decoder = prepared[1]
            else:
                self._decoder = SketchDecoder(self._short_ids(), key=key)
            self._state = _State.SKETCHING
            self._ask_symbols(self._sketch_first_ask())
        else:
            self._start_range()

    # -- the sketch (SPEC §9.7) ----------------------------------------------------------------

    def _sketch_key(self) -> bytes:
        if self.initiator:
            return sketch_key(self._fingerprint, self._peer_fingerprint)
        return sketch_key(self._peer_fingerprint, self._fingerprint)

    def _short_ids(self) -> list[bytes]:
        return [item_id[:SHORT_ID_SIZE] for _, item_id in self._items.items(MIN_BOUND, INFINITY)]

    def _symbol_limit(self) -> int:
        return sketch_symbol_limit(self.limits.max_frame_bytes, self._peer_max_frame)

    def _sketch_first_ask(self) -> int:
        """The reference policy's first ask: enough for the difference of the set sizes."""
        at_least = abs(self._count - self._peer_count)
        return max(_SKETCH_FIRST_ASK, math.ceil(_SKETCH_SYMBOLS_PER_ID * at_least) + _SKETCH_SLACK)

    def _ask_symbols(self, total: int) -> None:
        """Ask for coded symbols up to ``total`` received (at most one SKETCH's worth now)."""
        assert self._decoder is not None
        received = self._decoder.received
        count = min(total - received, self._symbol_limit(), MAX_SYMBOLS - received)
        self._asked = count
        self._outbox.frames.append(encode_sketch_ask(count))

    @property
    def sketch_symbols_served(self) -> int:
        """Coded symbols this side encoded for the peer so far (as responder)."""
        return 0 if self._encoder is None else self._encoder.produced

    def _on_sketch_ask(self, count: int) -> None:
        self._count_round()
        produced = 0 if self._encoder is None else self._encoder.produced
        if count > self._symbol_limit() or produced + count > MAX_SYMBOLS:
            raise violation("bad-sketch-ask", f"{count} more coded symbols is over the limits")
        if produced + count > self.limits.max_sketch_symbols:  # our budget, not a violation
            raise SyncError(
                f"{produced + count} coded symbols is over what we encode for this peer now",
                reason="sketch-budget",
            )
        if self._encoder is None:
            prepared, self._prepared_encoder = self._prepared_encoder, None
            self._encoder = prepared or SketchEncoder(self._short_ids(), key=self._sketch_key())
            self._mode = SyncMode.SKETCH
        self._outbox.frames.append(encode_sketch(self._encoder.next_symbols(count)))
        # Rule 3: no decoder peels more elements than it received symbols.
        self._acceptance.unknown_budget = self._encoder.produced

    def _on_sketch(self, symbols: bytes) -> None:
        self._count_round()
        decoder = self._decoder
        assert decoder is not None
        if len(symbols) != self._asked * SYMBOL_SIZE:
            raise violation("bad-sketch", f"{self._asked} coded symbols were asked for")
        try:
            decoder.receive(symbols)
        except SketchError:
            # Short-id collisions do this on honest sets too: not the peer's fault (rule 6).
            self._start_range()
            return
        if decoder.decoded:
            self._send_requests()
            return
        estimate = decoder.estimate_difference()
        received = decoder.received
        if (
            received >= MAX_SYMBOLS
            or received >= _SKETCH_GIVE_UP_PER_ID * estimate + _SKETCH_GIVE_UP_SLACK
        ):
            self._start_range()
            return
        target = math.ceil(_SKETCH_SYMBOLS_PER_ESTIMATED_ID * estimate) + _SKETCH_SLACK
        self._ask_symbols(max(target, math.ceil(_SKETCH_GROWTH * received)))

    # -- range reconciliation (SPEC §9.6) ------------------------------------------------------

    def _start_range(self) -> None:
        self._mode = SyncMode.SKETCH_THEN_RANGE if self._decoder is not None else SyncMode.RANGE
        self._reconciler = self._new_reconciler()
        self._state = _State.RECONCILING
        self._queue_reconcile_message()

    def _new_reconciler(self) -> ReconcileSession:
        try:
            return ReconcileSession(
                self._items,
                initiator=self.initiator,
                max_message_bytes=reconcile_message_limit(
                    self.limits.max_frame_bytes, self._peer_max_frame
                ),
                branching=self.limits.branching,
                id_list_threshold=self.limits.id_list_threshold,
            )
        except ValueError as error:  # our own limits are too small for our policy: our bug
            raise SyncError(str(error), reason="internal") from None

    def _queue_reconcile_message(self) -> None:
        assert self._reconciler is not None
        message = self._reconciler.next_message()
        if message is not None:
            self._outbox.frames.append(encode_reconcile(message))
        if self._reconciler.done:
            self._reconciled()

    def _count_round(self) -> None:
        self._counters.rounds += 1
        if self._counters.rounds > self.limits.max_rounds:
            raise SyncError("reconciliation took too many rounds", reason="too-many-rounds")

    def _on_reconcile(self, payload: bytes) -> None:
        self._count_round()
        if self._reconciler is None:
            # The responder's reconciler is made on the first RECONCILE: only now is it needed.
            self._reconciler = self._new_reconciler()
            self._state = _State.RECONCILING
            self._mode = SyncMode.SKETCH_THEN_RANGE if self._encoder else SyncMode.RANGE
        try:
            self._reconciler.receive(payload)
        except ReconcileError as error:
            raise violation(f"reconcile-{error.reason}", error.message) from None
        self._queue_reconcile_message()

    def _reconciled(self) -> None:
        """Reconciliation is over: the initiator sends its part, the responder waits for it."""
        assert self._reconciler is not None
        need = self._reconciler.need_ids
        self._counters.needed = len(need)
        if self.initiator:
            self._send_requests()
        else:
            self._expected = set(need)
            self._acceptance.unknown_budget = 0  # what range reconciliation found is exact
            self._state = _State.AWAIT_REQUESTS

    # -- requests and answers ------------------------------------------------------------------

    def _send_requests(self) -> None:
        """Initiator: OPS for what the peer lacks, the wants for what we lack, then DONE."""
        have: list[bytes] = []
        want = list(self._targeted)
        short_wants: list[bytes] = []
        wanted_all = 0
        if self._reconciler is not None:
            have = self._item_ids(ids=self._reconciler.have_ids)
            # What we hold but is not an item (pending, or arrived since the snapshot) is not
            # asked for again: a session cut short by a limit must not fetch the same ops anew.
            need = sorted(self._reconciler.need_ids)
            held = self._ops.get_encoded(need)
            want = list(dict.fromkeys([*(i for i in need if i not in held), *want]))
        elif self._decoder is not None:
            have = self._item_ids(short_ids=self._decoder.local_only)
            short_wants = sorted(self._decoder.remote_only)
            self._counters.needed = len(short_wants)
        elif self._mode is SyncMode.ALL and self._peer_count == 0:
            have = self._item_ids(everything=True)
        elif self._mode is SyncMode.ALL:
            self._outbox.frames.append(encode_want_all())
            wanted_all = self._counters.needed = self._peer_count
            self._acceptance.unknown_budget = self._peer_count
        self._outbox.op_ids.extend(have)
        self._outbox.short_want_ids.extend(short_wants)
        self._outbox.want_ids.extend(want)
        self._outbox.final = encode_done()
        self._expected = set(want)
        self._acceptance.short_ids = set(short_wants)
        self._counters.wanted = len(want) + len(short_wants) + wanted_all
        self._state = _State.SEND_REQUESTS

    def _item_ids(
        self,
        *,
        ids: frozenset[bytes] = frozenset(),
        short_ids: frozenset[bytes] | set[bytes] = frozenset(),
        everything: bool = False,
    ) -> list[bytes]:
        """Our item ids that are in ``ids``, or have one of ``short_ids``, or all of them, sorted
        as items (timestamp, then id), so parents tend to go before what references them and the
        peer holds fewer operations as pending."""
        if not (ids or short_ids or everything):
            return []
        every = (item_id for _, item_id in self._items.items(MIN_BOUND, INFINITY))
        if everything:
            return list(every)
        return [i for i in every if i in ids or i[:SHORT_ID_SIZE] in short_ids]

    def _take(self, op_id: bytes) -> bool:
        """Whether to take the operation ``op_id`` the peer sent (rule 3); False: skip it
        (we hold it already). Raises for one we did not ask for."""
        if op_id in self._expected:
            self._expected.discard(op_id)
            return True
        acceptance = self._acceptance
        if op_id in acceptance.taken:
            raise violation("unsolicited-operation", "an operation sent twice")
        if op_id[:SHORT_ID_SIZE] in acceptance.short_ids:
            acceptance.taken.add(op_id)
            return True
        if acceptance.unknown_budget <= 0:
            raise violation("unsolicited-operation", "an operation we did not ask for")
        acceptance.unknown_budget -= 1
        acceptance.taken.add(op_id)
        if self.initiator:
            return True  # after WANT_ALL
        if self._own_ids is None:
            self._own_ids = frozenset(self._item_ids(everything=True))
        # An initiator whose short id matched two of its items sends both: one may be ours.
        return op_id not in self._own_ids

    def _on_ops(self, ops: tuple[bytes, ...]) -> None:
        accepted: list[bytes] = []
        for data in ops:
            op_id = claimed_id(data)
            if op_id is None:
                raise violation("bad-operation", "bytes that are not a signed operation")
            if self._take(op_id):
                accepted.append(data)
        self._counters.ops_received += len(accepted)
        if accepted:
            self._events.append(OpsReceived(ops=tuple(accepted)))

    def _check_want_budget(self, count: int) -> None:
        if len(self._peer_wants) + len(self._peer_wants_short) + count > self.limits.max_wanted_ids:
            raise SyncError("the peer asked for too many operations", reason="too-many-wants")

    def _on_want(self, payload: bytes) -> None:
        self._check_want_budget(len(payload) // ID_SIZE)
        for start in range(0, len(payload), ID_SIZE):
            op_id = payload[start : start + ID_SIZE]
            if op_id not in self._peer_wants_seen:
                self._peer_wants_seen.add(op_id)
                self._peer_wants.append(op_id)

    def _on_want_short(self, payload: bytes) -> None:
        self._check_want_budget(len(payload) // SHORT_ID_SIZE)
        for start in range(0, len(payload), SHORT_ID_SIZE):
            self._peer_wants_short.add(payload[start : start + SHORT_ID_SIZE])

    def _answer_wants(self) -> None:
        # In item order too, so what a limit cuts short leaves the peer with parents, not
        # operations waiting for them; wanted ids that are not items (pending here) go last.
        # WANT_ALL is served up to max_wanted_ids (the next session, no longer empty, does the
        # rest).
        ordered, self._prepared_answer = self._prepared_answer, None
        if ordered is None:
            ordered = self._wanted_items()
        listed = set(ordered)
        self._outbox.op_ids.extend(ordered)
        self._outbox.op_ids.extend(i for i in self._peer_wants if i not in listed)
        self._outbox.final = encode_done()
        self._state = _State.SEND_ANSWERS

    def _wanted_items(self) -> list[bytes]:
        """Our items the peer's wants name, in item order (what `_answer_wants` sends first)."""
        ordered = self._item_ids(
            ids=frozenset(self._peer_wants),
            short_ids=self._peer_wants_short,
            everything=self._peer_wants_all,
        )
        if self._peer_wants_all:
            ordered = ordered[: self.limits.max_wanted_ids]
        return ordered

    # -- outgoing ----------------------------------------------------------------------------

    def _has_outgoing(self) -> bool:
        box = self._outbox
        return bool(
            box.frames or box.op_ids or box.short_want_ids or box.want_ids or box.final is not None
        )

    def _frame_limit(self) -> int:
        return min(self._peer_max_frame, self.limits.max_frame_bytes)

    def _take_outgoing(self) -> bytes | None:
        box = self._outbox
        if box.frames:
            return box.frames.popleft()
        if box.op_ids:
            frame = self._build_ops_frame()
            if frame is not None:
                return frame
        if box.short_want_ids:
            return encode_want_short(self._take_batch(box.short_want_ids, SHORT_ID_SIZE))
        if box.want_ids:
            return encode_want(self._take_batch(box.want_ids, ID_SIZE))
        if box.final is not None:
            final, box.final = box.final, None
            if self._state is _State.SEND_REQUESTS:
                self._state = _State.AWAIT_OPS if self._counters.wanted else _State.FINISHED
            elif self._state is _State.SEND_ANSWERS:
                self._state = _State.FINISHED
            return final
        return None

    def _build_ops_frame(self) -> bytes | None:
        """One OPS frame from the head of the id queue; None once the queue is empty."""
        limit = min(self._frame_limit(), self.limits.max_ops_frame_bytes) - OPS_HEADER_BYTES
        ids = self._outbox.op_ids
        batch: list[bytes] = []
        size = 0
        while ids:
            # Fetch a few at a time: an operation is at most 40 KiB, typically a few hundred bytes.
            chunk = [ids.popleft() for _ in range(min(len(ids), _FETCH_CHUNK))]
            found = self._ops.get_encoded(chunk)
            for index, op_id in enumerate(chunk):
                data = found.get(op_id)
                if data is None:
                    continue  # not held (after all): nothing to send for it
                item_size = len(data) + BIN_HEADER_MAX
                if batch and size + item_size > limit:
                    # Full: the rest of the chunk goes first in the next frame.
                    ids.extendleft(reversed(chunk[index:]))
                    self._counters.ops_sent += len(batch)
                    return encode_ops(batch)
                batch.append(data)
                size += item_size
        if not batch:
            return None
        self._counters.ops_sent += len(batch)
        return encode_ops(batch)

    def _take_batch(self, ids: deque[bytes], size: int) -> list[bytes]:
        """As many of ``ids`` (each ``size`` bytes) as one want frame holds."""
        limit = (self._frame_limit() - OPS_HEADER_BYTES) // size
        return [ids.popleft() for _ in range(min(len(ids), limit))]

    def _end(self, error: SyncError) -> None:
        """End the session: an ERROR frame tells the peer why (rule 6)."""
        self._error = error
        self._outbox = _Outbox()
        self._outbox.frames.append(encode_error(error.reason))
        self._state = _State.FINISHED
