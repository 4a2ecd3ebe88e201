"""The widget stays within its budget: what a browser with WebCrypto Ed25519 loads is at most
25 kB gzipped (scripts/widget_budget.py --check), and the script finds every module widget.js
imports, so a new module can't escape the count."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import ROOT, WEB


def test_widget_budget() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "widget_budget.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listed = set(re.findall(r"^(\S+\.js)", result.stdout, flags=re.MULTILINE))
    assert "vendor/noble-ed25519.js" in listed
    # Every module the widget can reach is listed (the reader UI's own is not the widget's).
    modules = {p.relative_to(WEB).as_posix() for p in WEB.rglob("*.js")}
    assert modules - listed == {"reader.js"}
