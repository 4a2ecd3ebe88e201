"""The commands of the network: the daemon, this node's identity, peers, follows and sync.

Rules:

1. ``daemon`` runs the node and its API until Ctrl-C; it prints where it listens once ready.
2. The others are one call of an action of `p2pcomments.api.actions` each; those about peers
   need a running daemon (the action says so when there is none).
3. No libp2p is imported here: the daemon's network options are plain values until it starts.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Final

from p2pcomments.api.address_file import ApiAddress
from p2pcomments.cli.arguments import UsageError
from p2pcomments.cli.session import EXIT_OK, Session

if TYPE_CHECKING:
    from p2pcomments.api.gateway import GatewayLimits
    from p2pcomments.net.interface import NetworkConfig
    from p2pcomments.node import Node

__all__ = [
    "DEFAULT_API",
    "cmd_connect",
    "cmd_daemon",
    "cmd_follow",
    "cmd_follows",
    "cmd_id",
    "cmd_peers",
    "cmd_sync",
]

DEFAULT_API: Final = "127.0.0.1:8765"


def cmd_id(session: Session) -> int:
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
        raise UsageError(f"--api wants HOST:PORT (e.g. {DEFAULT_API}), got {text!r}")
    return host.strip("[]"), int(port)


def _gateway_options(session: Session) -> tuple[tuple[str, int] | None, GatewayLimits | None]:
    """``--public HOST:PORT`` and its limits, or (None, None)."""
    from p2pcomments.api.gateway import GatewayLimits

    args = session.args
    if args.public is None:
        return None, None
    host, sep, port = args.public.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise UsageError(f"--public wants HOST:PORT (e.g. 0.0.0.0:8080), got {args.public!r}")
    if args.public_requests_per_minute < 1 or args.public_ops_per_minute < 1:
        raise UsageError("--public-requests-per-minute and --public-ops-per-minute must be >= 1")
    requests, ops = args.public_requests_per_minute, args.public_ops_per_minute
    limits = GatewayLimits(
        requests_per_minute=requests,
        request_burst=max(1, min(requests, 120)),
        ops_per_minute=ops,
        ops_burst=max(1, min(ops, 30)),
        trust_forwarded_for=args.public_behind_proxy,
    )
    return (host.strip("[]"), int(port)), limits


def _network_config(session: Session) -> NetworkConfig | None:
    """The daemon's network options (None with --no-network). No libp2p is imported here."""
    from p2pcomments.net.interface import NetworkConfig, read_bootstrap_config

    args = session.args
    if args.no_network:
        return None
    if args.sync_interval < 0:
        raise UsageError("--sync-interval must be 0 (off) or more seconds")
    listen = tuple(args.listen or ())  # none: the default, see NetworkConfig
    configured = read_bootstrap_config(session.data_dir)
    bootstrap = tuple(dict.fromkeys([*(args.bootstrap or ()), *configured]))
    return NetworkConfig(
        listen_addrs=listen,
        bootstrap_addrs=bootstrap,
        enable_mdns=args.mdns,
        sync_interval=args.sync_interval,
    )


def cmd_daemon(session: Session) -> int:
    from p2pcomments.cli.hook_options import with_session_hooks
    from p2pcomments.daemon import run_daemon, start_network, start_no_services

    host, port = _parse_api_address(session.args.api)
    public, limits = _gateway_options(session)
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
            "gateway": address.public_url,
        }
        network_lines = "".join(f"  peer  {address}\n" for address in info["multiaddrs"])
        if address.public_url is not None:
            network_lines += (
                f"  gateway {address.public_url}  (public: reads, /api/ops, /embed.js)\n"
            )
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
            start_services=with_session_hooks(
                session, start_no_services if network is None else start_network(network)
            ),
            public=public,
            gateway_limits=limits,
            on_ready=ready,
            on_stopping=stopping,
        )
    )
    return EXIT_OK


def cmd_peers(session: Session) -> int:
    result = session.call("network")
    peers = result["peers"]
    lines = [f"{peer['peer_id']}  {' '.join(peer['addrs'])}".rstrip() for peer in peers]
    session.emit(
        {"peer_id": result["peer_id"], "peers": peers},
        "\n".join(lines) if lines else "no peers connected",
    )
    return EXIT_OK


def cmd_connect(session: Session) -> int:
    result = session.call("network_connect", multiaddr=session.args.multiaddr)
    session.emit(result, f"connected to {result['peer_id']}")
    return EXIT_OK


def _follow_params(text: str) -> dict[str, str | None]:
    from p2pcomments.core.id_prefix import read_prefix
    from p2pcomments.core.textform import TextKind
    from p2pcomments.follows import parse_follow_target

    prefix = read_prefix(text)
    if prefix is not None and prefix.kind is TextKind.THREAD:
        return {"thread": text.strip(), "site": None}  # the node reads it to the whole id
    try:
        thread, site = parse_follow_target(text)
    except ValueError as error:
        raise UsageError(f"{text!r} is neither a thread id (thr_…) nor a site: {error}") from None
    return {"thread": text.strip(), "site": None} if thread is not None else {"site": site}


def _render_follows(result: dict[str, Any]) -> str:
    lines = [f"site   {site}" for site in result["sites"]]
    lines += [f"thread {thread}" for thread in result["threads"]]
    return "\n".join(lines) if lines else "following nothing yet"


def cmd_follow(session: Session) -> int:
    action = "follow" if session.args.command == "follow" else "unfollow"
    result = session.call(action, **_follow_params(session.args.target))
    verb = "following" if action == "follow" else "no longer following"
    already = "" if result.get("changed", True) else " (no change)"
    session.emit(result, f"{verb} {session.args.target.strip()}{already}")
    return EXIT_OK


def cmd_follows(session: Session) -> int:
    result = session.call("follows")
    session.emit(result, _render_follows(result))
    return EXIT_OK


def cmd_sync(session: Session) -> int:
    result = session.call("network_sync", peer_id=session.args.peer)
    failed = result.get("failed") or {}
    peers = result["peers_synced"]
    peers_text = "1 peer" if peers == 1 else f"{peers} peers"
    if peers and not result["received"] and not result["sent"]:
        # Typical right after `connect` or a restart: the sync run on connecting did the work.
        text = f"already in agreement with {peers_text}: nothing to receive or send"
    elif not peers and not failed:
        text = "no peer to sync with: none is connected (`p2pc connect MULTIADDR` dials one)"
    else:
        text = (
            f"synced with {peers_text}: "
            f"{result['received']} operation(s) received, {result['sent']} sent"
        )
    text += "".join(f"\nfailed: {peer}: {reason}" for peer, reason in failed.items())
    session.emit(result, text)
    return EXIT_OK
