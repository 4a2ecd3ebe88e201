#!/usr/bin/env python3
"""Benchmark sync between two in-memory stores: sketch mode, range mode and naive, in one run.

Builds two stores of ``--n`` operations that differ by a given fraction, half of the difference on
each side (the differing operations are real signed comments of 100-600 characters, so their
bytes are what a node sends; the shared ones are bare items, never sent), and runs two
`SyncSession` objects back to back to the end of the conversation, once with the sketch
(SPEC §9.7, the default) and once with range reconciliation only (§9.6). For each it reports the
bytes exchanged both ways (frames and their length prefixes), the bytes of the missing operations
and their ratio, round trips, wall seconds and CPU seconds of each side, and whether each side got
exactly what it lacked; next to the naive figure: one side sends every id it holds, the other
asks for what it lacks, both send operations.

Usage: .venv/bin/python scripts/bench_reconcile.py [--n 100000] [--seed 1] [--differences 0.01 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from nacl.signing import SigningKey

from p2pcomments.core.ops import CommentPayload, make_operation
from p2pcomments.core.reconcile import ID_SIZE, Item, SortedItems
from p2pcomments.core.sync_protocol import OpsReceived, SyncLimits, SyncSession

YEAR_MS = 365 * 24 * 3600 * 1000
START_MS = 1_700_000_000_000


class HeldOps:
    """A store's operation bytes by id (`core.sync_protocol.OpSource`)."""

    def __init__(self, ops: Mapping[bytes, bytes]) -> None:
        self.ops = ops

    def get_encoded(self, op_ids: Sequence[bytes]) -> Mapping[bytes, bytes]:
        return {i: self.ops[i] for i in op_ids if i in self.ops}


@dataclass(frozen=True, slots=True, kw_only=True)
class Stores:
    """Two stores' items, and the operations each holds alone."""

    a_items: list[Item]
    b_items: list[Item]
    a_only: dict[bytes, bytes]
    b_only: dict[bytes, bytes]

    @property
    def missing_bytes(self) -> int:
        return sum(map(len, self.a_only.values())) + sum(map(len, self.b_only.values()))

    @property
    def naive_bytes(self) -> int:
        """One side sends every id it holds, the other asks for what it lacks, both send ops."""
        return len(self.a_items) * ID_SIZE + len(self.b_only) * ID_SIZE + self.missing_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """One sync of two stores."""

    mode: str
    exchanged: int
    reconcile_bytes: int
    frames: int
    round_trips: int
    seconds: float
    cpu_initiator: float
    cpu_responder: float
    sketch_symbols: int
    correct: bool


def make_stores(n: int, difference: float, seed: int) -> Stores:
    """``n`` items on each side before the difference is taken out: ``difference * n`` real
    operations held by one side only (half each way)."""
    rng = random.Random(seed)
    differing = max(2, round(n * difference))
    keys = [SigningKey(rng.randbytes(32)) for _ in range(16)]
    stores = Stores(a_items=[], b_items=[], a_only={}, b_only={})
    for index in range(differing):
        timestamp = START_MS + rng.randrange(YEAR_MS)
        thread = hashlib.sha256(b"thread %d" % rng.randrange(100)).digest()
        op = make_operation(
            keys[index % len(keys)],
            CommentPayload(body="x" * rng.randrange(100, 600)),
            timestamp_ms=timestamp,
            thread=thread,
            refs=(thread,),
        )
        (stores.a_only if index % 2 == 0 else stores.b_only)[op.id] = op.encoded
        (stores.a_items if index % 2 == 0 else stores.b_items).append((timestamp, op.id))
    # What both hold is never sent, so its bytes don't matter: ids and timestamps do.
    for _ in range(n - differing):
        item = (START_MS + rng.randrange(YEAR_MS), rng.randbytes(32))
        stores.a_items.append(item)
        stores.b_items.append(item)
    return stores


def varint_size(length: int) -> int:
    size = 1
    while length >= 0x80:
        length >>= 7
        size += 1
    return size


@contextlib.contextmanager
def charged(cpu: dict[str, float], side: str) -> Iterator[None]:
    """Charge the CPU time of the block to ``side``: both sides run in this one thread."""
    before = time.process_time()
    try:
        yield
    finally:
        cpu[side] += time.process_time() - before


def sync_once(stores: Stores, *, sketch: bool) -> Figures:
    """Sync the two stores with two `SyncSession` objects wired back to back."""
    limits = SyncLimits(sketch=sketch)
    a_set, b_set = SortedItems(stores.a_items), SortedItems(stores.b_items)
    started = time.perf_counter()
    cpu = {"a": 0.0, "b": 0.0}
    with charged(cpu, "a"):
        a = SyncSession(a_set, HeldOps(stores.a_only), initiator=True, now=0.0, limits=limits)
    with charged(cpu, "b"):
        b = SyncSession(b_set, HeldOps(stores.b_only), initiator=False, now=0.0, limits=limits)
    sessions = {"a": a, "b": b}
    received: dict[str, list[bytes]] = {"a": [], "b": []}
    exchanged = frames = ops_frames_bytes = turns = 0
    last_sender = ""
    progress = True
    while progress:
        progress = False
        for name, target_name in (("a", "b"), ("b", "a")):
            source, target = sessions[name], sessions[target_name]
            while True:
                with charged(cpu, name):
                    frame = source.next_frame()
                if frame is None:
                    break
                progress = True
                frames += 1
                size = len(frame) + varint_size(len(frame))
                exchanged += size
                if frame[1] == 2:  # OPS: [2, [...]] (fixarray, then the type)
                    ops_frames_bytes += size
                if name != last_sender:
                    turns += 1
                    last_sender = name
                if not target.done:
                    with charged(cpu, target_name):
                        target.receive_frame(frame, now=0.0)
                    while (event := target.next_event()) is not None:
                        assert isinstance(event, OpsReceived)
                        received[target_name].extend(event.ops)
    seconds = time.perf_counter() - started
    correct = (
        a.error is None
        and b.error is None
        and sorted(received["a"]) == sorted(stores.b_only.values())
        and sorted(received["b"]) == sorted(stores.a_only.values())
    )
    result = a.result()
    return Figures(
        mode=result.mode.value,
        exchanged=exchanged,
        reconcile_bytes=exchanged - ops_frames_bytes,
        frames=frames,
        round_trips=(turns + 1) // 2,
        seconds=seconds,
        cpu_initiator=cpu["a"],
        cpu_responder=cpu["b"],
        sketch_symbols=result.sketch_symbols,
        correct=correct,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="items per store (default 100000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--seeds", type=int, default=1, help="also run the sketch on this many seeds from --seed"
    )
    parser.add_argument(
        "--differences", type=float, nargs="+", default=[0.01, 0.0001], help="fractions"
    )
    args = parser.parse_args()
    print(f"n={args.n} seed={args.seed}")
    header = (
        f"{'diff':>6} {'mode':<7} {'missing':>5} {'exchanged':>10} {'op bytes':>9} {'ratio':>6} "
        f"{'B/id':>6} {'RTs':>4} {'frames':>6} {'secs':>5} {'cpu I':>5} {'cpu R':>5} "
        f"{'symbols':>7} ok"
    )
    print(header)
    failed = False
    for difference in args.differences:
        stores = make_stores(args.n, difference, args.seed)
        missing = len(stores.a_only) + len(stores.b_only)
        op_bytes = stores.missing_bytes
        for sketch in (True, False):
            f = sync_once(stores, sketch=sketch)
            print(
                f"{difference:>6.2%} {f.mode:<7} {missing:>5} {f.exchanged:>10,} {op_bytes:>9,} "
                f"{f.exchanged / op_bytes:>6.3f} {f.reconcile_bytes / missing:>6.1f} "
                f"{f.round_trips:>4} {f.frames:>6} {f.seconds:>5.2f} {f.cpu_initiator:>5.2f} "
                f"{f.cpu_responder:>5.2f} {f.sketch_symbols:>7} {'yes' if f.correct else 'NO'}"
            )
            failed |= not f.correct
        naive = stores.naive_bytes
        print(
            f"{difference:>6.2%} {'naive':<7} {missing:>5} {naive:>10,} {op_bytes:>9,} "
            f"{naive / op_bytes:>6.3f} {(naive - op_bytes) / missing:>6.1f} {2:>4}"
        )
    for difference in args.differences if args.seeds > 1 else ():
        # Round trips depend on how good the first estimate was: show their spread.
        trips: list[int] = []
        ratios: list[float] = []
        for seed in range(args.seed, args.seed + args.seeds):
            stores = make_stores(args.n, difference, seed)
            f = sync_once(stores, sketch=True)
            failed |= not f.correct
            trips.append(f.round_trips)
            ratios.append(f.exchanged / stores.missing_bytes)
        print(
            f"{difference:>6.2%} sketch over {args.seeds} seeds: round trips {trips} (worst"
            f" {max(trips)}), ratio worst {max(ratios):.3f} mean {sum(ratios) / len(ratios):.3f}"
        )
    print(
        "exchanged: all frames both ways with their length prefixes; op bytes: the missing "
        "operations; ratio: exchanged / op bytes (target <= 1.15 at 1%); B/id: bytes other than "
        "OPS frames per missing operation; RTs: round trips; cpu I/R: CPU seconds of the "
        "initiator / responder session (one process); symbols: coded symbols sent"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
