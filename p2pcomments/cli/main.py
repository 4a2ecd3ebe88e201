"""``p2pc``: the entry point. Parses the command line, runs the command, turns errors into exit
codes.

Where the rest lives: `p2pcomments.cli.parser` (the subcommands and their options: add a
subcommand there), `p2pcomments.cli.commands` (what each command does), `p2pcomments.cli.session`
and `p2pcomments.cli.backends` (reaching the Node: the daemon's API or the data dir),
`p2pcomments.cli.arguments` (reading files and stdin), `p2pcomments.cli.render` (text output).

Rules:

1. A user's mistake is one line on stderr (``p2pc: <message>``; with ``--json`` the API's error
   object) and a non-zero exit code (`p2pcomments.cli.session` rule 2), never a traceback
   (``P2PC_DEBUG=1`` prints the traceback of an internal error too).
2. Imports are cheap where users wait: trio, the Node and the store are imported only by the
   commands that open the data dir, never at startup; libp2p never.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence

from p2pcomments.cli.parser import build_parser
from p2pcomments.cli.session import (
    DEBUG_VARIABLE,
    EXIT_BUSY,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USER_ERROR,
    PASSPHRASE_VARIABLE,
    Session,
    single_leaf,
)
from p2pcomments.errors import ConflictError, P2PCommentsError, PassphraseError

__all__ = ["build_parser", "main"]


def _report(session: Session | None, error: P2PCommentsError) -> None:
    message = " ".join(error.message.split())
    if isinstance(error, PassphraseError) and error.reason == "passphrase-required":
        message += (
            f" (set {PASSPHRASE_VARIABLE}, use --passphrase-stdin with `p2pc daemon`, or run in a"
            " terminal to be asked)"
        )
    if session is not None and session.json:
        print(json.dumps({"error": error.to_dict()}, ensure_ascii=False), file=sys.stderr)
    else:
        print(f"p2pc: {message}", file=sys.stderr)


def _exit_code(error: P2PCommentsError) -> int:
    from p2pcomments.cli.client import DaemonUnreachable, RemoteError

    if isinstance(error, DaemonUnreachable):
        return EXIT_UNREACHABLE
    if isinstance(error, ConflictError) and error.reason in ("data-dir-locked", "address-in-use"):
        return EXIT_BUSY
    status = error.status if isinstance(error, RemoteError) else error.http_status
    return EXIT_INTERNAL if status >= 500 else EXIT_USER_ERROR


def main(
    argv: Sequence[str] | None = None, *, parser: argparse.ArgumentParser | None = None
) -> int:
    """Run one command; returns the exit code (rule 2). ``parser`` is `build_parser`'s, built
    once by a caller that runs many commands in one process (the fuzzing campaign)."""
    args = (parser or build_parser()).parse_args(argv)
    session: Session | None = None
    try:
        session = Session(args)
        code: int = args.run(session)
        return code
    except BrokenPipeError:
        # The reader went away (`p2pc show T | head`); say nothing more on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseException as raised:
        error = single_leaf(raised)
        if isinstance(error, SystemExit | KeyboardInterrupt):
            raise error from None
        if isinstance(error, P2PCommentsError):
            _report(session, error)
            return _exit_code(error)
        if os.environ.get(DEBUG_VARIABLE):
            traceback.print_exception(raised)
        internal = P2PCommentsError(
            f"internal error: {type(error).__name__}: {error} (set {DEBUG_VARIABLE}=1 for details)"
        )
        _report(session, internal)
        return EXIT_INTERNAL
