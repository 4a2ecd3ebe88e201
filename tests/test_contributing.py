"""CONTRIBUTING.md's map of where things live names only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAP = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "p2pcomments"


def _named_paths() -> set[str]:
    """Every `…/x.py`, `x.py` or `dir/` in backticks (ignoring function and class names)."""
    names = set(re.findall(r"`([\w/]+\.py|[\w/]+/)`", MAP))
    # "`dir/` `a.py`" forms, and "core/x.py" etc. inside the table.
    return {name.removeprefix("p2pcomments/") for name in names}


def test_the_map_names_modules_that_exist() -> None:
    named = _named_paths()
    assert {"core/ops.py", "node/writes.py", "cli/parser.py", "net/node_network.py"} <= named
    missing = sorted(
        name
        for name in named
        if not (PACKAGE / name).exists()
        and not (ROOT / name).exists()
        and not name.startswith("tests/")
    )
    assert not missing, f"CONTRIBUTING.md names modules that do not exist: {missing}"


def test_every_package_directory_is_on_the_map() -> None:
    directories = {
        path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()
    }
    unmapped = sorted(d for d in directories if f"{d}/" not in MAP)
    assert not unmapped, f"CONTRIBUTING.md does not say where {unmapped} fit"
