"""Writing a file so that it appears whole or not at all: the one way the package does it.

Rules:

1. The bytes go to a temporary file in the same directory, created with the final mode (0600
   unless told otherwise) so no other user ever reads a byte of it, flushed and fsynced; then
   it is renamed over the final name (or, with ``replace=False``, hard-linked into place, which
   fails with `FileExistsError` when the name is taken, so a concurrent creator's file is
   never overwritten).
2. Whatever goes wrong, the temporary file is removed and the error raised as it is (`OSError`):
   callers decide what it means for them.
3. ``sync_directory`` also fsyncs the directory, so the rename itself survives a power cut (for
   files whose loss would lose data, such as a key).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically", "write_json_atomically"]


def write_atomically(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o600,
    replace: bool = True,
    sync_directory: bool = False,
) -> None:
    """Rules 1-3."""
    directory = path.parent
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if mode != 0o600:  # mkstemp creates with 0600
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
            os.unlink(temporary)
        if sync_directory:
            directory_descriptor = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(directory_descriptor)
            finally:
                os.close(directory_descriptor)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_json_atomically(
    path: Path,
    document: object,
    *,
    indent: int = 1,
    sort_keys: bool = True,
    newline: bool = True,
    mode: int = 0o600,
) -> None:
    """``document`` as JSON (ASCII, as `json.dumps` writes it), written by `write_atomically`."""
    text = json.dumps(document, indent=indent, sort_keys=sort_keys)
    write_atomically(path, (text + "\n" if newline else text).encode("ascii"), mode=mode)
