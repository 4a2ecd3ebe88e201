"""``p2pc``: the entry point, the argument parser and the commands.

Rules:

1. When a daemon runs on the data dir (``api.json`` there and the daemon answering) a command goes
   through its HTTP API; otherwise it opens the data dir itself. Output is the same either way:
   both paths produce the API's JSON forms, which ``--json`` prints and the text mode renders.
2. A user's mistake is one line on stderr (``p2pc: <message>``; with ``--json`` the API's error
   object) and a non-zero exit code, never a traceback. Exit codes: 0 ok, 1 user error, 2 usage
   (argparse), 3 daemon unreachable, 4 data dir busy (another process holds it), 5 internal error
   (``P2PC_DEBUG=1`` prints the traceback too), 130 interrupted.
3. Imports are cheap where users wait: trio, the Node and the store are imported only by the
   commands that open the data dir, never at startup; libp2p never.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from p2pcomments.api.address_file import ApiAddress, read_address_file
from p2pcomments.errors import ConflictError, P2PCommentsError, PassphraseError

if TYPE_CHECKING:
    from p2pcomments.net.interface import NetworkConfig
    from p2pcomments.node import Node

__all__ = ["main"]

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
DEFAULT_API: Final = "127.0.0.1:8765"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- reaching the node -----------------------------------------------------------------------


class Backend(Protocol):
    daemon: ApiAddress | None

    def call(self, action: str, /, **params: Any) -> Any: ...


class _DaemonBackend:
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


class _DirectBackend:
    """Opens the data dir for each call: commands make one call each."""

    daemon: ApiAddress | None = None

    def __init__(self, session: Session) -> None:
        self.session = session

    def call(self, action: str, /, **params: Any) -> Any:
        from p2pcomments.api.actions import ACTIONS_BY_NAME

        handler = ACTIONS_BY_NAME[action].handler

        async def run(node: Node) -> Any:
            return await handler(node, **params)

        return self.session.run_with_node(run)


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
                self._backend = _DirectBackend(self)
            else:
                self._backend = _DaemonBackend(self, address)
        return self._backend

    def without_daemon(self, stale: ApiAddress) -> Backend:
        """Switch to the data dir; `run_with_node` blames ``stale`` if the data dir is locked."""
        self._stale_daemon = stale
        self._backend = _DirectBackend(self)
        return self._backend

    def call(self, action: str, /, **params: Any) -> Any:
        return self.backend().call(action, **params)

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
                leaf = _single_leaf(error)
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
    if given is not None:
        return given.expanduser()
    configured = os.environ.get(HOME_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    from p2pcomments.identity import default_data_dir

    return default_data_dir()


def _single_leaf(error: BaseException) -> BaseException:
    """The one exception inside nested exception groups (trio nurseries wrap what they raise);
    ``error`` itself when it is not a group of exactly one."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


# -- reading arguments -----------------------------------------------------------------------


def _text_argument(value: str) -> str:
    """``-`` reads standard input (its trailing newlines dropped)."""
    if value == "-":
        return sys.stdin.read().rstrip("\n")
    return value


def _read_input_file(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as error:
        raise _UserError(f"cannot read {name}: {error.strerror or error}") from None


def _write_output_file(name: str | None, data: bytes, *, private: bool = False) -> None:
    if name is None or name == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        descriptor = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644
        )
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    except OSError as error:
        raise _UserError(f"cannot write {name}: {error.strerror or error}") from None


class _UserError(P2PCommentsError):
    """A mistake in the command line that argparse can't see (a file that can't be read...)."""

    http_status = 400
    default_reason = "usage"


# -- commands --------------------------------------------------------------------------------


def _cmd_init(session: Session) -> int:
    from p2pcomments.core.textform import TextKind, format_id
    from p2pcomments.identity import create_identity, has_identity, read_public_key

    data_dir = session.data_dir
    if has_identity(data_dir):
        key = format_id(TextKind.KEY, read_public_key(data_dir))
        session.emit(
            {"author": key, "data_dir": str(data_dir), "created": False},
            f"{data_dir} already has an author key: {key}",
        )
        return EXIT_OK
    passphrase = None
    if session.args.passphrase_stdin:
        passphrase = sys.stdin.readline().rstrip("\r\n")
        if not passphrase:
            raise _UserError("--passphrase-stdin: standard input holds no passphrase")
    identity = create_identity(data_dir, passphrase=passphrase)
    key = str(identity)
    session.emit(
        {
            "author": key,
            "data_dir": str(data_dir),
            "created": True,
            "encrypted": identity.encrypted,
        },
        f"created an author key in {data_dir}: {key}\n"
        "`p2pc daemon` starts the node (every command also works without it, offline)",
    )
    return EXIT_OK


def _cmd_id(session: Session) -> int:
    result = dict(session.call("identity"))
    daemon = session.backend().daemon  # after the call: a stale api.json is known by now
    result["daemon"] = (
        None
        if daemon is None
        else {
            "url": daemon.url,
            "api": daemon.url + "/api",
            "pages": daemon.url + "/",
            "pid": daemon.pid,
        }
    )
    lines = [
        f"author:   {result['author']}" + (f" ({result['name']})" if result.get("name") else ""),
        f"data dir: {result['data_dir']}",
    ]
    if daemon is None:
        lines.append("daemon:   not running (`p2pc daemon` starts it)")
    else:
        lines.append(f"daemon:   pid {daemon.pid}, API {daemon.url}/api, pages {daemon.url}/")
    if result.get("peer_id"):
        lines.append(f"peer id:  {result['peer_id']}")
    lines.extend(f"address:  {address}" for address in result.get("multiaddrs") or ())
    if daemon is not None and not result.get("multiaddrs"):
        lines.append("network:  off (the daemon runs with --no-network)")
    session.emit(result, "\n".join(lines))
    return EXIT_OK


def _parse_api_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise _UserError(f"--api wants HOST:PORT (e.g. {DEFAULT_API}), got {text!r}")
    return host.strip("[]"), int(port)


def _network_config(session: Session) -> NetworkConfig | None:
    """The daemon's network options (None with --no-network). No libp2p is imported here."""
    from p2pcomments.net.interface import NetworkConfig, read_bootstrap_config

    args = session.args
    if args.no_network:
        return None
    if args.sync_interval < 0:
        raise _UserError("--sync-interval must be 0 (off) or more seconds")
    listen = tuple(args.listen or ())  # none: the default, see NetworkConfig
    configured = read_bootstrap_config(session.data_dir)
    bootstrap = tuple(dict.fromkeys([*(args.bootstrap or ()), *configured]))
    return NetworkConfig(
        listen_addrs=listen,
        bootstrap_addrs=bootstrap,
        enable_mdns=args.mdns,
        sync_interval=args.sync_interval,
    )


def _cmd_daemon(session: Session) -> int:
    from p2pcomments.daemon import run_daemon, start_network, start_no_services

    host, port = _parse_api_address(session.args.api)
    network = _network_config(session)
    if session.args.passphrase_stdin:
        session.passphrase = sys.stdin.readline().rstrip("\r\n") or None

    def ready(node: Node, address: ApiAddress) -> None:
        from p2pcomments.api.representations import key_text

        info: dict[str, Any] = {
            "url": address.url,
            "api": address.url + "/api",
            "pages": address.url + "/",
            "pid": address.pid,
            "author": key_text(node.author),
            "data_dir": str(node.data_dir),
            "peer_id": None if node.network is None else node.network.peer_id,
            "multiaddrs": [] if node.network is None else node.network.multiaddrs(),
        }
        network_lines = "".join(f"  peer  {address}\n" for address in info["multiaddrs"])
        session.emit(
            info,
            f"p2pc daemon {info['author']} on {info['data_dir']}\n"
            f"  API   {info['api']}  (OpenAPI: {address.url}/api/openapi.json)\n"
            f"  pages {info['pages']}\n"
            + (network_lines or "  network off\n")
            + "Ctrl-C stops it.",
        )
        sys.stdout.flush()

    def stopping() -> None:
        if not session.json:
            print("p2pc daemon: stopping", file=sys.stderr)

    session.run_trio(
        lambda: run_daemon(
            session.data_dir,
            host=host,
            port=port,
            passphrase=session.passphrase,  # read at each attempt: it may have been asked for
            start_services=start_no_services if network is None else start_network(network),
            on_ready=ready,
            on_stopping=stopping,
        )
    )
    return EXIT_OK


def _print_created(session: Session, op: dict[str, Any], text: str | None = None) -> int:
    session.emit(op, text if text is not None else op["id"])
    return EXIT_OK


def _cmd_thread_new(session: Session) -> int:
    args = session.args
    return _print_created(
        session, session.call("create_thread", title=args.title, url=args.url, site=args.site)
    )


def _cmd_threads(session: Session) -> int:
    from p2pcomments.cli.render import render_threads

    result = session.call("threads")
    session.emit(result, render_threads(result["threads"], now_ms=_now_ms()))
    return EXIT_OK


def _cmd_show(session: Session) -> int:
    from p2pcomments.cli.render import render_thread

    thread = session.call("thread", thread=session.args.thread)
    session.emit(thread, render_thread(thread, now_ms=_now_ms(), show_all=session.args.all))
    return EXIT_OK


def _cmd_comment(session: Session) -> int:
    body = _text_argument(session.args.body)
    return _print_created(session, session.call("comment", thread=session.args.thread, body=body))


def _cmd_reply(session: Session) -> int:
    body = _text_argument(session.args.body)
    return _print_created(session, session.call("reply", comment=session.args.comment, body=body))


def _cmd_edit(session: Session) -> int:
    body = _text_argument(session.args.body)
    op = session.call("edit", comment=session.args.comment, body=body)
    return _print_created(session, op, f"edited {op['target']}")


def _cmd_retract(session: Session) -> int:
    op = session.call("retract", comment=session.args.comment)
    return _print_created(session, op, f"deleted {op['target']}")


def _cmd_react(session: Session) -> int:
    args = session.args
    if args.remove:
        reaction = ""
    elif args.reaction is None:
        raise _UserError("react: give a reaction (e.g. 👍), or --remove to withdraw yours")
    else:
        reaction = args.reaction
    op = session.call("react", comment=args.comment, reaction=reaction)
    text = (
        f"reacted {reaction} to {op['target']}"
        if reaction
        else f"withdrew your reaction to {op['target']}"
    )
    return _print_created(session, op, text)


def _cmd_moderate(session: Session) -> int:
    args = session.args
    action = args.action
    if action in ("hide", "unhide"):
        op = session.call(action, comment=args.comment, reason=args.reason)
        verb = "hid" if action == "hide" else "unhid"
        return _print_created(session, op, f"{verb} {op['target']}")
    if action in ("close", "reopen"):
        op = session.call(action, thread=args.thread, reason=args.reason)
        return _print_created(
            session, op, f"{action}{'d' if action == 'close' else 'ed'} {op['target']}"
        )
    name = "add_moderator" if action == "add-mod" else "remove_moderator"
    op = session.call(name, thread=args.thread, key=args.key)
    verb = "appointed" if action == "add-mod" else "removed"
    return _print_created(session, op, f"{verb} moderator {op['subject']} on {op['target']}")


def _cmd_profile_set(session: Session) -> int:
    op = session.call("set_profile", name=session.args.name)
    return _print_created(session, op, f"your display name is now {op['name']}")


def _cmd_profile_show(session: Session) -> int:
    result = session.call("profile")
    session.emit(result, f"{result['author']} {result['name'] or '(no display name)'}")
    return EXIT_OK


def _cmd_peers(session: Session) -> int:
    result = session.call("network")
    peers = result["peers"]
    lines = [f"{peer['peer_id']}  {' '.join(peer['addrs'])}".rstrip() for peer in peers]
    session.emit(
        {"peer_id": result["peer_id"], "peers": peers},
        "\n".join(lines) if lines else "no peers connected",
    )
    return EXIT_OK


def _cmd_connect(session: Session) -> int:
    result = session.call("network_connect", multiaddr=session.args.multiaddr)
    session.emit(result, f"connected to {result['peer_id']}")
    return EXIT_OK


def _follow_params(text: str) -> dict[str, str | None]:
    from p2pcomments.follows import parse_follow_target

    try:
        thread, site = parse_follow_target(text)
    except ValueError as error:
        raise _UserError(f"{text!r} is neither a thread id (thr_…) nor a site: {error}") from None
    return {"thread": text.strip(), "site": None} if thread is not None else {"site": site}


def _render_follows(result: dict[str, Any]) -> str:
    lines = [f"site   {site}" for site in result["sites"]]
    lines += [f"thread {thread}" for thread in result["threads"]]
    return "\n".join(lines) if lines else "following nothing yet"


def _cmd_follow(session: Session) -> int:
    action = "follow" if session.args.command == "follow" else "unfollow"
    result = session.call(action, **_follow_params(session.args.target))
    verb = "following" if action == "follow" else "no longer following"
    already = "" if result.get("changed", True) else " (no change)"
    session.emit(result, f"{verb} {session.args.target.strip()}{already}")
    return EXIT_OK


def _cmd_follows(session: Session) -> int:
    result = session.call("follows")
    session.emit(result, _render_follows(result))
    return EXIT_OK


def _cmd_sync(session: Session) -> int:
    result = session.call("network_sync", peer_id=session.args.peer)
    failed = result.get("failed") or {}
    text = (
        f"synced with {result['peers_synced']} peer(s): "
        f"{result['received']} operation(s) received, {result['sent']} sent"
    )
    text += "".join(f"\nfailed: {peer}: {reason}" for peer, reason in failed.items())
    session.emit(result, text)
    return EXIT_OK


def _cmd_statistics(session: Session) -> int:
    result = session.call("statistics")
    width = max((len(k) for k in result), default=0)
    session.emit(result, "\n".join(f"{k:<{width}}  {v}" for k, v in result.items()))
    return EXIT_OK


def _cmd_export(session: Session) -> int:
    args = session.args
    if args.all == (args.thread is not None):
        raise _UserError("export: give a thread id or --all (not both)")
    if args.all:
        bundle: bytes = session.call("export")
    else:
        bundle = session.call("export_thread", thread=args.thread)
    _write_output_file(args.output, bundle)
    count = bundle.count(b"\n")
    if args.output not in (None, "-"):
        summary = {"operations": count, "file": args.output}
        session.emit(summary, f"exported {count} operations to {args.output}")
    return EXIT_OK


def _cmd_import(session: Session) -> int:
    from p2pcomments.api.bundle import decode_bundle
    from p2pcomments.cli.render import render_outcomes

    data = _read_input_file(session.args.file)
    decode_bundle(data)  # a malformed file is reported before the daemon or store is touched
    result = session.call("import_bundle", bundle=data)
    session.emit(result, render_outcomes(result))
    return EXIT_USER_ERROR if result["rejected"] else EXIT_OK


def _watching(session: Session, thread: str) -> None:
    # On stderr even with --json: a script can wait for this line to know nothing will be missed.
    print(f"watching {thread} (Ctrl-C stops)", file=sys.stderr)
    sys.stderr.flush()


def _print_change(session: Session, change: dict[str, Any]) -> None:
    from p2pcomments.cli.render import render_change

    if session.json:
        print(json.dumps(change, ensure_ascii=False))
    else:
        print(render_change(change, now_ms=_now_ms()))
    sys.stdout.flush()


def _watch_daemon(session: Session, address: ApiAddress, thread: str) -> None:
    from urllib.parse import quote

    from p2pcomments.cli.client import DaemonClient

    client = DaemonClient(address)
    for event in client.events(f"/api/threads/{quote(thread, safe='')}/events"):
        if event.name == "ready":
            _watching(session, thread)
        elif event.name in ("operation", "lagged"):
            _print_change(session, event.data)
    from p2pcomments.cli.client import DaemonUnreachable

    raise DaemonUnreachable(f"the daemon at {address.url} stopped")


def _watch_direct(session: Session, thread: str) -> None:
    # Without a daemon nothing else can write to this data dir (this process holds its lock), so
    # the changes seen here are those this process's node receives.

    async def watch(node: Node) -> None:
        from p2pcomments.api.representations import change_json
        from p2pcomments.core.textform import TextKind, parse_id

        thread_id = parse_id(thread, expect=frozenset({TextKind.THREAD}))
        node.thread_view(thread_id)  # an unknown thread is an error, not a silence
        async with node.watch(thread_id) as changes:
            _watching(session, thread)
            async for change in changes:
                op = None if change.op_id is None else node.get_operation(change.op_id)
                name = None if op is None else node.replica.names().get(op.author)
                _print_change(session, change_json(change, op, name))

    session.run_with_node(watch)


def _cmd_watch(session: Session) -> int:
    session.call("thread", thread=session.args.thread)  # an unknown thread is an error
    address = session.backend().daemon
    try:
        if address is not None:
            _watch_daemon(session, address, session.args.thread)
        else:
            _watch_direct(session, session.args.thread)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends
    return EXIT_OK


def _cmd_key_export(session: Session) -> int:
    from p2pcomments.identity import export_identity

    armoured = export_identity(session.data_dir)
    _write_output_file(session.args.output, armoured.encode("ascii"), private=True)
    if session.args.output not in (None, "-"):
        session.emit(
            {"file": session.args.output},
            f"exported the author key to {session.args.output} (keep it secret)",
        )
    return EXIT_OK


def _cmd_key_import(session: Session) -> int:
    from p2pcomments.core.textform import TextKind, format_id
    from p2pcomments.identity import import_identity
    from p2pcomments.store.lock import DataDirLock

    armoured = _read_input_file(session.args.file).decode("utf-8", "replace")
    session.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The lock keeps a running daemon from signing with a key that changes under it.
    with DataDirLock.acquire(session.data_dir):
        key = format_id(
            TextKind.KEY, import_identity(session.data_dir, armoured, force=session.args.force)
        )
    session.emit({"author": key, "data_dir": str(session.data_dir)}, f"author key is now {key}")
    return EXIT_OK


def _cmd_repair(session: Session) -> int:
    from p2pcomments.store import open_store

    with open_store(session.data_dir) as store:
        problems = store.integrity_check()
        rebuilt = False
        if session.args.rebuild_views:
            store.rebuild_views()
            rebuilt = True
            problems_after = store.integrity_check()
        else:
            problems_after = problems
    result = {"problems": problems, "rebuilt_views": rebuilt, "problems_after": problems_after}
    lines = [f"found: {p}" for p in problems] or ["no problems found"]
    if rebuilt:
        lines.append("rebuilt the views from the operations")
        lines.extend(f"still: {p}" for p in problems_after)
    elif problems:
        lines.append("`p2pc repair --rebuild-views` rebuilds the views from the operations")
    session.emit(result, "\n".join(lines))
    return EXIT_USER_ERROR if problems_after else EXIT_OK


# -- the parser ------------------------------------------------------------------------------


def _common_options() -> argparse.ArgumentParser:
    # Given to every parser with SUPPRESS defaults, so the options work before or after the
    # command (`p2pc --json show T` and `p2pc show T --json`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help=f"the data directory (default: ${HOME_VARIABLE}, else the per-user data dir)",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output (the API's JSON forms)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="p2pc",
        parents=[common],
        description="A peer-to-peer comment system that no one can take down.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 daemon unreachable, 4 data dir busy, "
        f"5 internal error. {PASSPHRASE_VARIABLE} gives the key's passphrase to any command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str,
        run: Callable[[Session], int],
        help_text: str,
        within: argparse._SubParsersAction[argparse.ArgumentParser] = commands,
    ) -> argparse.ArgumentParser:
        sub = within.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(run=run)
        return sub

    def group(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        return sub.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

    def body_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--body", required=True, metavar="TEXT", help="the text; - reads stdin")

    sub = command("init", _cmd_init, "create this node's author key")
    sub.add_argument(
        "--passphrase-stdin",
        action="store_true",
        help="protect the key with a passphrase read from the first line of stdin",
    )
    command("id", _cmd_id, "show the author key, data dir and daemon address")
    sub = command("daemon", _cmd_daemon, "run the node and its local HTTP API until Ctrl-C")
    sub.add_argument(
        "--api",
        default=DEFAULT_API,
        metavar="HOST:PORT",
        help=f"where to serve the API (default {DEFAULT_API}; port 0 picks a free one)",
    )
    sub.add_argument(
        "--passphrase-stdin",
        action="store_true",
        help="read the key's passphrase from the first line of stdin",
    )
    sub.add_argument(
        "--listen",
        action="append",
        metavar="MULTIADDR",
        help="where peers reach this node (repeatable; default /ip4/0.0.0.0/tcp/4737, or a free"
        " port when 4737 is taken)",
    )
    sub.add_argument(
        "--bootstrap",
        action="append",
        metavar="MULTIADDR",
        help="a peer to dial and keep dialling: /ip4/…/tcp/…/p2p/<peer id> (repeatable; also"
        " the 'bootstrap' list of config.json in the data dir)",
    )
    sub.add_argument("--mdns", action="store_true", help="find peers on the local network")
    sub.add_argument(
        "--sync-interval",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="sync with a random peer this often (default 30; 0 turns it off)",
    )
    sub.add_argument(
        "--no-network", action="store_true", help="serve the API only: no peer-to-peer networking"
    )

    command("peers", _cmd_peers, "list the connected peers (needs a running daemon)")
    sub = command("connect", _cmd_connect, "dial a peer and keep it connected (needs a daemon)")
    sub.add_argument("multiaddr", metavar="MULTIADDR", help="/ip4/…/tcp/…/p2p/<peer id>")
    sub = command("follow", _cmd_follow, "follow a thread or a site (its gossip topic)")
    sub.add_argument("target", metavar="THREAD|SITE", help="a thread id (thr_…) or a site name")
    sub = command("unfollow", _cmd_follow, "stop following a thread or a site")
    sub.add_argument("target", metavar="THREAD|SITE", help="a thread id (thr_…) or a site name")
    command("follows", _cmd_follows, "list the threads and sites followed")
    sub = command("sync", _cmd_sync, "sync with peers now and print what moved (needs a daemon)")
    sub.add_argument("--peer", metavar="PEERID", help="only this connected peer")

    threads = group("thread", "start threads")
    sub = command("new", _cmd_thread_new, "open a thread about a title and/or a URL", threads)
    sub.add_argument("--title", default="", help="the thread's title")
    sub.add_argument("--url", default=None, help="the page it discusses")
    sub.add_argument("--site", default=None, help="the site it belongs to (a host name)")
    command("threads", _cmd_threads, "list the threads held here, newest activity first")

    sub = command("show", _cmd_show, "print a thread as a tree")
    sub.add_argument("thread", metavar="THREAD", help="a thread id (thr_…)")
    sub.add_argument(
        "--all",
        action="store_true",
        help="also show the text of hidden comments and of comments made after a close",
    )
    sub = command("watch", _cmd_watch, "print a thread's new comments as they arrive")
    sub.add_argument("thread", metavar="THREAD", help="a thread id (thr_…)")

    sub = command("comment", _cmd_comment, "post a top-level comment")
    sub.add_argument("thread", metavar="THREAD", help="a thread id (thr_…)")
    body_option(sub)
    sub = command("reply", _cmd_reply, "reply to a comment")
    sub.add_argument("comment", metavar="COMMENT", help="a comment id (cmt_…)")
    body_option(sub)
    sub = command("edit", _cmd_edit, "edit your comment")
    sub.add_argument("comment", metavar="COMMENT", help="a comment id (cmt_…)")
    body_option(sub)
    sub = command("retract", _cmd_retract, "delete your comment (its replies stay)")
    sub.add_argument("comment", metavar="COMMENT", help="a comment id (cmt_…)")
    sub = command("react", _cmd_react, "react to a comment (one reaction per author)")
    sub.add_argument("comment", metavar="COMMENT", help="a comment id (cmt_…)")
    sub.add_argument("reaction", metavar="EMOJI", nargs="?", help="the reaction, e.g. 👍")
    sub.add_argument("--remove", action="store_true", help="withdraw your reaction")

    moderation = group("moderate", "hide comments, close threads, appoint moderators")
    for action, help_text in (("hide", "hide a comment"), ("unhide", "show a hidden comment")):
        sub = command(action, _cmd_moderate, help_text, moderation)
        sub.add_argument("comment", metavar="COMMENT", help="a comment id (cmt_…)")
        sub.add_argument("--reason", default="", help="why, shown to readers")
        sub.set_defaults(action=action)
    for action, help_text in (("close", "close a thread"), ("reopen", "reopen a thread")):
        sub = command(action, _cmd_moderate, help_text, moderation)
        sub.add_argument("thread", metavar="THREAD", help="a thread id (thr_…)")
        sub.add_argument("--reason", default="", help="why, shown to readers")
        sub.set_defaults(action=action)
    for action, help_text in (
        ("add-mod", "appoint a moderator (owner only)"),
        ("remove-mod", "remove a moderator (owner only)"),
    ):
        sub = command(action, _cmd_moderate, help_text, moderation)
        sub.add_argument("thread", metavar="THREAD", help="a thread id (thr_…)")
        sub.add_argument("key", metavar="KEY", help="the moderator's key (key_…)")
        sub.set_defaults(action=action)

    profile = group("profile", "your display name")
    sub = command("set", _cmd_profile_set, "set your display name", profile)
    sub.add_argument("--name", required=True, help="the display name")
    command("show", _cmd_profile_show, "show your key and display name", profile)

    keys = group("key", "back up or move the author key")
    sub = command("export", _cmd_key_export, "print the author key (armoured) for a backup", keys)
    sub.add_argument("-o", "--output", metavar="FILE", help="write it to FILE (mode 0600)")
    sub = command("import", _cmd_key_import, "install an exported author key", keys)
    sub.add_argument("file", metavar="FILE", help="the exported key; - reads stdin")
    sub.add_argument("--force", action="store_true", help="replace a different key already here")

    sub = command("export", _cmd_export, "write a bundle of signed operations")
    sub.add_argument("thread", metavar="THREAD", nargs="?", help="a thread id (thr_…)")
    sub.add_argument("--all", action="store_true", help="every operation held here")
    sub.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default stdout)")
    sub = command("import", _cmd_import, "ingest a bundle (every operation is verified)")
    sub.add_argument("file", metavar="FILE", help="a bundle (JSON lines of hex); - reads stdin")

    command("statistics", _cmd_statistics, "counters: operations, threads, pending...")
    sub = command("repair", _cmd_repair, "check the store; optionally rebuild its views")
    sub.add_argument(
        "--rebuild-views",
        action="store_true",
        help="recompute every view table from the stored operations",
    )
    return parser


# -- running ---------------------------------------------------------------------------------


def _report(session: Session | None, error: P2PCommentsError) -> None:
    message = " ".join(error.message.split())
    if isinstance(error, PassphraseError) and error.reason == "passphrase-required":
        message += (
            f" (set {PASSPHRASE_VARIABLE}, use --passphrase-stdin with `p2pc daemon`, or run in a"
            " terminal to be asked)"
        )
    if session is not None and session.json:
        print(json.dumps({"error": error.to_dict()}, ensure_ascii=False), file=sys.stderr)
    else:
        print(f"p2pc: {message}", file=sys.stderr)


def _exit_code(error: P2PCommentsError) -> int:
    from p2pcomments.cli.client import DaemonUnreachable, RemoteError

    if isinstance(error, DaemonUnreachable):
        return EXIT_UNREACHABLE
    if isinstance(error, ConflictError) and error.reason in ("data-dir-locked", "address-in-use"):
        return EXIT_BUSY
    status = error.status if isinstance(error, RemoteError) else error.http_status
    return EXIT_INTERNAL if status >= 500 else EXIT_USER_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (rule 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    session: Session | None = None
    try:
        session = Session(args)
        code: int = args.run(session)
        return code
    except BrokenPipeError:
        # The reader went away (`p2pc show T | head`); say nothing more on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseException as raised:
        error = _single_leaf(raised)
        if isinstance(error, SystemExit | KeyboardInterrupt):
            raise error from None
        if isinstance(error, P2PCommentsError):
            _report(session, error)
            return _exit_code(error)
        if os.environ.get(DEBUG_VARIABLE):
            traceback.print_exception(raised)
        internal = P2PCommentsError(
            f"internal error: {type(error).__name__}: {error} (set {DEBUG_VARIABLE}=1 for details)"
        )
        _report(session, internal)
        return EXIT_INTERNAL
