"""How a command reaches the Node: through the running daemon's HTTP API, or by opening the data
dir itself. Both answer an action of `p2pcomments.api.actions` with the same JSON forms.

Rules:

1. A daemon's answer is used when ``api.json`` names a live process; a refused connection means
   nothing was sent, so the command runs offline instead (the file outlived its daemon).
2. Offline, each call opens the data dir, runs the action's handler on the Node and closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from p2pcomments.api.address_file import ApiAddress

if TYPE_CHECKING:
    from p2pcomments.cli.session import Session
    from p2pcomments.node import Node

__all__ = ["Backend", "DaemonBackend", "DirectBackend"]


class Backend(Protocol):
    daemon: ApiAddress | None

    def call(self, action: str, /, **params: Any) -> Any: ...


class DaemonBackend:
    def __init__(self, session: Session, address: ApiAddress) -> None:
        from p2pcomments.cli.client import DaemonClient

        self.session = session
        self.daemon: ApiAddress | None = address
        self.client = DaemonClient(address)

    def call(self, action: str, /, **params: Any) -> Any:
        from p2pcomments.cli.client import DaemonRefused

        try:
            return self.client.call(action, **params)
        except DaemonRefused:
            # Nothing listens there, so nothing was sent: api.json outlived its daemon.
            return self.session.without_daemon(self.client.address).call(action, **params)


class DirectBackend:
    """Opens the data dir for each call: commands make one call each."""

    daemon: ApiAddress | None = None

    def __init__(self, session: Session) -> None:
        self.session = session

    def call(self, action: str, /, **params: Any) -> Any:
        from p2pcomments.api.actions import ACTIONS_BY_NAME

        handler = ACTIONS_BY_NAME[action].handler

        async def run(node: Node) -> Any:
            from p2pcomments.cli.commands.rules import mining_progress

            node.mining_progress = mining_progress  # a proof of work shows its progress
            return await handler(node, **params)

        return self.session.run_with_node(run)
