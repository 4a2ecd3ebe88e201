"""Reading what a command is given: text arguments, input and output files, and the mistakes
argparse can't see.

Rules:

1. ``-`` means standard input for a text or a file argument, standard output for an output file.
2. A file that can't be read or written is a `UsageError` naming it (exit code 1), never a
   traceback. Private output (an exported key) is created with mode 0600.
3. Output written as it is made (`output_file`) appears whole or not at all: it goes to a
   temporary file beside it, renamed into place once complete, removed if anything fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from p2pcomments.errors import P2PCommentsError

__all__ = ["UsageError", "output_file", "read_input_file", "text_argument", "write_output_file"]


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


class _Output:
    """A binary file being written, whose failures are `UsageError` naming it (rule 2), so a
    caller copying a stream into it tells them apart from the stream's own."""

    def __init__(self, name: str, handle: BinaryIO) -> None:
        self._name = name
        self._handle = handle

    def write(self, data: bytes) -> int:
        try:
            return self._handle.write(data)
        except OSError as error:
            raise UsageError(f"cannot write {self._name}: {error.strerror or error}") from None


@contextlib.contextmanager
def output_file(name: str | None) -> Iterator[_Output]:
    """Rule 3: a binary file to write ``name`` into (standard output for ``-`` or None)."""
    if name is None or name == "-":
        yield _Output("standard output", sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    path = Path(name)
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{path.name}-", suffix=".tmp", dir=path.parent
        )
    except OSError as error:
        raise UsageError(f"cannot write {name}: {error.strerror or error}") from None
    placed = False
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield _Output(name, handle)  # what the caller raises goes on as it is
            try:
                handle.flush()
                os.chmod(temporary, 0o644)  # what write_output_file creates; mkstemp: 0600
                os.replace(temporary, path)
            except OSError as error:
                raise UsageError(f"cannot write {name}: {error.strerror or error}") from None
            placed = True
    finally:
        if not placed:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
