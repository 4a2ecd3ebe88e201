"""p2pcomments.atomic_file: a file appears whole with its mode, or not at all."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from p2pcomments.atomic_file import write_atomically, write_json_atomically


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_replaces_with_mode_0600_by_default(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _leftovers(tmp_path) == []


def test_another_mode_and_a_synced_directory(tmp_path: Path) -> None:
    path = tmp_path / "public"
    write_atomically(path, b"x", mode=0o644, sync_directory=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_without_replace_an_existing_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        write_atomically(path, b"ours", replace=False)
    assert path.read_bytes() == b"theirs"
    assert _leftovers(tmp_path) == []
    fresh = tmp_path / "fresh"
    write_atomically(fresh, b"ours", replace=False)
    assert fresh.read_bytes() == b"ours"


def test_a_failed_write_leaves_no_temporary_and_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomically(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_json_forms(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    write_json_atomically(path, {"b": 1, "a": "é"})
    text = path.read_text(encoding="ascii")
    assert text == json.dumps({"a": "é", "b": 1}, indent=1) + "\n"
    write_json_atomically(path, {"b": 1, "a": 2}, indent=2, sort_keys=False, newline=False)
    assert path.read_text(encoding="ascii") == json.dumps({"b": 1, "a": 2}, indent=2)
