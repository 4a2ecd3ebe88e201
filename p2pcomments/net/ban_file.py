"""Peer bans that survive a restart: ``<data_dir>/banned-peers.json``.

Rules:

1. The file is ``{"version": 1, "bans": {"<peer id>": <expiry, wall-clock seconds>}}``, written
   atomically (mode 0600) whenever a ban starts or ends. A ban's expiry is kept in wall-clock
   seconds because the host's own clock (trio's) starts again at every run.
2. `load` gives the bans still running (expiry in the future) with the seconds left; a missing,
   unreadable or foreign file gives none (logged), and is replaced at the next ban: bans are a
   defence, and a node that starts with none is no worse than before.
3. Nothing here blocks for long: the file holds at most `MAX_BANS` entries (the soonest to end
   are dropped first).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Final

from p2pcomments.atomic_file import write_json_atomically

__all__ = ["BANS_FILE", "MAX_BANS", "BanFile"]

logger = logging.getLogger(__name__)

BANS_FILE: Final = "banned-peers.json"
MAX_BANS: Final = 4096
_VERSION: Final = 1


class BanFile:
    """Rules 1-3 for one data dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._expiries: dict[str, float] = {}

    def load(self, now: float) -> dict[str, float]:
        """The bans still running at wall-clock ``now``: peer id → seconds left (rule 2)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("version") != _VERSION or not isinstance(raw.get("bans"), dict):
                raise ValueError("not a ban file")
            expiries = {
                str(peer): float(expiry)
                for peer, expiry in raw["bans"].items()
                if isinstance(expiry, int | float)
            }
        except FileNotFoundError:
            expiries = {}
        except (OSError, ValueError, AttributeError) as error:
            logger.warning("%s is unreadable (%s); starting with no bans", self.path, error)
            expiries = {}
        self._expiries = {peer: expiry for peer, expiry in expiries.items() if expiry > now}
        return {peer: expiry - now for peer, expiry in self._expiries.items()}

    def record(self, peer_id: str, expiry: float) -> None:
        """``peer_id`` is banned until wall-clock ``expiry`` (a later one never shortens)."""
        if self._expiries.get(peer_id, 0.0) >= expiry:
            return
        self._expiries[peer_id] = expiry
        if len(self._expiries) > MAX_BANS:
            for peer in sorted(self._expiries, key=self._expiries.__getitem__)[:-MAX_BANS]:
                del self._expiries[peer]
        self._save()

    def forget(self, peer_id: str) -> None:
        if self._expiries.pop(peer_id, None) is not None:
            self._save()

    def _save(self) -> None:
        try:
            write_json_atomically(self.path, {"version": _VERSION, "bans": self._expiries})
        except OSError as error:  # a full disk must not stop the node; the ban holds in memory
            logger.warning("could not save the bans to %s: %s", self.path, error)
