"""Fixtures for Node tests: a data dir per test, a clock the test controls, a second author, and
a record of the threads a node reads from its store."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import Operation
from p2pcomments.node import Node, open_node


class FakeClock:
    """Milliseconds that move only when the test says so."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int = 1) -> None:
        self.now += ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def node(data_dir: Path, clock: FakeClock) -> AsyncIterator[Node]:
    async with open_node(data_dir, create_identity=True, clock=clock) as opened:
        yield opened


@pytest.fixture
def stranger() -> SigningKey:
    """Another author, for operations that arrive from elsewhere."""
    return SigningKey(b"\x07" * 32)


class Loads(list[bytes]):
    """The ids of the threads a node read from its store, in order; ``readers``: the
    identities of the OS threads that read each."""

    def __init__(self) -> None:
        super().__init__()
        self.readers: list[int] = []


def count_loads(node: Node) -> Loads:
    """The threads ``node`` reads from its store from now on, as it reads them."""
    loads = Loads()
    read = node._source.thread_operations

    def counting(thread_id: bytes, *, checked: bytes | None = None) -> list[Operation]:
        loads.append(thread_id)
        loads.readers.append(threading.get_ident())
        return list(read(thread_id, checked=checked))

    node._source.thread_operations = counting  # type: ignore[method-assign]
    return loads
