"""``network.json``: how other processes (the CLI) learn where a running daemon's network listens.

Rules:

1. ``<data_dir>/network.json`` exists while a daemon's network runs: ``{"peer_id", "multiaddrs",
   "pid"}``, written atomically with mode 0600 once it listens, removed on a clean exit (only by
   the process that wrote it).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Final

from p2pcomments.atomic_file import write_json_atomically

__all__ = ["NETWORK_FILE", "read_network_file", "remove_network_file", "write_network_file"]

NETWORK_FILE: Final = "network.json"


def write_network_file(data_dir: Path, *, peer_id: str, multiaddrs: list[str]) -> None:
    """Write ``network.json`` atomically, mode 0600 (rule 1)."""
    document = {"peer_id": peer_id, "multiaddrs": multiaddrs, "pid": os.getpid()}
    write_json_atomically(data_dir / NETWORK_FILE, document)


def read_network_file(data_dir: Path) -> dict[str, Any] | None:
    """The contents of ``network.json``, or None if there is none (or it is unreadable)."""
    try:
        document = json.loads((data_dir / NETWORK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def remove_network_file(data_dir: Path) -> None:
    """Remove ``network.json`` if this process wrote it (rule 1)."""
    document = read_network_file(data_dir)
    if document is not None and document.get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (data_dir / NETWORK_FILE).unlink()
