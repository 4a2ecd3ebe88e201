#!/usr/bin/env python3
"""The fuzzing campaign: hostile input at every boundary of a node, measured (issue 13).

For each boundary (the operation decoder, gossip batch payloads, sync messages, whole sync
conversations, the HTTP API, CLI arguments, config.json, the data dir) it runs
``--per-boundary`` structured inputs (valid inputs mutated: flipped, truncated, extended,
re-encoded non-canonically, fields swapped between operations, replayed into other threads or
conversations) and, with ``--seconds``, a coverage-guided run (atheris, libFuzzer's engine, in a
child process per boundary; without atheris, random mutation of the same seeds for as long) of
the boundaries that take bytes. It prints inputs tried, accepted, crashes, invariant violations
and rejections by reason per boundary, and exits non-zero if any crash or violation was found.

    nice -n 19 .venv/bin/python scripts/fuzz_boundaries.py                 # 100,000 per boundary
    .venv/bin/python scripts/fuzz_boundaries.py --per-boundary 2000 --seconds 30
    .venv/bin/python scripts/fuzz_boundaries.py --boundary op-decoder --boundary cli

What each boundary checks is in tests/fuzz/boundaries.py; tests/fuzz runs a small sample in CI.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from tests.fuzz.boundaries import Tally

BYTE_BOUNDARIES = (
    "op-decoder",
    "gossip-payload",
    "sync-message",
    "sync-conversation",
    "config-file",
)
"""Boundaries whose input is one byte string, so a coverage-guided fuzzer can drive them."""


def print_tally(title: str, tally: Tally, seconds: float) -> None:
    rate = tally.tried / seconds if seconds > 0 else 0.0
    print(
        f"\n{title}: {tally.tried:,} inputs in {seconds:.0f} s ({rate:,.0f}/s), "
        f"{tally.accepted:,} accepted, {tally.crash_count} crashes, "
        f"{tally.violation_count} violations"
    )
    for reason, count in tally.rejected.most_common():
        print(f"    {count:>9,}  {reason}")
    for gap, count in tally.gaps.items():
        print(f"  known gap, {count:,} times: {gap}")
    for note, count in tally.notes.most_common():
        print(f"  checked, {count:,} times: {note}")
    for key, kept in tally.findings.items():
        print(f"  !! {key}: {kept[0].detail}")
        for finding in kept[:3]:
            print(f"       e.g. {finding.example[:300]}")
    sys.stdout.flush()


def structured(
    name: str, count: int, seed: int, partial: Path | None = None
) -> tuple[Tally, float]:
    from tests.fuzz.boundaries import PROGRESS, run_boundary

    started = time.perf_counter()
    last = [started]

    def progress(tally: Tally) -> None:
        now = time.perf_counter()
        if now - last[0] < 60:
            return
        last[0] = now
        print(
            f"  ... {name}: {tally.tried:,} inputs in {now - started:.0f} s, "
            f"{tally.crash_count} crashes, {tally.violation_count} violations",
            flush=True,
        )
        if partial is not None:
            document = {"run": "structured", "seconds": now - started, **tally.to_json()}
            partial.write_text(json.dumps(document), encoding="utf-8")

    PROGRESS.append(progress)
    try:
        tally = run_boundary(name, count, seed)
    finally:
        PROGRESS.remove(progress)
    return tally, time.perf_counter() - started


def coverage_guided(name: str, seconds: float, seed: int) -> tuple[Tally, float, str]:
    """Run the coverage-guided fuzzer on ``name`` in a child process for ``seconds``."""
    with tempfile.TemporaryDirectory(prefix="p2pc-fuzz-") as tmp:
        stats = Path(tmp) / "stats.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            name,
            "--seconds",
            str(seconds),
            "--seed",
            str(seed),
            "--stats",
            str(stats),
        ]
        started = time.perf_counter()
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 600, check=False
        )
        elapsed = time.perf_counter() - started
        from tests.fuzz.boundaries import Tally

        if not stats.exists():
            tally = Tally(name)
            tally.crash(f"the fuzzer exited with {result.returncode}", result.stderr[-2000:])
            return tally, elapsed, "?"
        document = json.loads(stats.read_text(encoding="utf-8"))
        return Tally.from_json(document["tally"]), elapsed, document["engine"]


def worker(name: str, seconds: float, seed: int, stats: Path) -> None:
    """The child process of `coverage_guided`: fuzz one boundary, write its tally to ``stats``."""
    try:
        import atheris
    except ImportError:
        atheris = None
    if atheris is not None:
        # Coverage of our code only (msgpack and PyNaCl are C; the rest is not under test).
        with atheris.instrument_imports(include=["p2pcomments"]):
            from tests.fuzz import boundaries
    else:
        from tests.fuzz import boundaries
    logging.disable(logging.WARNING)
    boundary = boundaries.BOUNDARIES[name]()
    seeds = boundaries.seed_inputs(name, 64, seed)
    deadline = time.monotonic() + seconds
    last_write = [0.0]

    def write(engine: str) -> None:
        document = {"engine": engine, "tally": boundary.tally.to_json()}
        partial = stats.with_suffix(".tmp")
        partial.write_text(json.dumps(document), encoding="utf-8")
        os.replace(partial, stats)

    if atheris is None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            boundary.check_bytes(boundaries.mutate_bytes(rng, rng.choice(seeds), seeds))
        write("mutation (atheris not installed)")
        return
    corpus_dir = stats.parent / "corpus"  # in the parent's temporary directory
    corpus_dir.mkdir()
    for index, data in enumerate(seeds):
        (corpus_dir / f"seed-{index}").write_bytes(data)

    def one_input(data: bytes) -> None:
        boundary.check_bytes(data)
        now = time.monotonic()
        if now - last_write[0] > 2.0:
            last_write[0] = now
            write("atheris (libFuzzer)")
        if now >= deadline:
            write("atheris (libFuzzer)")
            os._exit(0)

    atheris.Setup(
        [
            sys.argv[0],
            str(corpus_dir),
            f"-seed={seed}",
            f"-max_total_time={int(seconds) + 60}",
            "-max_len=65536",
            "-rss_limit_mb=3072",
            "-print_final_stats=0",
        ],
        one_input,
    )
    atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-boundary", type=int, default=100_000, metavar="N")
    parser.add_argument(
        "--seconds",
        type=float,
        default=0.0,
        help="coverage-guided run per byte boundary, in seconds (default 0: none)",
    )
    parser.add_argument(
        "--boundary", action="append", help="repeatable; default all (see tests/fuzz/boundaries.py)"
    )
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--json", metavar="FILE", help="also write the tallies as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.seconds, args.seed, args.stats)
        return 0
    from tests.fuzz.boundaries import BOUNDARIES

    # The node logs what it skips (damaged rows, refused operations): millions of lines here.
    logging.disable(logging.WARNING)
    names = args.boundary or list(BOUNDARIES)
    print(
        f"fuzz_boundaries: {args.per_boundary:,} structured inputs per boundary, seed {args.seed}",
        flush=True,
    )
    results = []
    for name in names:
        if args.per_boundary > 0:
            partial = Path(args.json).with_suffix(f".{name}.partial") if args.json else None
            tally, elapsed = structured(name, args.per_boundary, args.seed, partial)
            print_tally(f"{name} (structured mutations)", tally, elapsed)
            results.append(("structured", tally, elapsed))
        if args.seconds > 0 and name in BYTE_BOUNDARIES:
            tally, elapsed, engine = coverage_guided(name, args.seconds, args.seed)
            print_tally(f"{name} ({engine})", tally, elapsed)
            results.append((engine, tally, elapsed))
    print("\nsummary")
    print(
        f"  {'boundary':<20} {'run':<22} {'inputs':>10} {'accepted':>9}"
        f" {'crashes':>8} {'violations':>10}"
    )
    for run, tally, _ in results:
        print(
            f"  {tally.boundary:<20} {run[:22]:<22} {tally.tried:>10,} {tally.accepted:>9,}"
            f" {tally.crash_count:>8} {tally.violation_count:>10}"
        )
    if args.json:
        document = [
            {"run": run, "seconds": elapsed, **tally.to_json()} for run, tally, elapsed in results
        ]
        Path(args.json).write_text(json.dumps(document, indent=1), encoding="utf-8")
    return 0 if all(tally.ok for _, tally, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
