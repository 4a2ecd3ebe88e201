"""Rateless invertible Bloom lookup tables (Yang, Gilad, Alizadeh, "Practical Rateless Set
Reconciliation", SIGCOMM 2024), sans-IO.

One peer (the encoder) turns its set into an endless sequence of *coded symbols* and sends a
prefix of it, batch by batch; the other (the decoder) subtracts the same prefix of its own set's
sequence and *peels* the result until it knows the whole symmetric difference, both directions at
once. About 1.35-1.5 coded symbols per differing element suffice for large differences, whatever
the sizes of the sets. protocol/SPEC.md §9.7 specifies the bytes; this module is the reference
implementation.

Rules this module enforces:

1. A source symbol is an 8-byte short id ``s`` (the first bytes of an operation id). Its *value*
   ``v(s)`` is ``s`` read as an unsigned 64-bit little-endian integer; its *checksum* ``h(s)`` is
   ``BLAKE2b(s, key=K, digest_size=8)`` read the same way, under a 16-byte session key ``K``.
2. Coded symbol ``i`` of a set is ``(Σ v mod 2**64, Σ h mod 2**64, count mod 2**32)`` over the set's
   source symbols that *map to* ``i`` (rule 3); on the wire it is 20 bytes, the three fields
   little-endian in that order (`SYMBOL_SIZE`). Sums, not XORs, so the encoder adds one packed
   integer per (source symbol, index) pair: the fields never carry into each other.
3. The mapping is exact integer arithmetic (`mapped_indices`): every source symbol maps to index 0;
   from index ``i`` with state ``r`` (first ``r = h(s)``), ``r <- r * 0xda942042e4dd58b5 mod
   2**64``, ``q = isqrt(r) + 1`` and the next index is ``i + 1 + floor((2i + 3)(2**32 - q) / 2q)``.
   Index ``i`` is then hit with probability about ``1 / (1 + i/2)``. Every value in it fits in
   64 bits for ``i < 2**24``, so other languages need no big integers.
4. The decoder takes coded symbols in order, never more than `MAX_SYMBOLS` in all. A cell of the
   difference is *pure* when its count is +1 (the encoder's alone) or -1 (the decoder's alone) and
   its checksum sum is the checksum of its value sum (negated for -1); the value is then peeled
   from every received cell it maps to, and from those still to come.
5. Whatever the bytes, `SketchDecoder.receive` raises `SketchError` (with a ``reason``) or nothing:
   a peeled value that repeats, that does not map to the cell it came from, or that claims to be
   the decoder's own but is not (``inconsistent``), and malformed or excess symbols (``malformed``,
   ``too-many-symbols``). A decoder that has raised is spent; the caller falls back to another
   reconciliation.
6. `SketchDecoder.decoded` holds once every received cell is empty; `remote_only` and `local_only`
   are then the symmetric difference of the two short-id sets (a 64-bit checksum coincidence, about
   ``2**-64`` per pure-cell test, aside; equal short ids of different operations are one element).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from math import isqrt
from typing import Final

from p2pcomments.errors import P2PCommentsError

__all__ = [
    "KEY_SIZE",
    "MAX_SYMBOLS",
    "SHORT_ID_SIZE",
    "SYMBOL_SIZE",
    "CodedSymbol",
    "SketchDecoder",
    "SketchEncoder",
    "SketchError",
    "decode_symbols",
    "encode_symbols",
    "mapped_indices",
    "symbol_checksum",
]

SHORT_ID_SIZE: Final = 8
KEY_SIZE: Final = 16
SYMBOL_SIZE: Final = 20
MAX_SYMBOLS: Final = 2**17
"""Coded symbols one decoder accepts (2.5 MiB): enough for about 90,000 differing ids."""

_MULTIPLIER: Final = 0xDA942042E4DD58B5
_MASK64: Final = 2**64 - 1
_MASK32: Final = 2**32 - 1
_TWO32: Final = 2**32
# A source symbol packed as one integer, v | h << 96 | 1 << 192: fields 32 bits wider than
# their 64-bit values, so sums over fewer than 2**32 symbols never carry into the next field.
_CHECKSUM_SHIFT: Final = 96
_COUNT_SHIFT: Final = 192
_SYMBOL: Final = struct.Struct("<QQI")


class SketchError(P2PCommentsError, ValueError):
    """Coded symbols that are malformed or cannot come from any pair of sets (rule 5).

    ``reason`` is ``malformed``, ``too-many-symbols`` or ``inconsistent``.
    """

    http_status = 502
    default_reason = "inconsistent"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodedSymbol:
    """One coded symbol (rule 2), as it is on the wire."""

    value_sum: int
    checksum_sum: int
    count: int

    def __post_init__(self) -> None:
        for name, bound in (("value_sum", _MASK64), ("checksum_sum", _MASK64), ("count", _MASK32)):
            field_value = getattr(self, name)
            if type(field_value) is not int or not 0 <= field_value <= bound:
                raise ValueError(f"{name} out of range: {field_value!r}")


def encode_symbols(symbols: Iterable[CodedSymbol]) -> bytes:
    return b"".join(_SYMBOL.pack(s.value_sum, s.checksum_sum, s.count) for s in symbols)


def decode_symbols(data: bytes) -> tuple[CodedSymbol, ...]:
    """The coded symbols in ``data``; `SketchError` unless it is a whole number of them."""
    _check_symbol_bytes(data, limit=MAX_SYMBOLS)
    return tuple(
        CodedSymbol(value_sum=v, checksum_sum=h, count=c) for v, h, c in _SYMBOL.iter_unpack(data)
    )


def _check_symbol_bytes(data: bytes, *, limit: int) -> None:
    if type(data) is not bytes or not data or len(data) % SYMBOL_SIZE:
        raise SketchError(
            "coded symbols are a non-empty run of 20-byte records", reason="malformed"
        )
    if len(data) // SYMBOL_SIZE > limit:
        raise SketchError(f"more than {limit} coded symbols", reason="too-many-symbols")


def _check_key(key: bytes) -> bytes:
    if type(key) is not bytes or len(key) != KEY_SIZE:
        raise ValueError("a sketch key is 16 bytes")
    return key


def symbol_checksum(short_id: bytes, key: bytes) -> int:
    """``h(s)`` of rule 1."""
    digest = hashlib.blake2b(short_id, digest_size=8, key=key).digest()
    return int.from_bytes(digest, "little")


def _next_index(index: int, state: int) -> tuple[int, int]:
    """Rule 3: one step from ``index`` with PRNG ``state``; returns (next index, next state)."""
    state = state * _MULTIPLIER & _MASK64
    q = isqrt(state) + 1
    return index + 1 + (2 * index + 3) * (_TWO32 - q) // (2 * q), state


def mapped_indices(checksum: int, below: int) -> list[int]:
    """The indices under ``below`` that a source symbol with this checksum maps to (rule 3)."""
    indices: list[int] = []
    index, state = 0, checksum
    while index < below:
        indices.append(index)
        index, state = _next_index(index, state)
    return indices


class _Window:
    """Source symbols with where each maps next, folded into coded symbols one batch at a time."""

    __slots__ = ("_indices", "_prefolded", "_states", "_values")

    def __init__(self) -> None:
        self._values: list[int] = []  # packed, see _CHECKSUM_SHIFT
        self._states: list[int] = []
        self._indices: list[int] = []
        # A fold done ahead (`prefold`): its bounds, the symbol count then, cells, new positions.
        self._prefolded: tuple[int, int, int, list[int], list[int], list[int]] | None = None

    def __len__(self) -> int:
        return len(self._values)

    def extend(self, short_ids: Iterable[bytes], key: bytes) -> list[int]:
        """Add these source symbols (at index 0, rule 3); return their values."""
        shorts = list(short_ids)
        if any(type(s) is not bytes or len(s) != SHORT_ID_SIZE for s in shorts):
            raise ValueError("a short id is 8 bytes")
        blake2b, from_bytes = hashlib.blake2b, int.from_bytes
        values = [from_bytes(s, "little") for s in shorts]
        checksums = [
            from_bytes(blake2b(s, digest_size=8, key=key).digest(), "little") for s in shorts
        ]
        one = 1 << _COUNT_SHIFT
        self._prefolded = None
        self._values += [
            v | c << _CHECKSUM_SHIFT | one for v, c in zip(values, checksums, strict=True)
        ]
        self._states += checksums
        self._indices += [0] * len(shorts)
        return values

    def add(self, value: int, checksum: int, *, index: int = 0, state: int | None = None) -> None:
        """Add a source symbol whose next index is ``index`` (with PRNG ``state``)."""
        self._prefolded = None
        self._values.append(value | checksum << _CHECKSUM_SHIFT | 1 << _COUNT_SHIFT)
        self._states.append(checksum if state is None else state)
        self._indices.append(index)

    def prefold(self, start: int, stop: int) -> None:
        """Compute `fold` ``(start, stop)`` ahead (a worker thread may, while nothing else uses
        the window) without moving the window: the next `fold` with the same bounds takes the
        result; any other change or fold discards it."""
        saved = self._states, self._indices
        self._states, self._indices = list(saved[0]), list(saved[1])
        try:
            cells = self._fold(start, stop)
            done = (start, stop, len(self._values), cells, self._states, self._indices)
        finally:
            self._states, self._indices = saved
        self._prefolded = done

    def fold(self, start: int, stop: int) -> list[int]:
        """Packed sums of cells ``start .. stop - 1``; the symbols' positions move past ``stop``.
        ``start`` must be where the previous fold stopped (0 at first)."""
        prefolded, self._prefolded = self._prefolded, None
        if prefolded is not None and prefolded[:3] == (start, stop, len(self._values)):
            self._states, self._indices = prefolded[4], prefolded[5]
            return prefolded[3]
        return self._fold(start, stop)

    def _fold(self, start: int, stop: int) -> list[int]:
        cells = [0] * stop
        states, indices = self._states, self._indices
        multiplier, mask, two32, root = _MULTIPLIER, _MASK64, _TWO32, isqrt
        # The hot loop of a session (n items x about 2 ln(stop) visits): rule 3 inlined, with
        # locals for the constants.
        for slot, value in enumerate(self._values):
            index = indices[slot]
            if index >= stop:
                continue
            state = states[slot]
            while index < stop:
                cells[index] += value
                state = state * multiplier & mask
                q = root(state) + 1
                index += 1 + ((index << 1) + 3) * (two32 - q) // (q << 1)
            states[slot] = state
            indices[slot] = index
        return cells[start:]


def _unpack(packed: int) -> tuple[int, int, int]:
    return (
        packed & _MASK64,
        packed >> _CHECKSUM_SHIFT & _MASK64,
        packed >> _COUNT_SHIFT,
    )


class SketchEncoder:
    """The coded-symbol sequence of a set of short ids (rules 1-3), produced on demand.

    Equal short ids count twice, as the decoder's side does with its own (a decoder peels them as
    one element when the other side holds neither)."""

    def __init__(self, short_ids: Iterable[bytes], *, key: bytes) -> None:
        self._window = _Window()
        self._window.extend(short_ids, _check_key(key))
        self._produced = 0

    @property
    def produced(self) -> int:
        """How many coded symbols have been produced so far."""
        return self._produced

    def prepare(self, count: int) -> None:
        """Compute what `next_symbols` ``(count)`` will need, ahead, changing nothing else (a
        worker thread may run it while nothing else uses the encoder): the costly part, every
        short id folded into the new symbols. Bad counts are left to `next_symbols`."""
        if count >= 1 and self._produced + count <= MAX_SYMBOLS:
            self._window.prefold(self._produced, self._produced + count)

    def next_symbols(self, count: int) -> bytes:
        """The next ``count`` coded symbols, encoded (rule 2)."""
        if count < 1 or self._produced + count > MAX_SYMBOLS:
            raise ValueError(f"at least 1 symbol and at most {MAX_SYMBOLS} in all")
        start, self._produced = self._produced, self._produced + count
        out = bytearray()
        for packed in self._window.fold(start, self._produced):
            value_sum, checksum_sum, items = _unpack(packed)
            out += _SYMBOL.pack(value_sum, checksum_sum, items & _MASK32)
        return bytes(out)


class SketchDecoder:
    """The difference between our set of short ids and the encoder's, from its coded symbols
    (rules 4-6). Feed each batch to `receive` in order; read `decoded`, then `remote_only` (the
    encoder's alone: ask for them) and `local_only` (ours alone: send them)."""

    def __init__(self, short_ids: Iterable[bytes], *, key: bytes) -> None:
        self._key = _check_key(key)
        self._local = _Window()
        self._local_values = set(self._local.extend(short_ids, self._key))
        # Peeled values and where they map next: the encoder's (subtracted from what comes, like
        # ours) and ours (added back).
        self._peeled_remote = _Window()
        self._peeled_local = _Window()
        self._remote: list[int] = []
        self._local_only: list[int] = []
        self._peeled: set[int] = set()
        self._values: list[int] = []  # the difference, cell by cell: value sums mod 2**64,
        self._checksums: list[int] = []  # checksum sums mod 2**64,
        self._counts: list[int] = []  # and signed counts (the encoder's minus ours)
        self._raw_counts: list[int] = []  # those counts before any peeling
        self._failed = False
        self._decoded = False

    @property
    def received(self) -> int:
        """Coded symbols received so far."""
        return len(self._values)

    @property
    def decoded(self) -> bool:
        """Whether the whole difference is known (rule 6)."""
        return self._decoded

    @property
    def remote_only(self) -> frozenset[bytes]:
        """Short ids the encoder holds and we lack, peeled so far."""
        return frozenset(v.to_bytes(SHORT_ID_SIZE, "little") for v in self._remote)

    @property
    def local_only(self) -> frozenset[bytes]:
        """Short ids we hold and the encoder lacks, peeled so far."""
        return frozenset(v.to_bytes(SHORT_ID_SIZE, "little") for v in self._local_only)

    def estimate_difference(self) -> int:
        """An estimate of the size of the whole difference from the cells received so far.

        A differing element is in cell ``i`` with probability about ``p = 2 / (i + 2)``, so the
        count of cell ``i`` (the encoder's minus ours) has mean ``c0 * p`` (``c0``: cell 0's count,
        the difference of the set sizes) and variance ``d * p * (1 - p)``: each cell estimates
        ``d``, and their mean is within about ``sqrt(2 / cells)`` of it."""
        counts = self._raw_counts
        lower = max(abs(counts[0]) if counts else 0, len(self._peeled))
        if len(counts) < 2:
            return lower
        c0 = counts[0]
        total = 0.0
        for index in range(1, len(counts)):
            p = 2 / (index + 2)
            total += (counts[index] - c0 * p) ** 2 / (p * (1 - p))
        return max(lower, round(total / (len(counts) - 1)))

    def prepare(self, data: bytes) -> None:
        """Compute what `receive` ``(data)`` will need, ahead, changing nothing else (a worker
        thread may run it while nothing else uses the decoder): the costly part, our short ids
        folded into those cells. Bytes `receive` would refuse are left to it."""
        count, extra = divmod(len(data), SYMBOL_SIZE)
        refused = self._failed or self._decoded or extra or count < 1
        if not refused and self.received + count <= MAX_SYMBOLS:
            self._local.prefold(self.received, self.received + count)

    def receive(self, data: bytes) -> None:
        """Take the next coded symbols of the encoder's sequence and peel what can be peeled.
        Raises `SketchError` (rule 5); after that, or once decoded, nothing more is accepted."""
        if self._failed or self._decoded:
            raise SketchError("the decoder takes no more symbols", reason="too-many-symbols")
        try:
            _check_symbol_bytes(data, limit=MAX_SYMBOLS - self.received)
            self._receive(data)
        except SketchError:
            self._failed = True
            raise

    def _receive(self, data: bytes) -> None:
        start = self.received
        stop = start + len(data) // SYMBOL_SIZE
        ours = self._local.fold(start, stop)
        theirs_peeled = self._peeled_remote.fold(start, stop)
        ours_peeled = self._peeled_local.fold(start, stop)
        candidates: list[int] = []
        for offset, (value, checksum, count) in enumerate(_SYMBOL.iter_unpack(data)):
            local_value, local_checksum, local_count = _unpack(ours[offset])
            remote_value, remote_checksum, remote_count = _unpack(theirs_peeled[offset])
            back_value, back_checksum, back_count = _unpack(ours_peeled[offset])
            raw = (count - local_count) & _MASK32
            raw -= (raw >> 31) << 32  # to a signed difference
            self._raw_counts.append(raw)
            self._values.append((value - local_value - remote_value + back_value) & _MASK64)
            self._checksums.append(
                (checksum - local_checksum - remote_checksum + back_checksum) & _MASK64
            )
            self._counts.append(raw - remote_count + back_count)
            candidates.append(start + offset)
        self._peel(candidates)
        self._decoded = not any(self._values) and not any(self._checksums) and not any(self._counts)

    def _pure(self, cell: int) -> tuple[int, int, int] | None:
        """``(value, checksum, sign)`` if the cell holds exactly one element (rule 4)."""
        sign = self._counts[cell]
        if sign == 1:
            value, checksum = self._values[cell], self._checksums[cell]
        elif sign == -1:
            value, checksum = -self._values[cell] & _MASK64, -self._checksums[cell] & _MASK64
        else:
            return None
        if symbol_checksum(value.to_bytes(SHORT_ID_SIZE, "little"), self._key) != checksum:
            return None
        return value, checksum, sign

    def _peel(self, candidates: list[int]) -> None:
        received = self.received
        while candidates:
            cell = candidates.pop()
            pure = self._pure(cell)
            if pure is None:
                continue
            value, checksum, sign = pure
            if value in self._peeled:
                raise SketchError("a value was peeled twice", reason="inconsistent")
            if sign < 0 and value not in self._local_values:
                raise SketchError("a peeled value claimed to be ours is not", reason="inconsistent")
            self._peeled.add(value)
            (self._remote if sign > 0 else self._local_only).append(value)
            index, state, hit = 0, checksum, False
            while index < received:
                hit |= index == cell
                self._values[index] = (self._values[index] - sign * value) & _MASK64
                self._checksums[index] = (self._checksums[index] - sign * checksum) & _MASK64
                self._counts[index] -= sign
                if self._counts[index] in (1, -1):
                    candidates.append(index)
                index, state = _next_index(index, state)
            if not hit:
                raise SketchError("a peeled value does not map to its cell", reason="inconsistent")
            window = self._peeled_remote if sign > 0 else self._peeled_local
            window.add(value, checksum, index=index, state=state)
