"""The thread list of a store larger than memory (`node.listings`): read from the store's
``thread_listings`` rows, not by loading every thread, and always what the threads' own states
say; a row that is missing or stale (a store from before listings, a crash between commits) is
noticed, the thread listed from its operations and the row written again."""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    CommentPayload,
    ModAction,
    ModeratePayload,
    Operation,
    RetractPayload,
    ThreadPayload,
    load_stored_operation,
    make_operation,
)
from p2pcomments.core.replica import Replica
from p2pcomments.core.thread_state import ThreadListing
from p2pcomments.node import Node, open_node
from p2pcomments.node import node as node_module
from p2pcomments.node.values import ThreadSummary
from p2pcomments.store.data_dir import database_path
from p2pcomments.store.op_store import WriteBatch

from .conftest import FakeClock, count_loads

OWNER = SigningKey(b"\x03" * 32)
READER = SigningKey(b"\x04" * 32)


def _thread(index: int) -> list[Operation]:
    """A thread from elsewhere, different in what the list shows: comments (one retracted by
    its author), a retitle, a close; and a URL and a site for some."""
    start = 1_000_000 * (index + 1)
    thread = make_operation(
        OWNER,
        ThreadPayload(
            title=f"Thread {index}",
            url=f"https://blog.example/{index}" if index % 2 else None,
            site="blog.example" if index % 3 == 0 else None,
        ),
        timestamp_ms=start,
    )
    ops = [thread]
    for n in range(index + 1):
        ops.append(
            make_operation(
                READER,
                CommentPayload(body=f"comment {n} on {index}"),
                timestamp_ms=start + 10 + n,
                thread=thread.id,
                refs=(thread.id,),
                deps=(ops[-1].id,),
            )
        )
    if index % 2 == 0:
        ops.append(
            make_operation(
                READER,
                RetractPayload(),
                timestamp_ms=start + 100,
                thread=thread.id,
                refs=(ops[1].id,),
                deps=(ops[-1].id,),
            )
        )
    if index % 3 == 1:
        ops.append(
            make_operation(
                OWNER,
                ModeratePayload(action=ModAction.RETITLE, reason=f"Better title {index}"),
                timestamp_ms=start + 200,
                thread=thread.id,
                refs=(thread.id,),
                deps=(ops[-1].id,),
            )
        )
    if index % 4 == 3:
        ops.append(
            make_operation(
                OWNER,
                ModeratePayload(action=ModAction.CLOSE),
                timestamp_ms=start + 300,
                thread=thread.id,
                refs=(thread.id,),
                deps=(ops[-1].id,),
            )
        )
    return ops


def _expected(node: Node) -> list[ThreadSummary]:
    """The thread list as a replica holding every stored operation in memory makes it."""
    everything = Replica()
    everything.merge(load_stored_operation(raw) for raw, _ in node.store.iter_operations())
    names = everything.names()
    summaries = []
    for state in everything.threads.values():
        listing = state.listing()
        summaries.append(
            ThreadSummary(
                id=listing.id,
                title=listing.title,
                url=listing.url,
                site=listing.site,
                owner=listing.owner,
                owner_name=names.get(listing.owner),
                comment_count=listing.comment_count,
                last_activity_ms=listing.last_activity_ms,
                closed=listing.closed,
                timestamp_ms=listing.timestamp_ms,
            )
        )
    summaries.sort(key=lambda s: (s.last_activity_ms, s.id), reverse=True)
    return summaries


async def _fill(data_dir: Path, clock: FakeClock) -> list[list[Operation]]:
    """Eight threads from elsewhere in one ingest, then a local comment, a reply and a
    retraction of one's own in some, through a cache too small to keep any thread."""
    threads = [_thread(i) for i in range(8)]
    async with open_node(data_dir, create_identity=True, clock=clock, cache_operations=1) as node:
        await node.ingest([op.encoded for ops in threads for op in ops])
        mine = await node.comment(threads[5][0].id, "mine, then taken back")
        clock.advance()
        await node.reply(threads[2][1].id, "a reply of mine")
        clock.advance()
        await node.retract(mine.id)
        clock.advance()
        await node.create_thread("A thread of my own", url="https://blog.example/mine")
    return threads


@pytest.mark.trio
async def test_listing_a_store_larger_than_memory_reads_the_rows_and_loads_no_thread(
    data_dir: Path, clock: FakeClock
) -> None:
    await _fill(data_dir, clock)
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        loads = count_loads(node)
        listed = node.threads()
        assert loads == []
        assert listed == _expected(node)
        assert len(listed) == 9
        # What the rows say is what the states say, once loaded.
        for summary in listed:
            assert node.thread_summary(summary.id) == summary
        assert [s for s in listed if s.closed]
        assert [s for s in listed if s.title.startswith("Better title")]
        assert [s.id for s in node.threads(url="https://BLOG.example/mine")] == [
            s.id for s in listed if s.url == "https://blog.example/mine"
        ]


@pytest.mark.trio
async def test_a_server_reads_the_same_list_with_the_rows_read_off_the_loop(
    data_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Node.read_threads`: what `threads` lists, the store's rows read in a worker thread, and
    with threads in memory (one with a comment not yet listed by the store's row) as well."""
    await _fill(data_dir, clock)
    monkeypatch.setattr(node_module, "_THREADS_LISTED_INLINE", 0)  # off the loop, however few
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        readers: list[int] = []
        read_rows = node.store.thread_listings

        def recording() -> dict[bytes, ThreadListing]:
            readers.append(threading.get_ident())
            return read_rows()

        node.store.thread_listings = recording  # type: ignore[method-assign]
        assert await node.read_threads() == node.threads() == _expected(node)
        assert len(readers) == 2
        assert readers[0] != threading.get_ident() == readers[1]
        url = "https://BLOG.example/mine"
        assert await node.read_threads(url=url) == node.threads(url=url) != []
        first = node.threads()[-1]
        clock.advance()  # after every thread's last activity, so it leads the list
        await node.comment(first.id, "news")
        assert await node.read_threads() == node.threads() == _expected(node)
        assert (await node.read_threads())[0].id == first.id


@pytest.mark.trio
async def test_missing_and_stale_rows_are_listed_from_the_operations_and_written_again(
    data_dir: Path, clock: FakeClock
) -> None:
    threads = await _fill(data_dir, clock)
    gone, stale = threads[1][0].id, threads[6][0].id
    with sqlite3.connect(database_path(data_dir)) as connection:
        # A store from before listings lacks the row; one written ahead of a commit that was
        # then lost counts an operation the store does not hold.
        connection.execute("DELETE FROM thread_listings WHERE thread = ?", (gone,))
        connection.execute(
            "UPDATE thread_listings SET operations = operations + 1, comments = 99"
            " WHERE thread = ?",
            (stale,),
        )
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        loads = count_loads(node)
        assert node.threads() == _expected(node)
        assert sorted(loads) == sorted([gone, stale])
        await node.store.write(WriteBatch())  # the rows written again are queued before this
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        loads = count_loads(node)
        assert node.threads() == _expected(node)
        assert loads == []


@pytest.mark.trio
async def test_a_store_emptied_of_listings_lists_the_same(data_dir: Path, clock: FakeClock) -> None:
    """`p2pc repair` rebuilds the views and empties ``thread_listings`` (`store.views` rule 3);
    the list is then made from the operations, once."""
    await _fill(data_dir, clock)
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        before = node.threads()
        await node.rebuild_views()
        loads = count_loads(node)
        assert node.threads() == before
        assert len(set(loads)) == len(before)
        await node.store.write(WriteBatch())  # the rows written again are queued before this
        loads.clear()
        assert node.threads() == before
        assert loads == []


@pytest.mark.trio
async def test_missing_listings_are_made_in_the_background_off_the_event_loop(
    data_dir: Path, clock: FakeClock
) -> None:
    """`Node.make_missing_listings` (the daemon runs it once after open): the threads without a
    current row are read in worker threads and their rows written, so the list loads nothing."""
    threads = await _fill(data_dir, clock)
    with sqlite3.connect(database_path(data_dir)) as connection:
        connection.execute("DELETE FROM thread_listings")
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        node.thread_view(threads[3][0].id)  # one in memory already: listed from its state
        loop_thread = threading.get_ident()
        loads = count_loads(node)
        readers = loads.readers
        assert await node.make_missing_listings() == 9
        assert len(readers) == 8
        assert loop_thread not in readers
        await node.store.write(WriteBatch())
        assert await node.make_missing_listings() == 0
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        loads = count_loads(node)
        assert node.threads() == _expected(node)
        assert loads == []


@pytest.mark.trio
async def test_exporting_everything_a_piece_at_a_time_is_the_export_in_bounded_memory(
    data_dir: Path, clock: FakeClock
) -> None:
    """`Node.export_pieces`: the operations and order of `export_operations(None)` (profiles,
    threads by their thread operation, what is pending), threads read off the event loop and
    let go after each piece."""
    threads = await _fill(data_dir, clock)
    waiting = make_operation(
        READER,
        CommentPayload(body="waits for what never came"),
        timestamp_ms=5,
        thread=threads[0][0].id,
        refs=(b"\x09" * 32,),
        deps=(b"\x09" * 32,),
    )
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        await node.set_profile("The node")
        await node.ingest([waiting.encoded])
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        loop_thread = threading.get_ident()
        loads = count_loads(node)
        readers = loads.readers
        pieces = []
        largest = max(len(ops) for ops in threads) + 3  # a local reply, retraction...
        async for piece in node.export_pieces():
            pieces.append(piece)
            assert node.replica._cached_ops <= largest  # the last piece's threads let go
        assert readers
        assert loop_thread not in readers
        whole = node.export_operations(None)
        assert [raw for piece in pieces for raw in piece] == whole
        assert waiting.encoded == whole[-1]
        assert len(whole) == node.statistics().operations + node.statistics().pending


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.randoms(use_true_random=False), calls=st.integers(1, 6))
def test_listings_kept_through_any_arrival_order_are_what_the_states_say(
    tmp_path_factory: pytest.TempPathFactory, order: random.Random, calls: int
) -> None:
    """Operations of several threads arriving shuffled (dependents before what they need: they
    wait, then apply) over several ingest calls, through a cache that keeps no thread: the rows
    the commits wrote list every thread as a replica holding everything makes it."""
    ops = [op for index in range(5) for op in _thread(index)]
    order.shuffle(ops)
    data_dir = tmp_path_factory.mktemp("shuffled") / "data"
    size = -(-len(ops) // calls)

    async def run() -> None:
        async with open_node(data_dir, create_identity=True, cache_operations=1) as node:
            for offset in range(0, len(ops), size):
                await node.ingest([op.encoded for op in ops[offset : offset + size]])
        async with open_node(data_dir, cache_operations=1) as node:
            loads = count_loads(node)
            assert node.threads() == _expected(node)
            assert loads == []

    trio.run(run)
