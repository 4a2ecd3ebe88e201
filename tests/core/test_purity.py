"""Invariant 6: core/ imports no I/O library (DESIGN.md §5), nor the layers built on it."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "p2pcomments" / "core"
FORBIDDEN = {"trio", "libp2p", "sqlite3", "socket", "time", "random", "asyncio", "os", "threading"}
# Core decides what is true; the store, the network and the Node only carry it out.
FORBIDDEN_LAYERS = (
    "p2pcomments.store",
    "p2pcomments.net",
    "p2pcomments.node",
    "p2pcomments.api",
    "p2pcomments.cli",
    "p2pcomments.daemon",
)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, in full (``from a.b import c`` names ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    return imported


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io(path: Path) -> None:
    roots = {name.split(".")[0] for name in _imports(path)}
    assert not roots & FORBIDDEN, f"{path.name} imports {sorted(roots & FORBIDDEN)}"


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_layer_above_it(path: Path) -> None:
    above = sorted(
        name
        for name in _imports(path)
        if any(name == layer or name.startswith(layer + ".") for layer in FORBIDDEN_LAYERS)
    )
    assert not above, f"{path.name} imports {above}"


def test_the_layer_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The check above can fail: a module that imports the store is caught, in either form."""
    for source in (
        "from p2pcomments.store.op_store import OpStore\n",
        "from p2pcomments import node\n",
    ):
        module = tmp_path / "leaky.py"
        module.write_text(source, encoding="utf-8")
        with pytest.raises(AssertionError):
            test_core_module_imports_no_layer_above_it(module)
