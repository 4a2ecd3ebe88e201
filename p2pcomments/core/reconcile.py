"""Range-based set reconciliation (Meyer 2023; the idea behind Nostr's negentropy, NIP-77), sans-IO.

Two peers each hold a set of items ``(timestamp_ms, id)``, ordered by timestamp then id. They trade
messages that describe ranges of that order, narrowing down on the ranges whose contents differ,
until each side knows exactly which ids it has that the other lacks (`have_ids`) and which ids the
other has that it lacks (`need_ids`). Bandwidth grows with the difference, not with the sets.
protocol/SPEC.md §9.6 specifies the bytes; this module is the reference implementation.

Rules this module enforces:

1. An item is ``(timestamp, id)`` with ``0 <= timestamp <= MAX_TIMESTAMP`` and a 32-byte id. A
   `Bound` is a point of that order; a range is ``[lower, upper)``.
2. A message is a msgpack array ``[version, ranges]``. Its ranges tile the order from the lowest
   bound upward with strictly increasing upper bounds; what follows the last range is implicitly
   skipped. There is one byte form per message: the decoder re-encodes and rejects any difference.
3. `ReconcileSession.receive` is atomic: a peer's message is applied whole, or rejected with
   `ReconcileError` and no state changes. No other exception escapes it, whatever the bytes.
4. A message *asks for a reply* if it holds a FINGERPRINT or ID_LIST range, or an ID_LIST_REPLY
   range with a bit set. The receiver of any other message sends nothing: the session is over for
   both sides once it is sent and received.
5. No message we produce exceeds ``max_message_bytes``. When a reply would, we answer the ranges
   that fit in full, hand the rest back as our FINGERPRINT of each (so the peer asks again), and
   when even those do not fit, close with one FINGERPRINT of everything above (as negentropy does).
   The first range of every message is answered in full, so each round makes progress.
6. An honest peer delivers the full id of every item we flagged as missing before it sends a message
   that does not ask for a reply; a peer that does not is faulty (``reason="ids-withheld"``).
7. How a differing range is split (`branching`, `id_list_threshold`) is local policy; a receiver
   handles any split. Only the encoding, the fingerprint and the short-id length are interop.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, Protocol, TypeAlias

import msgpack

from p2pcomments.errors import P2PCommentsError

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "FINGERPRINT_SIZE",
    "ID_SIZE",
    "INFINITY",
    "MAX_TIMESTAMP",
    "MIN_BOUND",
    "PROTOCOL_VERSION",
    "SHORT_ID_SIZE",
    "Bound",
    "Item",
    "ItemSet",
    "Mode",
    "ReconcileError",
    "ReconcileSession",
    "ReconcileStatistics",
    "SortedItems",
    "fingerprint",
    "minimal_bound",
]

PROTOCOL_VERSION: Final = 1
ID_SIZE: Final = 32
SHORT_ID_SIZE: Final = 8
"""An ID_LIST names items by the first 8 bytes of their id: ids are hashes, so honest ids collide
with probability 2**-64; a colliding pair an author grinds on purpose only hides that author's own
operations from each other."""
FINGERPRINT_SIZE: Final = 16
MAX_TIMESTAMP: Final = 2**63 - 1
"""Timestamps fit a signed 64-bit integer (SQLite's INTEGER)."""
DEFAULT_MAX_MESSAGE_BYTES: Final = 256 * 1024

DEFAULT_BRANCHING: Final = 4
DEFAULT_ID_LIST_THRESHOLD: Final = 24

_SUM_MODULUS: Final = 2**256
# The largest a remainder FINGERPRINT range (rule 5), with a SKIP range before it, can encode to.
_REMAINDER_RESERVE: Final = 128
# Outer array header, version, and the largest array header of the range list.
_MESSAGE_OVERHEAD: Final = 1 + 1 + 5

Item: TypeAlias = tuple[int, bytes]
"""``(timestamp_ms, id)``; tuples order exactly as items do."""


class ReconcileError(P2PCommentsError, ValueError):
    """A peer's reconciliation message is malformed or breaks the protocol.

    ``reason`` is a stable machine-readable code (``malformed``, ``non-canonical``, ``bad-bound``,
    ``bad-payload``, ``unexpected-reply``, ``unsolicited-ids``, ``ids-withheld``,
    ``unsupported-version``, ``message-too-large``, ``unexpected-message``).
    """

    http_status = 502
    default_reason = "sync-protocol"


class Mode(IntEnum):
    """What a range of a message says about the sender's items in it."""

    SKIP = 0
    """Nothing: the range is settled (or not the sender's business this round)."""
    FINGERPRINT = 1
    """The sender's fingerprint of the range; the receiver answers if its own differs."""
    ID_LIST = 2
    """The short ids of all the sender's items in the range; the receiver answers with the diff."""
    ID_LIST_REPLY = 3
    """``[bitmap, ids]``: which of the listed items the sender lacks, and the full ids of its
    items in the range that the list did not name. Settles the range."""
    IDS = 4
    """Full ids of the items the receiver flagged in its last ID_LIST_REPLY for the range."""


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Bound:
    """A point of the item order: every item ``(t, id)`` with ``(t, id) >= (timestamp, id_prefix)``
    lies at or above it (an id prefix stands for itself padded with zero bytes).

    `INFINITY` (timestamp ``MAX_TIMESTAMP + 1``) lies above every item; `MIN_BOUND` below all.
    """

    timestamp: int
    id_prefix: bytes = b""

    def __post_init__(self) -> None:
        if type(self.timestamp) is not int or not 0 <= self.timestamp <= MAX_TIMESTAMP + 1:
            raise ValueError(f"bound timestamp out of range: {self.timestamp!r}")
        if type(self.id_prefix) is not bytes or len(self.id_prefix) > ID_SIZE:
            raise ValueError("bound id prefix must be at most 32 bytes")
        if self.timestamp > MAX_TIMESTAMP and self.id_prefix:
            raise ValueError("the infinite bound has no id prefix")

    @property
    def key(self) -> tuple[int, bytes]:
        """The bound as a tuple comparable with items: ``item < bound.key`` iff item is below."""
        return (self.timestamp, self.id_prefix)


MIN_BOUND: Final = Bound(timestamp=0)
INFINITY: Final = Bound(timestamp=MAX_TIMESTAMP + 1)


def minimal_bound(below: Item, above: Item) -> Bound:
    """The shortest bound ``b`` with ``below < b <= above`` (``below < above`` required)."""
    if below[0] != above[0]:
        return Bound(timestamp=above[0])
    shared = next(
        (i for i, (x, y) in enumerate(zip(below[1], above[1], strict=True)) if x != y), ID_SIZE
    )
    return Bound(timestamp=above[0], id_prefix=above[1][: shared + 1])


def fingerprint(id_sum: int, count: int) -> bytes:
    """The fingerprint of a range holding ``count`` items whose ids sum to ``id_sum``.

    ``id_sum`` is the sum of the ids read as 256-bit little-endian unsigned integers (taken mod
    2**256 here). Fingerprint = SHA-256(sum as 32 bytes little-endian || count as 8 bytes
    little-endian), first 16 bytes. The sum makes range fingerprints cheap to derive from prefix
    sums or to maintain incrementally.
    """
    digest = hashlib.sha256(
        (id_sum % _SUM_MODULUS).to_bytes(32, "little") + count.to_bytes(8, "little")
    ).digest()
    return digest[:FINGERPRINT_SIZE]


class ItemSet(Protocol):
    """The sorted item collection a session reads. Ranges are ``[lower, upper)``; a range with
    ``upper <= lower`` is empty. The collection must not change while a session runs on it."""

    def count(self, lower: Bound, upper: Bound) -> int:
        """How many items lie in the range."""
        ...

    def fingerprint(self, lower: Bound, upper: Bound) -> bytes:
        """`fingerprint` of the items in the range."""
        ...

    def items(self, lower: Bound, upper: Bound) -> Sequence[Item]:
        """The items in the range, in order."""
        ...

    def item_at(self, lower: Bound, upper: Bound, index: int) -> Item:
        """The ``index``-th item (from 0) of the range; ``0 <= index < count(lower, upper)``."""
        ...


def _check_item(item: Item) -> Item:
    timestamp, item_id = item
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"item timestamp out of range: {timestamp!r}")
    if type(item_id) is not bytes or len(item_id) != ID_SIZE:
        raise ValueError("an item id is exactly 32 bytes")
    return (timestamp, item_id)


class SortedItems:
    """An in-memory `ItemSet`: a sorted list and prefix sums of the ids, so that a range's count and
    fingerprint cost two binary searches. Duplicate items are kept once."""

    __slots__ = ("_items", "_prefix_sums")

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._items: list[Item] = sorted({_check_item(item) for item in items})
        self._prefix_sums: list[int] | None = None

    def insert(self, item: Item) -> bool:
        """Add ``item``; return whether it was new. Costs O(n) (and the next fingerprint O(n))."""
        item = _check_item(item)
        index = bisect.bisect_left(self._items, item)
        if index < len(self._items) and self._items[index] == item:
            return False
        self._items.insert(index, item)
        self._prefix_sums = None
        return True

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def _span(self, lower: Bound, upper: Bound) -> tuple[int, int]:
        start = bisect.bisect_left(self._items, lower.key)
        return start, max(start, bisect.bisect_left(self._items, upper.key, start))

    def count(self, lower: Bound, upper: Bound) -> int:
        start, stop = self._span(lower, upper)
        return stop - start

    def fingerprint(self, lower: Bound, upper: Bound) -> bytes:
        if self._prefix_sums is None:
            ids = (int.from_bytes(item_id, "little") for _, item_id in self._items)
            self._prefix_sums = list(itertools.accumulate(ids, initial=0))
        start, stop = self._span(lower, upper)
        return fingerprint(self._prefix_sums[stop] - self._prefix_sums[start], stop - start)

    def items(self, lower: Bound, upper: Bound) -> Sequence[Item]:
        start, stop = self._span(lower, upper)
        return self._items[start:stop]

    def item_at(self, lower: Bound, upper: Bound, index: int) -> Item:
        start, stop = self._span(lower, upper)
        if not 0 <= index < stop - start:
            raise IndexError(f"index {index} outside a range of {stop - start} items")
        return self._items[start + index]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileStatistics:
    """What a session has exchanged so far."""

    messages_sent: int
    messages_received: int
    bytes_sent: int
    bytes_received: int


_Payload: TypeAlias = bytes | list[bytes] | None


@dataclass(frozen=True, slots=True)
class _Range:
    upper: Bound
    mode: Mode
    payload: _Payload


def _fail(reason: str, message: str) -> ReconcileError:
    return ReconcileError(message, reason=reason)


def _is_uint(value: object) -> bool:
    return type(value) is int and value >= 0


def _range_fields(previous_timestamp: int, entry: _Range) -> list[object]:
    """``[timestamp field, id prefix, mode, payload]``: the timestamp field is 0 for INFINITY,
    else 1 + the timestamp's distance from the previous range's (0 for the first range)."""
    upper = entry.upper
    timestamp_field = 0 if upper == INFINITY else upper.timestamp - previous_timestamp + 1
    return [timestamp_field, upper.id_prefix, int(entry.mode), entry.payload]


def _pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def _decode_range(raw: object, previous: Bound) -> _Range:
    if type(raw) is not list or len(raw) != 4:
        raise _fail("malformed", "a range is an array of 4 elements")
    timestamp_field, prefix, mode, payload = raw
    if not _is_uint(timestamp_field) or type(prefix) is not bytes:
        raise _fail("bad-bound", "a bound is an unsigned integer and a binary id prefix")
    if previous == INFINITY:
        raise _fail("bad-bound", "no range can follow the infinite bound")
    if timestamp_field == 0:
        if prefix:
            raise _fail("bad-bound", "the infinite bound has no id prefix")
        upper = INFINITY
    else:
        timestamp = previous.timestamp + timestamp_field - 1
        if timestamp > MAX_TIMESTAMP or len(prefix) > ID_SIZE or prefix.endswith(b"\x00"):
            raise _fail("bad-bound", "bound timestamp too large or id prefix not minimal")
        upper = Bound(timestamp=timestamp, id_prefix=prefix)
    if upper <= previous:
        raise _fail("bad-bound", "range bounds must strictly increase")
    if not _is_uint(mode) or mode > max(Mode):
        raise _fail("bad-payload", f"unknown mode {mode!r}")
    mode = Mode(mode)
    if not _payload_fits(mode, payload):
        raise _fail("bad-payload", f"malformed {mode.name} payload")
    return _Range(upper, mode, payload)


def _payload_fits(mode: Mode, payload: object) -> bool:
    if mode is Mode.SKIP:
        return payload is None
    if mode is Mode.FINGERPRINT:
        return type(payload) is bytes and len(payload) == FINGERPRINT_SIZE
    if mode is Mode.ID_LIST:
        return type(payload) is bytes and len(payload) % SHORT_ID_SIZE == 0
    if mode is Mode.ID_LIST_REPLY:
        return (
            type(payload) is list
            and len(payload) == 2
            and all(type(part) is bytes for part in payload)
            and len(payload[1]) % ID_SIZE == 0
        )
    return type(payload) is bytes and len(payload) > 0 and len(payload) % ID_SIZE == 0


def _decode_message(data: bytes) -> list[_Range]:
    try:
        message = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, TypeError, OverflowError, RecursionError, msgpack.UnpackException) as error:
        raise _fail("malformed", f"not a msgpack message: {error}") from None
    if type(message) is not list or len(message) != 2:
        raise _fail("malformed", "a message is an array [version, ranges]")
    version, raw_ranges = message
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise _fail("unsupported-version", f"protocol version {version!r} is not supported")
    if type(raw_ranges) is not list:
        raise _fail("malformed", "ranges must be an array")
    ranges: list[_Range] = []
    previous = MIN_BOUND
    for raw in raw_ranges:
        entry = _decode_range(raw, previous)
        if entry.mode is Mode.SKIP and ranges and ranges[-1].mode is Mode.SKIP:
            raise _fail("non-canonical", "consecutive SKIP ranges must be merged")
        ranges.append(entry)
        previous = entry.upper
    if ranges and ranges[-1].mode is Mode.SKIP:
        raise _fail("non-canonical", "a trailing SKIP range must be left out")
    if _pack(message) != data:
        raise _fail("non-canonical", "not the canonical msgpack encoding")
    return ranges


def _asks_for_reply(ranges: Iterable[_Range]) -> bool:
    """Rule 4."""
    return any(
        entry.mode in (Mode.FINGERPRINT, Mode.ID_LIST)
        or (
            entry.mode is Mode.ID_LIST_REPLY
            and isinstance(entry.payload, list)
            and any(entry.payload[0])
        )
        for entry in ranges
    )


def _bitmap(flags: Sequence[bool]) -> bytes:
    """Bit ``i`` (``i % 8`` counted from the least significant bit of byte ``i // 8``)."""
    out = bytearray((len(flags) + 7) // 8)
    for index, flag in enumerate(flags):
        if flag:
            out[index // 8] |= 1 << (index % 8)
    return bytes(out)


def _split_ids(blob: bytes, size: int) -> list[bytes]:
    return [blob[i : i + size] for i in range(0, len(blob), size)]


@dataclass(slots=True, kw_only=True)
class _Changes:
    """What answering (part of) a message taught us; committed only if all of it is valid."""

    have: set[bytes] = field(default_factory=set)
    need: set[bytes] = field(default_factory=set)
    flagged: set[bytes] = field(default_factory=set)
    resolved: set[bytes] = field(default_factory=set)
    sent_lists: dict[tuple[Bound, Bound], list[bytes]] = field(default_factory=dict)

    def merge(self, other: _Changes) -> None:
        self.have |= other.have
        self.need |= other.need
        self.flagged |= other.flagged
        self.resolved |= other.resolved
        self.sent_lists.update(other.sent_lists)


class _MessageBuilder:
    """Collects outgoing ranges in order, merging SKIPs and keeping the encoding under a limit."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._ranges: list[_Range] = []
        self._encoded_size = _MESSAGE_OVERHEAD
        self._last_upper = MIN_BOUND

    def try_add(self, lower: Bound, chunk: Sequence[_Range], *, reserve: int) -> bool:
        """Append ``chunk`` (ranges tiling ``[lower, ...)``) unless the message would then exceed
        the limit minus ``reserve``; return whether it was appended."""
        if not chunk:
            return True
        pending = ([_Range(lower, Mode.SKIP, None)] if lower != self._last_upper else []) + list(
            chunk
        )
        previous = self._last_upper.timestamp
        size = 0
        for entry in pending:
            size += len(_pack(_range_fields(previous, entry)))
            previous = entry.upper.timestamp
        if self._encoded_size + size + reserve > self._limit:
            return False
        self._ranges.extend(pending)
        self._encoded_size += size
        self._last_upper = pending[-1].upper
        return True

    @property
    def ranges(self) -> list[_Range]:
        return self._ranges

    def encode(self) -> bytes:
        encoded, previous = [], 0
        for entry in self._ranges:
            encoded.append(_range_fields(previous, entry))
            previous = entry.upper.timestamp
        return _pack([PROTOCOL_VERSION, encoded])


class ReconcileSession:
    """One side of a reconciliation. Push the peer's messages in with `receive`, pull ours out with
    `next_message`; the initiator pulls first. When `done`, `have_ids` holds the ids we hold that
    the peer lacks (we send those) and `need_ids` the ids the peer holds that we lack (we ask).

    ``items`` must not change while the session runs. ``max_message_bytes`` bounds every message we
    send and every message we accept; both peers should use the same value.
    ``branching`` and ``id_list_threshold`` tune how a differing range is narrowed down: a range we
    hold more than ``id_list_threshold`` items of is split into ``branching`` fingerprinted parts,
    a smaller one is sent as an ID_LIST.
    """

    def __init__(
        self,
        items: ItemSet,
        *,
        initiator: bool,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        branching: int = DEFAULT_BRANCHING,
        id_list_threshold: int = DEFAULT_ID_LIST_THRESHOLD,
    ) -> None:
        # A one-item range is always sent as an ID_LIST, else two peers holding different single
        # items there would trade fingerprints of it forever.
        if branching < 2 or id_list_threshold < 1:
            raise ValueError("branching must be at least 2 and id_list_threshold at least 1")
        # Any one incoming range must be answerable within one message (rule 5 needs progress).
        smallest = _MESSAGE_OVERHEAD + _REMAINDER_RESERVE + 64 * branching
        smallest += max(SHORT_ID_SIZE, ID_SIZE) * max(id_list_threshold, 8) + 64
        if max_message_bytes < smallest:
            raise ValueError(f"max_message_bytes must be at least {smallest} for these settings")
        self._items = items
        self._limit = max_message_bytes
        self._branching = branching
        self._threshold = id_list_threshold
        # We answer an ID_LIST with our full ids when at most this many of ours lie in its range
        # (and split it like a differing fingerprint otherwise), so a reply fits in a quarter of a
        # message whatever the peer sent.
        self._reply_limit = max(id_list_threshold, max_message_bytes // (4 * ID_SIZE))
        self._awaiting_first = initiator
        self._waiting = not initiator
        self._outgoing: bytes | None = None
        self._outgoing_asks_reply = False
        self._done = False
        self._have: set[bytes] = set()
        self._need: set[bytes] = set()
        self._flagged: set[bytes] = set()  # short ids we lack and asked the peer for
        self._sent_lists: dict[tuple[Bound, Bound], list[bytes]] = {}
        self._messages_sent = self._messages_received = 0
        self._bytes_sent = self._bytes_received = 0

    @property
    def done(self) -> bool:
        """Whether the session is over: nothing more will be sent or accepted."""
        return self._done

    @property
    def have_ids(self) -> frozenset[bytes]:
        """Ids we hold that the peer lacks, found so far."""
        return frozenset(self._have)

    @property
    def need_ids(self) -> frozenset[bytes]:
        """Ids the peer holds that we lack, found so far."""
        return frozenset(self._need)

    def statistics(self) -> ReconcileStatistics:
        """Messages and bytes exchanged so far."""
        return ReconcileStatistics(
            messages_sent=self._messages_sent,
            messages_received=self._messages_received,
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
        )

    def next_message(self) -> bytes | None:
        """The next message to send the peer, or None if it is the peer's turn or we are done."""
        if self._awaiting_first:
            self._awaiting_first = False
            builder = _MessageBuilder(self._limit)
            changes = _Changes()
            count = self._items.count(MIN_BOUND, INFINITY)
            if count <= self._threshold:
                first = self._id_list(MIN_BOUND, INFINITY, changes)
            else:
                # One fingerprint of everything first: peers already in sync settle in one round.
                fp = self._items.fingerprint(MIN_BOUND, INFINITY)
                first = [_Range(INFINITY, Mode.FINGERPRINT, fp)]
            builder.try_add(MIN_BOUND, first, reserve=0)
            self._sent_lists = changes.sent_lists
            self._outgoing, self._outgoing_asks_reply = builder.encode(), True
        message, self._outgoing = self._outgoing, None
        if message is None:
            return None
        self._waiting = self._outgoing_asks_reply
        self._done = not self._outgoing_asks_reply
        self._messages_sent += 1
        self._bytes_sent += len(message)
        return message

    def receive(self, message: bytes) -> None:
        """Apply a message from the peer; our answer, if any, is then ready in `next_message`.

        Raises `ReconcileError` (and changes nothing) if the message is malformed, breaks the
        protocol, or comes when no message is expected.
        """
        if not self._waiting:
            raise _fail("unexpected-message", "no message from the peer was expected now")
        if type(message) is not bytes:
            raise TypeError("a message is bytes")
        if len(message) > self._limit:
            raise _fail("message-too-large", f"{len(message)} bytes, the limit is {self._limit}")
        ranges = _decode_message(message)
        asks_reply = _asks_for_reply(ranges)
        builder = _MessageBuilder(self._limit)
        changes = _Changes()
        lower, deferring = MIN_BOUND, False
        for entry in ranges:
            step = _Changes()
            if not deferring:
                chunk = self._answer(lower, entry, step)
                if builder.try_add(lower, chunk, reserve=_REMAINDER_RESERVE):
                    changes.merge(step)
                    lower = entry.upper
                    continue
                deferring, step = True, _Changes()
            # Rule 5: out of room, so the ranges still to answer go back as our fingerprints (the
            # peer asks again next round, without descending from the top), then as one range.
            chunk = self._defer(lower, entry, step)
            if not builder.try_add(lower, chunk, reserve=_REMAINDER_RESERVE):
                remainder = _Range(
                    INFINITY, Mode.FINGERPRINT, self._items.fingerprint(lower, INFINITY)
                )
                builder.try_add(lower, [remainder], reserve=0)
                break
            changes.merge(step)
            lower = entry.upper
        flagged = (self._flagged - changes.resolved) | changes.flagged
        if not asks_reply and flagged:
            raise _fail("ids-withheld", f"the peer ended without {len(flagged)} flagged ids")
        # Commit: from here on nothing can fail.
        self._have |= changes.have
        self._need |= changes.need
        self._flagged = flagged
        self._sent_lists = changes.sent_lists
        self._messages_received += 1
        self._bytes_received += len(message)
        self._waiting = False
        if asks_reply:
            self._outgoing = builder.encode()
            self._outgoing_asks_reply = _asks_for_reply(builder.ranges)
        else:
            self._done = True

    def _answer(self, lower: Bound, entry: _Range, changes: _Changes) -> list[_Range]:
        """Our ranges answering the peer's range ``[lower, entry.upper)``; records what we learn."""
        upper, payload = entry.upper, entry.payload
        if entry.mode is Mode.FINGERPRINT:
            if self._items.fingerprint(lower, upper) == payload:
                return []
            return self._split(lower, upper, changes)
        if entry.mode is Mode.ID_LIST:
            assert type(payload) is bytes
            return self._answer_id_list(lower, upper, payload, changes)
        if entry.mode is Mode.ID_LIST_REPLY:
            assert type(payload) is list
            return self._apply_reply(lower, upper, payload[0], payload[1], changes)
        if entry.mode is Mode.IDS:
            assert type(payload) is bytes
            ids = _split_ids(payload, ID_SIZE)
            shorts = {item_id[:SHORT_ID_SIZE] for item_id in ids}
            if len(set(ids)) != len(ids) or not shorts <= self._flagged:
                raise _fail("unsolicited-ids", "IDS names ids we did not flag")
            changes.need.update(ids)
            changes.resolved |= shorts
        return []

    def _defer(self, lower: Bound, entry: _Range, changes: _Changes) -> list[_Range]:
        """Our short answer to the peer's range when a message has no room for the full one."""
        if entry.mode in (Mode.SKIP, Mode.IDS):
            return self._answer(lower, entry, changes)  # no output: nothing to defer
        fp = self._items.fingerprint(lower, entry.upper)
        if entry.mode is Mode.FINGERPRINT and fp == entry.payload:
            return []
        return [_Range(entry.upper, Mode.FINGERPRINT, fp)]

    def _split(self, lower: Bound, upper: Bound, changes: _Changes) -> list[_Range]:
        count = self._items.count(lower, upper)
        if count <= self._threshold:
            return self._id_list(lower, upper, changes)
        parts = min(self._branching, count)
        size, extra = divmod(count, parts)
        chunk: list[_Range] = []
        part_lower, index = lower, 0
        for part in range(parts):
            index += size + (part < extra)
            part_upper = (
                upper
                if index == count
                else minimal_bound(
                    self._items.item_at(lower, upper, index - 1),
                    self._items.item_at(lower, upper, index),
                )
            )
            fp = self._items.fingerprint(part_lower, part_upper)
            chunk.append(_Range(part_upper, Mode.FINGERPRINT, fp))
            part_lower = part_upper
        return chunk

    def _id_list(self, lower: Bound, upper: Bound, changes: _Changes) -> list[_Range]:
        ids = [item_id for _, item_id in self._items.items(lower, upper)]
        changes.sent_lists[(lower, upper)] = ids
        return [_Range(upper, Mode.ID_LIST, b"".join(i[:SHORT_ID_SIZE] for i in ids))]

    def _answer_id_list(
        self, lower: Bound, upper: Bound, short_ids: bytes, changes: _Changes
    ) -> list[_Range]:
        if self._items.count(lower, upper) > self._reply_limit:
            return self._split(lower, upper, changes)
        theirs = _split_ids(short_ids, SHORT_ID_SIZE)
        their_set = set(theirs)
        ours = [item_id for _, item_id in self._items.items(lower, upper)]
        our_shorts = {item_id[:SHORT_ID_SIZE] for item_id in ours}
        missing = [item_id for item_id in ours if item_id[:SHORT_ID_SIZE] not in their_set]
        flags = [short not in our_shorts for short in theirs]
        if not missing and not any(flags):
            return []  # the range is settled, and a SKIP says so
        changes.have.update(missing)
        changes.flagged.update(short for short, flag in zip(theirs, flags, strict=True) if flag)
        return [_Range(upper, Mode.ID_LIST_REPLY, [_bitmap(flags), b"".join(missing)])]

    def _apply_reply(
        self, lower: Bound, upper: Bound, bitmap: bytes, blob: bytes, changes: _Changes
    ) -> list[_Range]:
        sent = self._sent_lists.get((lower, upper))
        if sent is None:
            raise _fail("unexpected-reply", "ID_LIST_REPLY for a range we sent no ID_LIST for")
        flags = [
            len(bitmap) > i // 8 and bool(bitmap[i // 8] >> (i % 8) & 1) for i in range(len(sent))
        ]
        if bitmap != _bitmap(flags):
            raise _fail("bad-payload", "ID_LIST_REPLY bitmap does not match our list")
        ids = _split_ids(blob, ID_SIZE)
        sent_shorts = {item_id[:SHORT_ID_SIZE] for item_id in sent}
        if len(set(ids)) != len(ids) or any(i[:SHORT_ID_SIZE] in sent_shorts for i in ids):
            raise _fail("bad-payload", "ID_LIST_REPLY names ids we listed, or one twice")
        changes.need.update(ids)
        changes.resolved.update(item_id[:SHORT_ID_SIZE] for item_id in ids)
        lacking = [item_id for item_id, flag in zip(sent, flags, strict=True) if flag]
        changes.have.update(lacking)
        return [_Range(upper, Mode.IDS, b"".join(lacking))] if lacking else []
