"""One run of one command: its options, its data dir, its output and the way to reach the Node.

Rules:

1. When a daemon runs on the data dir a command goes through its HTTP API; otherwise it opens the
   data dir itself (`p2pcomments.cli.backends`). Output is the same either way: both produce the
   API's JSON forms, which ``--json`` prints and the text mode renders.
2. Exit codes: 0 ok, 1 user error, 2 usage (argparse), 3 daemon unreachable, 4 data dir busy
   (another process holds it), 5 internal error, 130 interrupted.
3. Trio and the Node are imported only when a command opens the data dir, never at startup.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from p2pcomments.api.address_file import ApiAddress, read_address_file
from p2pcomments.cli.backends import Backend, DaemonBackend, DirectBackend
from p2pcomments.errors import ConflictError, PassphraseError

if TYPE_CHECKING:
    from p2pcomments.cli.client import ByteSink
    from p2pcomments.node import Node

__all__ = [
    "DEBUG_VARIABLE",
    "EXIT_BUSY",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "EXIT_USER_ERROR",
    "HOME_VARIABLE",
    "PASSPHRASE_VARIABLE",
    "Session",
    "single_leaf",
]

EXIT_OK: Final = 0
EXIT_USER_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREACHABLE: Final = 3
EXIT_BUSY: Final = 4
EXIT_INTERNAL: Final = 5
EXIT_INTERRUPTED: Final = 130

PASSPHRASE_VARIABLE: Final = "P2PC_PASSPHRASE"  # noqa: S105 - a variable name
HOME_VARIABLE: Final = "P2PC_HOME"  # the same variable `p2pcomments.identity` reads
DEBUG_VARIABLE: Final = "P2PC_DEBUG"


class Session:
    """One run of one command: its options, its data dir and the way to reach the Node."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = getattr(args, "json", False)
        self.data_dir = _resolve_data_dir(getattr(args, "data_dir", None))
        self._backend: Backend | None = None
        self._stale_daemon: ApiAddress | None = None
        self.passphrase: str | None = os.environ.get(PASSPHRASE_VARIABLE) or None

    def backend(self) -> Backend:
        """The daemon's API when api.json names a live process, else the data dir (rule 1).

        Whether the daemon answers is learnt from the command's own request (no extra round
        trip): a refused connection means nothing was sent, and the command runs offline.
        """
        if self._backend is None:
            address = read_address_file(self.data_dir)
            if address is None or not _process_exists(address.pid):
                self._backend = DirectBackend(self)
            else:
                self._backend = DaemonBackend(self, address)
        return self._backend

    def without_daemon(self, stale: ApiAddress) -> Backend:
        """Switch to the data dir; `run_with_node` blames ``stale`` if the data dir is locked."""
        self._stale_daemon = stale
        self._backend = DirectBackend(self)
        return self._backend

    def call(self, action: str, /, **params: Any) -> Any:
        return self.backend().call(action, **params)

    def download(self, action: str, sink: ByteSink, /, **params: Any) -> None:
        self.backend().download(action, sink, **params)

    def run_with_node(self, work: Callable[[Node], Awaitable[Any]]) -> Any:
        """Open the data dir, run ``await work(node)`` and close it again."""
        from p2pcomments.node import open_node

        async def run() -> Any:
            async with open_node(
                self.data_dir, passphrase=self.passphrase, defer_unlock=True
            ) as node:
                return await work(node)

        try:
            return self.run_trio(run)
        except ConflictError as error:
            if self._stale_daemon is None or error.reason != "data-dir-locked":
                raise
            from p2pcomments.cli.client import DaemonUnreachable

            address = self._stale_daemon
            raise DaemonUnreachable(
                f"the daemon at {address.url} (pid {address.pid}) holds {self.data_dir} "
                "but does not answer"
            ) from None

    def run_trio(self, main: Callable[[], Awaitable[Any]]) -> Any:
        """``trio.run(main)``; asks for the key's passphrase (in a terminal) and runs again when
        it is needed, and raises the one error inside an exception group as itself."""
        import trio

        while True:
            try:
                return trio.run(main)
            except BaseException as error:
                leaf = single_leaf(error)
                if (
                    isinstance(leaf, PassphraseError)
                    and leaf.reason == "passphrase-required"
                    and self.passphrase is None
                    and sys.stdin.isatty()
                ):
                    import getpass

                    self.passphrase = getpass.getpass("passphrase for the author key: ")
                    continue
                if leaf is not error:
                    raise leaf from None
                raise

    def emit(self, value: Any, text: str | None) -> None:
        """Print ``value`` as JSON with ``--json``, else ``text`` (nothing when None)."""
        if self.json:
            print(json.dumps(value, ensure_ascii=False, indent=2))
        elif text is not None:
            print(text)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: let the connection tell
    return True


def _resolve_data_dir(given: Path | None) -> Path:
    """The data dir, as an absolute path: what messages and statistics print."""
    if given is not None:
        return given.expanduser().absolute()
    configured = os.environ.get(HOME_VARIABLE)
    if configured:
        return Path(configured).expanduser().absolute()
    from p2pcomments.identity import default_data_dir

    return default_data_dir().absolute()


def single_leaf(error: BaseException) -> BaseException:
    """The one exception inside nested exception groups (trio nurseries wrap what they raise);
    ``error`` itself when it is not a group of exactly one."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
