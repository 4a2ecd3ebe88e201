"""Reading what a command is given: text arguments, input and output files, and the mistakes
argparse can't see.

Rules:

1. ``-`` means standard input for a text or a file argument, standard output for an output file.
2. A file that can't be read or written is a `UsageError` naming it (exit code 1), never a
   traceback. Private output (an exported key) is created with mode 0600.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from p2pcomments.errors import P2PCommentsError

__all__ = ["UsageError", "read_input_file", "text_argument", "write_output_file"]


class UsageError(P2PCommentsError):
    """A mistake in the command line that argparse can't see (a file that can't be read...)."""

    http_status = 400
    default_reason = "usage"


def text_argument(value: str) -> str:
    """``-`` reads standard input (its trailing newlines dropped)."""
    if value == "-":
        return sys.stdin.read().rstrip("\n")
    return value


def read_input_file(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {name}: {error.strerror or error}") from None


def write_output_file(name: str | None, data: bytes, *, private: bool = False) -> None:
    if name is None or name == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        descriptor = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644
        )
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    except OSError as error:
        raise UsageError(f"cannot write {name}: {error.strerror or error}") from None
