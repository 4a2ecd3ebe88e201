"""Peers we have been connected to, kept in ``peers.json`` so a restart can dial them again.

No libp2p here: peer ids and multiaddrs are strings. Wall-clock seconds are passed in (``now``).

Rules:

1. The file is a JSON object ``{"version": 1, "peers": [{"peer_id", "addrs", "last_seen"}]}``.
   It is written atomically (temporary file, fsync, rename), mode 0600.
2. An unreadable or foreign file is not fatal: it is logged, renamed aside to ``peers.json.bad``
   and the node starts with no remembered peers (they are a convenience, not state).
3. At most ``capacity`` peers are kept, the most recently seen; peers not seen for ``max_age``
   seconds are forgotten at load.
4. Only dialable addresses are kept: no ``/p2p`` suffix, no unspecified host (0.0.0.0, ::), no
   port 0, at most `MAX_ADDRS_PER_PEER` per peer.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from p2pcomments.atomic_file import write_json_atomically
from p2pcomments.net.errors import ConfigError

__all__ = ["MAX_ADDRS_PER_PEER", "RememberedPeer", "RememberedPeers", "is_dialable_addr"]

logger = logging.getLogger(__name__)

FILE_VERSION: Final = 1
MAX_ADDRS_PER_PEER: Final = 8
_HOST_PROTOCOLS: Final = frozenset({"ip4", "ip6", "dns", "dns4", "dns6"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RememberedPeer:
    peer_id: str
    addrs: tuple[str, ...]
    last_seen: float


def is_dialable_addr(addr: str) -> bool:
    """Rule 4, on the string form of a transport multiaddr."""
    if not addr.startswith("/"):
        return False
    parts = addr[1:].split("/")
    if len(parts) < 4 or "p2p" in parts or parts[0] not in _HOST_PROTOCOLS:
        return False
    if parts[1] in ("0.0.0.0", "::"):  # noqa: S104 - rejecting, not binding
        return False
    return not any(
        name in ("tcp", "udp") and value == "0" for name, value in itertools.pairwise(parts)
    )


class RememberedPeers:
    """The in-memory view of ``peers.json``; `save` writes it back (rules 1-4)."""

    def __init__(self, path: Path, *, capacity: int = 50, max_age: float = 30 * 86400) -> None:
        if capacity < 0:
            raise ConfigError("capacity must not be negative")
        self.path = path
        self.capacity = capacity
        self.max_age = max_age
        self._peers: dict[str, RememberedPeer] = {}
        self.dirty = False

    def load(self, now: float) -> None:
        """Read the file if it exists (rule 2: a bad file is set aside, never fatal)."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as error:
            logger.warning("can't read %s: %s", self.path, error)
            return
        try:
            document = json.loads(raw)
            if not isinstance(document, dict) or document.get("version") != FILE_VERSION:
                raise ValueError("not a version 1 peers file")
            entries = document["peers"]
            if not isinstance(entries, list):
                raise ValueError("peers is not a list")
            for entry in entries:
                peer_id = entry["peer_id"]
                addrs = entry["addrs"]
                last_seen = entry["last_seen"]
                if (
                    not isinstance(peer_id, str)
                    or not isinstance(addrs, list)
                    or not all(isinstance(a, str) for a in addrs)
                    or not isinstance(last_seen, int | float)
                ):
                    raise ValueError(f"malformed entry {entry!r}")
                if now - last_seen > self.max_age:
                    continue
                self._put(peer_id, addrs, float(last_seen))
        except (ValueError, KeyError, TypeError) as error:
            logger.warning("ignoring %s (%s); moved aside to .bad", self.path, error)
            with contextlib.suppress(OSError):
                self.path.replace(self.path.with_name(self.path.name + ".bad"))
            self._peers.clear()
            return
        self._trim()

    def _put(self, peer_id: str, addrs: Iterable[str], last_seen: float) -> bool:
        kept = tuple(dict.fromkeys(a for a in addrs if is_dialable_addr(a)))[:MAX_ADDRS_PER_PEER]
        old = self._peers.get(peer_id)
        if not kept:
            if old is None:
                return False
            kept = old.addrs
        self._peers[peer_id] = RememberedPeer(peer_id=peer_id, addrs=kept, last_seen=last_seen)
        return old is None or old.addrs != kept or old.last_seen != last_seen

    def _trim(self) -> None:
        if len(self._peers) > self.capacity:
            newest = sorted(self._peers.values(), key=lambda p: p.last_seen, reverse=True)
            self._peers = {p.peer_id: p for p in newest[: self.capacity]}

    def remember(self, peer_id: str, addrs: Iterable[str], now: float) -> None:
        """Record that ``peer_id`` was reachable at ``addrs`` (rule 4 filters them)."""
        if self._put(peer_id, addrs, now):
            self.dirty = True
            self._trim()

    def forget(self, peer_id: str) -> None:
        if self._peers.pop(peer_id, None) is not None:
            self.dirty = True

    def peers(self) -> list[RememberedPeer]:
        """Most recently seen first."""
        return sorted(self._peers.values(), key=lambda p: p.last_seen, reverse=True)

    def get(self, peer_id: str) -> RememberedPeer | None:
        return self._peers.get(peer_id)

    def save(self) -> None:
        """Write the file atomically (rule 1) and clear `dirty`. Raises OSError on failure."""
        document = {
            "version": FILE_VERSION,
            "peers": [
                {"peer_id": p.peer_id, "addrs": list(p.addrs), "last_seen": p.last_seen}
                for p in self.peers()
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self.path, document, newline=False)
        self.dirty = False

    def __len__(self) -> int:
        return len(self._peers)
