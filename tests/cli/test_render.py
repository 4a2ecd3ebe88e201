"""What the CLI prints, from the API's JSON forms, in process (time is an argument)."""

from __future__ import annotations

from typing import Any

import pytest

from p2pcomments.cli.render import relative_time, render_change, render_thread, render_threads

NOW = 1_700_000_000_000
MINUTE = 60_000
KEY = "key_" + "a" * 56
OTHER = "key_" + "b" * 56


@pytest.mark.parametrize(
    ("ago_ms", "expected"),
    [
        (0, "just now"),
        (30_000, "just now"),
        (-30_000, "just now"),
        (50_000, "1 min ago"),
        (3 * MINUTE, "3 min ago"),
        (59 * MINUTE, "59 min ago"),
        (60 * MINUTE, "1 h ago"),
        (23 * 60 * MINUTE, "23 h ago"),
        (24 * 60 * MINUTE, "1 day ago"),
        (3 * 24 * 60 * MINUTE, "3 days ago"),
        (90 * 24 * 60 * MINUTE, "2023-08-16"),
        (-10 * MINUTE, "2023-11-14 22:23 UTC"),
    ],
)
def test_relative_time(ago_ms: int, expected: str) -> None:
    assert relative_time(NOW - ago_ms, NOW) == expected


def _comment(**fields: Any) -> dict[str, Any]:
    comment: dict[str, Any] = {
        "id": "cmt_" + "c" * 56,
        "author": KEY,
        "author_name": "Alice",
        "depth": 0,
        "timestamp_ms": NOW - 3 * MINUTE,
        "body": "hello",
        "edited": False,
        "retracted": False,
        "hidden": False,
        "after_close": False,
        "parent_edited_after": False,
        "reactions": [],
    }
    comment.update(fields)
    return comment


def _thread(*comments: dict[str, Any], closed: bool = False) -> dict[str, Any]:
    return {
        "id": "thr_" + "t" * 56,
        "title": "A title",
        "url": "https://example.org/p",
        "owner": KEY,
        "owner_name": None,
        "timestamp_ms": NOW - 2 * 60 * MINUTE,
        "closed": closed,
        "comment_count": len(comments),
        "comments": list(comments),
    }


def test_a_thread_is_an_indented_tree_with_markers() -> None:
    text = render_thread(
        _thread(
            _comment(edited=True, reactions=[{"reaction": "👍", "count": 2}]),
            _comment(depth=1, author=OTHER, author_name=None, parent_edited_after=True),
            _comment(depth=2, body=None, retracted=True),
            _comment(depth=1, hidden=True, body="rude"),
            _comment(depth=0, after_close=True, body="late"),
            closed=True,
        ),
        now_ms=NOW,
    )
    lines = text.splitlines()
    assert lines[0] == "A title [closed]"
    assert lines[1] == "https://example.org/p · by key_aaaaaaaa · 2 h ago · 5 comments"
    assert lines[2].startswith("thr_")
    assert f"Alice · 3 min ago · cmt_{'c' * 56} [edited]" in lines
    assert "  hello" in lines
    assert "  👍 2" in lines
    assert f"  key_bbbbbbbb · 3 min ago · cmt_{'c' * 56} [parent edited after]" in lines
    assert any(line.startswith("    Alice") and line.endswith("[deleted]") for line in lines)
    assert "      (deleted by its author)" in lines
    assert "rude" not in text
    assert "late" not in text
    assert "[hidden]" in text
    assert "[after close]" in text
    shown = render_thread(_thread(_comment(hidden=True, body="rude")), now_ms=NOW, show_all=True)
    assert "  rude" in shown.splitlines()


def test_deep_threads_stop_indenting() -> None:
    text = render_thread(_thread(_comment(depth=500)), now_ms=NOW)
    head = next(line for line in text.splitlines() if "cmt_" in line)
    assert head.startswith(" " * 32 + "(depth 500) Alice")


def test_empty_things_say_so() -> None:
    assert "No comments yet." in render_thread(_thread(), now_ms=NOW)
    assert render_threads([], now_ms=NOW).startswith("No threads yet")


def test_changes() -> None:
    target = "cmt_" + "c" * 56
    base = {"id": "cmt_" + "d" * 56, "author": KEY, "timestamp_ms": NOW, "target": target}
    comment = {**base, "kind": "comment", "body": "line one\nline two"}
    assert render_change({"operation": comment, "author_name": "Al"}, now_ms=NOW).splitlines() == [
        f"Al replied to {target} · just now · {base['id']}",
        "  line one",
        "  line two",
    ]
    hide = {**base, "kind": "moderate", "action": "hide", "reason": "spam", "subject": None}
    assert render_change({"operation": hide}, now_ms=NOW) == (
        f"key_aaaaaaaa hid {target} (spam) · just now"
    )
    assert "skipped" in render_change({"lagged": True, "operation": None}, now_ms=NOW)
    react = {**base, "kind": "react", "reaction": ""}
    assert "withdrew" in render_change({"operation": react}, now_ms=NOW)
