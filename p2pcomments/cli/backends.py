"""How a command reaches the Node: through the running daemon's HTTP API, or by opening the data
dir itself. Both answer an action of `p2pcomments.api.actions` with the same JSON forms.

Rules:

1. A daemon's answer is used when ``api.json`` names a live process; a refused connection means
   nothing was sent, so the command runs offline instead (the file outlived its daemon).
2. Offline, each call opens the data dir, runs the action's handler on the Node and closes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from p2pcomments.api.address_file import ApiAddress

if TYPE_CHECKING:
    from p2pcomments.cli.client import ByteSink
    from p2pcomments.cli.session import Session
    from p2pcomments.node import Node

__all__ = ["Backend", "DaemonBackend", "DirectBackend"]


class Backend(Protocol):
    daemon: ApiAddress | None

    def call(self, action: str, /, **params: Any) -> Any: ...

    def download(self, action: str, sink: ByteSink, /, **params: Any) -> None:
        """`call` for an action that produces a bundle, its bytes written to ``sink`` as they
        come (an export larger than memory)."""


_MAY_MINE = frozenset({"comment", "reply"})


class DaemonBackend:
    def __init__(self, session: Session, address: ApiAddress) -> None:
        from p2pcomments.cli.client import DaemonClient

        self.session = session
        self.daemon: ApiAddress | None = address
        self.client = DaemonClient(address)

    def call(self, action: str, /, **params: Any) -> Any:
        from p2pcomments.cli.client import DaemonRefused

        try:
            if action in _MAY_MINE:
                self._say_if_mining(action, params)
            return self.client.call(action, **params)
        except DaemonRefused:
            # Nothing listens there, so nothing was sent: api.json outlived its daemon.
            return self.session.without_daemon(self.client.address).call(action, **params)

    def download(self, action: str, sink: ByteSink, /, **params: Any) -> None:
        from p2pcomments.cli.client import DaemonRefused

        try:
            self.client.download(action, sink, **params)
        except DaemonRefused:
            self.session.without_daemon(self.client.address).download(action, sink, **params)

    def _say_if_mining(self, action: str, params: dict[str, Any]) -> None:
        """The daemon mines a comment's proof of work (SPEC §11.6) before it answers: say so on
        stderr, with what it costs, when the thread's rules ask this author for some."""
        import sys

        from p2pcomments.errors import P2PCommentsError

        try:
            thread = params.get("thread")
            if action == "reply":
                thread = self.client.call("get_comment", comment=params["comment"])["thread"]
            rules = self.client.call("rules", thread=thread)
            me = self.client.call("identity")["author"]
        except (P2PCommentsError, KeyError, TypeError, ValueError):
            return  # only a notice: the call itself reports what is wrong
        bits = int(rules.get("difficulty") or 0)
        scopes = [rules["thread"], *([rules["site"]] if rules.get("site") else [])]
        exempt = any(
            me == scope["owner"] or me in scope["moderators"] or me in scope["approved_authors"]
            for scope in scopes
        )
        if bits and not exempt:
            print(
                f"the daemon is mining a proof of work of {bits} bits (about {1 << bits:,}"
                " hashes) for this comment...",
                file=sys.stderr,
            )


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

    def download(self, action: str, sink: ByteSink, /, **params: Any) -> None:
        from p2pcomments.api.actions import ACTIONS_BY_NAME

        handler = ACTIONS_BY_NAME[action].handler

        async def run(node: Node) -> None:
            result: bytes | AsyncIterator[bytes] = await handler(node, **params)
            if isinstance(result, bytes):
                sink.write(result)
                return
            async for chunk in result:
                sink.write(chunk)

        self.session.run_with_node(run)
