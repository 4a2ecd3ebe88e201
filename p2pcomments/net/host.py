"""The libp2p host of a node: identity, listening, dialling, peers, bans, pubsub services.

`P2PHost` owns one py-libp2p host (TCP + Noise + Yamux) and the Pubsub/GossipSub pair that
`gossip.Gossip` uses. Peer ids and multiaddrs cross its API as strings, so callers don't need libp2p
types. ``await nursery.start(host.run)`` starts it; cancelling that task stops it.

Rules this module keeps:

1. Identity: the Ed25519 peer key is the 32-byte seed in ``<data_dir>/libp2p-identity.key`` (mode
   0600), created on first start, so the peer id survives restarts. It is not an author key.
2. Service order: Pubsub and GossipSub run *outside* ``async with host.run(...)`` (started before,
   stopped after the host); nested inside, shutdown under load raced "Nursery is closed to new
   arrivals" in py-libp2p 0.8.1.
3. Connection state is per peer, not per connection: ``on_peer_connected`` fires when a peer goes
   from zero open connections to one, ``on_peer_disconnected`` when its last one closes (so a
   flapping peer produces both, in order, and a fresh sync). Each call runs as its own task in the
   host's nursery; an exception there is a bug and stops the host. Our view is reconciled with the
   swarm every second, so a lost libp2p event delays a notification but never loses it.
4. Redial: bootstrap peers, remembered peers and mDNS finds are dialled until connected, and again
   after they drop, with jittered exponential backoff capped per kind. The backoff is reset only by
   a connection that lasted 10 s, so a peer that closes on us at once is not dialled in a hot loop.
   Before each attempt the peer is removed from the swarm's 60 s negative dial cache (libp2p's own
   bootstrap gives up after 3 attempts).
5. Remembered peers (``peers.json``, see `remembered_peers`) are every peer we were connected to,
   with the dialable addresses the peerstore learned for it (identify); they are redialled after a
   restart.
6. Bans: `report_invalid` counts strikes; ``max_invalid_strikes`` inside ``strike_window`` bans the
   peer for ``ban_duration``: it is disconnected, its pubsub messages are dropped, it is not
   dialled, and new connections from it are closed at once. `report_invalid` and `ban` are
   synchronous and never block, so a pubsub validator may call them. Bans outlive a restart:
   ``banned-peers.json`` (`ban_file`) keeps their wall-clock ends, and `run` restores them.
7. Stream handlers registered here never let an exception escape into libp2p (it would tear down
   the connection's nursery and, from there, the swarm): errors are logged, the stream is reset.
"""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
import stat
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Final

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.custom_types import TProtocol
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.tools.anyio_service import background_trio_service

from p2pcomments.atomic_file import write_atomically
from p2pcomments.clock import wall_clock_seconds
from p2pcomments.errors import StoreError
from p2pcomments.net.ban_file import BANS_FILE, BanFile
from p2pcomments.net.errors import ConfigError, DialError, NetError, PeerBanned
from p2pcomments.net.libp2p_workarounds import (
    HardenedPubsub,
    PinnedHeartbeatGossipSub,
    build_pubsub,
    close_connections,
    dial_each_address,
    forget_failed_dial,
    noise_only_security,
    run_peerstore_cleanup,
    suppressed_log_counts,
    yamux_only_muxers,
)
from p2pcomments.net.network_statistics import HostStatistics
from p2pcomments.net.peer_accounting import BanList, StrikeCounter
from p2pcomments.net.peer_key import IDENTITY_FILE
from p2pcomments.net.remembered_peers import RememberedPeers, is_dialable_addr

__all__ = [
    "IDENTITY_FILE",
    "PEERS_FILE",
    "HostConfig",
    "P2PHost",
    "PeerCallback",
    "StreamHandler",
    "load_or_create_identity",
]

if TYPE_CHECKING:
    # libp2p depends on trio-typing, whose stale `trio-stubs` shadow trio's own annotations for
    # mypy; with them, this is the TaskStatus that `nursery.start` and TASK_STATUS_IGNORED use.
    from trio_typing import TaskStatus

logger = logging.getLogger(__name__)

PEERS_FILE: Final = "peers.json"
_SEED_BYTES: Final = 32
_HOUSEKEEPING_INTERVAL: Final = 1.0
_REMEMBER_REFRESH: Final = 600.0  # seconds before a connected peer's last_seen is rewritten
_REDIAL_POLL: Final = 0.25
_STABLE_CONNECTION: Final = 10.0  # seconds a connection must last to reset the redial backoff
_MAX_CONCURRENT_DIALS: Final = 8
_EVENT_BUFFER: Final = 4096
_jitter = random.SystemRandom()

PeerCallback = Callable[[str], Awaitable[None]]
"""Called with a peer id (base58 string)."""
StreamHandler = Callable[[INetStream], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class HostConfig:
    """How a `P2PHost` identifies itself, listens, finds peers and punishes bad ones."""

    data_dir: Path
    listen_addrs: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/0",)
    bootstrap_addrs: tuple[str, ...] = ()
    """Full multiaddrs ending in ``/p2p/<peer id>``; redialled forever (rule 4)."""
    enable_mdns: bool = False
    remember_peers: bool = True
    max_remembered_peers: int = 50
    dial_timeout: float = 10.0
    redial_initial_delay: float = 0.5
    redial_max_delay: float = 10.0
    """Backoff cap for bootstrap and mDNS peers."""
    remembered_redial_max_delay: float = 120.0
    """Backoff cap for remembered peers (many of them may be gone for good)."""
    max_invalid_strikes: int = 5
    strike_window: float = 600.0
    ban_duration: float = 3600.0

    def __post_init__(self) -> None:
        if not self.listen_addrs:
            raise ConfigError("at least one listen address is needed")
        if not 0 < self.redial_initial_delay <= self.redial_max_delay:
            raise ConfigError("need 0 < redial_initial_delay <= redial_max_delay")
        if self.dial_timeout <= 0 or self.ban_duration <= 0 or self.strike_window <= 0:
            raise ConfigError("timeouts and durations must be positive")
        if self.max_invalid_strikes < 1:
            raise ConfigError("max_invalid_strikes must be >= 1")


def load_or_create_identity(data_dir: Path) -> KeyPair:
    """The node's libp2p key pair from ``<data_dir>/libp2p-identity.key``, created if absent.

    Raises StoreError when the file exists but is not a 32-byte seed.
    """
    path = data_dir / IDENTITY_FILE
    try:
        seed = path.read_bytes()
    except FileNotFoundError:
        return _create_identity(path)
    except OSError as error:  # a directory, unreadable: the data dir is damaged
        raise StoreError(f"can't read {path}: {error}", reason="bad-identity") from None
    if len(seed) != _SEED_BYTES:
        raise StoreError(f"{path} is not a {_SEED_BYTES}-byte Ed25519 seed", reason="bad-identity")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("%s was readable by others (mode %o); now 0600", path, mode)
        path.chmod(0o600)
    try:
        return create_new_key_pair(seed)
    except ValueError as error:
        raise StoreError(f"{path}: {error}", reason="bad-identity") from error


def _create_identity(path: Path) -> KeyPair:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        seed = secrets.token_bytes(_SEED_BYTES)
        try:
            key_pair = create_new_key_pair(seed)
        except ValueError:
            continue  # libp2p refuses the (astronomically rare) seed whose point it deems invalid
        break
    try:
        # Not replacing: if another process created the file meanwhile, keep theirs.
        write_atomically(path, seed, replace=False)
    except FileExistsError:
        return load_or_create_identity(path.parent)
    return key_pair


def _parse_peer_multiaddr(text: str) -> PeerInfo:
    """``/ip4/.../tcp/.../p2p/<id>`` to a PeerInfo; ValueError when malformed or no /p2p."""
    try:
        return info_from_p2p_addr(multiaddr.Multiaddr(text))
    except ValueError:
        raise
    except Exception as error:  # multiaddr's own errors are not all ValueErrors
        raise ValueError(f"not a peer multiaddr: {text!r} ({error})") from error


class _TargetKind(Enum):
    BOOTSTRAP = "bootstrap"
    REMEMBERED = "remembered"
    MDNS = "mdns"


@dataclass(slots=True)
class _RedialTarget:
    peer_id: ID
    addrs: list[multiaddr.Multiaddr]
    kind: _TargetKind
    max_delay: float
    backoff: float
    next_attempt: float = 0.0
    dialing: bool = False
    failures: int = 0


@dataclass(slots=True)
class _Stats:
    dial_attempts: int = 0
    dial_failures: int = 0
    bans: int = 0
    refused_banned: int = 0
    events_dropped: int = 0
    connected_at: dict[str, float] = field(default_factory=dict)


_ConnectionEvent = tuple[bool, ID, INetConn]


class _ConnectionNotifee(INotifee):
    """Forwards libp2p connection events into a channel; never blocks the swarm."""

    def __init__(self, send: trio.MemorySendChannel[_ConnectionEvent], stats: _Stats) -> None:
        self._send = send
        self._stats = stats

    def _push(self, connected: bool, conn: INetConn) -> None:
        peer_id = getattr(conn.muxed_conn, "peer_id", None)
        if not isinstance(peer_id, ID):
            return
        try:
            self._send.send_nowait((connected, peer_id, conn))
        except trio.WouldBlock:
            # Housekeeping reconciles the connected set with the swarm, so this self-heals.
            self._stats.events_dropped += 1
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._push(True, conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._push(False, conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None


class P2PHost:
    """One node's libp2p host and its peer management (module rules 1-7)."""

    def __init__(
        self,
        config: HostConfig,
        *,
        on_peer_connected: PeerCallback | None = None,
        on_peer_disconnected: PeerCallback | None = None,
    ) -> None:
        self.config = config
        self._on_peer_connected = on_peer_connected
        self._on_peer_disconnected = on_peer_disconnected
        self._key_pair = load_or_create_identity(config.data_dir)
        self._listen_addrs = [multiaddr.Multiaddr(a) for a in config.listen_addrs]
        self._bootstrap = [_parse_peer_multiaddr(a) for a in config.bootstrap_addrs]
        self._host: IHost = new_host(
            key_pair=self._key_pair,
            listen_addrs=self._listen_addrs,
            sec_opt=noise_only_security(self._key_pair),
            muxer_opt=yamux_only_muxers(),
            enable_mDNS=config.enable_mdns,
        )
        network = self._host.get_network()
        if not isinstance(network, Swarm):
            raise TypeError(f"expected libp2p's Swarm, got {type(network).__name__}")
        self._swarm: Swarm = network
        self._pubsub, self._router = build_pubsub(self._host)
        self._peer_id = self._host.get_id()

        self._stats = _Stats()
        self._event_send, self._event_receive = trio.open_memory_channel[_ConnectionEvent](
            _EVENT_BUFFER
        )
        self._swarm.register_notifee(_ConnectionNotifee(self._event_send, self._stats))
        self._drop_send, self._drop_receive = trio.open_memory_channel[tuple[ID, INetConn | None]](
            _EVENT_BUFFER
        )

        # Rule 3: the open connections we know of, per peer (base58 id).
        self._connections: dict[str, set[INetConn]] = {}
        self._connection_changed = trio.Event()
        self._bans = BanList()
        self._ban_file = BanFile(config.data_dir / BANS_FILE)  # rule 6: bans outlive a restart
        self._strikes = StrikeCounter(
            max_strikes=config.max_invalid_strikes, window=config.strike_window
        )
        self._targets: dict[ID, _RedialTarget] = {}
        self._remembered = RememberedPeers(
            config.data_dir / PEERS_FILE, capacity=config.max_remembered_peers
        )
        self._nursery: trio.Nursery | None = None
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._started = False

    # -- identity and addresses ------------------------------------------------------------

    @property
    def peer_id(self) -> str:
        """This node's libp2p peer id (base58)."""
        return self._peer_id.to_base58()

    @property
    def libp2p_host(self) -> IHost:
        """The py-libp2p host, for code in ``p2pcomments.net`` only."""
        return self._host

    @property
    def pubsub(self) -> HardenedPubsub:
        """The Pubsub service this host runs, for `gossip.Gossip`."""
        return self._pubsub

    @property
    def router(self) -> PinnedHeartbeatGossipSub:
        return self._router

    def multiaddrs(self) -> list[str]:
        """Full dialable multiaddrs ending in ``/p2p/<peer id>``; empty before `run` listens.

        An unspecified listen host (0.0.0.0) is reported as 127.0.0.1: which interface a remote
        peer can reach is not knowable here; configure a concrete listen address to publish one.
        """
        result: list[str] = []
        for addr in self._host.get_addrs():
            text = str(addr)
            if text.startswith("/ip4/0.0.0.0/"):
                text = "/ip4/127.0.0.1/" + text.removeprefix("/ip4/0.0.0.0/")
            if text.startswith("/ip6/::/"):
                text = "/ip6/::1/" + text.removeprefix("/ip6/::/")
            if text not in result:
                result.append(text)
        return result

    # -- running ------------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, start pubsub, dial bootstrap and remembered peers; run until cancelled.

        ``task_status.started()`` is called once listening, so `multiaddrs` holds real ports.
        """
        if self._started:
            raise RuntimeError("a P2PHost runs once")
        self._started = True
        self._trio_token = trio.lowlevel.current_trio_token()
        if self.config.remember_peers:
            self._remembered.load(now=wall_clock_seconds())
        now = trio.current_time()
        for peer_id, seconds_left in self._ban_file.load(wall_clock_seconds()).items():
            self._bans.ban(peer_id, now, seconds_left)  # blacklisted below, once pubsub runs
        for info in self._bootstrap:
            self._add_target(info.peer_id, info.addrs, _TargetKind.BOOTSTRAP, now)
        for remembered in self._remembered.peers():
            with contextlib.suppress(ValueError):
                self._add_target(
                    ID.from_base58(remembered.peer_id),
                    [multiaddr.Multiaddr(a) for a in remembered.addrs],
                    _TargetKind.REMEMBERED,
                    now,
                )
        if self.config.enable_mdns:
            peerDiscovery.register_peer_discovered_handler(self._on_mdns_peer)
        try:
            # Rule 2: pubsub services outside the host's context.
            async with (
                background_trio_service(self._pubsub),
                background_trio_service(self._router),
                self._host.run(self._listen_addrs),
                trio.open_nursery() as nursery,
            ):
                self._nursery = nursery
                for peer_id in self._bans.banned(trio.current_time()):  # restored bans
                    with contextlib.suppress(ValueError):
                        self._pubsub.add_to_blacklist(ID.from_base58(peer_id))
                nursery.start_soon(run_peerstore_cleanup, self._host)
                nursery.start_soon(self._consume_connection_events)
                nursery.start_soon(self._consume_drop_requests)
                nursery.start_soon(self._housekeeping)
                nursery.start_soon(self._redial_loop)
                logger.info("libp2p host %s listening on %s", self.peer_id, self.multiaddrs())
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            if self.config.enable_mdns:
                peerDiscovery.unregister_peer_discovered_handler(self._on_mdns_peer)
            self._trio_token = None
            self._save_remembered()

    # -- peers ------------------------------------------------------------------------------

    def peers(self) -> list[str]:
        """Peer ids with at least one open connection."""
        return sorted(p.to_base58() for p in self._host.get_connected_peers())

    def is_connected(self, peer_id: str) -> bool:
        return bool(self._swarm.get_connections(ID.from_base58(peer_id)))

    async def wait_peer_connected(self, peer_id: str) -> None:
        """Return once ``peer_id`` is connected (as seen by ``on_peer_connected``)."""
        while peer_id not in self._connections:
            await self._connection_changed.wait()

    async def wait_peer_count(self, count: int) -> None:
        """Return once at least ``count`` peers are connected."""
        while len(self._connections) < count:
            await self._connection_changed.wait()

    async def connect(self, peer_multiaddr: str, *, remember: bool = True) -> str:
        """Dial ``/.../p2p/<peer id>`` and return the peer id once connected.

        With ``remember`` the peer is also redialled whenever it drops and kept in ``peers.json``.
        Raises ValueError for a malformed address, PeerBanned, or DialError.
        """
        info = _parse_peer_multiaddr(peer_multiaddr)
        if info.peer_id == self._peer_id:
            raise ValueError("refusing to dial ourselves")
        peer = info.peer_id.to_base58()
        if self.is_banned(peer):
            raise PeerBanned(f"peer {peer} is banned")
        await self._dial(info.peer_id, info.addrs)
        if remember:
            self._add_target(info.peer_id, info.addrs, _TargetKind.REMEMBERED, trio.current_time())
            self._remember(peer, [str(a) for a in info.addrs])
        return peer

    async def disconnect(self, peer_id: str) -> None:
        """Close every connection to ``peer_id`` (a redial target will be dialled again)."""
        await self._close_connections(ID.from_base58(peer_id))

    async def _close_connections(self, peer: ID) -> None:
        # Not Swarm.close_peer, which can leave a connection open (libp2p_workarounds 15).
        conns = set(self._swarm.get_connections(peer))
        conns.update(self._connections.get(peer.to_base58(), ()))
        await close_connections(conns)

    async def _dial(self, peer_id: ID, addrs: Sequence[multiaddr.Multiaddr]) -> None:
        # Rule 4: a peer that failed within the last 60 s is refused by the swarm otherwise.
        forget_failed_dial(self._swarm, peer_id)
        self._stats.dial_attempts += 1
        try:
            with trio.move_on_after(self.config.dial_timeout) as scope:
                # Each of our addresses in turn, not the peerstore's pick (workaround 19).
                await dial_each_address(self._host, peer_id, list(addrs))
        except Exception as error:
            # py-libp2p raises SwarmException, MultiError, OSError... from deep inside.
            self._stats.dial_failures += 1
            raise DialError(f"can't connect to {peer_id}: {error}") from error
        if scope.cancelled_caught:
            self._stats.dial_failures += 1
            raise DialError(f"can't connect to {peer_id}: timed out")

    # -- bans -------------------------------------------------------------------------------

    def is_banned(self, peer_id: str) -> bool:
        return self._bans.is_banned(peer_id, trio.current_time())

    def report_invalid(self, peer_id: str, reason: str) -> None:
        """Count one invalid message from ``peer_id``; ban it at the threshold (rule 6).

        Synchronous, non-blocking, never raises for a well-formed peer id.
        """
        logger.info("invalid data from %s: %s", peer_id, reason)
        if self._strikes.strike(peer_id, trio.current_time()):
            self.ban(peer_id, reason=f"{self.config.max_invalid_strikes} invalid messages")

    def ban(self, peer_id: str, *, duration: float | None = None, reason: str = "") -> None:
        """Ban ``peer_id`` now (rule 6). Synchronous and non-blocking."""
        peer = ID.from_base58(peer_id)
        if peer == self._peer_id:
            raise ValueError("refusing to ban ourselves")
        until = self._bans.ban(peer_id, trio.current_time(), duration or self.config.ban_duration)
        self._ban_file.record(peer_id, wall_clock_seconds() + until - trio.current_time())
        self._stats.bans += 1
        logger.warning("banning %s for %.0f s: %s", peer_id, until - trio.current_time(), reason)
        if self._nursery is not None:
            self._pubsub.add_to_blacklist(peer)
        self._remembered.forget(peer_id)
        self._request_drop(peer, None)

    def unban(self, peer_id: str) -> None:
        self._bans.unban(peer_id)
        self._ban_file.forget(peer_id)
        if self._nursery is not None:
            self._unblacklist(peer_id)

    def _unblacklist(self, peer_id: str) -> None:
        try:
            self._pubsub.remove_from_blacklist(ID.from_base58(peer_id))
        except Exception:  # the py-libp2p boundary: its pubsub state can surprise us
            logger.warning("un-blacklisting %s in pubsub failed", peer_id, exc_info=True)

    def _request_drop(self, peer: ID, conn: INetConn | None) -> None:
        """Close ``conn``, or all of ``peer``'s connections when None, from a task of ours."""
        try:
            self._drop_send.send_nowait((peer, conn))
        except trio.WouldBlock:
            logger.warning("disconnect queue full; %s stays connected until it reconnects", peer)

    async def _consume_drop_requests(self) -> None:
        async for peer, conn in self._drop_receive:
            try:
                # Keeps libp2p's auto-connector and our redial loop from dialling it again.
                self._host.get_peerstore().clear_addrs(peer)
                if conn is None:
                    await self._close_connections(peer)
                else:
                    await close_connections([conn])
            except Exception:
                logger.warning("disconnecting %s failed", peer, exc_info=True)

    # -- streams ----------------------------------------------------------------------------

    def set_stream_handler(self, protocol: str, handler: StreamHandler) -> None:
        """Serve ``protocol`` with ``handler``; banned peers are refused, errors contained (7)."""

        async def guarded(stream: INetStream) -> None:
            remote = stream.muxed_conn.peer_id.to_base58()
            if self.is_banned(remote):
                self._stats.refused_banned += 1
                await _reset_quietly(stream)
                return
            try:
                await handler(stream)
            except Exception:
                logger.warning("%s handler failed for %s", protocol, remote, exc_info=True)
                await _reset_quietly(stream)

        self._host.set_stream_handler(TProtocol(protocol), guarded)

    async def new_stream(self, peer_id: str, protocols: Sequence[str]) -> INetStream:
        """Open a stream to a connected (or dialable) peer; raises PeerBanned or DialError."""
        if self.is_banned(peer_id):
            raise PeerBanned(f"peer {peer_id} is banned")
        try:
            with trio.fail_after(self.config.dial_timeout):
                return await self._host.new_stream(
                    ID.from_base58(peer_id), [TProtocol(p) for p in protocols]
                )
        except trio.TooSlowError as error:
            raise DialError(f"opening {protocols} to {peer_id} timed out") from error
        except NetError:
            raise
        except Exception as error:
            raise DialError(f"can't open {protocols} to {peer_id}: {error}") from error

    # -- connection events ------------------------------------------------------------------

    async def _consume_connection_events(self) -> None:
        async for connected, peer, conn in self._event_receive:
            # Our own bookkeeping: a bug here fails loudly. The py-libp2p calls it makes are
            # guarded where they are made (`_swarm_connections`, `_remote_hosts`).
            if connected:
                self._connection_opened(peer, conn)
            else:
                self._connection_closed(peer, conn)

    def _connection_opened(self, peer: ID, conn: INetConn) -> None:
        peer_id = peer.to_base58()
        if self.is_banned(peer_id):
            self._stats.refused_banned += 1
            self._request_drop(peer, conn)
            return
        conns = self._connections.get(peer_id)
        if conns is None:
            self._connections[peer_id] = {conn}
            self._peer_connected(peer)
        else:
            conns.add(conn)

    def _connection_closed(self, peer: ID, conn: INetConn) -> None:
        peer_id = peer.to_base58()
        conns = self._connections.get(peer_id)
        if conns is None:
            return
        conns.discard(conn)
        if not conns:
            del self._connections[peer_id]
            self._peer_disconnected(peer)

    def _reconcile_connections(self) -> None:
        """Make our view match the swarm's, in case an event was dropped or never sent."""
        live: dict[str, tuple[ID, set[INetConn]]] = {}
        for peer, peer_conns in self._swarm_connections().items():
            open_conns = {c for c in peer_conns if not c.is_closed}
            if open_conns:
                live[peer.to_base58()] = (peer, open_conns)
        for peer_id in list(self._connections):
            if peer_id not in live:
                del self._connections[peer_id]
                self._peer_disconnected(ID.from_base58(peer_id))
        for peer_id, (peer, conns) in live.items():
            known = self._connections.get(peer_id)
            if known is not None and known.isdisjoint(conns):
                # Every connection we knew of is gone and new ones are up: a flap we missed.
                del self._connections[peer_id]
                self._peer_disconnected(peer)
                known = None
            if known is not None:
                self._connections[peer_id] = conns
            else:
                for conn in conns:
                    self._connection_opened(peer, conn)

    def _swarm_connections(self) -> dict[ID, list[INetConn]]:
        """The swarm's connections by peer; empty (and logged) if py-libp2p fails to say."""
        try:
            return {peer: list(conns) for peer, conns in self._swarm.get_connections_map().items()}
        except Exception:  # the py-libp2p boundary
            logger.warning("reading the swarm's connections failed", exc_info=True)
            return {}

    def _remote_hosts(self, peer: ID) -> set[tuple[str, ...]]:
        """(protocol, host) of the remote addresses ``peer`` is connected from."""
        try:
            return {
                tuple(str(a).split("/")[1:3])
                for conn in self._swarm.get_connections(peer)
                for a in conn.get_transport_addresses()
            }
        except Exception:  # the py-libp2p boundary
            logger.warning("reading the addresses of %s failed", peer, exc_info=True)
            return set()

    def _peer_connected(self, peer: ID) -> None:
        peer_id = peer.to_base58()
        self._stats.connected_at[peer_id] = trio.current_time()
        self._notify_change()
        logger.info("connected to %s", peer_id)
        self._remember_connected(peer)
        if peer not in self._targets and self.config.remember_peers:
            # Inbound peers are remembered once identify told us their listen addresses.
            self._add_target(peer, [], _TargetKind.REMEMBERED, trio.current_time())
        if self._on_peer_connected is not None and self._nursery is not None:
            self._nursery.start_soon(self._on_peer_connected, peer_id)

    def _peer_disconnected(self, peer: ID) -> None:
        peer_id = peer.to_base58()
        now = trio.current_time()
        since = self._stats.connected_at.pop(peer_id, now)
        self._notify_change()
        logger.info("disconnected from %s after %.1f s", peer_id, now - since)
        target = self._targets.get(peer)
        if target is not None and now - since >= _STABLE_CONNECTION:
            # It was a good connection: try again at once. A short one (the peer closes on
            # us, a flapping link) keeps the backoff that redialling has grown.
            target.backoff = self.config.redial_initial_delay
            target.failures = 0
            target.next_attempt = now
        if self._on_peer_disconnected is not None and self._nursery is not None:
            self._nursery.start_soon(self._on_peer_disconnected, peer_id)

    def _notify_change(self) -> None:
        self._connection_changed.set()
        self._connection_changed = trio.Event()

    # -- remembered peers and redial --------------------------------------------------------

    def _add_target(
        self, peer: ID, addrs: Iterable[multiaddr.Multiaddr], kind: _TargetKind, now: float
    ) -> None:
        if peer == self._peer_id:
            return
        existing = self._targets.get(peer)
        addr_list = list(addrs)
        if existing is not None:
            # Bootstrap keeps its tighter backoff cap; new addresses are added.
            for addr in addr_list:
                if addr not in existing.addrs:
                    existing.addrs.append(addr)
            return
        max_delay = (
            self.config.remembered_redial_max_delay
            if kind is _TargetKind.REMEMBERED
            else self.config.redial_max_delay
        )
        self._targets[peer] = _RedialTarget(
            peer_id=peer,
            addrs=addr_list,
            kind=kind,
            max_delay=max(max_delay, self.config.redial_initial_delay),
            backoff=self.config.redial_initial_delay,
            next_attempt=now,
        )

    def _remember(self, peer_id: str, addrs: Iterable[str]) -> None:
        if not self.config.remember_peers or self.is_banned(peer_id):
            return
        is_new = self._remembered.get(peer_id) is None
        self._remembered.remember(peer_id, addrs, wall_clock_seconds())
        if is_new:
            # Written at once: a node killed a second after meeting its first peer must find it
            # again. Later changes wait for the next housekeeping tick.
            self._save_remembered()

    def _remember_connected(self, peer: ID) -> None:
        """Store the peerstore's dialable addresses of a connected peer (rule 5)."""
        try:
            addrs = [str(a) for a in self._host.get_peerstore().addrs(peer)]
        except KeyError:  # PeerStoreError: nothing known (yet), or expired
            return
        # Identify records listen addresses with a /p2p/<peer id> suffix; peers.json keeps
        # transport addresses only (remembered_peers rule 4), so strip it or nothing is kept.
        suffix = f"/p2p/{peer.to_base58()}"
        addrs = [a.removesuffix(suffix) for a in addrs]
        # A peer listening on 0.0.0.0 advertises just that: use the IP it connected from.
        remote_hosts = self._remote_hosts(peer)
        dialable = [
            a for a in _with_unspecified_replaced(addrs, remote_hosts) if is_dialable_addr(a)
        ]
        if not dialable:
            return
        peer_id = peer.to_base58()
        known = self._remembered.get(peer_id)
        target = self._targets.get(peer)
        if target is not None:
            for text in dialable:
                addr = multiaddr.Multiaddr(text)
                if addr not in target.addrs:
                    target.addrs.append(addr)
        if (
            known is None
            or set(known.addrs) != set(dialable)
            or wall_clock_seconds() - known.last_seen > _REMEMBER_REFRESH
        ):
            self._remember(peer_id, dialable)

    def _save_remembered(self) -> None:
        if not (self.config.remember_peers and self._remembered.dirty):
            return
        try:
            self._remembered.save()
        except OSError as error:
            logger.warning("can't save remembered peers: %s", error)

    async def _redial_loop(self) -> None:
        limiter = trio.CapacityLimiter(_MAX_CONCURRENT_DIALS)
        async with trio.open_nursery() as nursery:
            while True:
                now = trio.current_time()
                for target in list(self._targets.values()):
                    peer_id = target.peer_id.to_base58()
                    if (
                        target.dialing
                        or not target.addrs
                        or now < target.next_attempt
                        or self._swarm.get_connections(target.peer_id)
                        or self._bans.is_banned(peer_id, now)
                    ):
                        continue
                    target.dialing = True
                    nursery.start_soon(self._redial_once, target, limiter)
                await trio.sleep(_REDIAL_POLL)

    async def _redial_once(self, target: _RedialTarget, limiter: trio.CapacityLimiter) -> None:
        try:
            async with limiter:
                await self._dial(target.peer_id, target.addrs)
        except DialError as error:
            target.failures += 1
            delay = target.backoff * _jitter.uniform(0.8, 1.2)
            target.next_attempt = trio.current_time() + delay
            target.backoff = min(target.backoff * 2, target.max_delay)
            logger.debug(
                "redial %s (%s) failed %d times, next in %.1f s: %s",
                target.peer_id,
                target.kind.value,
                target.failures,
                delay,
                error,
            )
        else:
            # Not reset yet: a connection that is closed again at once (the peer banned us, a
            # flapping link) must not turn this loop into a hot one. _peer_disconnected resets
            # the backoff after a connection that lasted.
            target.failures = 0
            target.next_attempt = trio.current_time() + target.backoff
            target.backoff = min(target.backoff * 2, target.max_delay)
        finally:
            target.dialing = False

    def _on_mdns_peer(self, info: PeerInfo) -> None:
        """Runs on zeroconf's thread: hop back into trio before touching any state."""
        token = self._trio_token
        if token is None:
            return
        try:
            trio.from_thread.run_sync(self._add_mdns_target, info, trio_token=token)
        except trio.RunFinishedError:
            pass
        except RuntimeError:
            # Called from the trio thread itself (not the case with zeroconf today).
            self._add_mdns_target(info)

    def _add_mdns_target(self, info: PeerInfo) -> None:
        if self._nursery is None or info.peer_id == self._peer_id:
            return
        logger.info("mDNS found %s", info.peer_id)
        self._add_target(info.peer_id, info.addrs, _TargetKind.MDNS, trio.current_time())

    # -- housekeeping -----------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        ticks = 0
        while True:
            await trio.sleep(_HOUSEKEEPING_INTERVAL)
            ticks += 1
            self._housekeeping_tick(ticks)  # ours: a bug fails loudly (libp2p calls are guarded)

    def _housekeeping_tick(self, ticks: int) -> None:
        now = trio.current_time()
        for peer_id in self._bans.prune(now):
            logger.info("ban of %s ended", peer_id)
            self._ban_file.forget(peer_id)
            self._unblacklist(peer_id)
        self._reconcile_connections()
        for peer_id in list(self._connections):
            # Identify fills in a new peer's listen addresses within a second or two.
            if ticks % 5 == 0 or now - self._stats.connected_at.get(peer_id, now) < 15:
                self._remember_connected(ID.from_base58(peer_id))
        # Every tick (only when something changed): a node that is SIGKILLed must still find
        # its peers again after a restart.
        self._save_remembered()
        if ticks % 5 == 0:
            self._strikes.prune(now)

    def statistics(self) -> HostStatistics:
        """Counters for logs, probes and tests (trio's ``statistics()`` convention)."""
        queues = self._pubsub.peer_queues
        return HostStatistics(
            peer_id=self.peer_id,
            connected_peers=len(self._connections),
            redial_targets=len(self._targets),
            remembered_peers=len(self._remembered),
            banned_peers=len(self._bans.banned(trio.current_time())),
            bans=self._stats.bans,
            refused_banned=self._stats.refused_banned,
            dial_attempts=self._stats.dial_attempts,
            dial_failures=self._stats.dial_failures,
            connection_events_dropped=self._stats.events_dropped,
            max_outbound_queue=max((len(q) for q in queues.values()), default=0),
            suppressed_logs=suppressed_log_counts(),
        )


def _with_unspecified_replaced(addrs: list[str], remote_hosts: set[tuple[str, ...]]) -> list[str]:
    """``/ip4/0.0.0.0/tcp/P`` becomes ``/ip4/<remote ip>/tcp/P`` for each remote IPv4 (same for
    ``/ip6/::``); other addresses are kept as they are."""
    result: list[str] = []
    for addr in addrs:
        parts = addr.split("/")
        if len(parts) > 3 and (parts[1], parts[2]) in (("ip4", "0.0.0.0"), ("ip6", "::")):  # noqa: S104
            for protocol, host in sorted(remote_hosts):
                if protocol == parts[1]:
                    result.append("/".join([*parts[:2], host, *parts[3:]]))
        else:
            result.append(addr)
    return result


async def _reset_quietly(stream: INetStream) -> None:
    try:
        await stream.reset()
    except Exception:
        logger.debug("stream reset failed", exc_info=True)
