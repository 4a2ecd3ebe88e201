"""Writer process for test_durability: write through the Node until killed.

Usage: python durability_writer.py DATA_DIR

Opens the node (creating the identity on first run), then, concurrently, makes local comments
and ingests batches of operations signed by another author. Each operation id is printed (hex,
one per line, flushed) only *after* the Node acknowledged it, i.e. after its commit returned.
The parent kills this process with SIGKILL at a random moment and checks that every printed id
is in the database.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import trio
from nacl.signing import SigningKey

from p2pcomments.core.ops import CommentPayload, make_operation
from p2pcomments.core.replica import Applied, Duplicate
from p2pcomments.node import Node, open_node

OTHER_AUTHOR = SigningKey(b"\x11" * 32)


def acknowledge(op_id: bytes) -> None:
    sys.stdout.write(op_id.hex() + "\n")
    sys.stdout.flush()


async def write_locally(node: Node, thread_id: bytes) -> None:
    while True:
        op = await node.comment(thread_id, "written locally")
        acknowledge(op.id)


async def ingest_batches(node: Node, thread_id: bytes, batch: int) -> None:
    stamp = time.time_ns() // 1_000_000
    while True:
        ops = []
        for _ in range(batch):
            stamp += 1
            ops.append(
                make_operation(
                    OTHER_AUTHOR,
                    CommentPayload(body=f"ingested {stamp}"),
                    timestamp_ms=stamp,
                    thread=thread_id,
                    refs=(thread_id,),
                    deps=(thread_id,),
                )
            )
        outcomes = await node.ingest([op.encoded for op in ops], source="durability")
        for outcome in outcomes:
            assert isinstance(outcome, Applied | Duplicate), outcome
            acknowledge(outcome.op_id)


async def main(data_dir: Path) -> None:
    async with open_node(data_dir, create_identity=True) as node:
        summaries = node.threads()
        if summaries:
            thread_id = summaries[0].id
        else:
            thread = await node.create_thread("durability")
            acknowledge(thread.id)
            thread_id = thread.id
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write_locally, node, thread_id)
            nursery.start_soon(write_locally, node, thread_id)
            nursery.start_soon(ingest_batches, node, thread_id, 20)
            nursery.start_soon(ingest_batches, node, thread_id, 5)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]))
