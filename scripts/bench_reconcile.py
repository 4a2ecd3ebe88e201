#!/usr/bin/env python3
"""Benchmark range-based set reconciliation between two in-memory item sets.

Builds two sets of ``--n`` random items (a year of millisecond timestamps, some shared, as imports
produce) that differ by a given fraction, half of the difference on each side, runs an initiator
and a responder in-process to completion and reports bytes each way, round trips, time, and whether
each side found exactly the expected ids, next to the naive "send every id" figure.

Usage: .venv/bin/python scripts/bench_reconcile.py [--n 100000] [--seed 1] [--op-bytes 400]
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass

from p2pcomments.core.reconcile import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ID_SIZE,
    Item,
    ReconcileSession,
    SortedItems,
)

YEAR_MS = 365 * 24 * 3600 * 1000
START_MS = 1_700_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    difference: float
    initiator_to_responder: int
    responder_to_initiator: int
    messages: int
    seconds: float
    expected: int
    found_correct: bool


def make_sets(
    n: int, difference: float, rng: random.Random
) -> tuple[list[Item], list[Item], set[bytes], set[bytes]]:
    """Two sets of ``n`` items each (before removal) sharing all but ``difference * n`` items."""
    items: list[Item] = []
    for _ in range(n):
        if items and rng.random() < 0.05:
            timestamp = rng.choice(items)[0]  # a shared timestamp
        else:
            timestamp = START_MS + rng.randrange(YEAR_MS)
        items.append((timestamp, rng.randbytes(ID_SIZE)))
    removed = rng.sample(range(n), max(2, round(n * difference)))
    only_a = set(removed[: len(removed) // 2])
    only_b = set(removed[len(removed) // 2 :])
    a_items = [item for i, item in enumerate(items) if i not in only_b]
    b_items = [item for i, item in enumerate(items) if i not in only_a]
    return a_items, b_items, {items[i][1] for i in only_a}, {items[i][1] for i in only_b}


def run(
    n: int, difference: float, seed: int, branching: int | None, threshold: int | None
) -> Result:
    a_items, b_items, only_a, only_b = make_sets(n, difference, random.Random(seed))
    a, b = SortedItems(a_items), SortedItems(b_items)
    policy = {}
    if branching is not None:
        policy["branching"] = branching
    if threshold is not None:
        policy["id_list_threshold"] = threshold
    started = time.perf_counter()
    initiator = ReconcileSession(a, initiator=True, **policy)
    responder = ReconcileSession(b, initiator=False, **policy)
    sender, receiver, messages = initiator, responder, 0
    while (message := sender.next_message()) is not None:
        messages += 1
        receiver.receive(message)
        sender, receiver = receiver, sender
    seconds = time.perf_counter() - started
    correct = (
        initiator.done
        and responder.done
        and initiator.have_ids == only_a
        and initiator.need_ids == only_b
        and responder.have_ids == only_b
        and responder.need_ids == only_a
    )
    stats = initiator.statistics()
    return Result(
        difference=difference,
        initiator_to_responder=stats.bytes_sent,
        responder_to_initiator=stats.bytes_received,
        messages=messages,
        seconds=seconds,
        expected=len(only_a) + len(only_b),
        found_correct=correct,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="items per set (default 100000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--op-bytes", type=int, default=400, help="size of one missing operation")
    parser.add_argument("--branching", type=int, default=None)
    parser.add_argument("--threshold", type=int, default=None, help="id_list_threshold")
    parser.add_argument(
        "--differences", type=float, nargs="+", default=[0.01, 0.0001], help="fractions"
    )
    args = parser.parse_args()
    naive = args.n * ID_SIZE
    print(f"n={args.n} seed={args.seed} max_message_bytes={DEFAULT_MAX_MESSAGE_BYTES}")
    header = (
        f"{'diff':>7} {'ids':>6} {'init->resp':>11} {'resp->init':>11} {'total':>9} "
        f"{'B/id':>6} {'msgs':>5} {'RTs':>4} {'secs':>6} {'naive':>9} {'ratio':>6} ok"
    )
    print(header)
    failed = False
    for difference in args.differences:
        result = run(args.n, difference, args.seed, args.branching, args.threshold)
        total = result.initiator_to_responder + result.responder_to_initiator
        ops = result.expected * args.op_bytes
        print(
            f"{difference:>7.2%} {result.expected:>6} {result.initiator_to_responder:>11,} "
            f"{result.responder_to_initiator:>11,} {total:>9,} {total / result.expected:>6.1f} "
            f"{result.messages:>5} {(result.messages + 1) // 2:>4} {result.seconds:>6.2f} "
            f"{naive:>9,} {(total + ops) / ops:>6.3f} {'yes' if result.found_correct else 'NO'}"
        )
        failed |= not result.found_correct
    print(
        "B/id: reconcile bytes per differing id; RTs: round trips (messages / 2, rounded up); "
        f"naive: every id sent once; ratio: (reconcile + missing ops) / missing ops at "
        f"{args.op_bytes} bytes per op"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
