#!/usr/bin/env python3
"""How much an author's inbox costs (`core.inbox.author_inbox`) next to the views it reads.

    .venv/bin/python scripts/bench_inbox.py [--threads 500] [--comments 40] [--mine 0.1]

Builds a replica of ``--threads`` threads with ``--comments`` comments each (half of them replies),
where the author commented in a ``--mine`` share of the threads; then times, best of ``--repeat``:

- the inbox over every thread (what ``GET /api/inbox`` and ``p2pc inbox`` compute);
- the reference: the views of the threads the author wrote in (what the inbox reads), made alone.

The ratio inbox / reference says what the inbox adds to building those views (1.0: nothing).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nacl.signing import SigningKey  # noqa: E402

from p2pcomments.core.inbox import author_inbox  # noqa: E402
from p2pcomments.core.ops import CommentPayload, Operation, ThreadPayload, make_operation  # noqa: E402
from p2pcomments.core.replica import Replica  # noqa: E402


def _key(i: int) -> SigningKey:
    return SigningKey(hashlib.sha256(f"bench inbox {i}".encode()).digest())


def build(threads: int, comments: int, mine: float, seed: int) -> tuple[Replica, bytes, int]:
    rng = random.Random(seed)
    author = _key(0)
    others = [_key(i) for i in range(1, 20)]
    replica = Replica()
    clock = 1_700_000_000_000
    written = 0
    for t in range(threads):
        clock += 1
        thread = make_operation(
            rng.choice(others), ThreadPayload(title=f"T{t}"), timestamp_ms=clock
        )
        replica.apply(thread)
        made: list[Operation] = []
        takes_part = rng.random() < mine
        for c in range(comments):
            clock += 1
            key = author if takes_part and c % 5 == 0 else rng.choice(others)
            parent = rng.choice(made) if made and rng.random() < 0.5 else thread
            state = replica.thread(thread.id)
            op = make_operation(
                key,
                CommentPayload(body=f"comment {c}"),
                timestamp_ms=clock,
                thread=thread.id,
                refs=(parent.id,),
                deps=state.causal_deps(),
            )
            replica.apply(op)
            made.append(op)
            written += 1
    return replica, bytes(author.verify_key), written


def best(repeat: int, run: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=500)
    parser.add_argument("--comments", type=int, default=40)
    parser.add_argument("--mine", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    replica, author, written = build(args.threads, args.comments, args.mine, args.seed)
    names = replica.names()
    states = list(replica.threads.values())
    touched = [s for s in states if any(op.author == author for op in s.ops.values())]
    entries = author_inbox(states, author, names)
    inbox_s = best(args.repeat, lambda: author_inbox(states, author, names))
    views_s = best(args.repeat, lambda: [s.view(names) for s in touched])
    print(
        f"{written} comments in {len(states)} threads, the author in {len(touched)}:"
        f" {len(entries)} inbox entries"
    )
    print(f"inbox over every thread: {inbox_s * 1000:.1f} ms")
    print(f"reference, the views of the author's threads alone: {views_s * 1000:.1f} ms")
    print(f"ratio inbox / reference: {inbox_s / views_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
