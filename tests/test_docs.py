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


def _help(*args: str) -> str:
    result = subprocess.run(
        [str(P2PC), *args, "--help"], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout


def test_the_blog_section_shows_the_gateway_and_its_options_exist() -> None:
    section = README.split("## Comments under a blog post")[1].split("\n## ")[0]
    assert "p2pc daemon --public 0.0.0.0:8080" in section
    assert 'data-p2pc-owner="KEY"' in section
    assert "/embed.js" in section
    daemon_help = _help("daemon")
    for option in set(re.findall(r"(--public[\w-]*)", section)):
        assert option in daemon_help, option
    assert "for-url" in _help("thread")
    for option in set(re.findall(r"for-url \S+ (--\w+)", section)):
        assert option in _help("thread", "for-url"), option
    assert "retitle" in _help("moderate")


def test_the_openapi_document_describes_pages_and_submission() -> None:
    from p2pcomments.api.openapi import openapi_document

    paths = openapi_document()["paths"]
    page = paths["/api/page"]["get"]
    parameters = {p["name"]: p for p in page["parameters"]}
    assert parameters["url"]["required"]
    assert parameters["owner"]["required"]
    assert parameters["alias"]["schema"]["type"] == "array"
    submit = paths["/api/ops"]["post"]
    assert set(submit["requestBody"]["content"]) == {
        "application/vnd.p2pcomments.op",
        "application/vnd.p2pcomments.ops",
    }
    assert {"413", "415", "422", "429"} <= set(submit["responses"])
    assert "get" in paths["/api/page/events"]
