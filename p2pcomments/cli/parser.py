"""The ``p2pc`` argument parser: every subcommand, its options and the function that runs it.

Rules:

1. A subcommand is added in `build_parser` with ``command(name, run, help)`` (or inside a
   ``group``), where ``run`` is a ``cmd_*`` function of `p2pcomments.cli.commands`; ``--json`` and
   ``--data-dir`` work before or after it (`common_options`).
2. Building the parser imports no command's dependencies: commands import what they need when run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from p2pcomments.cli.commands.claims import cmd_claim
from p2pcomments.cli.commands.data import (
    cmd_init,
    cmd_key_export,
    cmd_key_import,
    cmd_repair,
    cmd_statistics,
)
from p2pcomments.cli.commands.discussion import (
    cmd_comment,
    cmd_edit,
    cmd_moderate,
    cmd_profile_set,
    cmd_profile_show,
    cmd_react,
    cmd_reply,
    cmd_retract,
    cmd_show,
    cmd_thread_new,
    cmd_threads,
    cmd_watch,
)
from p2pcomments.cli.commands.importing import cmd_export, cmd_import
from p2pcomments.cli.commands.inbox import add_inbox_parser
from p2pcomments.cli.commands.network import (
    DEFAULT_API,
    cmd_connect,
    cmd_daemon,
    cmd_follow,
    cmd_follows,
    cmd_id,
    cmd_peers,
    cmd_sync,
)
from p2pcomments.cli.commands.pages import cmd_retitle, cmd_thread_for_url
from p2pcomments.cli.commands.rules import add_rule_commands
from p2pcomments.cli.hook_options import add_hook_options
from p2pcomments.cli.session import HOME_VARIABLE, PASSPHRASE_VARIABLE, Session

__all__ = ["build_parser", "common_options"]

_THREAD_ID = "a thread id (thr_…), or any unique prefix of it"
_COMMENT_ID = "a comment id (cmt_…), or any unique prefix of it"


def common_options() -> argparse.ArgumentParser:
    # Given to every parser with SUPPRESS defaults, so the options work before or after the
    # command (`p2pc --json show T` and `p2pc show T --json`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help=f"the data directory (default: ${HOME_VARIABLE}, else the per-user data dir)",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output (the API's JSON forms)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="p2pc",
        parents=[common],
        description="A peer-to-peer comment system that no one can take down.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 daemon unreachable, 4 data dir busy, "
        f"5 internal error. {PASSPHRASE_VARIABLE} gives the key's passphrase to any command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str,
        run: Callable[[Session], int],
        help_text: str,
        within: argparse._SubParsersAction[argparse.ArgumentParser] = commands,
    ) -> argparse.ArgumentParser:
        sub = within.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    def group(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        return sub.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

    def body_option(sub: argparse.ArgumentParser) -> None:
        given = sub.add_mutually_exclusive_group()
        given.add_argument("--body", metavar="TEXT", help="the text; - reads stdin")
        given.add_argument(
            "--body-file",
            metavar="FILE",
            help="read the text from FILE (UTF-8; - reads stdin). With neither option, on a"
            " terminal, $EDITOR opens for the text, as for `git commit`",
        )

    sub = command("init", cmd_init, "create this node's author key")
    sub.add_argument(
        "--passphrase-stdin",
        action="store_true",
        help="protect the key with a passphrase read from the first line of stdin",
    )
    command("id", cmd_id, "show the author key, data dir and daemon address")
    sub = command("daemon", cmd_daemon, "run the node and its local HTTP API until Ctrl-C")
    sub.add_argument(
        "--api",
        default=DEFAULT_API,
        metavar="HOST:PORT",
        help=f"where to serve the API (default {DEFAULT_API}; port 0 picks a free one)",
    )
    sub.add_argument(
        "--passphrase-stdin",
        action="store_true",
        help="read the key's passphrase from the first line of stdin",
    )
    sub.add_argument(
        "--listen",
        action="append",
        metavar="MULTIADDR",
        help="where peers reach this node (repeatable; default /ip4/0.0.0.0/tcp/4737, or a free"
        " port when 4737 is taken)",
    )
    sub.add_argument(
        "--bootstrap",
        action="append",
        metavar="MULTIADDR",
        help="a peer to dial and keep dialling: /ip4/…/tcp/…/p2p/<peer id> (repeatable; also"
        " the 'bootstrap' list of config.json in the data dir)",
    )
    sub.add_argument("--mdns", action="store_true", help="find peers on the local network")
    sub.add_argument(
        "--sync-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="sync with a random peer this often (default 30; 0 turns it off)",
    )
    sub.add_argument(
        "--no-network", action="store_true", help="serve the API only: no peer-to-peer networking"
    )
    sub.add_argument(
        "--public",
        metavar="HOST:PORT",
        help="also be a public gateway there (e.g. 0.0.0.0:8080): the read endpoints, the event"
        " streams, submitting operations signed in readers' browsers, and the web widget, for"
        " any origin, with per-address rate limits; writing as this node and its settings stay"
        " on --api behind the token",
    )
    sub.add_argument(
        "--public-requests-per-minute",
        type=int,
        default=600,
        metavar="N",
        help="requests per minute a client address may make of the gateway (default 600)",
    )
    sub.add_argument(
        "--public-ops-per-minute",
        type=int,
        default=120,
        metavar="N",
        help="operations per minute a client address may submit to the gateway (default 120)",
    )
    sub.add_argument(
        "--public-behind-proxy",
        action="store_true",
        help="the gateway is reached through a reverse proxy (TLS): charge each request to the"
        " last address of its X-Forwarded-For header, the client the proxy saw",
    )
    add_hook_options(sub)

    add_inbox_parser(command, common)
    command("peers", cmd_peers, "list the connected peers (needs a running daemon)")
    sub = command("connect", cmd_connect, "dial a peer and keep it connected (needs a daemon)")
    sub.add_argument("multiaddr", metavar="MULTIADDR", help="/ip4/…/tcp/…/p2p/<peer id>")
    sub = command("follow", cmd_follow, "follow a thread or a site (its gossip topic)")
    sub.add_argument("target", metavar="THREAD|SITE", help="a thread id (thr_…) or a site name")
    sub = command("unfollow", cmd_follow, "stop following a thread or a site")
    sub.add_argument("target", metavar="THREAD|SITE", help="a thread id (thr_…) or a site name")
    command("follows", cmd_follows, "list the threads and sites followed")
    sub = command("sync", cmd_sync, "sync with peers now and print what moved (needs a daemon)")
    sub.add_argument("--peer", metavar="PEERID", help="only this connected peer")

    threads = group("thread", "start threads")
    sub = command("new", cmd_thread_new, "open a thread about a title and/or a URL", threads)
    sub.add_argument("--title", default="", help="the thread's title")
    sub.add_argument("--url", default=None, help="the page it discusses")
    sub.add_argument("--site", default=None, help="the site it belongs to (a host name)")
    sub = command(
        "for-url",
        cmd_thread_for_url,
        "show a web page's thread, by its URL and its owner's key (none needs to exist yet)",
        threads,
    )
    sub.add_argument("url", metavar="URL", help="the page's URL, in any form (it is normalised)")
    sub.add_argument("--owner", required=True, metavar="KEY", help="the site owner's key (key_…)")
    sub.add_argument(
        "--alias",
        action="append",
        metavar="URL",
        help="another URL of the page, whose comments are shown too (repeatable)",
    )
    sub.add_argument(
        "--create",
        action="store_true",
        help="store the page thread here first, so that its owner can close or retitle it",
    )
    sub.add_argument(
        "--all",
        action="store_true",
        help="also show the text of hidden comments and of comments made after a close",
    )
    sub = command("threads", cmd_threads, "list the threads held here, newest activity first")
    sub.add_argument(
        "--url",
        default=None,
        help="only threads about this page (URLs compare normalised: no tracking parameters,"
        " default ports or case differences)",
    )

    sub = command("show", cmd_show, "print a thread as a tree")
    sub.add_argument("thread", metavar="THREAD", help=_THREAD_ID)
    sub.add_argument(
        "--all",
        action="store_true",
        help="also show the text of hidden comments and of comments made after a close",
    )
    sub.add_argument(
        "--history",
        action="store_true",
        help="show every version of edited comments (original first, with times) and, for a"
        " reply marked [parent edited after], the version of its parent it answered",
    )
    sub = command("watch", cmd_watch, "print a thread's new comments as they arrive")
    sub.add_argument("thread", metavar="THREAD", help=_THREAD_ID)

    sub = command("comment", cmd_comment, "post a top-level comment")
    sub.add_argument("thread", metavar="THREAD", help=_THREAD_ID)
    body_option(sub)
    sub = command("reply", cmd_reply, "reply to a comment")
    sub.add_argument("comment", metavar="COMMENT", help=_COMMENT_ID)
    body_option(sub)
    sub = command("edit", cmd_edit, "edit your comment")
    sub.add_argument("comment", metavar="COMMENT", help=_COMMENT_ID)
    body_option(sub)
    sub = command("retract", cmd_retract, "delete your comment (its replies stay)")
    sub.add_argument("comment", metavar="COMMENT", help=_COMMENT_ID)
    sub = command("react", cmd_react, "react to a comment (one reaction per author)")
    sub.add_argument("comment", metavar="COMMENT", help=_COMMENT_ID)
    sub.add_argument("reaction", metavar="EMOJI", nargs="?", help="the reaction, e.g. 👍")
    sub.add_argument("--remove", action="store_true", help="withdraw your reaction")

    moderation = group("moderate", "hide comments, close threads, appoint moderators")
    for action, help_text in (("hide", "hide a comment"), ("unhide", "show a hidden comment")):
        sub = command(action, cmd_moderate, help_text, moderation)
        sub.add_argument("comment", metavar="COMMENT", help=_COMMENT_ID)
        sub.add_argument("--reason", default="", help="why, shown to readers")
        sub.set_defaults(action=action)
    for action, help_text in (("close", "close a thread"), ("reopen", "reopen a thread")):
        sub = command(action, cmd_moderate, help_text, moderation)
        sub.add_argument("thread", metavar="THREAD", help=_THREAD_ID)
        sub.add_argument("--reason", default="", help="why, shown to readers")
        sub.set_defaults(action=action)
    sub = command(
        "retitle", cmd_retitle, "set the title a thread shows (owner or moderator)", moderation
    )
    sub.add_argument("thread", metavar="THREAD", help=_THREAD_ID)
    sub.add_argument("title", metavar="TITLE", help="the new title (one line)")
    for action, help_text in (
        ("add-mod", "appoint a moderator (owner only)"),
        ("remove-mod", "remove a moderator (owner only)"),
    ):
        sub = command(action, cmd_moderate, help_text, moderation)
        sub.add_argument("thread", metavar="THREAD", help=_THREAD_ID)
        sub.add_argument("key", metavar="KEY", help="the moderator's key (key_…)")
        sub.set_defaults(action=action)

    sub = command(
        "claim",
        cmd_claim,
        "claim an imported comment as yours (p2pc claim CMT); the thread's owner accepts a"
        " claim with p2pc claim accept OP",
    )
    sub.usage = "p2pc claim COMMENT [--note TEXT] | p2pc claim accept CLAIM [--note TEXT]"
    sub.add_argument(
        "target", metavar="COMMENT|accept", help=_COMMENT_ID + "; or accept, then the claim's id"
    )
    sub.add_argument("claim", metavar="CLAIM", nargs="?", help="the claim's id (op_…), to accept")
    sub.add_argument("--note", default="", help="a note for the thread's owner")

    profile = group("profile", "your display name")
    sub = command("set", cmd_profile_set, "set your display name", profile)
    sub.add_argument("--name", required=True, help="the display name")
    command("show", cmd_profile_show, "show your key and display name", profile)

    add_rule_commands(command, _THREAD_ID, _COMMENT_ID)  # bans, modes, proof of work... (SPEC §11)

    keys = group("key", "back up or move the author key")
    sub = command("export", cmd_key_export, "print the author key (armoured) for a backup", keys)
    sub.add_argument("-o", "--output", metavar="FILE", help="write it to FILE (mode 0600)")
    sub = command("import", cmd_key_import, "install an exported author key", keys)
    sub.add_argument("file", metavar="FILE", help="the exported key; - reads stdin")
    sub.add_argument("--force", action="store_true", help="replace a different key already here")

    sub = command(
        "export", cmd_export, "write a thread (or everything) out: a bundle, JSON or WordPress WXR"
    )
    sub.add_argument("thread", metavar="THREAD", nargs="?", help=_THREAD_ID)
    sub.add_argument("--all", action="store_true", help="every thread (a bundle: every operation)")
    sub.add_argument(
        "--format",
        choices=("bundle", "json", "wxr"),
        default="bundle",
        help="bundle: signed operations (default, for `p2pc import`); json: every thread's"
        " comments, authors, dates and history, readable (all threads without THREAD); wxr:"
        " WordPress eXtended RSS, for WordPress's importer",
    )
    sub.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default stdout)")
    sub = command(
        "import",
        cmd_import,
        "ingest a bundle, or import a WordPress (WXR) or Disqus export",
    )
    sub.add_argument(
        "what",
        metavar="[wordpress|disqus|bundle]",
        help="wordpress or disqus: FILE is that system's XML export, imported as page threads"
        " signed by this node's key (importing it again adds nothing); bundle, or a FILE given"
        " alone: a bundle of signed operations (JSON lines of hex; - reads stdin), each verified",
    )
    sub.add_argument("file", nargs="?", metavar="FILE", help="the file to import")
    sub.add_argument(
        "--dry-run", action="store_true", help="read and count everything, write nothing"
    )
    for status in ("unapproved", "spam", "deleted"):
        sub.add_argument(
            f"--include-{status}",
            action="store_true",
            help=f"import {status} comments too (skipped by default)",
        )

    command("statistics", cmd_statistics, "counters: operations, threads, pending...")
    sub = command(
        "repair",
        cmd_repair,
        "check every stored operation and signature, the log, the key; say what was found and"
        " fix what can be fixed (damaged rows are saved to a quarantine file, then removed)",
    )
    sub.add_argument(
        "--rebuild-views",
        action="store_true",
        help="recompute every view table from the stored operations",
    )
    sub.add_argument(
        "--dry-run", action="store_true", help="only say what is wrong and what would be done"
    )
    return parser
