"""The network service as the rest of the package sees it (``Node.network``), and the values its
calls return. Cheap to import: no libp2p; `p2pcomments.net.node_network` implements it.

Rules:

1. The API and the CLI reach the network only through `NetworkService`; they translate its
   values to JSON themselves (`p2pcomments.api.representations`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from p2pcomments.follows import FollowList, Follows
    from p2pcomments.net.network_statistics import NetworkCounters, NetworkStatistics

__all__ = ["NetworkDescription", "NetworkService", "PeerSummary", "SyncCounts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncCounts:
    """What a sync round did: sessions that completed, operations received and sent, and the
    peers whose session failed (peer id to reason)."""

    peers_synced: int
    received: int
    sent: int
    failed: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerSummary:
    """A connected peer: its id, the addresses known for it, since when (ms since the epoch)."""

    peer_id: str
    addrs: tuple[str, ...]
    connected_since_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkDescription:
    """The network service at a glance (``GET /api/network``)."""

    peer_id: str
    multiaddrs: tuple[str, ...]
    peers: tuple[PeerSummary, ...]
    follows: Follows
    statistics: NetworkStatistics


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

    def describe(self) -> NetworkDescription:
        """What ``GET /api/network`` shows."""
        ...

    def counters(self) -> NetworkCounters:
        """The numeric counters ``GET /api/statistics`` shows under ``network``."""
        ...

    async def connect(self, multiaddr: str) -> str:
        """Dial and keep redialling a peer; its peer id."""
        ...

    async def sync_now(self, peer_id: str | None = None) -> SyncCounts: ...

    async def follow(self, *, thread: bytes | None = None, site: str | None = None) -> bool: ...

    async def unfollow(self, *, thread: bytes | None = None, site: str | None = None) -> bool: ...
