"""The daemon: one Node, its local HTTP API and (later) its networking, under one nursery.

Shape (every service is a task of the daemon's nursery; shutdown is cancellation):

    open_node(data_dir)                      the data dir's lock, the store, the replica
      services nursery                       long-running services, cancelled last
        ├── NodeNetwork.run                  libp2p: gossip, sync, discovery (`start_network`)
        └── api nursery
              ├── serve_api(node, ...)       Hypercorn + Starlette on 127.0.0.1
              ├── serve_api(gateway=...)     the public gateway, with ``public=`` (--public)
              └── _wait_for_signal           SIGINT/SIGTERM → graceful shutdown

Rules:

1. ``api.json`` (address and token) exists only while the API answers: written once it listens,
   removed before the API stops.
2. A signal stops the API gracefully (requests in flight finish, event streams end), then
   cancels the other services, then closes the Node. Every acknowledged write was committed
   before it was acknowledged, so nothing acknowledged is lost; the exit code is 0.
3. A second daemon on the same data dir fails in `open_node` with `ConflictError`, before it
   listens on anything.
"""

from __future__ import annotations

import dataclasses
import errno
import gc
import secrets
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

import trio

from p2pcomments.api.address_file import ApiAddress, remove_address_file, write_address_file
from p2pcomments.api.errors import CannotListen
from p2pcomments.api.gateway import GatewayLimits
from p2pcomments.api.server import serve_api
from p2pcomments.errors import ConflictError
from p2pcomments.net.interface import NetworkConfig

if TYPE_CHECKING:
    from p2pcomments.node import Node

__all__ = ["StartServices", "run_daemon", "start_network", "start_no_services"]


StartServices = Callable[["Node", trio.Nursery], Awaitable[None]]


async def start_no_services(node: Node, services: trio.Nursery) -> None:
    """The default: the API alone (a node that works offline)."""


def start_network(config: NetworkConfig) -> StartServices:
    """Services of a networked daemon: the node's `NodeNetwork`, started with ``config``.

    libp2p is imported only when this runs (1-2 s, 80 MB), so commands that do no networking
    never pay for it. An address that can't be listened on becomes `ConflictError`
    (``address-in-use``) or `CannotListen`; a malformed bootstrap address, `ConfigError`.
    """

    async def start(node: Node, services: trio.Nursery) -> None:
        from p2pcomments.net.interface import ConfigError
        from p2pcomments.net.node_network import NodeNetwork

        try:
            network = NodeNetwork(node, config)
        except ValueError as error:  # a bootstrap or listen address libp2p can't parse
            raise ConfigError(f"bad network address: {error}") from None
        try:
            await services.start(network.run)
        except (OSError, BaseExceptionGroup) as error:
            leaf = _os_error(error)
            if leaf is None:
                raise
            addresses = " ".join(network.host.config.listen_addrs)
            message = f"cannot listen on {addresses}: {leaf.strerror or leaf}"
            if leaf.errno == errno.EADDRINUSE:
                raise ConflictError(message, reason="address-in-use") from None
            raise CannotListen(message) from None

    return start


def _os_error(error: BaseException) -> OSError | None:
    """The OSError at the bottom of (nested) exception groups with one leaf, if that is it."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error if isinstance(error, OSError) else None


async def _wait_for_signal(
    signals: AsyncIterator[int], closing: trio.Event, startup: trio.CancelScope
) -> None:
    async for _ in signals:
        break
    closing.set()
    startup.cancel()  # a service still starting (a slow bootstrap...) must not delay the stop


GC_THRESHOLDS: Final = (10_000, 20, 20)


def tune_gc() -> None:
    """The daemon's cyclic-GC settings, for a process that holds every operation in memory.

    Operations, once loaded or applied, live as long as the process and hold no reference
    cycles (refcounting frees them): `gc.freeze` keeps full collections from walking the loaded
    ones, and a higher young-generation threshold makes collections that mostly find nothing
    rarer while operations stream in. Measured by ``scripts/bench_store.py``: ingest of 100k
    operations spent ~10% of its time in the collector with the defaults.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run_daemon(
    data_dir: Path | None,
    *,
    host: str,
    port: int,
    passphrase: str | None = None,
    start_services: StartServices = start_no_services,
    public: tuple[str, int] | None = None,
    gateway_limits: GatewayLimits | None = None,
    on_ready: Callable[[Node, ApiAddress], None] | None = None,
    on_stopping: Callable[[], None] | None = None,
) -> None:
    """Run until SIGINT or SIGTERM (rules 1-3). ``on_ready`` is called once the API answers.

    ``start_services(node, services)`` starts the long-running services other than the API, in
    the ``services`` nursery, and returns once they are up; networking joins here, and only here
    (``start_services=start_network(config)``). It runs before ``api.json`` is written, so the
    API announces itself only once the node is reachable by peers too; the services are
    cancelled after the API has drained. ``public`` (host, port) also serves the public gateway
    there (reads, submitted operations, the web files; ``gateway_limits``), named in
    ``api.json`` as ``public_url``.
    """
    from p2pcomments.node import open_node

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_node(data_dir, passphrase=passphrase) as node:
            tune_gc()
            closing = trio.Event()
            token = secrets.token_urlsafe(32)
            async with trio.open_nursery() as services:
                async with trio.open_nursery() as api:
                    address: ApiAddress = await api.start(
                        partial(serve_api, node, host=host, port=port, token=token, closing=closing)
                    )
                    if public is not None:
                        gateway: ApiAddress = await api.start(
                            partial(
                                serve_api,
                                node,
                                host=public[0],
                                port=public[1],
                                token=token,
                                closing=closing,
                                gateway=gateway_limits or GatewayLimits(),
                            )
                        )
                        address = dataclasses.replace(address, public_url=gateway.url)
                    startup = trio.CancelScope()
                    api.start_soon(_wait_for_signal, signals, closing, startup)
                    with startup:
                        await start_services(node, services)
                    if not closing.is_set():
                        write_address_file(node.data_dir, address)
                        try:
                            if on_ready is not None:
                                on_ready(node, address)
                            await closing.wait()
                        finally:
                            remove_address_file(node.data_dir, address.pid)
                            closing.set()
                    if on_stopping is not None:
                        on_stopping()
                services.cancel_scope.cancel()
