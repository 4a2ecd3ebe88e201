#!/usr/bin/env python3
"""Fault campaign (issue 13): five real daemons, random schedules of faults, a checker after each.

    sudo .venv/bin/python scripts/fault_campaign.py [--schedules N] [--seed S] [--seconds T]

Needs root (network namespaces, a tmpfs mount: see ``tests/e2e/fault_harness.py``). One cluster
of five ``p2pc daemon`` processes (A-E, every link through a proxy the script controls, E's data
dir on a 64 MiB tmpfs) runs first one schedule with no fault (the reference) and then N random
ones: links cut and restored, partitions, SIGKILL and restart, SIGSTOP and SIGCONT, E's disk
filled and freed, while writers write through the API of A-C, the CLI of D and two authors whose
clocks are 20 years behind and ahead. After each, everything is healed and the checker verifies
that every acknowledged operation is on every node, the view digests agree and every store passes
``PRAGMA integrity_check``. Prints the faults injected by kind, operations acknowledged, lost
(must be 0) and the convergence time distribution beside the reference's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.fault_harness import (
    CheckResult,
    FaultCluster,
    Schedule,
    random_schedule,
    run_schedule,
)
from tests.e2e.netns import namespaces_available


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0, help="writing time per schedule")
    args = parser.parse_args()
    why_not = namespaces_available()
    if why_not is not None:
        print(f"fault_campaign: {why_not}", file=sys.stderr)
        return 2
    results: list[CheckResult] = []
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="p2pc-faults-") as root,
        FaultCluster(Path(root)) as cluster,
    ):
        cluster.start()
        print(f"5 daemons up in {time.monotonic() - started:.1f} s", flush=True)
        reference = run_schedule(
            cluster, Schedule(0, args.seconds, ()), skew_dir=Path(root) / "skew"
        )
        _print_one("reference (no faults)", reference)
        for n in range(args.schedules):
            schedule = random_schedule(args.seed + n, cluster.names, seconds=args.seconds)
            print(f"schedule {n + 1}/{args.schedules} (seed {schedule.seed}):", flush=True)
            result = run_schedule(
                cluster, schedule, skew_dir=Path(root) / "skew", log=lambda s: print(s)
            )
            _print_one("  checked", result)
            results.append(result)
        # The reference again on the store the campaign grew: convergence also depends on
        # how much each node holds, so the faulty schedules lie between the two.
        final = run_schedule(cluster, Schedule(-1, args.seconds, ()), skew_dir=Path(root) / "skew")
        _print_one("reference again (no faults)", final)
    faults: Counter[str] = Counter()
    exits: Counter[int] = Counter()
    for result in results:
        faults.update(result.faults)
        exits.update(result.exits)
    times = [r.convergence_seconds for r in results]
    lost = sum(sum(r.lost.values()) for r in results)
    print()
    print(f"schedules: {len(results)} (+1 reference), {time.monotonic() - started:.0f} s in all")
    print("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())))
    print("  (+ clock skew: 2 authors at -20 and +20 years writing in every schedule)")
    print(f"daemon exits on a failed store, restarted: {dict(exits) or 0}")
    print(f"operations acknowledged: {sum(r.acknowledged for r in results)}")
    print(f"lost (acknowledged, missing on some node after healing): {lost}")
    bad = [r.schedule.seed for r in results if not r.ok]
    print(f"integrity_check not ok / lost: schedules {bad or 'none'}")
    if times:
        median = statistics.median(times)
        print(
            f"convergence after healing, s: min {min(times):.1f} / median {median:.1f}"
            f" / p90 {_quantile(times, 0.9):.1f} / max {max(times):.1f}"
        )
        for label, ref in (("first", reference), ("last", final)):
            print(
                f"  reference, no faults ({label}): {ref.convergence_seconds:.1f} s;"
                f" median / reference {median / max(ref.convergence_seconds, 1e-3):.1f}x"
            )
    return 0 if lost == 0 and not bad else 1


def _print_one(label: str, result: CheckResult) -> None:
    lost = sum(result.lost.values())
    integrity = "ok" if all(v == "ok" for v in result.integrity.values()) else result.integrity
    print(
        f"{label}: {result.acknowledged} acknowledged, {lost} lost, {result.operations} ops,"
        f" converged {result.convergence_seconds:.1f} s after healing, integrity {integrity},"
        f" restarts after a failed store {sum(result.exits.values())}",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
