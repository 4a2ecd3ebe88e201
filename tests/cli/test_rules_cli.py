"""``p2pc`` for the rules of SPEC §11, offline (the data dir opened directly) and through a
daemon: bans, approvals, modes, reply gates, difficulty, reports, the queue, mutes."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from api.processes import ok, ok_json, run_p2pc, running_daemon

pytestmark = pytest.mark.network


def _key(n: int) -> str:
    from p2pcomments.core.textform import TextKind, format_id

    return format_id(TextKind.KEY, bytes([n]) * 32)


def test_rules_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ok(home, "init")
    thread = ok(home, "thread", "new", "--title", "rules")
    stranger = _key(7)
    ban = ok_json(home, "ban", stranger, "--thread", thread, "--reason", "spam")
    assert ban["action"] == "ban"
    assert ban["value"] == 0
    assert ok_json(home, "mode", "pre-moderated", "--thread", thread)["value"] == 1
    assert ok_json(home, "replies", "nobody-new", "--thread", thread)["value"] == 2
    assert ok_json(home, "difficulty", "10", "--thread", thread)["value"] == 10
    approved = ok_json(home, "approve", _key(8), "--thread", thread)
    assert approved["action"] == "approve-author"
    rules = ok_json(home, "rules", thread)
    assert rules["difficulty"] == 10
    assert rules["thread"]["mode"] == "pre-moderated"
    assert rules["thread"]["replies"] == "nobody-new"
    assert [b["key"] for b in rules["thread"]["bans"]] == [stranger]
    text = ok(home, "rules", thread)
    assert f"banned {stranger}: spam" in text
    assert "mode pre-moderated" in text
    assert ok(home, "queue") == "nothing waits for a moderator"
    comment = ok(home, "comment", thread, "--body", "mine")
    report = ok_json(home, "report", comment, "looks odd")
    assert report["action"] == "report"
    assert report["subject"] == comment
    reported = ok_json(home, "reports")["reported"]
    assert [r["reason"] for r in reported[0]["reports"]] == ["looks odd"]
    assert ok_json(home, "mute", stranger)["keys"] == [stranger]
    assert ok(home, "mutes") == f"muted {stranger}"
    assert ok_json(home, "unmute", stranger)["keys"] == []
    site = ok_json(home, "ban", _key(9), "--site", "blog.example.org")
    assert site["action"] == "ban"
    # usage errors say what is wrong, with exit code 2
    missing = run_p2pc(home, "ban", stranger)
    assert missing.returncode == 2
    assert "--thread" in missing.stderr
    bad = run_p2pc(home, "difficulty", "65", "--thread", thread)
    assert bad.returncode == 1
    assert "bits must be in [0, 64]" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_rules_through_a_daemon(tmp_path: Path) -> None:
    home = tmp_path / "daemon-home"
    ok(home, "init")
    with running_daemon(home, tmp_path / "logs") as process:
        thread = ok(home, "thread", "new", "--title", "rules")
        assert ok_json(home, "difficulty", "8", "--thread", thread)["value"] == 8
        assert ok_json(home, "rules", thread)["difficulty"] == 8
        mine = run_p2pc(home, "comment", thread, "--body", "the owner pays nothing")
        assert mine.returncode == 0, mine.stderr
        assert "mining" not in mine.stderr
        assert process.stop(signal.SIGTERM) == 0, process.stderr


def test_a_reader_who_must_pay_mines_with_a_progress_line(tmp_path: Path) -> None:
    owner, reader = tmp_path / "owner", tmp_path / "reader"
    ok(owner, "init")
    ok(reader, "init")
    thread = ok(owner, "thread", "new", "--title", "pay to post")
    ok(owner, "difficulty", "16", "--thread", thread)  # 1 in 65,536 ids pay it by chance
    bundle = tmp_path / "thread.bundle"
    ok(owner, "export", thread, "-o", str(bundle))
    ok(reader, "import", str(bundle))
    offline = run_p2pc(reader, "comment", thread, "--body", "paid offline")
    assert offline.returncode == 0, offline.stderr
    assert "mining proof of work" in offline.stderr
    assert "16 bits" in offline.stderr
    with running_daemon(reader, tmp_path / "logs") as process:
        online = run_p2pc(reader, "comment", thread, "--body", "paid by the daemon")
        assert online.returncode == 0, online.stderr
        assert "the daemon is mining a proof of work of 16 bits" in online.stderr
        assert process.stop(signal.SIGTERM) == 0, process.stderr
