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


def test_relative_time_of_timestamps_past_what_a_date_holds() -> None:
    """Found by scripts/fuzz_boundaries.py: a timestamp is whatever an author's clock said, up to
    2^63 - 1 ms (year 292278994); showing one raised ValueError. It is shown as the last date."""
    assert relative_time(2**63 - 1, NOW) == "9999-12-31 23:59 UTC"
    assert relative_time(0, NOW) == "1970-01-01"


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
    assert f"Alice · 3 min ago · cmt_{'c' * 8} [edited]" in lines  # the shortest unique prefix
    assert "  hello" in lines
    assert "  👍 2" in lines
    assert f"  key_bbbbbbbb · 3 min ago · cmt_{'c' * 8} [parent edited after]" in lines
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
        f"Al replied to {target[:12]} · just now · {base['id'][:12]}",
        "  line one",
        "  line two",
    ]
    hide = {**base, "kind": "moderate", "action": "hide", "reason": "spam", "subject": None}
    assert render_change({"operation": hide}, now_ms=NOW) == (
        f"key_aaaaaaaa hid {target[:12]} (spam) · just now"
    )
    assert "skipped" in render_change({"lagged": True, "operation": None}, now_ms=NOW)
    react = {**base, "kind": "react", "reaction": ""}
    assert "withdrew" in render_change({"operation": react}, now_ms=NOW)
    retitle = {**base, "kind": "moderate", "action": "retitle", "reason": "L'été", "subject": None}
    assert render_change({"operation": retitle}, now_ms=NOW) == (
        "key_aaaaaaaa retitled the thread (L'été) · just now"
    )


def _completeness(**fields: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "verified": 57,
        "held": 57,
        "pending": 0,
        "rejected": 0,
        "digest": "3fa2" + "0" * 60,
        "pending_operations": [],
        "rejected_operations": [],
        "rejections_since_ms": NOW - 60 * MINUTE,
    }
    form.update(fields)
    return form


def test_completeness_in_one_line() -> None:
    from p2pcomments.cli.render import describe_completeness

    assert describe_completeness(_completeness()) == (
        "57 of 57 operations verified, none pending, digest 3fa2000000000000…"
    )
    waiting = [
        {"id": "cmt_" + "p" * 56, "kind": "comment", "missing": ["op_" + "m" * 56]},
        {"id": "op_" + "q" * 56, "kind": "edit", "missing": ["op_" + "m" * 56]},
    ]
    line = describe_completeness(
        _completeness(verified=55, pending=2, rejected=1, pending_operations=waiting)
    )
    assert line.startswith(
        "55 of 57 operations verified, 2 pending (waiting for 1 operation not received yet),"
        " 1 rejected, digest 3fa2"
    )
    assert describe_completeness(_completeness(held=1, verified=1), digest_chars=64).endswith(
        "3fa2" + "0" * 60
    )


def test_a_thread_shows_its_completeness_and_what_waits_or_was_refused() -> None:
    waiting = {"id": "cmt_" + "p" * 56, "kind": "comment", "missing": ["op_" + "m" * 56]}
    refused = {
        "id": "op_" + "r" * 56,
        "code": "not-author",
        "message": "only a comment's author may edit it",
        "at_ms": NOW,
    }
    thread = _thread(_comment())
    thread["completeness"] = _completeness(
        verified=2,
        held=3,
        pending=1,
        rejected=1,
        pending_operations=[waiting],
        rejected_operations=[refused],
    )
    lines = render_thread(thread, now_ms=NOW).splitlines()
    assert lines[3].startswith("2 of 3 operations verified, 1 pending")
    assert lines[4] == f"  pending cmt_{'p' * 8} (comment): waits for op_{'m' * 8}"
    assert lines[5] == f"  rejected op_{'r' * 8}: not-author: only a comment's author may edit it"


def test_ids_are_shown_as_shortest_unique_prefixes() -> None:
    a = "cmt_" + "abcdefghij" + "a" * 46
    b = "cmt_" + "abcdefghik" + "a" * 46
    c = "cmt_" + "zzzzzzzz" + "a" * 48
    text = render_thread(_thread(_comment(id=a), _comment(id=b), _comment(id=c)), now_ms=NOW)
    heads = [line for line in text.splitlines() if "3 min ago" in line]
    assert [head.rsplit(" · ", 1)[1] for head in heads] == [
        "cmt_abcdefghij",
        "cmt_abcdefghik",
        "cmt_zzzzzzzz",
    ]
    listing = render_threads(
        [
            {
                "id": "thr_" + "k" * 56,
                "title": "one",
                "url": None,
                "comment_count": 0,
                "last_activity_ms": NOW,
                "closed": False,
            },
        ],
        now_ms=NOW,
    )
    assert listing.startswith(f"thr_{'k' * 8}  ")


def test_history_shows_every_version_and_the_version_a_reply_answered() -> None:
    parent_id = "cmt_" + "c" * 56
    edit_id = "op_" + "e" * 56
    parent = _comment(
        id=parent_id,
        body="I like dogs",
        edited=True,
        original={"id": parent_id, "timestamp_ms": NOW - 10 * MINUTE, "body": "I like cats"},
        edits=[{"id": edit_id, "timestamp_ms": NOW - 5 * MINUTE, "body": "I like dogs"}],
    )
    reply = _comment(
        id="cmt_" + "r" * 56,
        depth=1,
        body="me too",
        parent_edited_after=True,
        original={"id": "cmt_" + "r" * 56, "timestamp_ms": NOW - 8 * MINUTE, "body": "me too"},
        edits=[],
        answered_version=parent["original"],
    )
    plain = render_thread(_thread(parent, reply), now_ms=NOW)
    assert "I like cats" not in plain
    lines = render_thread(_thread(parent, reply), now_ms=NOW, history=True).splitlines()
    start = lines.index("  history (2 versions, oldest first):")
    assert lines[start + 1 : start + 5] == [
        "  [1] 10 min ago · original",
        "    I like cats",
        f"  [2] 5 min ago · op_{'e' * 8} (shown)",
        "    I like dogs",
    ]
    answered = lines.index("    answered this version of its parent (10 min ago, original):")
    assert lines[answered + 1] == "    > I like cats"
    hidden = _comment(hidden=True, edited=True, original=parent["original"], edits=parent["edits"])
    assert "I like cats" not in render_thread(_thread(hidden), now_ms=NOW, history=True)
