"""The network names the rest of the package used to import from here, kept for old imports.

New code imports each from its home: `p2pcomments.net.config` (`NetworkConfig`, ``config.json``),
`p2pcomments.net.network_file` (``network.json``), `p2pcomments.net.peer_key` (the peer key file
and its peer id), `p2pcomments.net.service` (`NetworkService` and its values),
`p2pcomments.net.errors` (`ConfigError`). Like them, this imports no libp2p.
"""

from __future__ import annotations

from p2pcomments.net.config import (
    CONFIG_FILE,
    DEFAULT_LISTEN_ADDR,
    DEFAULT_PORT,
    DEFAULT_SYNC_INTERVAL,
    NetworkConfig,
    default_listen_addrs,
    read_bootstrap_config,
)
from p2pcomments.net.errors import ConfigError
from p2pcomments.net.network_file import (
    NETWORK_FILE,
    read_network_file,
    remove_network_file,
    write_network_file,
)
from p2pcomments.net.peer_key import IDENTITY_FILE, peer_id_of_data_dir
from p2pcomments.net.service import NetworkService, PeerSummary, SyncCounts

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
