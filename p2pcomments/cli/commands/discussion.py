"""The commands of a discussion: threads, comments, replies, edits, reactions, moderation,
profiles, and watching a thread.

Rules:

1. Each command makes one call of an action of `p2pcomments.api.actions` (by name, with the
   action's parameters) through `Session.call`, and formats the JSON it gets back; no business
   rule lives here.
2. A command that creates an operation prints its whole id, for scripts (``--json``: the
   operation's JSON form); other text names ids by a short prefix (`p2pcomments.cli.render`).
   Any unique prefix is accepted back wherever an id is taken (`p2pcomments.api.ids`).
3. ``watch`` announces on stderr when it is watching, so a script can wait for that line.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from p2pcomments.api.address_file import ApiAddress
from p2pcomments.cli.arguments import UsageError
from p2pcomments.cli.body import Body, read_body
from p2pcomments.cli.session import EXIT_OK, Session
from p2pcomments.clock import wall_clock_ms

if TYPE_CHECKING:
    from p2pcomments.node import Node


__all__ = [
    "cmd_comment",
    "cmd_edit",
    "cmd_moderate",
    "cmd_profile_set",
    "cmd_profile_show",
    "cmd_react",
    "cmd_reply",
    "cmd_retract",
    "cmd_show",
    "cmd_thread_new",
    "cmd_threads",
    "cmd_watch",
]


def _print_created(session: Session, op: dict[str, Any], text: str | None = None) -> int:
    session.emit(op, text if text is not None else op["id"])
    return EXIT_OK


def cmd_thread_new(session: Session) -> int:
    args = session.args
    return _print_created(
        session, session.call("create_thread", title=args.title, url=args.url, site=args.site)
    )


def _short(text_id: str) -> str:
    """An id in a message: its first `MIN_SHOWN` characters (any unique prefix is taken back)."""
    from p2pcomments.core.id_prefix import MIN_SHOWN

    kind, sep, rest = text_id.partition("_")
    return kind + sep + rest[:MIN_SHOWN] if sep else text_id


def cmd_threads(session: Session) -> int:
    from p2pcomments.cli.render import render_threads

    url = session.args.url
    result = session.call("threads", url=url)
    text = render_threads(result["threads"], now_ms=wall_clock_ms())
    if url is not None and not result["threads"]:
        text = f"No thread here is about {url}."
    session.emit(result, text)
    return EXIT_OK


def cmd_show(session: Session) -> int:
    from p2pcomments.cli.render import render_thread

    args = session.args
    thread = session.call("thread", thread=args.thread)
    text = render_thread(thread, now_ms=wall_clock_ms(), show_all=args.all, history=args.history)
    session.emit(thread, text)
    return EXIT_OK


def _body(session: Session, what: str, prepare: Any = None) -> Body:
    args = session.args
    return read_body(
        body=args.body,
        body_file=args.body_file,
        data_dir=session.data_dir,
        what=what,
        prepare=prepare,
    )


def _quoted(comment: dict[str, Any]) -> list[str]:
    who = comment["author_name"] or comment["author"][:12]
    lines = [f"{_short(comment['id'])} by {who}:"]
    if comment["body"] is None:
        return [*lines, "(deleted by its author)"]
    return [*lines, *("> " + line for line in str(comment["body"]).splitlines())]


def cmd_comment(session: Session) -> int:
    thread = session.args.thread
    body = _body(session, "a comment", lambda: ("", [f"Commenting on {thread}"]))
    with body.posting() as text:
        op = session.call("comment", thread=thread, body=text)
    return _print_created(session, op)


def cmd_reply(session: Session) -> int:
    comment = session.args.comment

    def prepare() -> tuple[str, list[str]]:
        parent = session.call("get_comment", comment=comment)
        return "", ["Replying to", *_quoted(parent)]

    body = _body(session, "your reply", prepare)
    with body.posting() as text:
        op = session.call("reply", comment=comment, body=text)
    return _print_created(session, op)


def cmd_edit(session: Session) -> int:
    comment = session.args.comment

    def prepare() -> tuple[str, list[str]]:
        current = session.call("get_comment", comment=comment)
        return current["body"] or "", [
            f"Editing {_short(current['id'])}: its current text is above."
        ]

    body = _body(session, "the new text", prepare)
    with body.posting() as text:
        op = session.call("edit", comment=comment, body=text)
    return _print_created(session, op, f"edited {_short(op['target'])}")


def cmd_retract(session: Session) -> int:
    op = session.call("retract", comment=session.args.comment)
    return _print_created(session, op, f"deleted {_short(op['target'])}")


def cmd_react(session: Session) -> int:
    args = session.args
    if args.remove:
        reaction = ""
    elif args.reaction is None:
        raise UsageError("react: give a reaction (e.g. 👍), or --remove to withdraw yours")
    else:
        reaction = args.reaction
    op = session.call("react", comment=args.comment, reaction=reaction)
    target = _short(op["target"])
    text = f"reacted {reaction} to {target}" if reaction else f"withdrew your reaction to {target}"
    return _print_created(session, op, text)


def cmd_moderate(session: Session) -> int:
    args = session.args
    action = args.action
    if action in ("hide", "unhide"):
        op = session.call(action, comment=args.comment, reason=args.reason)
        verb = "hid" if action == "hide" else "unhid"
        return _print_created(session, op, f"{verb} {_short(op['target'])}")
    if action in ("close", "reopen"):
        op = session.call(action, thread=args.thread, reason=args.reason)
        verb = "closed" if action == "close" else "reopened"
        return _print_created(session, op, f"{verb} {_short(op['target'])}")
    name = "add_moderator" if action == "add-mod" else "remove_moderator"
    op = session.call(name, thread=args.thread, key=args.key)
    verb = "appointed" if action == "add-mod" else "removed"
    return _print_created(
        session, op, f"{verb} moderator {op['subject']} on {_short(op['target'])}"
    )


def cmd_profile_set(session: Session) -> int:
    op = session.call("set_profile", name=session.args.name)
    return _print_created(session, op, f"your display name is now {op['name']}")


def cmd_profile_show(session: Session) -> int:
    result = session.call("profile")
    session.emit(result, f"{result['author']} {result['name'] or '(no display name)'}")
    return EXIT_OK


def _watching(session: Session, thread: str) -> None:
    # On stderr even with --json: a script can wait for this line to know nothing will be missed.
    print(f"watching {thread} (Ctrl-C stops)", file=sys.stderr)
    sys.stderr.flush()


def _print_change(session: Session, change: dict[str, Any]) -> None:
    from p2pcomments.cli.render import render_change

    if session.json:
        print(json.dumps(change, ensure_ascii=False))
    else:
        print(render_change(change, now_ms=wall_clock_ms()))
    sys.stdout.flush()


def _watch_daemon(session: Session, address: ApiAddress, thread: str) -> None:
    from urllib.parse import quote

    from p2pcomments.cli.client import DaemonClient

    client = DaemonClient(address)
    for event in client.events(f"/api/threads/{quote(thread, safe='')}/events"):
        if event.name == "ready":
            _watching(session, thread)
        elif event.name in ("operation", "lagged"):
            _print_change(session, event.data)
    from p2pcomments.cli.client import DaemonUnreachable

    raise DaemonUnreachable(f"the daemon at {address.url} stopped")


def _watch_direct(session: Session, thread: str) -> None:
    # Without a daemon nothing else can write to this data dir (this process holds its lock), so
    # the changes seen here are those this process's node receives.

    async def watch(node: Node) -> None:
        from p2pcomments.api.ids import read_id
        from p2pcomments.api.representations import change_json
        from p2pcomments.core.textform import TextKind

        thread_id = await read_id(node, thread, TextKind.THREAD)
        node.thread_view(thread_id)  # an unknown thread is an error, not a silence
        async with node.watch(thread_id) as changes:
            _watching(session, thread)
            async for change in changes:
                op = None if change.op_id is None else node.get_operation(change.op_id)
                name = None if op is None else node.replica.names().get(op.author)
                _print_change(session, change_json(change, op, name))

    session.run_with_node(watch)


def cmd_watch(session: Session) -> int:
    # An unknown thread is an error; a prefix is read once, to the whole id.
    thread = session.call("thread", thread=session.args.thread)["id"]
    address = session.backend().daemon
    try:
        if address is not None:
            _watch_daemon(session, address, thread)
        else:
            _watch_direct(session, thread)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends
    return EXIT_OK
