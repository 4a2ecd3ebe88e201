"""The daemon's hook options (`p2pcomments.hooks`): ``--on-comment``, ``--webhook``,
``--webhook-allow-remote``; cheap to import (the hooks module loads when the daemon starts)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from p2pcomments.cli.session import Session
    from p2pcomments.daemon import StartServices

__all__ = ["add_hook_options", "with_session_hooks"]


def add_hook_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--on-comment",
        metavar="CMD",
        help="run CMD for each new comment in a followed thread, with the signed operation and"
        " the comment as JSON on stdin (also 'on_comment' in config.json)",
    )
    sub.add_argument(
        "--webhook",
        metavar="URL",
        help="POST the same JSON to URL for each new comment in a followed thread (127.0.0.1"
        " only, unless --webhook-allow-remote; also 'webhook' in config.json)",
    )
    sub.add_argument(
        "--webhook-allow-remote",
        action="store_true",
        help="let --webhook name another host than this machine",
    )


def with_session_hooks(session: Session, start: StartServices) -> StartServices:
    """``start`` followed by the hooks the options and config.json ask for (if any)."""
    from p2pcomments.hooks import describe, read_hook_config, with_hooks

    args = session.args
    config = read_hook_config(
        session.data_dir,
        command=getattr(args, "on_comment", None),
        webhook=getattr(args, "webhook", None),
        allow_remote=getattr(args, "webhook_allow_remote", False),
    )
    for line in describe(config):
        print(f"p2pc daemon: {line}", file=sys.stderr)
    return with_hooks(start, config)
