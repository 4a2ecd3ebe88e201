"""The commands of web pages (SPEC §10): a page's thread by its URL and owner, and retitling.

Rules:

1. ``thread for-url`` shows the page's thread (merged with its aliases') whether or not anyone
   made it yet; ``--create`` stores the page thread here first, so that its owner can moderate
   it (close it, retitle it) before the first comment.
2. As every command, each makes its calls through `Session.call` and formats the JSON.
"""

from __future__ import annotations

from p2pcomments.cli.session import EXIT_OK, Session
from p2pcomments.clock import wall_clock_ms

__all__ = ["cmd_retitle", "cmd_thread_for_url"]


def cmd_thread_for_url(session: Session) -> int:
    from p2pcomments.cli.render import render_thread

    args = session.args
    aliases = list(args.alias or ())
    if args.create:
        session.call("ensure_page_thread", url=args.url, owner=args.owner)
    page = session.call("page", url=args.url, owner=args.owner, alias=aliases)
    text = render_thread(page, now_ms=wall_clock_ms(), show_all=args.all)
    if not page["exists"]:
        text += (
            "\nNobody has commented on this page yet: its thread exists once someone does (or"
            " with --create)."
        )
    for alias in page["aliases"]:
        state = "" if alias["exists"] else " (no thread yet)"
        text += f"\nalias {alias['url']}  {alias['thread']}{state}"
    session.emit(page, text)
    return EXIT_OK


def cmd_retitle(session: Session) -> int:
    args = session.args
    op = session.call("retitle", thread=args.thread, title=args.title)
    session.emit(op, f"retitled {op['target'][:12]}: {op['reason']}")
    return EXIT_OK
