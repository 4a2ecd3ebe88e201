#!/usr/bin/env python3
"""Run one p2pcomments networking node and talk to it in JSON lines.

It starts a `P2PHost` with its data dir, joins a gossip topic, serves a framed echo protocol and
prints one JSON object per line on stdout: ``listening`` (with the full multiaddrs) first, then
``peer_connected``/``peer_disconnected``, ``batch`` (each gossip batch received), ``published``,
``echo_reply``, ``stats``, ``error`` and finally ``stopped``. SIGTERM or SIGINT stops it cleanly.

Commands, one JSON object per line on stdin (end of stdin stops the node unless --ignore-stdin):

  {"cmd": "publish", "count": 200, "rate": 0, "ops_per_batch": 1, "op_size": 64, "tag": "a"}
  {"cmd": "publish", "count": 3, "invalid": true}        ops our validators reject (strike tests)
  {"cmd": "echo", "peer_id": "12D3...", "payload": "hello"}
  {"cmd": "connect", "multiaddr": "/ip4/127.0.0.1/tcp/4001/p2p/12D3..."}
  {"cmd": "wait_topic_peers", "count": 2}                 prints "topic_peers" once reached
  {"cmd": "stats"}
  {"cmd": "quit"}

Example: two terminals,
  scripts/net_probe.py --data-dir /tmp/a --ignore-stdin
  scripts/net_probe.py --data-dir /tmp/b --bootstrap <a's multiaddr> --publish 100 --rate 50
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import trio

from p2pcomments.net.errors import NetError
from p2pcomments.net.gossip import Gossip, GossipConfig
from p2pcomments.net.host import HostConfig, P2PHost
from p2pcomments.net.streams import FramedStream, open_framed_stream, serve_framed

ECHO_PROTOCOL = "/p2pcomments/probe-echo/1.0.0"
INVALID_PREFIX = b"INVALID"


def emit(event: str, **fields: Any) -> None:
    fields = {"event": event, "t": time.time(), **fields}
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def make_ops(label: str, tag: str, index: int, count: int, size: int, invalid: bool) -> list[bytes]:
    ops = []
    for j in range(count):
        head = f"{label}:{tag}:{index}:{j}".encode()
        if invalid:
            head = INVALID_PREFIX + head
        ops.append(head + b"." * max(0, size - len(head)))
    return ops


def validate_batch(peer_id: str, ops: list[bytes]) -> bool:
    # Stand-in for core validation: the probe rejects what `publish ... invalid` produces.
    return not any(op.startswith(INVALID_PREFIX) for op in ops)


class Probe:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        config = HostConfig(
            data_dir=Path(args.data_dir),
            listen_addrs=tuple(args.listen),
            bootstrap_addrs=tuple(args.bootstrap),
            enable_mdns=args.mdns,
            redial_max_delay=args.redial_max_delay,
            max_invalid_strikes=args.max_strikes,
        )
        self.host = P2PHost(
            config,
            on_peer_connected=self.on_peer_connected,
            on_peer_disconnected=self.on_peer_disconnected,
        )
        self.gossip = Gossip(
            self.host,
            validate_batch=validate_batch,
            on_batch=self.on_batch,
            config=GossipConfig(coalesce_window=args.coalesce_ms / 1000),
        )
        self.label = args.label or self.host.peer_id[-6:]
        serve_framed(self.host, ECHO_PROTOCOL, self.serve_echo)

    async def on_peer_connected(self, peer_id: str) -> None:
        emit("peer_connected", peer_id=peer_id)

    async def on_peer_disconnected(self, peer_id: str) -> None:
        emit("peer_disconnected", peer_id=peer_id)

    def on_batch(self, topic: str, origin: str, ops: list[bytes]) -> None:
        if self.args.quiet_batches:
            return
        names = [op.rstrip(b".").decode("ascii", "replace") for op in ops]
        emit("batch", topic=topic, origin=origin, ops=names)

    async def serve_echo(self, stream: FramedStream) -> None:
        while True:
            try:
                frame = await stream.read_frame()
            except NetError:
                return
            await stream.write_frame(frame)

    async def publish(self, command: dict[str, Any]) -> None:
        count = int(command.get("count", 1))
        rate = float(command.get("rate", 0))
        per_batch = int(command.get("ops_per_batch", 1))
        size = int(command.get("op_size", 64))
        tag = str(command.get("tag", "p"))
        invalid = bool(command.get("invalid", False))
        start = trio.current_time()
        for index in range(count):
            ops = make_ops(self.label, tag, index, per_batch, size, invalid)
            await self.gossip.publish(self.args.topic, ops)
            if rate > 0:
                await trio.sleep_until(start + (index + 1) / rate)
        await self.gossip.wait_flushed()
        emit(
            "published",
            tag=tag,
            count=count,
            ops=count * per_batch,
            seconds=round(trio.current_time() - start, 4),
        )

    async def echo(self, command: dict[str, Any]) -> None:
        peer_id = str(command["peer_id"])
        payload = str(command.get("payload", "ping")).encode()
        start = trio.current_time()
        try:
            async with open_framed_stream(self.host, peer_id, ECHO_PROTOCOL) as stream:
                opened = trio.current_time()
                await stream.write_frame(payload)
                reply = await stream.read_frame()
        except NetError as error:
            emit("echo_reply", peer_id=peer_id, ok=False, error=repr(error))
            return
        done = trio.current_time()
        emit(
            "echo_reply",
            peer_id=peer_id,
            ok=reply == payload,
            payload=reply.decode("ascii", "replace"),
            open_ms=round((opened - start) * 1000, 2),
            rtt_ms=round((done - opened) * 1000, 2),
        )

    async def wait_topic_peers(self, count: int) -> None:
        await self.until_topic_peers(count)
        emit("topic_peers", peers=self.gossip.topic_peers(self.args.topic))

    def stats(self) -> None:
        emit(
            "stats",
            host=dataclasses.asdict(self.host.statistics()),
            gossip=dataclasses.asdict(self.gossip.statistics()),
            peers=self.host.peers(),
            mesh=self.gossip.mesh_peers(self.args.topic),
            rss_kb=_rss_kb(),
            cpu_s=round(time.process_time(), 3),
        )

    async def handle(self, command: dict[str, Any], nursery: trio.Nursery) -> None:
        name = command.get("cmd")
        if name == "publish":
            nursery.start_soon(self.publish, command)
        elif name == "echo":
            nursery.start_soon(self.echo, command)
        elif name == "connect":
            try:
                peer_id = await self.host.connect(str(command["multiaddr"]))
            except (NetError, ValueError) as error:
                emit("error", cmd="connect", error=repr(error))
            else:
                emit("connected", peer_id=peer_id)
        elif name == "wait_topic_peers":
            nursery.start_soon(self.wait_topic_peers, int(command.get("count", 1)))
        elif name == "stats":
            self.stats()
        elif name == "quit":
            nursery.cancel_scope.cancel()
        else:
            emit("error", error=f"unknown command {name!r}")

    async def read_commands(self, nursery: trio.Nursery) -> None:
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        buffer = b""
        async with stdin:
            while True:
                chunk = await stdin.receive_some(65536)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    try:
                        command = json.loads(line)
                    except ValueError as error:
                        emit("error", error=f"bad command: {error}")
                        continue
                    await self.handle(command, nursery)
        nursery.cancel_scope.cancel()  # the controlling process went away

    async def until_topic_peers(self, count: int) -> None:
        # libp2p exposes no event for "a peer subscribed": poll its table.
        while len(self.gossip.topic_peers(self.args.topic)) < count:  # noqa: ASYNC110
            await trio.sleep(0.05)

    async def auto_publish(self) -> None:
        await self.until_topic_peers(self.args.wait_topic_peers)
        await self.publish({"count": self.args.publish, "rate": self.args.rate, "tag": "auto"})

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_signal, nursery.cancel_scope)
            await nursery.start(self.host.run)
            await nursery.start(self.gossip.run)
            await self.gossip.subscribe(self.args.topic)
            emit(
                "listening",
                peer_id=self.host.peer_id,
                multiaddrs=self.host.multiaddrs(),
                pid=os.getpid(),
            )
            if not self.args.ignore_stdin:
                nursery.start_soon(self.read_commands, nursery)
            if self.args.publish:
                nursery.start_soon(self.auto_publish)
        emit("stopped")


async def _cancel_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


def _rss_kb() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--listen", action="append", default=None)
    parser.add_argument("--bootstrap", action="append", default=[])
    parser.add_argument("--topic", default="p2pcomments/probe")
    parser.add_argument("--label", default="")
    parser.add_argument("--coalesce-ms", type=float, default=25.0)
    parser.add_argument("--redial-max-delay", type=float, default=10.0)
    parser.add_argument("--max-strikes", type=int, default=5)
    parser.add_argument("--mdns", action="store_true")
    parser.add_argument("--ignore-stdin", action="store_true")
    parser.add_argument("--quiet-batches", action="store_true")
    parser.add_argument("--publish", type=int, default=0, help="batches to publish at start")
    parser.add_argument("--rate", type=float, default=0.0, help="batches per second (0: burst)")
    parser.add_argument("--wait-topic-peers", type=int, default=1)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    if args.listen is None:
        args.listen = ["/ip4/127.0.0.1/tcp/0"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    trio.run(Probe(args).run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
