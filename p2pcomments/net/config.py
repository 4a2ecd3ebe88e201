"""The network service's configuration: `NetworkConfig` (the daemon's network flags) and
``config.json``. Cheap to import (no libp2p, no trio): the CLI builds a `NetworkConfig` from its
flags without paying for libp2p.

Rules:

1. ``<data_dir>/config.json`` may hold ``{"bootstrap": ["/ip4/…/tcp/…/p2p/<peer id>", ...]}``;
   those addresses are dialled next to the ``--bootstrap`` ones. A missing file is no bootstrap;
   an unreadable or malformed one is an error the user must fix (`ConfigError`), not something to
   start without, since a node that silently dials nobody looks like a network failure.
2. A `NetworkConfig` is checked when built: a value out of range is a `ConfigError`.
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from p2pcomments.net.errors import ConfigError

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_LISTEN_ADDR",
    "DEFAULT_PORT",
    "DEFAULT_SYNC_INTERVAL",
    "ConfigError",
    "NetworkConfig",
    "default_listen_addrs",
    "read_bootstrap_config",
]

logger = logging.getLogger(__name__)

CONFIG_FILE: Final = "config.json"
DEFAULT_PORT: Final = 4737
DEFAULT_LISTEN_ADDR: Final = f"/ip4/0.0.0.0/tcp/{DEFAULT_PORT}"
DEFAULT_SYNC_INTERVAL: Final = 30.0


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
    sketch_symbols_per_second: float = 4_096.0
    """Coded symbols (SPEC §9.7) we encode for one peer per second as responder, bursts up to
    `sketch_symbols_burst`: a session may ask for 131,072, and a peer could open one after
    another. Over its budget a peer's SKETCH_ASK is answered ERROR ``sketch-budget``."""
    sketch_symbols_burst: float = 262_144.0
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
        if self.sketch_symbols_per_second <= 0 or self.sketch_symbols_burst <= 0:
            raise ConfigError("sketch symbol budgets must be positive")
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
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text: {error}") from None
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise ConfigError(f"{path} is not JSON: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path} is not JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    bootstrap = document.get("bootstrap", [])
    if not isinstance(bootstrap, list) or not all(isinstance(a, str) for a in bootstrap):
        raise ConfigError(f"{path}: bootstrap must be a list of multiaddr strings")
    return tuple(a.strip() for a in bootstrap if a.strip())
