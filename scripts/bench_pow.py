#!/usr/bin/env python3
"""Benchmark proof-of-work mining (SPEC §11.6): the time to mine a comment per difficulty.

    scripts/bench_pow.py [--difficulties 8,12,16,20] [--samples 8]

The reference, measured in the same run: one SHA-256 of a comment's unsigned form (what one
mining attempt would cost if the miner rehashed everything), and one attempt as `core.pow`
makes it (the hash of everything before the nonce is computed once; an attempt hashes the
8-byte nonce on a copy). For each difficulty d, `samples` comments (different bodies, so
different nonces) are mined with `core.pow.mine`: the mean and the worst time, the mean number
of attempts (expected 2^d), and the mean time as a multiple of the reference SHA-256. Mining is
a geometric draw: a sample's time varies a lot; the mean over samples is what a user waits.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nacl.signing import SigningKey  # noqa: E402

from p2pcomments.core.ops import (  # noqa: E402
    CommentPayload,
    ThreadPayload,
    make_operation,
    unsigned_fields,
)
from p2pcomments.core.pow import (  # noqa: E402
    MiningExhausted,
    find_nonce,
    mine,
    unsigned_prefix,
)
from p2pcomments.core.rules import leading_zero_bits  # noqa: E402

BODY = "A comment of about three hundred bytes, as readers write them. " * 5


def _reference(author: bytes, thread: bytes, rounds: int = 200_000) -> tuple[float, float]:
    """Seconds per full SHA-256 of the unsigned form, and per mining attempt."""
    import msgpack

    payload = CommentPayload(body=BODY)
    fields = unsigned_fields(
        author, payload, timestamp_ms=1, thread=thread, refs=(thread,), nonce=bytes(8)
    )
    unsigned = msgpack.packb(fields, use_bin_type=True)
    sha256 = hashlib.sha256
    start = time.perf_counter()
    for _ in range(rounds):
        sha256(unsigned).digest()
    full = (time.perf_counter() - start) / rounds
    prefix = unsigned_prefix(
        author, payload, timestamp_ms=1, thread=thread, refs=(thread,), deps=()
    )
    start = time.perf_counter()
    with contextlib.suppress(MiningExhausted):  # 64 bits are never found: `rounds` attempts
        find_nonce(prefix, 64, max_attempts=rounds)
    attempt = (time.perf_counter() - start) / rounds
    return full, attempt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--difficulties", default="8,12,16,20")
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    difficulties = [int(d) for d in args.difficulties.split(",")]
    key = SigningKey(b"\x01" * 32)
    author = bytes(key.verify_key)
    thread = make_operation(key, ThreadPayload(title="bench"), timestamp_ms=1)
    full, attempt = _reference(author, thread.id)
    print(f"reference: one SHA-256 of a comment's unsigned form ({len(BODY)}-byte body):"
          f" {full * 1e6:.2f} µs")  # fmt: skip
    print(f"one mining attempt (nonce on a copied prefix hash): {attempt * 1e6:.2f} µs"
          f" = {attempt / full:.2f}x the reference")  # fmt: skip
    print(f"{'bits':>4} {'mean s':>9} {'worst s':>9} {'attempts':>11} {'expected':>11}"
          f" {'mean/ref':>12}")  # fmt: skip
    for difficulty in difficulties:
        times = []
        attempts = []
        for sample in range(args.samples):
            payload = CommentPayload(body=f"{BODY}{sample}")
            counted: list[int] = []
            start = time.perf_counter()
            op = mine(
                key,
                payload,
                difficulty=difficulty,
                timestamp_ms=1_700_000_000_000 + sample,
                thread=thread.id,
                refs=(thread.id,),
                progress=counted.append,
            )
            times.append(time.perf_counter() - start)
            attempts.append(counted[-1])
            assert leading_zero_bits(op.id) >= difficulty
        mean = statistics.fmean(times)
        print(
            f"{difficulty:>4} {mean:>9.3f} {max(times):>9.3f} {statistics.fmean(attempts):>11,.0f}"
            f" {2**difficulty:>11,} {mean / full:>12,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
