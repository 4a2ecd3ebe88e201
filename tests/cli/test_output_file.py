"""`cli.arguments.output_file` (rule 3): output written as it is made appears whole or not at
all, and a file that can't be written is a `UsageError` naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pcomments.cli.arguments import UsageError, output_file


def test_the_file_appears_once_complete(tmp_path: Path) -> None:
    target = tmp_path / "all.jsonl"
    target.write_bytes(b"the previous export\n")
    with output_file(str(target)) as sink:
        sink.write(b"first\n")
        assert target.read_bytes() == b"the previous export\n"  # not yet replaced
        sink.write(b"second\n")
    assert target.read_bytes() == b"first\nsecond\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.jsonl"]


def test_a_failure_midway_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "all.jsonl"
    target.write_bytes(b"the previous export\n")
    with pytest.raises(ConnectionError), output_file(str(target)) as sink:  # noqa: PT012
        sink.write(b"a part\n")
        raise ConnectionError("the daemon went away")  # an OSError, not the file's: as it is
    assert target.read_bytes() == b"the previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.jsonl"]


def test_a_place_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "no such dir" / "out.jsonl"
    with pytest.raises(UsageError, match="cannot write"), output_file(str(missing)):
        pass
