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
4. When a commit of operations the node already holds in memory fails (a full disk, an I/O
   error: `node_state` rule 1), memory is ahead of disk and the node takes no more writes. The
   daemon then stops as on a signal (rule 2) and raises `StoreError` (reason ``store-failed``;
   `DiskFull` for a full disk), so ``p2pc daemon`` exits 5 with one line saying why, and a
   supervisor (systemd's ``Restart=on-failure``) starts it again: reopening loads what is on
   disk, and sync fetches the rest from peers. Nothing acknowledged is lost: it was committed
   before it was acknowledged. A local write refused for a full disk does not fail the node
   (it is committed before it is applied), so API writes answer 507 and work again once there
   is space, without a restart.
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
from p2pcomments.errors import ConflictError, DiskFull, StoreError
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
            if leaf.errno == errno.ENOSPC:  # writing the network's files, not listening
                raise DiskFull(
                    f"cannot start the network in {node.data_dir}: the disk is full"
                    f" ({leaf.strerror}); free some space and start the daemon again"
                ) from None
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
    """Until SIGINT/SIGTERM, or until the daemon stops for another reason (rule 4)."""
    async with trio.open_nursery() as nursery:

        async def stop_when_closing() -> None:
            await closing.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(stop_when_closing)
        async for _ in signals:
            break
        closing.set()
        startup.cancel()  # a service still starting (a slow bootstrap...) must not delay the stop


_HEALTH_POLL: Final = 0.2  # seconds between looks at the node's store health (rule 4)


async def _stop_on_store_failure(
    node: Node, closing: trio.Event, startup: trio.CancelScope
) -> None:
    """Rule 4: stop the daemon once the node's store has failed."""
    while node.store_failure is None:
        if closing.is_set():
            return
        await trio.sleep(_HEALTH_POLL)
    closing.set()
    startup.cancel()


def _store_failed(node: Node) -> StoreError:
    """What ``p2pc daemon`` says when it stopped for rule 4."""
    failure = node.store_failure
    error = DiskFull if isinstance(failure, DiskFull) else StoreError
    return error(
        f"stopped: a write to {node.store.path} failed ({failure}), so memory was ahead of"
        " disk; nothing acknowledged was lost. Start the daemon again"
        + (" once the disk has space" if error is DiskFull else ""),
        reason="store-failed",
    )


# The middle generation collected every second young collection (a threshold of 1; CPython
# collects it once its count exceeds the threshold), the full one about as often as with the
# defaults: each middle collection holds what survived ~20,000 allocations, so it stays well
# under the loop's 50 ms budget for the same total work (scripts/bench_loop.py, a 100k-op sync:
# longest collection 87 ms with (10_000, 20, 20); with (10_000, 2, 200), once two ingest calls
# were in flight, 26-53 ms and two of nine catch-ups over 50 ms; with this 20-34 ms, none).
GC_THRESHOLDS: Final = (10_000, 1, 400)


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


# Middle-generation collections between two freezes of what survived them: a full collection
# comes after 400 (GC_THRESHOLDS) and walks every object not frozen, 190 ms for a 100k-op sync
# (scripts/bench_loop.py with 64 KiB OPS frames), so survivors are frozen long before.
FREEZE_AFTER_COLLECTIONS: Final = 20
FREEZE_CHECK_SECONDS: Final = 1.0


async def freeze_survivors(check_seconds: float = FREEZE_CHECK_SECONDS) -> None:
    """`tune_gc`'s freeze again, whenever operations have streamed in since the last one: a
    full collection then walks only what came since, not every operation applied since open.

    What is garbage at that moment is collected first (a middle-generation collection, no
    longer than one the collector would run anyway), so only cycles still alive are frozen; a
    frozen cycle that dies later is never collected, a few objects per freeze (operations and
    thread states hold none: refcounting frees them)."""
    last = gc.get_stats()[1]["collections"]
    while True:
        await trio.sleep(check_seconds)
        if gc.get_stats()[1]["collections"] - last >= FREEZE_AFTER_COLLECTIONS:
            gc.collect(1)
            gc.freeze()
            last = gc.get_stats()[1]["collections"]


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
            try:
                await _serve(
                    node,
                    closing,
                    token,
                    host,
                    port,
                    start_services,
                    public,
                    gateway_limits,
                    on_ready,
                    on_stopping,
                    signals,
                )
            except BaseException:
                if node.store_failure is None:
                    raise
                # A service that met the failed store first may have raised: same stop (rule 4).
                raise _store_failed(node) from None
            if node.store_failure is not None:
                raise _store_failed(node)


async def _serve(
    node: Node,
    closing: trio.Event,
    token: str,
    host: str,
    port: int,
    start_services: StartServices,
    public: tuple[str, int] | None,
    gateway_limits: GatewayLimits | None,
    on_ready: Callable[[Node, ApiAddress], None] | None,
    on_stopping: Callable[[], None] | None,
    signals: AsyncIterator[int],
) -> None:
    """The daemon's services on an opened node, until ``closing`` (rules 1, 2 and 4)."""
    async with trio.open_nursery() as services:
        services.start_soon(freeze_survivors)
        services.start_soon(node.make_missing_listings)  # a store from before them: once
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
            api.start_soon(_stop_on_store_failure, node, closing, startup)
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
