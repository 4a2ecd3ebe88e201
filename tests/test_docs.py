"""The README names only commands that exist, and the two set-up commands it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
P2PC = Path(sys.executable).with_name("p2pc")


def _subcommands() -> set[str]:
    result = subprocess.run(
        [str(P2PC), "--help"], capture_output=True, text=True, check=True, timeout=60
    )
    return set(re.findall(r"^    (\w[\w-]*)\s", result.stdout, flags=re.MULTILINE))


def test_every_command_the_readme_names_exists() -> None:
    named = set(re.findall(r"\bp2pc (?:--data-dir \S+ )?(\w[\w-]*)", README))
    named |= set(re.findall(r"`(\w[\w-]*)(?: [\w|-]+)?`", README.split("Other commands:")[1][:600]))
    assert {"init", "show", "threads", "sync"} <= named  # the patterns still find the commands
    missing = named - _subcommands()
    assert not missing, f"README names commands p2pc lacks: {sorted(missing)}"


def test_first_screen_gives_the_two_setup_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:25])
    assert "./scripts/run" in first_screen
    assert "./scripts/test" in first_screen
    assert (ROOT / "scripts" / "run").stat().st_mode & 0o111
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
