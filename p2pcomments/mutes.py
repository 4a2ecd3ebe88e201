"""What this reader muted: author keys and followed mute lists (``mutes.json``). Local only.

Rules:

1. The file is a JSON object ``{"version": 1, "keys": [key_…], "lists": [thr_…]}``, written
   atomically, mode 0600, lists sorted. Nothing of it goes on the wire (SPEC §11.7): muting
   changes what this reader's view marks ``muted``, never what any node holds.
2. A missing file means no mutes. An unreadable or foreign one is set aside as
   ``mutes.json.bad`` (logged) and the reader starts with none.
3. A mute list is a thread (any thread, its owner's): the keys its owner bans there (SPEC §11.7)
   are muted for whoever follows it, while the list's thread is held here.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from p2pcomments.atomic_file import write_json_atomically
from p2pcomments.core.textform import TextKind, format_id, parse_id
from p2pcomments.errors import TextFormError

__all__ = ["MUTES_FILE", "MuteList", "Mutes"]

logger = logging.getLogger(__name__)

MUTES_FILE: Final = "mutes.json"
FILE_VERSION: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Mutes:
    keys: frozenset[bytes] = frozenset()
    lists: frozenset[bytes] = frozenset()


class MuteList:
    """``mutes.json`` of a data dir (rules 1-2)."""

    def __init__(self, path: Path, mutes: Mutes) -> None:
        self.path = path
        self.mutes = mutes

    @classmethod
    def load(cls, data_dir: Path) -> MuteList:
        path = Path(data_dir) / MUTES_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, Mutes())
        except (OSError, ValueError) as error:
            return cls._set_aside(path, f"unreadable: {error}")
        try:
            if raw.get("version") != FILE_VERSION:
                raise ValueError("unknown version")
            keys = frozenset(parse_id(k, expect=frozenset({TextKind.KEY})) for k in raw["keys"])
            lists = frozenset(
                parse_id(t, expect=frozenset({TextKind.THREAD})) for t in raw["lists"]
            )
        except (AttributeError, KeyError, TypeError, ValueError, TextFormError) as error:
            return cls._set_aside(path, f"not a mute list: {error}")
        return cls(path, Mutes(keys=keys, lists=lists))

    @classmethod
    def _set_aside(cls, path: Path, why: str) -> MuteList:
        logger.warning("%s is %s; set aside as %s.bad, starting with no mutes", path, why, path)
        with contextlib.suppress(OSError):
            path.replace(path.with_name(path.name + ".bad"))
        return cls(path, Mutes())

    def _save(self, mutes: Mutes) -> bool:
        if mutes == self.mutes:
            return False
        document = {
            "version": FILE_VERSION,
            "keys": sorted(format_id(TextKind.KEY, k) for k in mutes.keys),
            "lists": sorted(format_id(TextKind.THREAD, t) for t in mutes.lists),
        }
        write_json_atomically(self.path, document)
        self.mutes = mutes
        return True

    def mute(self, key: bytes) -> bool:
        return self._save(Mutes(keys=self.mutes.keys | {key}, lists=self.mutes.lists))

    def unmute(self, key: bytes) -> bool:
        return self._save(Mutes(keys=self.mutes.keys - {key}, lists=self.mutes.lists))

    def subscribe(self, list_thread: bytes) -> bool:
        return self._save(Mutes(keys=self.mutes.keys, lists=self.mutes.lists | {list_thread}))

    def unsubscribe(self, list_thread: bytes) -> bool:
        return self._save(Mutes(keys=self.mutes.keys, lists=self.mutes.lists - {list_thread}))
