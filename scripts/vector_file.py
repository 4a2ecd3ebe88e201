"""The `--check` / write command line shared by the vector generators next to this file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(output: Path, render: Callable[[], str], *, description: str) -> int:
    """Write ``render()`` to ``output``, or with ``--check`` compare it with what is there (exit
    status 1 when it differs, so CI notices vectors that no longer match the code)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not output.exists() or output.read_text(encoding="utf-8") != text:
            print(f"{output} is out of date: run {Path(sys.argv[0]).name}", file=sys.stderr)
            return 1
        print(f"{output.name} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0
