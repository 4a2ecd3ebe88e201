"""What the rest of the package sees of the network service, without importing libp2p.

The configuration (`NetworkConfig`), the files the service shares with other processes
(``config.json``, ``network.json``), the service's interface as the API uses it
(`NetworkService`) and the values it returns. Pure and cheap to import (no libp2p, no trio): the
CLI builds a `NetworkConfig` from its flags and reads these files without paying for libp2p
(1-2 s, 80 MB); `p2pcomments.net.node_network` implements the service.

Rules:

1. ``<data_dir>/config.json`` may hold ``{"bootstrap": ["/ip4/…/tcp/…/p2p/<peer id>", ...]}``;
   those addresses are dialled next to the ``--bootstrap`` ones. A missing file is no bootstrap;
   an unreadable or malformed one is an error the user must fix (`ConfigError`), not something to
   start without, since a node that silently dials nobody looks like a network failure.
2. ``<data_dir>/network.json`` exists while a daemon's network runs: ``{"peer_id", "multiaddrs",
   "pid"}``, written atomically with mode 0600 once it listens, removed on a clean exit (only by
   the process that wrote it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from nacl.signing import SigningKey

from p2pcomments.errors import P2PCommentsError

if TYPE_CHECKING:
    from p2pcomments.follows import FollowList

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_LISTEN_ADDR",
    "DEFAULT_PORT",
    "DEFAULT_SYNC_INTERVAL",
    "IDENTITY_FILE",
    "NETWORK_FILE",
    "ConfigError",
    "NetworkConfig",
    "NetworkService",
    "PeerSummary",
    "SyncCounts",
    "default_listen_addrs",
    "peer_id_of_data_dir",
    "read_bootstrap_config",
    "read_network_file",
    "remove_network_file",
    "write_network_file",
]

logger = logging.getLogger(__name__)

CONFIG_FILE: Final = "config.json"
NETWORK_FILE: Final = "network.json"
IDENTITY_FILE: Final = "libp2p-identity.key"
"""The libp2p peer key's 32-byte Ed25519 seed (`p2pcomments.net.host` creates it)."""
DEFAULT_PORT: Final = 4737
DEFAULT_LISTEN_ADDR: Final = f"/ip4/0.0.0.0/tcp/{DEFAULT_PORT}"
DEFAULT_SYNC_INTERVAL: Final = 30.0


class ConfigError(P2PCommentsError, ValueError):
    """``config.json`` or a network option is unusable."""

    http_status = 400
    default_reason = "bad-config"


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkConfig:
    """Options of `p2pcomments.net.node_network.NodeNetwork` (the daemon's network flags)."""

    listen_addrs: tuple[str, ...] = ()
    """Where to listen; empty means `DEFAULT_LISTEN_ADDR`, or a free port when that one is
    taken (see `default_listen_addrs`)."""
    bootstrap_addrs: tuple[str, ...] = ()
    """Full multiaddrs ending in ``/p2p/<peer id>``; dialled until connected, and again after
    they drop."""
    enable_mdns: bool = False
    sync_interval: float = DEFAULT_SYNC_INTERVAL
    """Seconds between anti-entropy rounds with a random connected peer; 0 turns them off."""
    sync_on_connect: bool = True
    """The dialling side of a new connection starts a sync round with the peer."""
    max_sync_streams_per_peer: int = 2
    sync_ops_per_second: float = 5_000.0
    """Operations a peer may hand us through sync per second (bursts up to `sync_ops_burst`);
    over that we read more slowly (an honest peer with a large backlog only waits)."""
    sync_ops_burst: float = 50_000.0
    fetch_delay: float = 0.1
    """Seconds to gather the references pending operations miss before fetching them."""
    max_fetch_attempts: int = 3
    """Times one missing reference is asked for before we leave it to the periodic sync."""
    verified_cache_size: int = 50_000
    """Operations the gossip validator verified, kept until their message is delivered."""
    max_invalid_strikes: int = 5
    strike_window: float = 600.0
    ban_duration: float = 3600.0

    def __post_init__(self) -> None:
        if self.sync_interval < 0 or self.fetch_delay < 0:
            raise ConfigError("sync_interval and fetch_delay must not be negative")
        if self.max_sync_streams_per_peer < 1 or self.max_fetch_attempts < 0:
            raise ConfigError("max_sync_streams_per_peer must be >= 1")
        if self.sync_ops_per_second <= 0 or self.sync_ops_burst <= 0:
            raise ConfigError("sync rates must be positive")
        if self.verified_cache_size < 1:
            raise ConfigError("verified_cache_size must be >= 1")


def default_listen_addrs() -> tuple[str, ...]:
    """`DEFAULT_LISTEN_ADDR` if its port is free, else the same on a port the system picks (a
    second node on one machine still starts; the address it got is in ``network.json``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", DEFAULT_PORT))  # noqa: S104 - the address the default binds
        except OSError:
            logger.warning("port %d is taken; listening on a free port instead", DEFAULT_PORT)
            return ("/ip4/0.0.0.0/tcp/0",)
    return (DEFAULT_LISTEN_ADDR,)


def read_bootstrap_config(data_dir: Path) -> tuple[str, ...]:
    """The ``bootstrap`` addresses of ``<data_dir>/config.json`` (rule 1)."""
    path = data_dir / CONFIG_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    except OSError as error:
        raise ConfigError(f"can't read {path}: {error}") from None
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise ConfigError(f"{path} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    bootstrap = document.get("bootstrap", [])
    if not isinstance(bootstrap, list) or not all(isinstance(a, str) for a in bootstrap):
        raise ConfigError(f"{path}: bootstrap must be a list of multiaddr strings")
    return tuple(a.strip() for a in bootstrap if a.strip())


def write_network_file(data_dir: Path, *, peer_id: str, multiaddrs: list[str]) -> None:
    """Write ``network.json`` atomically, mode 0600 (rule 2)."""
    document = {"peer_id": peer_id, "multiaddrs": multiaddrs, "pid": os.getpid()}
    fd, tmp_name = tempfile.mkstemp(prefix=".network-", suffix=".tmp", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            json.dump(document, tmp, indent=1, sort_keys=True)
            tmp.write("\n")
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, data_dir / NETWORK_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def read_network_file(data_dir: Path) -> dict[str, Any] | None:
    """The contents of ``network.json``, or None if there is none (or it is unreadable)."""
    try:
        document = json.loads((data_dir / NETWORK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def remove_network_file(data_dir: Path) -> None:
    """Remove ``network.json`` if this process wrote it (rule 2)."""
    document = read_network_file(data_dir)
    if document is not None and document.get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (data_dir / NETWORK_FILE).unlink()


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncCounts:
    """What a sync round did: sessions that completed, operations received and sent, and the
    peers whose session failed (peer id to reason)."""

    peers_synced: int
    received: int
    sent: int
    failed: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "peers_synced": self.peers_synced,
            "received": self.received,
            "sent": self.sent,
            "failed": dict(self.failed),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerSummary:
    """A connected peer: its id, the addresses known for it, since when (ms since the epoch)."""

    peer_id: str
    addrs: tuple[str, ...]
    connected_since_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "peer_id": self.peer_id,
            "addrs": list(self.addrs),
            "connected_since_ms": self.connected_since_ms,
        }


class NetworkService(Protocol):
    """The running network service of a Node, as the API and CLI use it (``Node.network``)."""

    @property
    def peer_id(self) -> str: ...

    @property
    def follows(self) -> FollowList: ...

    def multiaddrs(self) -> list[str]:
        """Full dialable multiaddrs, each ending in ``/p2p/<peer id>``."""
        ...

    def peers(self) -> list[PeerSummary]: ...

    def describe(self) -> dict[str, Any]:
        """The JSON of ``GET /api/network``."""
        ...

    def counters(self) -> dict[str, int]:
        """The numeric counters ``GET /api/statistics`` shows under ``network``."""
        ...

    async def connect(self, multiaddr: str) -> str:
        """Dial and keep redialling a peer; its peer id."""
        ...

    async def sync_now(self, peer_id: str | None = None) -> SyncCounts: ...

    async def follow(self, *, thread: bytes | None = None, site: str | None = None) -> bool: ...

    async def unfollow(self, *, thread: bytes | None = None, site: str | None = None) -> bool: ...


_BASE58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_BASE58[digit])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(digits))


def peer_id_of_data_dir(data_dir: Path) -> str | None:
    """The libp2p peer id of the data dir's network identity, or None before the network first
    ran (no key yet). Computed without libp2p: base58 of the identity multihash of the
    protobuf-encoded Ed25519 public key, as libp2p derives it for keys of 42 bytes or less."""
    try:
        seed = (data_dir / IDENTITY_FILE).read_bytes()
    except OSError:
        return None
    if len(seed) != 32:
        return None
    public = bytes(SigningKey(seed).verify_key)
    key_protobuf = b"\x08\x01\x12\x20" + public  # KeyType Ed25519 (1), Data (32 bytes)
    return _base58(b"\x00" + bytes([len(key_protobuf)]) + key_protobuf)
