"""``p2pc inbox``: what others did near your comments and threads, and marking it read.

Rules:

1. ``p2pc inbox`` lists the unread entries, newest first (``--all``: every entry, read ones
   marked); ``--json`` prints the API's inbox JSON (`api.inbox_json`) with the same filter.
2. ``--watch`` then prints each new entry as it arrives, until Ctrl-C; it announces on stderr
   when it is watching, so a script can wait for that line (as ``p2pc watch``).
3. ``p2pc inbox mark-read ID...`` marks those entries read, ``--all`` every entry held now.
4. Each is one action of `p2pcomments.api.actions` through `Session.call` (through the daemon
   when one runs, else on the data dir): what arrived while the node was down is there too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from p2pcomments.api.address_file import ApiAddress
from p2pcomments.cli.arguments import UsageError
from p2pcomments.cli.session import EXIT_OK, Session
from p2pcomments.clock import wall_clock_ms

if TYPE_CHECKING:
    from p2pcomments.node import Node

__all__ = ["add_inbox_parser", "cmd_inbox", "cmd_inbox_mark_read", "render_inbox_entry"]

_VERBS = {
    "reply": "replied to your comment",
    "comment": "commented on your thread",
    "reaction": "reacted",
    "edit": "edited a comment near yours",
}


def _quote(text: str | None, limit: int = 60) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return "“" + (line if len(line) <= limit else line[: limit - 1] + "…") + "”"


def render_inbox_entry(entry: dict[str, Any], *, now_ms: int) -> str:
    """One entry as a line and its text, indented (what ``p2pc inbox`` prints)."""
    from p2pcomments.cli.render import relative_time, short

    who = entry.get("actor_name") or short(entry["actor"])
    kind = entry["kind"]
    if kind == "moderation":
        verb = f"{entry['action'].replace('-', ' ')}" + (
            " your comment" if str(entry["subject"]).startswith("cmt_") else " your thread"
        )
    else:
        verb = _VERBS.get(kind, kind)
    if kind == "reaction":
        verb = f"reacted {entry['text']} to your comment"
    about = _quote(entry.get("subject_body"), 40)
    title = entry.get("thread_title") or "(untitled thread)"
    marker = " " if entry.get("read") else "●"
    head = (
        f"{marker} {who} {verb}{' ' + about if about else ''} in “{title}”"
        f" · {relative_time(entry['timestamp_ms'], now_ms)} · {short(entry['id'])}"
    )
    lines = [head]
    if kind != "reaction" and entry.get("text"):
        lines.extend("    " + line for line in str(entry["text"]).splitlines())
    return "\n".join(lines)


def _list(session: Session, inbox: dict[str, Any]) -> None:
    shown = dict(inbox)
    if not session.args.all:
        shown["entries"] = [e for e in inbox["entries"] if not e["read"]]
    now = wall_clock_ms()
    if not shown["entries"]:
        text = "no unread entries" if not session.args.all else "the inbox is empty"
        if inbox["total"] and not session.args.all:
            text += f" ({inbox['total']} read; --all lists them)"
    else:
        lines = [render_inbox_entry(entry, now_ms=now) for entry in shown["entries"]]
        lines.append(f"{inbox['unread']} unread of {inbox['total']}")
        text = "\n".join(lines)
    session.emit(shown, text)


def cmd_inbox(session: Session) -> int:
    inbox = session.call("inbox")
    if not session.args.watch:
        _list(session, inbox)
        return EXIT_OK
    if not session.json:
        _list(session, inbox)
    address = session.backend().daemon
    try:
        if address is not None:
            _watch_daemon(session, address)
        else:
            _watch_direct(session)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends
    return EXIT_OK


def _watching() -> None:
    print("watching the inbox (Ctrl-C stops)", file=sys.stderr)  # rule 2
    sys.stderr.flush()


def _print_entry(session: Session, entry: dict[str, Any]) -> None:
    if session.json:
        print(json.dumps(entry, ensure_ascii=False))
    else:
        print(render_inbox_entry(entry, now_ms=wall_clock_ms()))
    sys.stdout.flush()


def _watch_daemon(session: Session, address: ApiAddress) -> None:
    from p2pcomments.api.inbox_routes import INBOX_EVENTS_PATH
    from p2pcomments.cli.client import DaemonClient, DaemonUnreachable

    for event in DaemonClient(address).events(INBOX_EVENTS_PATH):
        if event.name == "ready":
            _watching()
        elif event.name == "entry":
            _print_entry(session, event.data)
        elif event.name == "lagged" and not session.json:
            print("… some entries were skipped (too many at once); `p2pc inbox` has them all")
    raise DaemonUnreachable(f"the daemon at {address.url} stopped")


def _watch_direct(session: Session) -> None:
    # Without a daemon this process holds the data dir's lock: what arrives is what it ingests.

    async def watch(node: Node) -> None:
        from p2pcomments.api.inbox_json import inbox_entry_json

        async with node.watch_inbox() as changes:
            _watching()
            async for change in changes:
                if change.entry is not None:
                    _print_entry(session, inbox_entry_json(change.entry, read=False))

    session.run_with_node(watch)


def cmd_inbox_mark_read(session: Session) -> int:
    ids: list[str] = session.args.ids or []
    if bool(ids) == bool(session.args.all):
        raise UsageError("give the entries' ids, or --all (not both)")
    result = session.call(
        "inbox_mark_read", ids=" ".join(ids), all="true" if session.args.all else "false"
    )
    marked = result["marked"]
    session.emit(result, f"marked {marked} entr{'y' if marked == 1 else 'ies'} read")
    return EXIT_OK


def add_inbox_parser(
    command: Callable[[str, Callable[[Session], int], str], argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """``p2pc inbox [--all] [--watch]`` and ``p2pc inbox mark-read [ID...|--all]`` (rules 1-3);
    ``command`` is `build_parser`'s helper."""
    sub = command(
        "inbox",
        cmd_inbox,
        "replies, reactions, edits and moderation near your comments and threads (unread)",
    )
    sub.add_argument("--all", action="store_true", help="also list the entries already read")
    sub.add_argument(
        "--watch", action="store_true", help="then print new entries as they arrive (Ctrl-C stops)"
    )
    actions = sub.add_subparsers(dest="inbox_action", metavar="[mark-read]")
    help_text = "mark entries read (their ids as `p2pc inbox` shows them), or --all"
    mark = actions.add_parser("mark-read", parents=[common], help=help_text, description=help_text)
    mark.set_defaults(run=cmd_inbox_mark_read)
    mark.add_argument("ids", nargs="*", metavar="ID", help="an entry's id (cmt_…/op_…) or prefix")
    mark.add_argument("--all", action="store_true", help="every entry held now")
