"""Serving the API with Hypercorn's trio worker, as a service of the daemon's nursery."""

from __future__ import annotations

import errno
import logging
import os
from typing import TYPE_CHECKING, Any, Final

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from p2pcomments.api.address_file import ApiAddress
from p2pcomments.api.app import build_app
from p2pcomments.api.errors import CannotListen
from p2pcomments.api.gateway import GatewayLimits
from p2pcomments.errors import ConflictError

if TYPE_CHECKING:
    # libp2p depends on trio-typing, whose stale `trio-stubs` shadow trio's own annotations for
    # mypy; with them, this is the TaskStatus that `nursery.start` and TASK_STATUS_IGNORED use.
    from trio_typing import TaskStatus

    from p2pcomments.node import Node

__all__ = ["GRACEFUL_SECONDS", "serve_api"]

GRACEFUL_SECONDS: Final = 5.0
_WILDCARD_HOSTS: Final = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not binds


def _config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = GRACEFUL_SECONDS
    config.include_server_header = False
    return config


def _listen_error(error: BaseException, host: str, port: int) -> BaseException:
    """The one-line error for a socket that can't be bound (hypercorn may wrap it in a group)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    if not isinstance(error, OSError):
        return error
    message = f"cannot serve the API on {host}:{port}: {error.strerror or error}"
    if error.errno == errno.EADDRINUSE:
        return ConflictError(message, reason="address-in-use")
    return CannotListen(message)


def _port_of(bind: str) -> int:
    # hypercorn reports binds as "http://127.0.0.1:8765" or "http://[::1]:8765"
    return int(bind.rsplit(":", 1)[1])


async def serve_api(
    node: Node,
    *,
    host: str,
    port: int,
    token: str,
    closing: trio.Event,
    gateway: GatewayLimits | None = None,
    task_status: TaskStatus[ApiAddress] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``node``'s API on ``host:port`` (port 0 picks a free one) until ``closing`` is set,
    then finish the requests in flight (at most `GRACEFUL_SECONDS`) and return. With
    ``gateway``, serve the public gateway there instead (`app` rule 6): any Host header.

    Reports the address it listens on through ``task_status``. A port in use is a `ConflictError`.
    """
    allowed: frozenset[str] | None = None
    if host not in _WILDCARD_HOSTS and gateway is None:
        allowed = frozenset({"127.0.0.1", "localhost", "::1", "[::1]", host.lower()})
    app: Any = build_app(node, token=token, closing=closing, allowed_hosts=allowed, gateway=gateway)
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    async with trio.open_nursery() as nursery:
        try:
            binds = await nursery.start(
                lambda task_status: serve(
                    app, _config(host, port), shutdown_trigger=closing.wait, task_status=task_status
                )
            )
        except (OSError, BaseExceptionGroup) as error:
            raise _listen_error(error, host, port) from None
        task_status.started(
            ApiAddress(host=host, port=_port_of(binds[0]), token=token, pid=os.getpid())
        )
