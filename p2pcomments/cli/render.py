"""Text the CLI prints, made from the API's JSON forms (`p2pcomments.api.representations`), so
output is the same whether a daemon answered or the store was opened directly.

Time is an argument (``now_ms``): rendering is pure and testable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "relative_time",
    "render_change",
    "render_outcomes",
    "render_thread",
    "render_threads",
    "short",
]

_MAX_INDENT_DEPTH: Final = 16
_INDENT: Final = "  "

JSON = dict[str, Any]


def short(key_or_id: str) -> str:
    """``key_abcdefgh``: enough to tell people apart on screen."""
    return key_or_id[:12]


def relative_time(timestamp_ms: int, now_ms: int) -> str:
    """Say "just now", "3 min ago", "5 h ago", "2 days ago", else the date."""
    seconds = (now_ms - timestamp_ms) / 1000
    if -60 < seconds < 45:
        return "just now"
    if seconds < 0:
        return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min ago"
    hours = round(seconds / 3600)
    if hours < 24:
        return f"{hours} h ago"
    days = round(seconds / 86400)
    if days < 30:
        return "1 day ago" if days == 1 else f"{days} days ago"
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _who(name: str | None, key: str, me: str | None) -> str:
    label = name if name else short(key)
    return f"{label} (you)" if key == me else label


def _markers(comment: JSON) -> list[str]:
    markers = []
    if comment["edited"] and not comment["retracted"]:
        markers.append("[edited]")
    if comment["retracted"]:
        markers.append("[deleted]")
    if comment["hidden"]:
        markers.append("[hidden]")
    if comment["after_close"]:
        markers.append("[after close]")
    if comment["parent_edited_after"]:
        markers.append("[parent edited after]")
    return markers


def _body_lines(comment: JSON, show_all: bool) -> list[str]:
    if comment["body"] is None:
        return ["(deleted by its author)"]
    if comment["hidden"] and not show_all:
        return ["(hidden by a moderator; --all shows it)"]
    if comment["after_close"] and not show_all:
        return ["(posted after the thread was closed; --all shows it)"]
    return str(comment["body"]).splitlines() or [""]


def render_thread(
    thread: JSON, *, now_ms: int, me: str | None = None, show_all: bool = False
) -> str:
    """A thread as an indented tree: who, when, id and state markers, then the body."""
    title = thread["title"] or thread["url"] or "(untitled)"
    lines = [title + (" [closed]" if thread["closed"] else "")]
    facts = []
    if thread["url"] and thread["url"] != title:
        facts.append(thread["url"])
    facts.append("by " + _who(thread["owner_name"], thread["owner"], me))
    facts.append(relative_time(thread["timestamp_ms"], now_ms))
    count = thread["comment_count"]
    facts.append("1 comment" if count == 1 else f"{count} comments")
    lines.append(" · ".join(facts))
    lines.append(thread["id"])
    for comment in thread["comments"]:
        depth = comment["depth"]
        indent = _INDENT * min(depth, _MAX_INDENT_DEPTH)
        deep = f"(depth {depth}) " if depth > _MAX_INDENT_DEPTH else ""
        head = " · ".join(
            [
                deep + _who(comment["author_name"], comment["author"], me),
                relative_time(comment["timestamp_ms"], now_ms),
                comment["id"],
            ]
        )
        markers = _markers(comment)
        lines.append("")
        lines.append(indent + head + (" " + " ".join(markers) if markers else ""))
        lines.extend(indent + _INDENT + line for line in _body_lines(comment, show_all))
        reactions = "  ".join(f"{r['reaction']} {r['count']}" for r in comment["reactions"])
        if reactions and comment["body"] is not None:
            lines.append(indent + _INDENT + reactions)
    if not thread["comments"]:
        lines.extend(["", "No comments yet."])
    return "\n".join(lines)


def render_threads(threads: list[JSON], *, now_ms: int) -> str:
    if not threads:
        return "No threads yet: `p2pc thread new --title …` starts one."
    lines = []
    for thread in threads:
        title = thread["title"] or thread["url"] or "(untitled)"
        count = thread["comment_count"]
        comments = "1 comment" if count == 1 else f"{count} comments"
        closed = " [closed]" if thread["closed"] else ""
        lines.append(
            f"{thread['id']}  {comments:>12} · "
            f"{relative_time(thread['last_activity_ms'], now_ms):>12} · {title}{closed}"
        )
    return "\n".join(lines)


_ACTION_VERBS: Final = {
    "hide": "hid",
    "unhide": "unhid",
    "close": "closed the thread",
    "reopen": "reopened the thread",
    "add-moderator": "appointed moderator",
    "remove-moderator": "removed moderator",
}


def render_change(change: JSON, *, now_ms: int, me: str | None = None) -> str:
    """One live change (a server-sent event's data) as a line or a few."""
    op = change.get("operation")
    if change.get("lagged") or op is None:
        return "… some changes were skipped (too many at once); `p2pc show` has them all"
    who = _who(change.get("author_name"), op["author"], me)
    when = relative_time(op["timestamp_ms"], now_ms)
    kind = op["kind"]
    target = op.get("target") or ""
    if kind == "comment":
        verb = f"replied to {target}" if target.startswith("cmt_") else "commented"
        head = f"{who} {verb} · {when} · {op['id']}"
        return "\n".join([head, *("  " + line for line in str(op["body"]).splitlines())])
    if kind == "edit":
        return "\n".join(
            [f"{who} edited {target} · {when}", *("  " + line for line in op["body"].splitlines())]
        )
    if kind == "retract":
        return f"{who} deleted {target} · {when}"
    if kind == "react":
        reaction = op["reaction"]
        if not reaction:
            return f"{who} withdrew their reaction to {target} · {when}"
        return f"{who} reacted {reaction} to {target} · {when}"
    if kind == "moderate":
        verb = _ACTION_VERBS.get(op["action"], op["action"])
        subject = f" {short(op['subject'])}" if op.get("subject") else ""
        object_ = f" {target}" if op["action"] in ("hide", "unhide") else ""
        reason = f" ({op['reason']})" if op.get("reason") else ""
        return f"{who} {verb}{subject}{object_}{reason} · {when}"
    if kind == "thread":
        return f"{who} opened thread {op['id']}: {op.get('title') or op.get('url')} · {when}"
    if kind == "profile":
        return f"{short(op['author'])} is now called {op['name']} · {when}"
    return f"{who} {kind} · {when}"


def render_outcomes(result: JSON) -> str:
    lines = [
        f"{result['total']} operations: {result['applied']} applied, "
        f"{result['duplicate']} already here, {result['pending']} waiting for their references, "
        f"{result['rejected']} rejected"
    ]
    lines.extend(f"  rejected {r['id']}: {r['code']}: {r['message']}" for r in result["rejections"])
    return "\n".join(lines)
