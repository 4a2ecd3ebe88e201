"""``<data_dir>/api.json``: where a running daemon serves its API, and the token for writes.

Rules:

1. The daemon writes it once it listens and removes it on a clean exit; after a crash it stays, so
   readers check that the daemon answers (the ``pid`` helps tell "gone" from "not answering").
2. It is created with mode 0600 and replaced atomically (write a temporary file, then rename):
   only the data dir's owner can read the token, and a reader never sees half a file.
3. A daemon removes the file only while it still names that daemon's pid.

This module is stdlib-only: the CLI reads the file on every command.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from p2pcomments.atomic_file import write_json_atomically

__all__ = [
    "API_FILE_NAME",
    "ApiAddress",
    "read_address_file",
    "remove_address_file",
    "write_address_file",
]

API_FILE_NAME: Final = "api.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiAddress:
    host: str
    port: int
    token: str
    pid: int
    public_url: str | None = None  # the public gateway's listener (`p2pc daemon --public`)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def write_address_file(data_dir: Path, address: ApiAddress) -> Path:
    path = data_dir / API_FILE_NAME
    write_json_atomically(path, {**asdict(address), "url": address.url}, indent=2, sort_keys=False)
    return path


def read_address_file(data_dir: Path) -> ApiAddress | None:
    """The address a daemon wrote, or None when there is no (readable, well-formed) file."""
    try:
        document = json.loads((data_dir / API_FILE_NAME).read_text(encoding="utf-8"))
        address = ApiAddress(
            host=document["host"],
            port=document["port"],
            token=document["token"],
            pid=document["pid"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (
        isinstance(address.host, str)
        and isinstance(address.port, int)
        and isinstance(address.token, str)
        and isinstance(address.pid, int)
    ):
        return None
    return address


def remove_address_file(data_dir: Path, pid: int) -> None:
    """Remove the file if it still names ``pid`` (rule 3)."""
    current = read_address_file(data_dir)
    if current is not None and current.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / API_FILE_NAME).unlink()
