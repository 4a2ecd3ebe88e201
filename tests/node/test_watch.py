"""Watching: live changes after commit, filtered by thread, bounded, with lag reported; and the
applied-operations feed for the networking layer."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing
from nacl.signing import SigningKey

from p2pcomments.core.ops import CommentPayload, Kind, make_operation
from p2pcomments.node import Node, ThreadChange, open_node

from .conftest import FakeClock


@pytest.mark.trio
async def test_watchers_see_local_and_ingested_changes_of_their_thread(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    watched = await node.create_thread("Watched")
    other = await node.create_thread("Other")
    remote = make_operation(
        stranger,
        CommentPayload(body="from afar"),
        timestamp_ms=clock() + 5,
        thread=watched.id,
        refs=(watched.id,),
        deps=(watched.id,),
    )
    with trio.fail_after(5):
        async with node.watch(watched.id) as one, node.watch() as every:
            local = await node.comment(watched.id, "here")
            elsewhere = await node.comment(other.id, "elsewhere")
            await node.ingest([remote.encoded], source="peer")
            profile = await node.set_profile("Watcher")
            expected_one = [
                ThreadChange(thread_id=watched.id, op_id=local.id, kind=Kind.COMMENT),
                ThreadChange(thread_id=watched.id, op_id=remote.id, kind=Kind.COMMENT),
                ThreadChange(thread_id=None, op_id=profile.id, kind=Kind.PROFILE),
            ]
            assert [await one.__anext__() for _ in range(3)] == expected_one
            seen = [(await every.__anext__()).op_id for _ in range(4)]
            assert seen == [local.id, elsewhere.id, remote.id, profile.id]
            assert node.statistics().watchers == 2
    assert node.statistics().watchers == 0


@pytest.mark.trio
async def test_a_slow_watcher_gets_one_lagged_change_and_the_node_never_waits(
    node: Node,
) -> None:
    thread = await node.create_thread("Busy")
    with trio.fail_after(10):
        async with node.watch(thread.id, max_buffered=4) as changes:
            for index in range(10):  # never blocks, though nobody reads
                await node.comment(thread.id, f"comment {index}")
            lagged = await changes.__anext__()
            assert lagged == ThreadChange(thread_id=thread.id, op_id=None, kind=None, lagged=True)
            after = await node.comment(thread.id, "after the lag")
            assert (await changes.__anext__()).op_id == after.id


@pytest.mark.trio
async def test_watching_ends_when_the_node_closes(data_dir: Path, clock: FakeClock) -> None:
    received: list[ThreadChange] = []
    with trio.fail_after(5):
        async with (
            trio.open_nursery() as nursery,
            open_node(data_dir, create_identity=True, clock=clock) as node,
        ):
            thread = await node.create_thread("Closing")
            ready = trio.Event()

            async def consume() -> None:
                async with node.watch(thread.id) as changes:
                    ready.set()
                    async for change in changes:
                        received.append(change)

            nursery.start_soon(consume)
            await ready.wait()
            await node.comment(thread.id, "last words")
            await trio.testing.wait_all_tasks_blocked()
    assert len(received) == 1  # the loop ended by itself when the node closed


@pytest.mark.trio
async def test_subscribers_get_every_applied_batch_with_its_source(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    with node.subscribe_applied(max_buffered=2) as batches:
        thread = await node.create_thread("Fed")
        remote = [
            make_operation(
                stranger,
                CommentPayload(body=f"remote {index}"),
                timestamp_ms=clock() + 1 + index,
                thread=thread.id,
                refs=(thread.id,),
                deps=(thread.id,),
            )
            for index in range(3)
        ]
        await node.ingest([op.encoded for op in remote], source="gossip")
        first = await batches.receive()
        assert first.ops == (thread,)
        assert first.source == "local"
        second = await batches.receive()
        assert second.ops == tuple(remote)
        assert second.source == "gossip"
        # Overflow: three more batches into a buffer of two; the third is dropped.
        for index in range(3):
            await node.comment(thread.id, f"burst {index}")
        assert not (await batches.receive()).lagged
        assert not (await batches.receive()).lagged
        late = await node.comment(thread.id, "after the burst")
        flagged = await batches.receive()
        assert flagged.lagged
        assert flagged.ops == (late,)
        assert node.statistics().applied_subscribers == 1
    assert node.statistics().applied_subscribers == 0
