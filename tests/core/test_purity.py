"""Invariant 6: core/ imports no I/O library (DESIGN.md §5)."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "p2pcomments" / "core"
FORBIDDEN = {"trio", "libp2p", "sqlite3", "socket", "time", "random", "asyncio", "os", "threading"}


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{path.name} imports {sorted(imported & FORBIDDEN)}"
