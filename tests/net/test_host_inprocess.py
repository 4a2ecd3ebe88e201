"""Two or three real libp2p hosts inside one trio run: connection events, validation, strikes and
bans, hostile input, framed streams, and shutdown by cancellation."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from p2pcomments.errors import StoreError
from p2pcomments.net.errors import FrameTooLarge, NetError, PeerBanned, StreamClosedError
from p2pcomments.net.gossip import Gossip, GossipConfig
from p2pcomments.net.gossip_payload import encode_batch
from p2pcomments.net.host import IDENTITY_FILE, HostConfig, P2PHost, load_or_create_identity
from p2pcomments.net.streams import FramedStream, open_framed_stream, serve_framed

TOPIC = "test/topic"


@dataclass
class Node:
    host: P2PHost
    gossip: Gossip
    batches: list[tuple[str, str, list[bytes]]] = field(default_factory=list)
    connected: list[str] = field(default_factory=list)
    disconnected: list[str] = field(default_factory=list)
    validated: list[tuple[str, list[bytes]]] = field(default_factory=list)

    async def wait_ops(self, count: int) -> None:
        await eventually(lambda: sum(len(ops) for _, _, ops in self.batches) >= count)


async def eventually(predicate: Callable[[], bool]) -> None:
    """Poll state owned by the code under test (it exposes no event for these conditions).

    Callers bound it: every test runs under ``trio.fail_after``."""
    while not predicate():  # noqa: ASYNC110
        await trio.sleep(0.02)


def _validator(node_ref: list[Node]) -> Callable[[str, list[bytes]], bool]:
    def validate_batch(peer_id: str, ops: list[bytes]) -> bool:
        node_ref[0].validated.append((peer_id, ops))
        if any(op.startswith(b"RAISE") for op in ops):
            raise RuntimeError("a bug in validation")
        return not any(op.startswith(b"BAD") for op in ops)

    return validate_batch


@asynccontextmanager
async def open_nodes(
    tmp_path: Path, count: int, **host_options: object
) -> AsyncIterator[list[Node]]:
    nodes: list[Node] = []
    async with trio.open_nursery() as nursery:
        for index in range(count):
            ref: list[Node] = []
            holder: dict[str, Node] = {}

            async def on_connected(peer: str, holder: dict[str, Node] = holder) -> None:
                holder["node"].connected.append(peer)

            async def on_disconnected(peer: str, holder: dict[str, Node] = holder) -> None:
                holder["node"].disconnected.append(peer)

            host = P2PHost(
                HostConfig(
                    data_dir=tmp_path / f"node{index}",
                    listen_addrs=("/ip4/127.0.0.1/tcp/0",),
                    **host_options,  # type: ignore[arg-type]
                ),
                on_peer_connected=on_connected,
                on_peer_disconnected=on_disconnected,
            )

            def on_batch(topic: str, origin: str, ops: list[bytes], ref: list[Node] = ref) -> None:
                ref[0].batches.append((topic, origin, ops))

            gossip = Gossip(
                host,
                validate_batch=_validator(ref),
                on_batch=on_batch,
                config=GossipConfig(coalesce_window=0),
            )
            node = Node(host=host, gossip=gossip)
            ref.append(node)
            holder["node"] = node
            await nursery.start(host.run)
            await nursery.start(gossip.run)
            await gossip.subscribe(TOPIC)
            nodes.append(node)
        yield nodes
        nursery.cancel_scope.cancel()


async def _connect(a: Node, b: Node) -> None:
    await b.host.connect(a.host.multiaddrs()[0])
    await a.host.wait_peer_connected(b.host.peer_id)
    await b.host.wait_peer_connected(a.host.peer_id)
    await eventually(
        lambda: (
            b.host.peer_id in a.gossip.topic_peers(TOPIC)
            and a.host.peer_id in b.gossip.topic_peers(TOPIC)
        )
    )


@pytest.mark.trio
async def test_connect_events_gossip_and_clean_shutdown(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_nodes(tmp_path, 2) as (a, b):
            assert a.host.multiaddrs()[0].endswith(f"/p2p/{a.host.peer_id}")
            start = trio.current_time()
            await _connect(a, b)
            print(f"\nconnect + subscriptions exchanged in {trio.current_time() - start:.3f} s")
            assert a.connected == [b.host.peer_id]
            assert b.connected == [a.host.peer_id]
            assert a.host.peers() == [b.host.peer_id]

            ops = [f"op-{i}".encode() for i in range(50)]
            await b.gossip.publish(TOPIC, ops)
            await b.gossip.wait_flushed()
            await a.wait_ops(50)
            assert a.batches == [(TOPIC, b.host.peer_id, ops)]
            assert b.batches == []  # our own messages are not delivered back
            assert [peer for peer, _ in a.validated] == [b.host.peer_id]

            # Dials start at once (workaround 17), so a second connection may still be
            # completing when the first is closed: disconnect until the last one is gone.
            while a.host.peer_id not in b.disconnected:
                await b.host.disconnect(a.host.peer_id)
                with trio.move_on_after(1):
                    await eventually(lambda: a.host.peer_id in b.disconnected)
    # Leaving open_nodes cancelled both nodes: reaching this line is the shutdown test.


@pytest.mark.trio
async def test_invalid_batches_strike_then_ban_and_a_raising_validator_is_contained(
    tmp_path: Path,
) -> None:
    with trio.fail_after(40):
        async with open_nodes(tmp_path, 2, max_invalid_strikes=3) as (a, b):
            await _connect(a, b)

            # A bug in validate_batch: rejected, logged, nobody struck, node alive.
            await b.gossip.publish(TOPIC, [b"RAISE please"])
            await b.gossip.wait_flushed()
            await eventually(lambda: a.gossip.statistics().validator_errors == 1)
            assert not a.host.is_banned(b.host.peer_id)

            # Garbage payloads and rejected batches are strikes: the third one bans.
            raw_b = b.host.pubsub
            await raw_b.publish(TOPIC, b"\xc1 not msgpack")
            await b.gossip.publish(TOPIC, [b"BAD 1"])
            await b.gossip.publish(TOPIC, [b"BAD 2"])
            await b.gossip.wait_flushed()
            await eventually(lambda: a.host.peer_id in b.disconnected)
            assert a.host.is_banned(b.host.peer_id)
            assert a.host.statistics().bans == 1
            stats = a.gossip.statistics()
            assert stats.rejected_payload == 1
            assert stats.rejected_by_validator == 2
            assert a.batches == []

            # Refused both ways while the ban lasts.
            with pytest.raises(PeerBanned):
                await a.host.connect(b.host.multiaddrs()[0])
            b.disconnected.clear()
            # The dial may fail, or succeed and be closed by a at once.
            with contextlib.suppress(NetError):
                await b.host.connect(a.host.multiaddrs()[0], remember=False)
            await eventually(lambda: not b.host.is_connected(a.host.peer_id))
            assert a.host.statistics().refused_banned >= 1


@pytest.mark.trio
async def test_garbage_pubsub_rpc_does_not_stop_the_node(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_nodes(tmp_path, 3) as (a, b, c):
            await _connect(a, b)
            await _connect(a, c)
            # b speaks /meshsub/1.1.0 to a, but sends a protobuf that does not parse.
            stream = await b.host.libp2p_host.new_stream(
                ID.from_base58(a.host.peer_id), [TProtocol("/meshsub/1.1.0")]
            )
            await stream.write(b"\x05\xff\xff\xff\xff\xff")
            await trio.sleep(0.5)
            await c.gossip.publish(TOPIC, [b"still alive"])
            await c.gossip.wait_flushed()
            await a.wait_ops(1)
            assert a.batches[-1][2] == [b"still alive"]


@pytest.mark.trio
async def test_framed_streams_round_trip_and_refuse_oversized_frames(tmp_path: Path) -> None:
    async def echo(stream: FramedStream) -> None:
        while True:
            try:
                frame = await stream.read_frame()
            except StreamClosedError:
                return
            await stream.write_frame(frame)

    with trio.fail_after(30):
        async with open_nodes(tmp_path, 2) as (a, b):
            serve_framed(a.host, "/test/echo/1", echo, max_frame_size=1000)
            await _connect(a, b)
            async with open_framed_stream(b.host, a.host.peer_id, "/test/echo/1") as stream:
                for payload in (b"", b"x", os.urandom(1000)):
                    await stream.write_frame(payload)
                    assert await stream.read_frame() == payload
            # b allows big frames but a's handler does not: a resets, b sees the stream end.
            async with open_framed_stream(
                b.host, a.host.peer_id, "/test/echo/1", max_frame_size=10_000
            ) as stream:
                await stream.write_frame(b"y" * 5000)
                with pytest.raises(StreamClosedError):
                    await stream.read_frame()
            # And the other way round: a's reply is too big for b's limit.
            async with open_framed_stream(
                b.host, a.host.peer_id, "/test/echo/1", max_frame_size=10
            ) as stream:
                stream.max_frame_size = 1000
                await stream.write_frame(b"z" * 500)
                stream.max_frame_size = 10
                with pytest.raises(FrameTooLarge):
                    await stream.read_frame()


def test_identity_is_persistent_private_and_checked(tmp_path: Path) -> None:
    first = load_or_create_identity(tmp_path / "d")
    second = load_or_create_identity(tmp_path / "d")
    assert first.public_key.to_bytes() == second.public_key.to_bytes()
    path = tmp_path / "d" / IDENTITY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    path.chmod(0o644)
    load_or_create_identity(tmp_path / "d")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_bytes(b"short")
    with pytest.raises(StoreError):
        load_or_create_identity(tmp_path / "d")


def test_batch_payload_helper_matches_gossip_wire() -> None:
    assert encode_batch([b"a", b"bc"]) == b"\x92\xc4\x01a\xc4\x02bc"


@pytest.mark.trio
async def test_a_ban_outlives_a_restart_and_invalid_messages_cost_the_forwarder(
    tmp_path: Path,
) -> None:
    with trio.fail_after(40):
        async with open_nodes(tmp_path, 2, max_invalid_strikes=3) as (a, b):
            await _connect(a, b)
            for n in range(3):
                await b.gossip.publish(TOPIC, [f"BAD {n}".encode()])
            await b.gossip.wait_flushed()
            await eventually(lambda: a.host.is_banned(b.host.peer_id))
            scorer = a.host.router.scorer
            assert scorer is not None
            # Workaround 18: each rejected message took 10 points from the forwarder's score.
            assert scorer.score(ID.from_base58(b.host.peer_id), [TOPIC]) < -20
            banned = b.host.peer_id
        async with open_nodes(tmp_path, 2, max_invalid_strikes=3) as (a, b):
            assert b.host.peer_id == banned  # the same identities, from the same data dirs
            assert a.host.is_banned(banned)  # restored from banned-peers.json
            with pytest.raises(PeerBanned):
                await a.host.connect(b.host.multiaddrs()[0])
            a.host.unban(banned)
            assert not a.host.is_banned(banned)
        async with open_nodes(tmp_path, 1) as (a,):
            assert not a.host.is_banned(banned)  # the unban was saved too


@pytest.mark.trio
async def test_a_bootstrap_peer_is_reached_through_its_second_address(tmp_path: Path) -> None:
    """Workaround 19 (found by scripts/fault_campaign.py): of several TCP addresses py-libp2p's
    ``dial_peer`` tries one; when that one leads to another peer (an address announced over
    identify that is someone else's here), the address that works must still be tried."""
    with trio.fail_after(30):
        async with open_nodes(tmp_path, 2) as (target, bystander):
            wrong = bystander.host.multiaddrs()[0].split("/p2p/")[0]
            right = target.host.multiaddrs()[0].split("/p2p/")[0]
            peer = target.host.peer_id
            host = P2PHost(
                HostConfig(
                    data_dir=tmp_path / "dialler",
                    listen_addrs=("/ip4/127.0.0.1/tcp/0",),
                    bootstrap_addrs=(f"{wrong}/p2p/{peer}", f"{right}/p2p/{peer}"),
                )
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(host.run)
                await host.wait_peer_connected(peer)
                assert bystander.host.peer_id not in host.peers()
                nursery.cancel_scope.cancel()
