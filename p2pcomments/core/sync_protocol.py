"""The sync conversation on ``/p2pcomments/sync/1.0.0``, sans-IO (protocol/SPEC.md §9).

Two nodes bring their sets of applied operations together: a quick equality check, range-based
set reconciliation (`core.reconcile`) when the sets differ, then the operations each lacks. The
session is driven with bytes and time (aioquic style): push each frame the peer sent into
`SyncSession.receive_frame` with ``now``, pull frames to send from `SyncSession.next_frame` and
events (`OpsReceived`) from `SyncSession.next_event`; `SyncSession.result` says how it ended.

Rules this module enforces:

1. Every frame holds one message, a canonical msgpack array whose first element is its type:
   HELLO ``[0, version, item_count, fingerprint, max_frame_bytes]``, RECONCILE ``[1, message]``,
   OPS ``[2, [op, ...]]``, WANT ``[3, ids]``, DONE ``[4]``, ERROR ``[5, reason]``. The decoder
   re-encodes what it read and refuses any difference.
2. The conversation is half-duplex, so neither side ever waits on a peer that waits on it:
   initiator HELLO; responder HELLO; if the whole-set fingerprints differ (and the initiator asked
   for reconciliation), RECONCILE messages alternating from the initiator until the reconcile
   session is over; then the initiator sends OPS (what the responder lacks), WANT (what it lacks
   and does not hold pending, plus any ids it was asked to fetch) and DONE; the responder answers
   the WANTs with OPS, then DONE. Equal fingerprints skip reconciliation: HELLO, HELLO, DONE,
   DONE. Operations go in item order (timestamp, id), so parents tend to precede what cites them.
3. Operations arrive only when asked for: the responder accepts pushed OPS only for ids its
   reconciliation found it lacks, the initiator only for ids it wanted, each id once. Their
   validity is not judged here (the node ingests them); their ids are.
4. No frame we send exceeds the agreed size ``min(ours, peer's max_frame_bytes)``; no frame we
   accept exceeds ours. Reconcile messages are bounded by ``min(262144, agreed - 16)`` on both
   sides (the reconcile layer needs both peers to use the same bound).
5. Per-session limits: received bytes (``max_session_bytes``; the frame that reaches it is still
   applied, so every session makes progress), reconcile rounds (``max_rounds``), ids a peer may
   WANT (``max_wanted_ids``) and a deadline (``deadline_seconds`` after the start, on the
   caller's clock). Reaching one ends the session with an ERROR frame to the peer; only a
   protocol violation counts as the peer's fault (`SyncError.peer_fault`).
6. A peer's bytes never raise out of `receive_frame`: a violation ends the session with an ERROR
   frame queued for the peer and a `SyncError` in the result. Only the caller's own mistakes
   (feeding a finished session, bad arguments) raise.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Final, Protocol, TypeGuard

import msgpack

from p2pcomments.core.ops import MAX_OPERATION_BYTES
from p2pcomments.core.reconcile import (
    DEFAULT_BRANCHING,
    DEFAULT_ID_LIST_THRESHOLD,
    DEFAULT_MAX_MESSAGE_BYTES,
    FINGERPRINT_SIZE,
    INFINITY,
    MIN_BOUND,
    ItemSet,
    ReconcileError,
    ReconcileSession,
)
from p2pcomments.errors import P2PCommentsError

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "ID_SIZE",
    "MAX_ERROR_REASON_BYTES",
    "MIN_FRAME_BYTES",
    "PROTOCOL_ID",
    "RECONCILE_FRAME_OVERHEAD",
    "SYNC_VERSION",
    "Hello",
    "MessageType",
    "OpSource",
    "OpsReceived",
    "SyncError",
    "SyncLimits",
    "SyncMessage",
    "SyncResult",
    "SyncSession",
    "claimed_id",
    "decode_message",
    "encode_done",
    "encode_error",
    "encode_hello",
    "encode_ops",
    "encode_reconcile",
    "encode_want",
    "reconcile_message_limit",
]

PROTOCOL_ID: Final = "/p2pcomments/sync/1.0.0"
SYNC_VERSION: Final = 1
DEFAULT_MAX_FRAME_BYTES: Final = 1024 * 1024
MIN_FRAME_BYTES: Final = 64 * 1024
"""The smallest ``max_frame_bytes`` a HELLO may announce: every operation fits one OPS frame."""
RECONCILE_FRAME_OVERHEAD: Final = 16
"""Bytes of a frame reserved around a reconcile message (type, array and bin headers)."""
MAX_ERROR_REASON_BYTES: Final = 64
ID_SIZE: Final = 32
_OPS_HEADER: Final = 1 + 1 + 5  # outer fixarray, type, array32 header at most
_BIN_HEADER_MAX: Final = 5
_SIGNATURE_TAIL: Final = 2 + 64  # bin 8 header of 64 bytes, then the signature
_MIN_OPERATION_BYTES: Final = 1 + 8 + _SIGNATURE_TAIL  # nine fields, the last the signature
_FETCH_CHUNK: Final = 64


class MessageType(IntEnum):
    """The first element of every sync message; the integer is what goes on the wire."""

    HELLO = 0
    RECONCILE = 1
    OPS = 2
    WANT = 3
    DONE = 4
    ERROR = 5


class SyncError(P2PCommentsError, ValueError):
    """Why a session ended early. ``reason`` is a stable code; ``peer_fault`` is True when the
    peer broke the protocol (the caller counts it against the peer); ``from_peer`` is True when
    the peer ended the session with an ERROR message of its own, ``reason`` being what it said."""

    http_status = 502
    default_reason = "sync-protocol"

    def __init__(
        self, message: str, *, reason: str, peer_fault: bool = False, from_peer: bool = False
    ) -> None:
        super().__init__(message, reason=reason)
        self.peer_fault = peer_fault
        self.from_peer = from_peer


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
    deadline_seconds: float = 120.0
    branching: int = DEFAULT_BRANCHING
    id_list_threshold: int = DEFAULT_ID_LIST_THRESHOLD

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
    ``needed``: ids reconciliation found we lack; ``wanted``: ids we asked for in all."""

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


def claimed_id(data: bytes) -> bytes | None:
    """The id ``data`` has if it is an operation, without decoding it (SPEC §4: the unsigned
    form is ``0x98 || signed[1 : len - 66]``), or None when it can't be one (not a 9-element
    array ending in a 64-byte ``bin 8``, or over the size limit).

    Cheap enough to check every received operation against the ids asked for (rule 3); whether
    the operation is valid is decided when it is ingested, and a forgery that claims a wanted id
    is rejected there (and counts against the peer)."""
    if not _MIN_OPERATION_BYTES <= len(data) <= MAX_OPERATION_BYTES or data[0] != 0x99:
        return None
    if data[-_SIGNATURE_TAIL : -_SIGNATURE_TAIL + 2] != b"\xc4\x40":
        return None
    return hashlib.sha256(b"\x98" + data[1:-_SIGNATURE_TAIL]).digest()


def reconcile_message_limit(our_max_frame: int, their_max_frame: int) -> int:
    """The reconcile message bound both peers derive from the two HELLOs (rule 4)."""
    agreed = min(our_max_frame, their_max_frame)
    return min(DEFAULT_MAX_MESSAGE_BYTES, agreed - RECONCILE_FRAME_OVERHEAD)


# -- encoding ----------------------------------------------------------------------------------


def _pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def encode_hello(item_count: int, fingerprint: bytes, max_frame_bytes: int) -> bytes:
    if len(fingerprint) != FINGERPRINT_SIZE or item_count < 0:
        raise ValueError("a HELLO needs a 16-byte fingerprint and a count >= 0")
    return _pack([MessageType.HELLO, SYNC_VERSION, item_count, fingerprint, max_frame_bytes])


def encode_reconcile(message: bytes) -> bytes:
    return _pack([MessageType.RECONCILE, message])


def encode_ops(ops: Sequence[bytes]) -> bytes:
    if not ops or any(type(op) is not bytes or not op for op in ops):
        raise ValueError("OPS carries one or more non-empty operations")
    return _pack([MessageType.OPS, list(ops)])


def encode_want(ids: Sequence[bytes]) -> bytes:
    if not ids or any(len(i) != ID_SIZE for i in ids):
        raise ValueError("WANT carries one or more 32-byte ids")
    return _pack([MessageType.WANT, b"".join(ids)])


def encode_done() -> bytes:
    return _pack([MessageType.DONE])


def encode_error(reason: str) -> bytes:
    reason = reason.encode("ascii", "replace").decode("ascii")[:MAX_ERROR_REASON_BYTES]
    return _pack([MessageType.ERROR, reason])


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    version: int
    item_count: int
    fingerprint: bytes
    max_frame_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncMessage:
    """One decoded frame. Which fields are set depends on ``type``: ``hello`` for HELLO,
    ``payload`` for RECONCILE (the reconcile message) and WANT (ids, concatenated), ``ops`` for
    OPS, ``reason`` for ERROR."""

    type: MessageType
    hello: Hello | None = None
    payload: bytes = b""
    ops: tuple[bytes, ...] = ()
    reason: str = ""


def _violation(reason: str, message: str) -> SyncError:
    return SyncError(message, reason=reason, peer_fault=True)


def _is_uint(value: object) -> TypeGuard[int]:
    return type(value) is int and value >= 0


def decode_message(data: bytes) -> SyncMessage:
    """Decode one frame (rule 1). Raises `SyncError` (``peer_fault``) for anything malformed."""
    try:
        raw = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, TypeError, OverflowError, RecursionError, msgpack.UnpackException) as error:
        raise _violation("malformed", f"not a msgpack message: {error}") from None
    if type(raw) is not list or not raw or not _is_uint(raw[0]) or raw[0] > max(MessageType):
        raise _violation("malformed", "a sync message is an array starting with a known type")
    kind = MessageType(raw[0])
    message = _decode_body(kind, raw)
    if _pack(raw) != data:
        raise _violation("non-canonical", "not the canonical msgpack encoding")
    return message


def _decode_body(kind: MessageType, raw: list[object]) -> SyncMessage:
    arity = {
        MessageType.HELLO: 5,
        MessageType.RECONCILE: 2,
        MessageType.OPS: 2,
        MessageType.WANT: 2,
        MessageType.DONE: 1,
        MessageType.ERROR: 2,
    }[kind]
    if len(raw) != arity:
        raise _violation("malformed", f"a {kind.name} message has {arity} elements")
    if kind is MessageType.HELLO:
        _, version, count, fingerprint, max_frame = raw
        numbers = [value for value in (version, count, max_frame) if _is_uint(value)]
        if len(numbers) != 3:
            raise _violation("bad-hello", "HELLO fields must be unsigned integers")
        if type(fingerprint) is not bytes or len(fingerprint) != FINGERPRINT_SIZE:
            raise _violation("bad-hello", "a HELLO fingerprint is 16 bytes")
        hello = Hello(
            version=numbers[0],
            item_count=numbers[1],
            fingerprint=fingerprint,
            max_frame_bytes=numbers[2],
        )
        return SyncMessage(type=kind, hello=hello)
    if kind is MessageType.RECONCILE:
        if type(raw[1]) is not bytes:
            raise _violation("malformed", "RECONCILE carries a binary reconcile message")
        return SyncMessage(type=kind, payload=raw[1])
    if kind is MessageType.OPS:
        ops = raw[1]
        if type(ops) is not list or not ops or not all(type(op) is bytes and op for op in ops):
            raise _violation("malformed", "OPS carries an array of one or more binary operations")
        return SyncMessage(type=kind, ops=tuple(ops))
    if kind is MessageType.WANT:
        ids = raw[1]
        if type(ids) is not bytes or not ids or len(ids) % ID_SIZE:
            raise _violation("malformed", "WANT carries 32-byte ids, at least one")
        return SyncMessage(type=kind, payload=ids)
    if kind is MessageType.ERROR:
        reason = raw[1]
        if type(reason) is not str or len(reason) > MAX_ERROR_REASON_BYTES:
            raise _violation("malformed", "ERROR carries a short reason text")
        return SyncMessage(type=kind, reason=reason)
    return SyncMessage(type=kind)


# -- the session -------------------------------------------------------------------------------


class _State(Enum):
    SEND_HELLO = "send-hello"  # initiator, before anything
    AWAIT_HELLO = "await-hello"
    RECONCILING = "reconciling"
    SEND_REQUESTS = "send-requests"  # initiator: OPS, WANT, DONE going out
    AWAIT_OPS = "await-ops"  # initiator: answers to its WANT, until DONE
    AWAIT_REQUESTS = "await-requests"  # responder: RECONCILE, OPS, WANT until DONE
    SEND_ANSWERS = "send-answers"  # responder: OPS answering WANT, then DONE
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
    """Frames ready to go, and ids whose OPS frames are built on demand (so a large answer is
    never all in memory at once), then one closing frame."""

    frames: deque[bytes] = field(default_factory=deque)
    op_ids: deque[bytes] = field(default_factory=deque)
    want_ids: deque[bytes] = field(default_factory=deque)
    final: bytes | None = None


class SyncSession:
    """One side of one sync conversation (module rules 1-6).

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
        self._reconciler: ReconcileSession | None = None
        self._equal = False
        self._expected: set[bytes] = set()  # ids we accept in OPS (rule 3)
        self._peer_wants: list[bytes] = []
        self._peer_wants_seen: set[bytes] = set()
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
        )

    # -- driving -----------------------------------------------------------------------------

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
            self._end(_violation("frame-too-large", f"a {len(data)}-byte frame"))
            return
        if self._has_outgoing():
            self._end(_violation("out-of-turn", "the peer sent a frame while it was our turn"))
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
        elif kind is MessageType.RECONCILE and (
            state is _State.RECONCILING
            or (state is _State.AWAIT_REQUESTS and not self.initiator and self._may_reconcile())
        ):
            self._on_reconcile(message.payload)
        elif kind is MessageType.OPS and state in (_State.AWAIT_OPS, _State.AWAIT_REQUESTS):
            self._on_ops(message.ops)
        elif kind is MessageType.WANT and state is _State.AWAIT_REQUESTS:
            self._on_want(message.payload)
        elif kind is MessageType.DONE and state is _State.AWAIT_OPS:
            self._state = _State.FINISHED
        elif kind is MessageType.DONE and state is _State.AWAIT_REQUESTS:
            if self._reconciler is not None and not self._reconciler.done:
                raise _violation("unexpected-message", "DONE in the middle of reconciliation")
            self._answer_wants()
        else:
            raise _violation("unexpected-message", f"{kind.name} is not expected now")

    def _may_reconcile(self) -> bool:
        """A responder accepts RECONCILE only while reconciliation can still be going on: the sets
        differ, and no OPS or WANT has come yet (they follow reconciliation)."""
        if self._equal or self._peer_wants or self._counters.ops_received:
            return False
        return self._reconciler is None or not self._reconciler.done

    def _on_hello(self, hello: Hello) -> None:
        if hello.version != SYNC_VERSION:
            # A newer peer is not at fault; there is just nothing we can say to each other.
            raise SyncError(
                f"the peer speaks sync version {hello.version}", reason="unsupported-version"
            )
        if hello.max_frame_bytes < MIN_FRAME_BYTES:
            raise _violation("bad-hello", f"max_frame_bytes below {MIN_FRAME_BYTES}")
        self._peer_max_frame = hello.max_frame_bytes
        self._equal = hello.item_count == self._count and hello.fingerprint == self._fingerprint
        if not self.initiator:
            self._outbox.frames.append(
                encode_hello(self._count, self._fingerprint, self.limits.max_frame_bytes)
            )
            self._state = _State.AWAIT_REQUESTS
            return
        if self._reconcile_wanted and not self._equal:
            self._reconciler = self._new_reconciler()
            self._state = _State.RECONCILING
            self._queue_reconcile_message()
        else:
            self._send_requests()

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

    def _on_reconcile(self, payload: bytes) -> None:
        self._counters.rounds += 1
        if self._counters.rounds > self.limits.max_rounds:
            raise SyncError("reconciliation took too many rounds", reason="too-many-rounds")
        if self._reconciler is None:
            # The responder's reconciler is made on the first RECONCILE: only now is it needed.
            self._reconciler = self._new_reconciler()
            self._state = _State.RECONCILING
        try:
            self._reconciler.receive(payload)
        except ReconcileError as error:
            raise _violation(f"reconcile-{error.reason}", error.message) from None
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
            self._state = _State.AWAIT_REQUESTS

    def _send_requests(self) -> None:
        """Initiator: OPS for what the peer lacks, WANT for what we lack, then DONE."""
        have: list[bytes] = []
        want = list(self._targeted)
        if self._reconciler is not None:
            have = self._in_item_order(self._reconciler.have_ids)
            # What we hold but is not an item (pending, or arrived since the snapshot) is not
            # asked for again: a session cut short by a limit must not fetch the same ops anew.
            need = sorted(self._reconciler.need_ids)
            held = self._ops.get_encoded(need)
            want = list(dict.fromkeys([*(i for i in need if i not in held), *want]))
        self._outbox.op_ids.extend(have)
        self._outbox.want_ids.extend(want)
        self._outbox.final = encode_done()
        self._expected = set(want)
        self._counters.wanted = len(want)
        self._state = _State.SEND_REQUESTS

    def _in_item_order(self, ids: frozenset[bytes]) -> list[bytes]:
        """Our ``ids`` sorted as items (timestamp, then id), so parents tend to go before what
        references them and the peer holds fewer operations as pending."""
        if not ids:
            return []
        return [i for _, i in self._items.items(MIN_BOUND, INFINITY) if i in ids]

    def _on_ops(self, ops: tuple[bytes, ...]) -> None:
        accepted: list[bytes] = []
        for data in ops:
            op_id = claimed_id(data)
            if op_id is None:
                raise _violation("bad-operation", "bytes that are not a signed operation")
            if op_id not in self._expected:
                raise _violation("unsolicited-operation", "an operation we did not ask for")
            self._expected.discard(op_id)
            accepted.append(data)
        self._counters.ops_received += len(accepted)
        self._events.append(OpsReceived(ops=tuple(accepted)))

    def _on_want(self, payload: bytes) -> None:
        count = len(payload) // ID_SIZE
        if len(self._peer_wants) + count > self.limits.max_wanted_ids:
            raise SyncError("the peer asked for too many operations", reason="too-many-wants")
        for start in range(0, len(payload), ID_SIZE):
            op_id = payload[start : start + ID_SIZE]
            if op_id not in self._peer_wants_seen:
                self._peer_wants_seen.add(op_id)
                self._peer_wants.append(op_id)

    def _answer_wants(self) -> None:
        # In item order too, so what a limit cuts short leaves the peer with parents, not
        # operations waiting for them; wanted ids that are not items (pending here) go last.
        wanted = frozenset(self._peer_wants)
        ordered = self._in_item_order(wanted)
        listed = set(ordered)
        self._outbox.op_ids.extend(ordered)
        self._outbox.op_ids.extend(i for i in self._peer_wants if i not in listed)
        self._outbox.final = encode_done()
        self._state = _State.SEND_ANSWERS

    # -- outgoing ----------------------------------------------------------------------------

    def _has_outgoing(self) -> bool:
        box = self._outbox
        return bool(box.frames or box.op_ids or box.want_ids or box.final is not None)

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
        if box.want_ids:
            return self._build_want_frame()
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
        limit = min(self._frame_limit(), self.limits.max_ops_frame_bytes) - _OPS_HEADER
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
                item_size = len(data) + _BIN_HEADER_MAX
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

    def _build_want_frame(self) -> bytes:
        limit = (self._frame_limit() - _OPS_HEADER) // ID_SIZE
        ids = self._outbox.want_ids
        batch = [ids.popleft() for _ in range(min(len(ids), limit))]
        return encode_want(batch)

    def _end(self, error: SyncError) -> None:
        """End the session: an ERROR frame tells the peer why (rule 6)."""
        self._error = error
        self._outbox = _Outbox()
        self._outbox.frames.append(encode_error(error.reason))
        self._state = _State.FINISHED
