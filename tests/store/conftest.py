"""Fixtures for store tests: real SQLite files in tmp_path and signed operations to put in them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import CommentPayload, Operation, ThreadPayload, make_operation
from p2pcomments.store.op_store import OpStore

AUTHOR = SigningKey(b"\x03" * 32)


def thread_with_comments(count: int, *, start_ms: int = 1_000, title: str = "T") -> list[Operation]:
    """A thread and ``count`` comments chained by causal deps, timestamps ascending."""
    thread = make_operation(AUTHOR, ThreadPayload(title=title), timestamp_ms=start_ms)
    ops = [thread]
    for index in range(count):
        ops.append(
            make_operation(
                AUTHOR,
                CommentPayload(body=f"comment {index}"),
                timestamp_ms=start_ms + 1 + index,
                thread=thread.id,
                refs=(thread.id,),
                deps=(ops[-1].id,),
            )
        )
    return ops


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "operations.sqlite3"


@pytest.fixture
def open_store(db_path: Path) -> Iterator[Callable[[], OpStore]]:
    """Opens the store at ``db_path`` (several times if asked); closes whatever is left open."""
    opened: list[OpStore] = []

    def opener() -> OpStore:
        store = OpStore.open(db_path)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()
