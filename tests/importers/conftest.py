"""Fixtures for importer tests: the shared export files, a node on a real data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from p2pcomments.node import Node, open_node

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "imports"


def fixture(name: str) -> Path:
    path = FIXTURES / name
    assert path.is_file(), f"missing shared fixture {path}"
    return path


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with open_node(tmp_path / "data", create_identity=True) as opened:
        yield opened
