"""Text the CLI prints, made from the API's JSON forms (`p2pcomments.api.representations`), so
output is the same whether a daemon answered or the store was opened directly.

Time is an argument (``now_ms``): rendering is pure and testable.

Ids are shown as their shortest unique prefix among the ids shown with them (`core.id_prefix`;
any unique prefix is accepted back), except a thread's own id at the head of `render_thread`,
which is what people copy to share a thread. `--json` keeps every id whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from p2pcomments.clock import shown_moment
from p2pcomments.core.id_prefix import MIN_SHOWN, shortest_unique_prefixes

__all__ = [
    "describe_completeness",
    "relative_time",
    "render_change",
    "render_outcomes",
    "render_repair",
    "render_thread",
    "render_threads",
    "short",
]

_MAX_INDENT_DEPTH: Final = 16
_INDENT: Final = "  "
_DIGEST_CHARS: Final = 16
_MAX_DETAILS: Final = 10  # pending or rejected operations listed under a thread's head

JSON = dict[str, Any]


def short(key_or_id: str) -> str:
    """``key_abcdefgh``: enough to tell people apart on screen."""
    return key_or_id[:12]


def _short_ids(ids: Iterable[str]) -> dict[str, str]:
    return shortest_unique_prefixes([i for i in ids if i])


def _alone(text_id: str) -> str:
    """An id shown with no others: the minimum prefix."""
    kind, sep, body = text_id.partition("_")
    return kind + sep + body[:MIN_SHOWN] if sep else text_id


def _count(n: int, what: str) -> str:
    return f"1 {what}" if n == 1 else f"{n} {what}s"


def describe_completeness(completeness: JSON, *, digest_chars: int = _DIGEST_CHARS) -> str:
    """ "57 of 57 operations verified, none pending, digest 3fa2…": a thread's completeness JSON
    (`api.representations.completeness_json`) in one line, for the CLI and the HTML page."""
    parts = [f"{completeness['verified']} of {_count(completeness['held'], 'operation')} verified"]
    pending = completeness["pending"]
    if pending:
        missing = {m for item in completeness["pending_operations"] for m in item["missing"]}
        waits = f" (waiting for {_count(len(missing), 'operation')} not received yet)"
        parts.append(f"{pending} pending" + (waits if missing else ""))
    else:
        parts.append("none pending")
    if completeness["rejected"]:
        parts.append(f"{completeness['rejected']} rejected")
    digest = completeness["digest"]
    parts.append(
        "digest " + (digest[:digest_chars] + "…" if digest_chars < len(digest) else digest)
    )
    return ", ".join(parts)


def _completeness_details(completeness: JSON, short: dict[str, str]) -> list[str]:
    lines = []
    pending = completeness["pending_operations"]
    for item in pending[:_MAX_DETAILS]:
        waits = ", ".join(short.get(m, m) for m in item["missing"])
        lines.append(f"  pending {short[item['id']]} ({item['kind']}): waits for {waits}")
    if len(pending) > _MAX_DETAILS:
        lines.append(f"  … and {len(pending) - _MAX_DETAILS} more pending")
    rejected = completeness["rejected_operations"]
    for item in rejected[-_MAX_DETAILS:]:
        lines.append(f"  rejected {short[item['id']]}: {item['code']}: {item['message']}")
    if completeness["rejected"] > len(rejected[-_MAX_DETAILS:]):
        lines.append(f"  ({completeness['rejected']} rejected in all since the node started)")
    return lines


def relative_time(timestamp_ms: int, now_ms: int) -> str:
    """Say "just now", "3 min ago", "5 h ago", "2 days ago", else the date."""
    seconds = (now_ms - timestamp_ms) / 1000
    if -60 < seconds < 45:
        return "just now"
    if seconds < 0:
        return shown_moment(timestamp_ms).strftime("%Y-%m-%d %H:%M UTC")
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{max(minutes, 1)} min ago"
    hours = round(seconds / 3600)
    if hours < 24:
        return f"{hours} h ago"
    days = round(seconds / 86400)
    if days < 30:
        return "1 day ago" if days == 1 else f"{days} days ago"
    return shown_moment(timestamp_ms).strftime("%Y-%m-%d")


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
    markers += [f"[{reason}]" for reason in comment.get("withheld", ())]  # the rules, SPEC §11
    if comment.get("muted"):
        markers.append("[muted]")
    if comment.get("reports"):
        markers.append(f"[reported {len(comment['reports'])}x]")
    return markers


def _body_visible(comment: JSON, show_all: bool) -> bool:
    if comment["body"] is None:
        return False
    return show_all or not (
        comment["hidden"]
        or comment["after_close"]
        or comment.get("withheld")
        or comment.get("muted")
    )


def _body_lines(comment: JSON, show_all: bool) -> list[str]:
    if comment["body"] is None:
        return ["(deleted by its author)"]
    if comment["hidden"] and not show_all:
        return ["(hidden by a moderator; --all shows it)"]
    if comment["after_close"] and not show_all:
        return ["(posted after the thread was closed; --all shows it)"]
    if comment.get("withheld") and not show_all:
        why = ", ".join(comment["withheld"])
        return [f"(withheld by the thread's rules: {why}; --all shows it)"]
    if comment.get("muted") and not show_all:
        return ["(you muted its author; --all shows it)"]
    return str(comment["body"]).splitlines() or [""]


def _history_lines(comment: JSON, short: dict[str, str], now_ms: int) -> list[str]:
    versions = [comment["original"], *comment["edits"]] if comment.get("original") else []
    if len(versions) < 2:
        return []
    lines = [f"history ({len(versions)} versions, oldest first):"]
    for number, version in enumerate(versions, start=1):
        what = "original" if number == 1 else short.get(version["id"], version["id"])
        shown = " (shown)" if number == len(versions) else ""
        lines.append(f"[{number}] {relative_time(version['timestamp_ms'], now_ms)} · {what}{shown}")
        lines.extend(_INDENT + line for line in str(version["body"]).splitlines() or [""])
    return lines


def _answered_lines(comment: JSON, short: dict[str, str], now_ms: int) -> list[str]:
    answered = comment.get("answered_version")
    if not answered:
        return []
    answered_id = answered["id"]
    what = "original" if answered_id.startswith("cmt_") else short.get(answered_id, answered_id)
    when = relative_time(answered["timestamp_ms"], now_ms)
    return [
        f"answered this version of its parent ({when}, {what}):",
        *("> " + line for line in str(answered["body"]).splitlines() or [""]),
    ]


def render_thread(
    thread: JSON,
    *,
    now_ms: int,
    me: str | None = None,
    show_all: bool = False,
    history: bool = False,
) -> str:
    """A thread as an indented tree: who, when, short id and state markers, then the body.
    ``history`` adds each edited comment's versions (original first) and, under a reply marked
    "parent edited after", the version of the parent it answered."""
    comments = thread["comments"]
    completeness = thread.get("completeness")
    ids = [thread["id"]]
    for comment in comments:
        ids.append(comment["id"])
        ids.extend(edit["id"] for edit in comment.get("edits", ()))
    if completeness:
        for item in completeness["pending_operations"]:
            ids.append(item["id"])
            ids.extend(item["missing"])
        ids.extend(item["id"] for item in completeness["rejected_operations"])
    short = _short_ids(ids)
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
    if completeness:
        lines.append(describe_completeness(completeness))
        lines.extend(_completeness_details(completeness, short))
    for comment in comments:
        depth = comment["depth"]
        indent = _INDENT * min(depth, _MAX_INDENT_DEPTH)
        deep = f"(depth {depth}) " if depth > _MAX_INDENT_DEPTH else ""
        provenance = comment.get("provenance")
        if provenance:  # an imported comment: its original author, and where it comes from
            who = provenance["author_name"] or "(anonymous)"
            when = provenance["label"]
            claimant = comment.get("claimed_by")
            if claimant:  # its writer's claim, accepted by the thread's owner
                when += " · claimed by " + _who(comment.get("claimed_by_name"), claimant, me)
        else:
            who = _who(comment["author_name"], comment["author"], me)
            when = relative_time(comment["timestamp_ms"], now_ms)
        head = " · ".join([deep + who, when, short[comment["id"]]])
        markers = _markers(comment)
        lines.append("")
        lines.append(indent + head + (" " + " ".join(markers) if markers else ""))
        lines.extend(indent + _INDENT + line for line in _body_lines(comment, show_all))
        reactions = "  ".join(f"{r['reaction']} {r['count']}" for r in comment["reactions"])
        if reactions and comment["body"] is not None:
            lines.append(indent + _INDENT + reactions)
        if history and _body_visible(comment, show_all):
            extra = _history_lines(comment, short, now_ms) + _answered_lines(comment, short, now_ms)
            lines.extend(indent + _INDENT + line for line in extra)
    if not comments:
        lines.extend(["", "No comments yet."])
    return "\n".join(lines)


def render_threads(threads: list[JSON], *, now_ms: int) -> str:
    if not threads:
        return "No threads yet: `p2pc thread new --title …` starts one."
    short = _short_ids(thread["id"] for thread in threads)
    lines = []
    for thread in threads:
        title = thread["title"] or thread["url"] or "(untitled)"
        count = thread["comment_count"]
        comments = "1 comment" if count == 1 else f"{count} comments"
        closed = " [closed]" if thread["closed"] else ""
        lines.append(
            f"{short[thread['id']]}  {comments:>12} · "
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
    "retitle": "retitled the thread",
}


def render_change(change: JSON, *, now_ms: int, me: str | None = None) -> str:
    """One live change (a server-sent event's data) as a line or a few."""
    op = change.get("operation")
    if change.get("lagged") or op is None:
        return "… some changes were skipped (too many at once); `p2pc show` has them all"
    who = _who(change.get("author_name"), op["author"], me)
    when = relative_time(op["timestamp_ms"], now_ms)
    kind = op["kind"]
    target = _alone(op.get("target") or "")
    if kind == "comment":
        verb = f"replied to {target}" if target.startswith("cmt_") else "commented"
        head = f"{who} {verb} · {when} · {_alone(op['id'])}"
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
        title = op.get("title") or op.get("url")
        return f"{who} opened thread {_alone(op['id'])}: {title} · {when}"
    if kind == "profile":
        return f"{short(op['author'])} is now called {op['name']} · {when}"
    return f"{who} {kind} · {when}"


def render_outcomes(result: JSON) -> str:
    lines = [
        f"{result['total']} operations: {result['applied']} applied, "
        f"{result['duplicate']} already here, {result['pending']} waiting for their references, "
        f"{result['rejected']} rejected"
    ]
    short = _short_ids(r["id"] for r in result["rejections"])
    lines.extend(
        f"  rejected {short[r['id']]}: {r['code']}: {r['message']}" for r in result["rejections"]
    )
    return "\n".join(lines)


def render_repair(result: JSON) -> str:
    """``p2pc repair``: a line per kind of damage (what, how many, what was done), then what is
    left."""
    checked = _count(result["rows_checked"], "stored operation")
    lines = [f"checked {checked}, every signature verified again"]
    findings = result["findings"]
    for finding in findings:
        mark = "found" if finding["problem"] else "note"
        lines.append(f"{mark}: {finding['found']}: {finding['done']}")
        if finding["examples"] and finding["problem"]:
            lines.append(f"       e.g. {', '.join(short(e) for e in finding['examples'][:3])}")
    if not any(f["problem"] for f in findings):
        lines.append("no problems found")
    if result["rebuilt_views"]:
        lines.append("rebuilt the views from the operations")
    if result["quarantine"]:
        lines.append(f"the removed rows are kept in {result['quarantine']} (a bundle)")
    if result["damaged_file"]:
        lines.append(f"the damaged database file is kept as {result['damaged_file']}")
    for problem in result["problems_after"]:
        lines.append(f"still: {problem}")
    if result["dry_run"] and result["problems"]:
        lines.append("nothing was changed (--dry-run)")
    return "\n".join(lines)
