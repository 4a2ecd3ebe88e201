"""The network service of a Node, in process: two or three real Nodes and libp2p hosts in one trio
run. Gossip of new operations, sync on connect and on demand, targeted fetch of what pending
operations miss, follows, hostile peers, network.json, and shutdown by cancellation."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    CommentPayload,
    ThreadPayload,
    make_operation,
)
from p2pcomments.core.sync_protocol import (
    MIN_FRAME_BYTES,
    PROTOCOL_ID,
    MessageType,
    SyncLimits,
    decode_message,
    encode_done,
    encode_hello,
    encode_ops,
)
from p2pcomments.follows import site_topic, thread_topic
from p2pcomments.net.gossip_payload import encode_batch
from p2pcomments.net.interface import NETWORK_FILE, NetworkConfig
from p2pcomments.net.node_network import NodeNetwork
from p2pcomments.net.service import SyncCounts
from p2pcomments.net.streams import open_framed_stream
from p2pcomments.node import Node, open_node

SITE = "blog.example"


@dataclass
class Peer:
    node: Node
    network: NodeNetwork

    @property
    def peer_id(self) -> str:
        return self.network.peer_id

    @property
    def address(self) -> str:
        return self.network.multiaddrs()[0]


async def eventually(predicate: Callable[[], bool]) -> None:
    """Poll state owned by the code under test; callers bound it with ``trio.fail_after``."""
    while not predicate():  # noqa: ASYNC110
        await trio.sleep(0.02)


@asynccontextmanager
async def open_peers(
    tmp_path: Path, count: int, *, sync_limits: SyncLimits | None = None, **options: object
) -> AsyncIterator[list[Peer]]:
    peers: list[Peer] = []
    config = NetworkConfig(
        listen_addrs=("/ip4/127.0.0.1/tcp/0",),
        sync_interval=0,
        **options,  # type: ignore[arg-type]
    )
    async with trio.open_nursery() as nursery:
        for index in range(count):
            node = await nursery_node(nursery, tmp_path / f"node{index}")
            network = NodeNetwork(node, config, sync_limits=sync_limits)
            await nursery.start(network.run)
            peers.append(Peer(node, network))
        yield peers
        nursery.cancel_scope.cancel()


async def nursery_node(nursery: trio.Nursery, data_dir: Path) -> Node:
    """Open a Node that stays open until the nursery is cancelled."""

    async def keep_open(*, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        async with open_node(data_dir, create_identity=True) as node:
            task_status.started(node)
            await trio.sleep_forever()

    node: Node = await nursery.start(keep_open)
    return node


async def connect(a: Peer, b: Peer) -> None:
    """``b`` dials ``a`` and both see the connection."""
    await b.network.connect(a.address)
    await a.network.host.wait_peer_connected(b.peer_id)
    await b.network.host.wait_peer_connected(a.peer_id)


async def wait_topic_peer(a: Peer, b: Peer, topic: str) -> None:
    await eventually(
        lambda: (
            b.peer_id in a.network.gossip.mesh_peers(topic)
            and a.peer_id in b.network.gossip.mesh_peers(topic)
        )
    )


@pytest.mark.trio
async def test_new_comments_travel_by_gossip(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_peers(tmp_path, 2) as (a, b):
            await b.network.follow(site=SITE)
            thread = await a.node.create_thread("Hello", site=SITE)  # a follows the site too
            await eventually(lambda: site_topic(SITE) in a.network.gossip.subscriptions())
            await connect(a, b)
            await eventually(lambda: thread.id in b.node.replica)  # sync on connect
            await wait_topic_peer(a, b, site_topic(SITE))
            started = trio.current_time()
            comment = await a.node.comment(thread.id, "first!")
            await eventually(lambda: comment.id in b.node.replica)
            print(f"\ngossip a -> b: {1000 * (trio.current_time() - started):.1f} ms")
            stats = b.network.counters()
            assert stats.gossip_ops_in >= 1
            assert stats.gossip_batches_in >= 1
            assert a.node.thread_view(thread.id).digest() == b.node.thread_view(thread.id).digest()


@pytest.mark.trio
async def test_sync_on_connect_brings_a_backlog(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with open_peers(tmp_path, 2) as (a, b):
            thread = await a.node.create_thread("Backlog")
            for n in range(300):
                await a.node.comment(thread.id, f"comment {n}")
            theirs = await b.node.create_thread("Theirs")
            started = trio.current_time()
            await connect(a, b)
            await eventually(
                lambda: (
                    b.node.replica.operation_count() == 302
                    and a.node.replica.operation_count() == 302
                )
            )
            print(f"\nsync of 301 + 1 ops on connect: {trio.current_time() - started:.3f} s")
            assert theirs.id in a.node.replica
            assert a.node.thread_view(thread.id).digest() == b.node.thread_view(thread.id).digest()
            # Both sides agree now: another round finds nothing to do.
            counts = await b.network.sync_now()
            assert counts.peers_synced == 1
            assert (counts.received, counts.sent) == (0, 0)
            assert b.network.counters().sync_rounds >= 2


@pytest.mark.trio
async def test_sync_now_with_one_peer_reports_counts(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with open_peers(tmp_path, 2, sync_on_connect=False) as (a, b):
            await connect(a, b)
            thread = await a.node.create_thread("On demand")  # not followed by b: sync only
            await a.node.comment(thread.id, "one")
            mine = await b.node.create_thread("Mine")
            counts = await b.network.sync_now(a.peer_id)
            assert (counts.peers_synced, counts.received, counts.sent) == (1, 2, 1)
            assert dict(counts.failed) == {}
            assert thread.id in b.node.replica
            assert mine.id in a.node.replica


@pytest.mark.trio
async def test_pending_operations_fetch_what_they_miss(tmp_path: Path) -> None:
    """An operation whose parents never reached us by gossip is held pending, and its parents
    are fetched from the peer that sent it."""
    author = SigningKey(b"\x04" * 32)
    thread = make_operation(author, ThreadPayload(title="Chain", site=SITE), timestamp_ms=10)
    first = make_operation(
        author, CommentPayload(body="parent"), timestamp_ms=11, thread=thread.id, refs=(thread.id,)
    )
    reply = make_operation(
        author, CommentPayload(body="child"), timestamp_ms=12, thread=thread.id, refs=(first.id,)
    )
    with trio.fail_after(30):
        async with open_peers(tmp_path, 2, sync_on_connect=False) as (a, b):
            # Learned by sync, so not gossiped by a.
            await a.node.ingest([thread.encoded, first.encoded], source="sync")
            await a.network.follow(site=SITE)
            await b.network.follow(site=SITE)
            await connect(a, b)
            await wait_topic_peer(a, b, site_topic(SITE))
            await a.node.ingest([reply.encoded], source="import")  # gossiped: a learned it first
            await eventually(lambda: reply.id in b.node.replica)
            assert first.id in b.node.replica
            assert thread.id in b.node.replica
            # The counters move when the fetch session ends, just after its ops were ingested.
            await eventually(lambda: b.network.counters().sync_rounds == 1)
            stats = b.network.counters()
            assert stats.fetch_sessions == 1
            assert stats.fetch_ids_requested == 2


@pytest.mark.trio
async def test_writing_in_a_thread_follows_it(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_peers(tmp_path, 1) as (a,):
            thread = await a.node.create_thread("No site")
            topic = thread_topic(thread.id)
            await eventually(lambda: topic in a.network.gossip.subscriptions())
            assert a.network.follows.follows.threads == {thread.id}
            await a.network.unfollow(thread=thread.id)
            assert topic not in a.network.gossip.subscriptions()
            published = a.network.counters().published_ops
            await a.node.comment(thread.id, "still unfollowed")
            # The publisher decides what to follow before it publishes: once the comment went
            # out, the decision (not to follow again) is made.
            await eventually(lambda: a.network.counters().published_ops > published)
            assert topic not in a.network.gossip.subscriptions()
            saved = json.loads((a.node.data_dir / "follows.json").read_text())
            assert saved["threads"] == []
            assert len(saved["unfollowed"]["threads"]) == 1


@pytest.mark.trio
async def test_invalid_gossip_is_rejected_and_the_sender_banned(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_peers(tmp_path, 2, max_invalid_strikes=3) as (a, b):
            await a.network.follow(site=SITE)
            await b.network.follow(site=SITE)
            await connect(a, b)
            await wait_topic_peer(a, b, site_topic(SITE))
            stranger = SigningKey(b"\x05" * 32)
            pubsub = b.network.host.pubsub
            for n in range(3):
                forged = bytearray(
                    make_operation(
                        stranger, ThreadPayload(title=f"x{n}", site=SITE), timestamp_ms=1
                    ).encoded
                )
                forged[-1] ^= 1  # break the signature
                # Publish raw bytes as a hostile node would: b's own validator passes its own
                # messages through.
                await pubsub.publish(site_topic(SITE), encode_batch([bytes(forged)]))
            await eventually(lambda: a.network.host.is_banned(b.peer_id))
            assert a.network.counters().rejected_from_peers >= 3
            assert a.node.replica.operation_count() == 0


@pytest.mark.trio
async def test_sync_violations_count_against_the_peer(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_peers(tmp_path, 2, max_invalid_strikes=2, sync_on_connect=False) as (
            a,
            b,
        ):
            await connect(a, b)
            stranger = SigningKey(b"\x06" * 32)
            unsolicited = make_operation(stranger, ThreadPayload(title="push"), timestamp_ms=5)
            for _ in range(2):
                async with open_framed_stream(b.network.host, a.peer_id, PROTOCOL_ID) as stream:
                    await stream.write_frame(encode_hello(0, b"\x00" * 16, 2**20))
                    await stream.read_frame()  # a's HELLO
                    await stream.write_frame(encode_ops([unsolicited.encoded]))
                    error = decode_message(await stream.read_frame())
                    assert error.type is MessageType.ERROR
                    assert error.reason == "unsolicited-operation"
            await eventually(lambda: a.network.host.is_banned(b.peer_id))
            assert unsolicited.id not in a.node.replica
            assert a.network.counters().sync_violations == 2


@pytest.mark.trio
async def test_network_file_exists_while_running(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_peers(tmp_path, 1) as (a,):
            path = a.node.data_dir / NETWORK_FILE
            document = json.loads(path.read_text())
            assert document["peer_id"] == a.peer_id
            assert document["multiaddrs"] == a.network.multiaddrs()
            assert document["multiaddrs"][0].startswith("/ip4/127.0.0.1/tcp/")
            assert document["multiaddrs"][0].endswith(f"/p2p/{a.peer_id}")
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            described = a.network.describe()
            assert described.peer_id == a.peer_id
            assert described.multiaddrs == tuple(a.network.multiaddrs())
            assert described.statistics.counters.peers == 0
            assert described.statistics.host.peer_id == a.peer_id
        assert not path.exists()


@pytest.mark.trio
async def test_three_nodes_converge_through_a_middle_one(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with open_peers(tmp_path, 3) as (a, b, c):
            for peer in (a, b, c):
                await peer.network.follow(site=SITE)
            await connect(a, b)
            await connect(b, c)
            await wait_topic_peer(a, b, site_topic(SITE))
            await wait_topic_peer(b, c, site_topic(SITE))
            thread = await a.node.create_thread("Relay", site=SITE)
            await eventually(lambda: thread.id in c.node.replica)
            comments = []
            for n in range(20):
                comments.append(await c.node.comment(thread.id, f"from c {n}"))
            await eventually(lambda: all(op.id in a.node.replica for op in comments))
            digests = {p.node.thread_view(thread.id).digest() for p in (a, b, c)}
            assert len(digests) == 1


@pytest.mark.trio
async def test_a_backlog_over_the_session_limit_takes_several_sessions(tmp_path: Path) -> None:
    limits = SyncLimits(
        max_frame_bytes=MIN_FRAME_BYTES,
        max_ops_frame_bytes=MIN_FRAME_BYTES,
        max_session_bytes=MIN_FRAME_BYTES,
    )
    with trio.fail_after(60):
        async with open_peers(tmp_path, 2, sync_limits=limits, sync_on_connect=False) as (a, b):
            thread = await a.node.create_thread("Big")
            for n in range(500):
                await a.node.comment(thread.id, f"comment {n} " + "x" * 200)
            await connect(a, b)
            counts = await b.network.sync_now(a.peer_id)
            assert counts.peers_synced == 1
            assert counts.received == 501
            assert b.node.replica.operation_count() == 501
            assert b.network.counters().sync_failed >= 2  # sessions that hit the limit


async def comments_on_a_new_thread(peer: Peer, title: str, count: int) -> list[bytes]:
    thread = await peer.node.create_thread(title)
    ids = [thread.id]
    for n in range(count):
        ids.append((await peer.node.comment(thread.id, f"{title} {n}")).id)
    return ids


@pytest.mark.trio
async def test_rounds_both_sides_open_at_once_move_each_operation_once(tmp_path: Path) -> None:
    """Both sides start a round with the other at the same moment, three times over: one session
    per pair goes on (the other is declined, or waits), so nothing is sent twice."""
    with trio.fail_after(60):
        async with open_peers(tmp_path, 2, sync_on_connect=False) as (a, b):
            await connect(a, b)
            moved = 0
            for round_number in range(3):
                a_only = await comments_on_a_new_thread(a, f"a{round_number}", 40)
                b_only = await comments_on_a_new_thread(b, f"b{round_number}", 30)
                moved += len(a_only) + len(b_only)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(a.network.sync_now, b.peer_id)
                    nursery.start_soon(b.network.sync_now, a.peer_id)
                assert all(op_id in b.node.replica for op_id in a_only)
                assert all(op_id in a.node.replica for op_id in b_only)
            stats = [peer.network.counters() for peer in (a, b)]
            assert sum(s.sync_ops_received for s in stats) == moved, stats
            assert sum(s.sync_ops_sent for s in stats) == moved, stats
            assert sum(s.sync_ops_duplicate for s in stats) == 0, stats
            assert sum(s.sync_refused for s in stats) == sum(s.sync_declined for s in stats)
            assert sum(s.sync_failed for s in stats) == 0, stats


@pytest.mark.trio
async def test_a_session_in_flight_makes_the_peer_decline_another(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_peers(tmp_path, 2, sync_on_connect=False) as (a, b):
            await connect(a, b)
            hello = encode_hello(0, b"\x00" * 16, 2**20)
            async with open_framed_stream(b.network.host, a.peer_id, PROTOCOL_ID) as first:
                await first.write_frame(hello)
                answer = decode_message(await first.read_frame())
                assert answer.type is MessageType.HELLO  # a serves this one
                async with open_framed_stream(b.network.host, a.peer_id, PROTOCOL_ID) as second:
                    await second.write_frame(hello)
                    refusal = decode_message(await second.read_frame())
                    assert (refusal.type, refusal.reason) == (MessageType.ERROR, "busy")
                # While it is in flight, a opens nothing with b: its round waits for the end.
                initiated = a.network.counters().sync_initiated
                rounds: list[SyncCounts] = []

                async def round_with_b() -> None:
                    rounds.append(await a.network.sync_now(b.peer_id))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(round_with_b)
                    # Every task idle: the round had every chance to start, and is waiting.
                    await trio.testing.wait_all_tasks_blocked(cushion=0.05)
                    assert a.network.counters().sync_initiated == initiated
                    assert rounds == []
                    await first.write_frame(encode_done())
                    assert decode_message(await first.read_frame()).type is MessageType.DONE
                # Then it runs.
                assert [r.peers_synced for r in rounds] == [1]
                assert a.network.counters().sync_initiated == initiated + 1
            counts = await a.network.sync_now(b.peer_id)
            assert counts.peers_synced == 1
            stats = a.network.counters()
            assert stats.sync_refused == 1
            assert stats.sync_failed == 0


@pytest.mark.trio
async def test_an_operation_is_asked_of_one_peer_at_a_time(tmp_path: Path) -> None:
    """A joiner syncing with two peers that hold the same backlog at once receives it once."""
    with trio.fail_after(60):
        async with open_peers(tmp_path, 3, sync_on_connect=False) as (a, b, joiner):
            backlog = await comments_on_a_new_thread(a, "shared", 300)
            encoded = [op.encoded for op_id in backlog if (op := a.node.replica.get(op_id))]
            await b.node.ingest(encoded, source="import")
            await connect(a, joiner)
            await connect(b, joiner)
            counts = await joiner.network.sync_now()
            assert counts.peers_synced == 2, counts
            assert counts.received == len(backlog), counts
            assert joiner.node.replica.operation_count() == len(backlog)
            assert joiner.network.counters().sync_ops_duplicate == 0


@pytest.mark.trio
async def test_a_reply_reaches_its_addressee_by_the_inbox_topic(tmp_path: Path) -> None:
    """SPEC §8.2: b's node does not follow the thread, yet a's reply to b's comment arrives,
    by gossip on b's inbox topic (periodic sync is off here)."""
    from p2pcomments.core.inbox import inbox_topic

    with trio.fail_after(30):
        async with open_peers(tmp_path, 2) as (a, b):
            await a.network.follow(site=SITE)
            thread = await a.node.create_thread("Hello", site=SITE)
            await connect(a, b)
            await eventually(lambda: thread.id in b.node.replica)  # sync on connect
            mine = await b.node.comment(thread.id, "a question")
            await b.network.sync_now(None)
            await eventually(lambda: mine.id in a.node.replica)
            await b.network.unfollow(site=SITE)
            bucket = inbox_topic(b.node.author)
            await eventually(lambda: site_topic(SITE) not in b.network.gossip.subscriptions())
            await eventually(lambda: b.peer_id in a.network.gossip.topic_peers(bucket))
            synced = b.network.counters().sync_ops_received
            reply = await a.node.reply(mine.id, "an answer")
            await eventually(lambda: reply.id in b.node.replica)
            assert b.network.counters().sync_ops_received == synced
            [entry] = b.node.inbox_entries()
            assert (entry.id, entry.subject, entry.text) == (reply.id, mine.id, "an answer")
