"""Going through many threads a group at a time (`node.thread_walk`): every thread asked for, once,
in the order asked, whatever their sizes; the groups sized by the operations of the threads
before (many small threads: bigger groups; huge ones: one per decode thread), and memory let
go after each group."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from p2pcomments.core.thread_state import ThreadState
from p2pcomments.node import open_node, thread_walk
from tests.store.conftest import thread_with_comments


@pytest.mark.trio
async def test_groups_follow_the_sizes_and_every_thread_comes_once_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thread_walk, "_OPERATIONS_AT_ONCE", 40)
    monkeypatch.setattr(thread_walk, "_MOST_AT_ONCE", 10)
    # 20 threads of one operation, then 12 of 60, then 20 of one again.
    sizes = [0] * 20 + [59] * 12 + [0] * 20
    threads = [
        thread_with_comments(comments, start_ms=1_000 * (index + 1), title=f"T{index}")
        for index, comments in enumerate(sizes)
    ]
    data_dir = tmp_path / "data"
    async with open_node(data_dir, create_identity=True) as node:
        await node.ingest([op.encoded for ops in threads for op in ops])
    wanted = [ops[0].id for ops in threads]
    wanted.reverse()  # an order that is not the store's

    async with open_node(data_dir, cache_operations=1, decode_threads=2) as node:
        decode_threads = 2
        groups: list[list[tuple[bytes, int]]] = []

        def make(state: ThreadState) -> tuple[bytes, int]:
            return state.id, len(state.ops)

        async for made in node.each_thread(wanted, make):
            groups.append(made)
            # Let go after each group: what stays cached is the cache's bound, at most a
            # thread of the last group (the cache keeps one thread beyond its bound).
            assert node.replica._cached_ops <= 60

    assert [thread_id for group in groups for thread_id, _ in group] == wanted
    assert len(groups[0]) == 8  # before any is measured
    shown = 0
    for before, group in itertools.pairwise(groups):
        shown += len(before)
        if all(size == 1 for _, size in before):  # 40 operations of small threads: 10 at most
            assert len(group) == min(10, len(wanted) - shown)
        if all(size == 60 for _, size in before):  # huge ones: one per decode thread
            assert len(group) == decode_threads
    huge = [len(group) for group in groups if all(size == 60 for _, size in group)]
    assert huge.count(decode_threads) >= 2
