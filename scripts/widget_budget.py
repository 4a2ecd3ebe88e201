"""What the blog widget costs a reader to load: each file's raw and gzipped size, and the total
against the 25 kB gzipped budget (issue 9), measured side by side in the same run.

The widget loads embed.js (a classic script), then widget.js and the modules it imports (found by
following the import statements, so a new module is counted without editing this script). The
Ed25519 fallback (vendor/noble-ed25519.js) is loaded only where WebCrypto has no Ed25519; it is
listed apart, with a second total that includes it. Modules loaded with a dynamic import() only
where a page needs them (pow.js where a thread asks for proof of work, replies.js for a reader
with comments on the page) are listed apart too, with the total of a reader who loads them all.

Usage: .venv/bin/python scripts/widget_budget.py [--check]
(--check: exit 1 when what a browser with WebCrypto Ed25519 loads is over the budget)
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parent.parent / "p2pcomments" / "web"
BUDGET_BYTES = 25 * 1000  # "25 kB", as Isso's ~20 kB is counted
ENTRY = "widget.js"
LOADER = "embed.js"
FALLBACK = "vendor/noble-ed25519.js"
_IMPORT = re.compile(
    r"""(?:^|\n)\s*import\s[^;]*?from\s+["'](\./[^"']+)["']"""  # import … from "./x.js"
    r"""|import\(\s*["'](\./[^"']+)["']\s*\)"""  # import("./x.js")
)


def imported(name: str) -> list[tuple[str, bool]]:
    """The modules ``name`` imports, statically or with a literal dynamic import() (True)."""
    text = (WEB / name).read_text(encoding="utf-8")
    base = Path(name).parent
    found = []
    for static, dynamic in _IMPORT.findall(text):
        found.append(((base / (static or dynamic)).as_posix().removeprefix("./"), not static))
    return found


def widget_files() -> tuple[list[str], list[str], list[str]]:
    """(eager files, the fallback, modules loaded on demand): everything reachable from the
    loader and widget.js; what only an on-demand module imports is on demand too."""
    eager, lazy, demand = [LOADER, ENTRY], list[str](), list[str]()
    todo = [(ENTRY, False)]
    while todo:
        name, late = todo.pop()
        for module, dynamic in imported(name):
            if module == FALLBACK:
                lazy += [] if module in lazy else [module]
                continue
            target = demand if late or dynamic else eager
            if module in eager or module in target:
                continue
            if target is eager and module in demand:
                demand.remove(module)
            target.append(module)
            todo.append((module, target is demand))
    # A module reached statically from the eager set is eager, whatever else loads it late.
    return eager, lazy, [m for m in demand if m not in eager]


def gzipped(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when over the budget")
    args = parser.parse_args()
    eager, lazy, demand = widget_files()
    print(f"{'file':32} {'raw B':>8} {'gzip B':>8}")
    totals = {"eager": [0, 0], "lazy": [0, 0], "demand": [0, 0]}
    for group, files in (("eager", eager), ("lazy", lazy), ("demand", demand)):
        for name in files:
            data = (WEB / name).read_bytes()
            raw, packed = len(data), gzipped(data)
            totals[group][0] += raw
            totals[group][1] += packed
            label = name + {"eager": "", "lazy": "  (only without WebCrypto Ed25519)"}.get(
                group, "  (on demand)"
            )
            print(f"{label:32} {raw:8} {packed:8}")
    eager_gz = totals["eager"][1]
    all_gz = eager_gz + totals["lazy"][1]
    print(f"budget: {BUDGET_BYTES} B gzipped")
    print(
        f"total with WebCrypto Ed25519:   {eager_gz:6} B gzipped "
        f"({totals['eager'][0]} B raw) = {eager_gz / BUDGET_BYTES:.2f} of the budget"
    )
    all_raw = totals["eager"][0] + totals["lazy"][0]
    print(
        f"total with the noble fallback: {all_gz:6} B gzipped "
        f"({all_raw} B raw) = {all_gz / BUDGET_BYTES:.2f} of the budget"
    )
    demand_gz = eager_gz + totals["demand"][1]
    print(
        f"with every on-demand module:   {demand_gz:6} B gzipped "
        f"= {demand_gz / BUDGET_BYTES:.2f} of the budget (WebCrypto Ed25519)"
    )
    print("(each file gzipped alone at level 9, as a server sends it)")
    return 1 if args.check and eager_gz > BUDGET_BYTES else 0


if __name__ == "__main__":
    sys.exit(main())
