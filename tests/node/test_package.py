"""The public surface: every exported name exists, importing stays light, the example runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import p2pcomments

ROOT = Path(__file__).resolve().parents[2]


def test_every_name_in_all_exists() -> None:
    missing = [name for name in p2pcomments.__all__ if not hasattr(p2pcomments, name)]
    assert missing == []
    assert sorted(p2pcomments.__all__) == p2pcomments.__all__
    for name in ("open_node", "Node", "Operation", "Kind", "ModAction", "ThreadView"):
        assert name in p2pcomments.__all__


def test_importing_the_package_loads_no_networking() -> None:
    code = (
        "import sys, p2pcomments\n"
        "from p2pcomments import open_node, Node, ThreadView\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'libp2p', 'multiaddr'}"
        " or m.startswith('p2pcomments.net'))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_embedding_example_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "embed.py")],
        env={**os.environ, "P2PC_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Demo: First!" in result.stdout
    assert "  Demo: Welcome." in result.stdout
    assert (tmp_path / "author.key").exists()
