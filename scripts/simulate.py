"""A network of N nodes simulated on the real sans-IO core (issue 14): how fast a comment reaches
every node and what it costs, from 10 to 100 to 1,000 nodes, for gossip + sync, sync alone and
flooding.

Real: every operation is made by `core.ops.make_operation` (signed), decoded and verified once by
`decode_operation` (the decoded `Operation` is immutable and shared by all simulated nodes, so
the 1,000-node run verifies each signature once); every node applies it to its own `Replica`;
every sync between two nodes whose sets differ is two real `SyncSession`s talking in memory
(each side's frames fed to the other), whose frames give the bytes and round trips. Two nodes
whose whole-set fingerprints are equal exchange the real HELLO, HELLO, DONE, DONE frames
(`encode_hello`, `encode_done`) without running a session. Gossip payloads are the real batch
form (`net.gossip_payload.encode_batch`) with 32-byte message ids.

Modelled (simulated time, a discrete-event loop on a heap; no sockets, no wall clock in results):
- GossipSub v1.1's mesh: degree D=6, D_lo=4, D_hi=12, heartbeat 1 s (GRAFT below D_lo, PRUNE above
  D_hi, each back to D), IHAVE of the last 3 heartbeats' message ids to D_lazy=6 connected peers
  outside the mesh and IWANT answers; a message is forwarded once to every mesh peer but the
  one it came from. Envelope bytes per RPC (`RPC_ENVELOPE`) stand for protobuf, Noise, Yamux.
- Flooding (floodsub): every new message to every connected peer but the sender.
- Sync (net/sync_scheduling.py rule 1): the dialler of a new connection syncs with its peer, and
  every node syncs with one random connected peer every 30 s (x U(0.8, 1.2)). A session lasts
  its turns times the link latency plus its bytes over the link's bandwidth; what it moved is
  applied when it ends.
- Links: each node dials `DIALS` random nodes (about 2 x DIALS connections each), one-way latency
  per link U(20, 150) ms, 10 Mbit/s.
- Disturbances: the history (`HISTORY` operations) is held by every node but a few that hold
  almost nothing (1%, at least one: only the thread) and catch up by sync; 10% of the nodes
  leave (dropping their connections) and rejoin later, redialling; a partition cuts the network
  in two halves (cross links drop) and heals (they are redialled); new comments are made by
  random online nodes during all of it, each citing the heads its author's replica sees.

Results: ``converged`` when every node holds every operation and all view digests are equal;
``conv s`` is the simulated time from the last disturbance (last comment, heal or rejoin) until
then; ``rounds`` is that time in heartbeats; ``hops`` the longest chain of forwards and sync
sessions that carried an operation to a node; bytes are everything nodes sent, per node per new
comment, split into push (gossip data and control) and sync.

Usage: ``python scripts/simulate.py [--nodes 10 100 1000] [--comments 12] [--seed 1]``.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from p2pcomments.core.ops import (
    CommentPayload,
    Operation,
    ThreadPayload,
    decode_operation,
    make_operation,
)
from p2pcomments.core.reconcile import INFINITY, MIN_BOUND, SortedItems
from p2pcomments.core.replica import Applied, Pending, Replica
from p2pcomments.core.sync_protocol import (
    OpsReceived,
    SyncSession,
    encode_done,
    encode_hello,
)
from p2pcomments.net.gossip_payload import encode_batch

D: Final = 6
D_LO: Final = 4
D_HI: Final = 12
D_LAZY: Final = 6
HEARTBEAT: Final = 1.0
HISTORY_GOSSIP: Final = 3  # heartbeats of message ids in IHAVE
SYNC_INTERVAL: Final = 30.0
DIALS: Final = 10
BANDWIDTH: Final = 10e6 / 8  # bytes per second per link
RPC_ENVELOPE: Final = 60  # protobuf RPC + Noise tag + Yamux header, per RPC (modelled)
MESSAGE_FIELDS: Final = 140  # from, seqno, topic, signature of a GossipSub message (modelled)
CONTROL_ID: Final = 34  # a 32-byte message id in IHAVE/IWANT with its protobuf tag
SYNC_FRAME_ENVELOPE: Final = 34  # length prefix + Noise + Yamux per sync frame (modelled)
HISTORY: Final = 40
CHECK_EVERY: Final = 0.1  # simulated seconds between convergence checks
MODES: Final = ("gossip+sync", "sync alone", "flooding+sync")


@dataclass(frozen=True, slots=True)
class Scenario:
    nodes: int
    comments: int = 12
    seed: int = 1
    end: float = 400.0
    churn_fraction: float = 0.10
    empty_fraction: float = 0.01


@dataclass(slots=True)
class Outcome:
    mode: str
    nodes: int
    converged: bool
    converge_seconds: float
    max_hops: int
    push_bytes: int
    sync_bytes: int
    sync_sessions: int
    real_sessions: int
    max_round_trips: int
    comments: int
    digests: frozenset[bytes]

    @property
    def push_per_node_op(self) -> float:
        return self.push_bytes / self.nodes / self.comments

    @property
    def sync_per_node_op(self) -> float:
        return self.sync_bytes / self.nodes / self.comments


class Codec:
    """Canonical bytes to the decoded, verified `Operation`, once for all simulated nodes."""

    def __init__(self) -> None:
        self._decoded: dict[bytes, Operation] = {}

    def decode(self, data: bytes) -> Operation:
        op = self._decoded.get(data)
        if op is None:
            op = decode_operation(data)
            self._decoded[data] = op
        return op


@dataclass(eq=False, slots=True)
class SimNode:
    index: int
    replica: Replica = field(default_factory=Replica)
    items: SortedItems = field(default_factory=SortedItems)
    encoded: dict[bytes, bytes] = field(default_factory=dict)  # applied and pending, by id
    hops: dict[bytes, int] = field(default_factory=dict)
    seen: set[bytes] = field(default_factory=set)  # gossip message ids
    peers: set[int] = field(default_factory=set)
    mesh: set[int] = field(default_factory=set)
    mcache: list[list[bytes]] = field(default_factory=list)
    online: bool = True
    group: int = 0
    syncing: set[int] = field(default_factory=set)

    def get_encoded(self, op_ids: Sequence[bytes]) -> Mapping[bytes, bytes]:
        return {i: self.encoded[i] for i in op_ids if i in self.encoded}

    def fingerprint(self) -> bytes:
        return self.items.fingerprint(MIN_BOUND, INFINITY)


class Simulation:
    def __init__(self, scenario: Scenario, mode: str, world: World) -> None:
        self.s = scenario
        self.mode = mode
        self.world = world
        self.rng = random.Random(f"{scenario.seed}/{scenario.nodes}/{mode}")
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[object, ...]]] = []
        self._seq = 0
        self.nodes = [SimNode(i) for i in range(scenario.nodes)]
        self.latency: dict[tuple[int, int], float] = {}
        self.partitioned = False
        self.cut_links: list[tuple[int, int]] = []
        self.left_links: dict[int, list[int]] = {}
        self.push_bytes = 0
        self.sync_bytes = 0
        self.sync_sessions = 0
        self.real_sessions = 0
        self.max_round_trips = 0
        self.all_ids: set[bytes] = set()
        self.last_disturbance = 0.0
        self.comments_made = 0

    # -- the event loop ------------------------------------------------------------------------

    def at(self, when: float, action: Callable[..., None], *args: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, action, args))

    def run(self) -> Outcome:
        self.setup()
        converged_at: float | None = None
        while self._heap:
            when, _, action, args = heapq.heappop(self._heap)
            if when > self.s.end:
                break
            self.now = when
            if action == self.check:
                if self.comments_made == self.s.comments and self.converged():
                    converged_at = self.now
                    break
                self.at(self.now + CHECK_EVERY, self.check)
                continue
            action(*args)
        digests = frozenset(node.replica.view(self.world.thread.id).digest() for node in self.nodes)
        return Outcome(
            mode=self.mode,
            nodes=self.s.nodes,
            converged=converged_at is not None and len(digests) == 1,
            converge_seconds=(converged_at or self.s.end) - self.last_disturbance,
            max_hops=max(max(node.hops.values(), default=0) for node in self.nodes),
            push_bytes=self.push_bytes,
            sync_bytes=self.sync_bytes,
            sync_sessions=self.sync_sessions,
            real_sessions=self.real_sessions,
            max_round_trips=self.max_round_trips,
            comments=self.s.comments,
            digests=digests,
        )

    def check(self) -> None:
        """A marker event: `run` tests convergence when it comes up."""

    def converged(self) -> bool:
        total = len(self.all_ids)
        return all(node.online and len(node.items) == total for node in self.nodes)

    # -- the scenario --------------------------------------------------------------------------

    def setup(self) -> None:
        n, rng = self.s.nodes, self.rng
        empty = set(rng.sample(range(n), max(1, round(n * self.s.empty_fraction))))
        history = self.world.history
        for node in self.nodes:
            held = history[:1] if node.index in empty else history
            for op in held:
                self.apply(node, op, 0)
            if node.index not in empty:
                for op in held:
                    node.seen.add(op.id)
        self.all_ids = {op.id for op in history}
        for node in self.nodes:
            if node.index in empty:
                continue
            others = [i for i in range(n) if i != node.index and i not in empty]
            for peer in rng.sample(others, min(DIALS, len(others))):
                self.link(node.index, peer, sync=False)
        for index in sorted(empty):  # they join a second in, and catch up by sync
            self.at(1.0, self.join, index, [])
        for node in self.nodes:
            self.at(rng.uniform(0, HEARTBEAT), self.heartbeat, node.index)
            self.at(rng.uniform(0.8, 1.2) * SYNC_INTERVAL, self.periodic_sync, node.index)
        # Disturbances: churn 20-60 s out, 80-120 s back; a partition 40-100 s; comments 10-110 s.
        leaving = rng.sample(
            sorted(set(range(n)) - empty), max(1, round(n * self.s.churn_fraction))
        )
        for index in leaving:
            self.at(rng.uniform(20, 60), self.leave, index)
            back = rng.uniform(80, 120)
            self.at(back, self.rejoin, index)
            self.last_disturbance = max(self.last_disturbance, back)
        self.at(40.0, self.partition)
        self.at(100.0, self.heal)
        self.last_disturbance = max(self.last_disturbance, 100.0)
        for k in range(self.s.comments):
            when = 10.0 + 100.0 * (k + rng.random()) / self.s.comments
            self.at(when, self.comment, k)
            self.last_disturbance = max(self.last_disturbance, when)
        self.at(self.last_disturbance, self.check)

    def link(self, a: int, b: int, *, sync: bool) -> None:
        if a == b or b in self.nodes[a].peers or not self.reachable(a, b):
            return
        self.nodes[a].peers.add(b)
        self.nodes[b].peers.add(a)
        key = (min(a, b), max(a, b))
        if key not in self.latency:
            self.latency[key] = self.rng.uniform(0.020, 0.150)
        if sync:
            self.start_sync(a, b)

    def unlink(self, a: int, b: int) -> None:
        for x, y in ((a, b), (b, a)):
            self.nodes[x].peers.discard(y)
            self.nodes[x].mesh.discard(y)

    def reachable(self, a: int, b: int) -> bool:
        na, nb = self.nodes[a], self.nodes[b]
        return na.online and nb.online and (not self.partitioned or na.group == nb.group)

    def lat(self, a: int, b: int) -> float:
        return self.latency[(min(a, b), max(a, b))]

    def join(self, index: int, known: list[int]) -> None:
        node = self.nodes[index]
        node.online = True
        candidates = [p for p in known if self.reachable(index, p)]
        others = [i for i in range(self.s.nodes) if i != index and self.reachable(index, i)]
        self.rng.shuffle(others)
        for peer in (candidates + others)[:DIALS]:
            self.link(index, peer, sync=True)

    def leave(self, index: int) -> None:
        node = self.nodes[index]
        self.left_links[index] = sorted(node.peers)
        for peer in list(node.peers):
            self.unlink(index, peer)
        node.online = False
        node.syncing.clear()

    def rejoin(self, index: int) -> None:
        self.join(index, self.left_links.pop(index, []))

    def partition(self) -> None:
        for node in self.nodes:
            node.group = 0 if node.index < self.s.nodes // 2 else 1
        self.partitioned = True
        for node in self.nodes:
            for peer in list(node.peers):
                if self.nodes[peer].group != node.group:
                    self.cut_links.append((node.index, peer))
                    self.unlink(node.index, peer)

    def heal(self) -> None:
        self.partitioned = False
        for a, b in self.cut_links:
            if a < b or (b, a) not in self.cut_links:
                self.link(a, b, sync=True)
        self.cut_links = []

    def comment(self, k: int) -> None:
        online = [node for node in self.nodes if node.online and len(node.items) > 1]
        author = self.rng.choice(online)
        thread = self.world.thread
        state = author.replica.thread(thread.id)
        op = make_operation(
            self.world.keys[k % len(self.world.keys)],
            CommentPayload(body=f"comment {k} from node {author.index}"),
            timestamp_ms=self.world.start_ms + 200_000 + k * 1000,
            thread=thread.id,
            refs=(thread.id,),
            deps=frozenset(state.causal_deps()),
        )
        data = op.encoded
        self.world.codec.decode(data)  # the author's own operation, decoded once
        self.all_ids.add(op.id)
        self.comments_made += 1
        self.apply(author, self.world.codec.decode(data), 0)
        author.seen.add(op.id)
        if self.mode != "sync alone":
            self.publish(author, op.id, data, 0, source=None)

    # -- applying ------------------------------------------------------------------------------

    def apply(self, node: SimNode, op: Operation, hops: int) -> bool:
        """Apply to the node's replica; True when it is valid there (applied or pending)."""
        result = node.replica.apply(op)
        outcome = result.outcome
        if isinstance(outcome, Applied):
            self._hold(node, op, hops)
            for released, released_outcome in result.released:
                if isinstance(released_outcome, Applied):
                    self._hold(node, released, hops)
            return True
        if isinstance(outcome, Pending):
            node.encoded[op.id] = op.encoded
            return True
        return False

    def _hold(self, node: SimNode, op: Operation, hops: int) -> None:
        node.encoded[op.id] = op.encoded
        node.items.insert((op.timestamp_ms, op.id))
        node.hops[op.id] = hops

    # -- push: GossipSub and flooding ----------------------------------------------------------

    def publish(
        self, node: SimNode, op_id: bytes, data: bytes, hops: int, *, source: int | None
    ) -> None:
        payload = encode_batch([data])
        size = RPC_ENVELOPE + MESSAGE_FIELDS + len(payload)
        if self.mode == "flooding+sync":
            targets = node.peers
        else:
            targets = node.mesh
            if source is None and len(targets) < D:  # fanout: publish to D peers at least
                extra = [p for p in node.peers if p not in targets]
                targets = targets | set(extra[: D - len(targets)])
        if hops == 0 and node.mcache:
            node.mcache[-1].append(op_id)
        for peer in targets:
            if peer == source:
                continue
            self.push_bytes += size
            self.at(
                self.now + self.lat(node.index, peer),
                self.receive_message,
                peer,
                node.index,
                op_id,
                data,
                hops + 1,
            )

    def receive_message(
        self, index: int, sender: int, op_id: bytes, data: bytes, hops: int
    ) -> None:
        node = self.nodes[index]
        if not self.reachable(index, sender) or op_id in node.seen:
            return
        node.seen.add(op_id)
        if op_id in node.encoded:
            return
        if not self.apply(node, self.world.codec.decode(data), hops):
            return
        if node.mcache:
            node.mcache[-1].append(op_id)
        self.publish(node, op_id, data, hops, source=sender)

    def heartbeat(self, index: int) -> None:
        node = self.nodes[index]
        self.at(self.now + HEARTBEAT, self.heartbeat, index)
        if not node.online:
            return
        self.join_new(node)
        if self.mode == "gossip+sync":
            node.mesh &= node.peers
            if len(node.mesh) < D_LO:
                candidates = [p for p in node.peers if p not in node.mesh]
                self.rng.shuffle(candidates)
                for peer in candidates[: D - len(node.mesh)]:
                    node.mesh.add(peer)
                    self.nodes[peer].mesh.add(index)
                    self.push_bytes += RPC_ENVELOPE + 40  # GRAFT
            elif len(node.mesh) > D_HI:
                for peer in self.rng.sample(sorted(node.mesh), len(node.mesh) - D):
                    node.mesh.discard(peer)
                    self.nodes[peer].mesh.discard(index)
                    self.push_bytes += RPC_ENVELOPE + 40  # PRUNE
            recent = [i for window in node.mcache[-HISTORY_GOSSIP:] for i in window]
            if recent:
                lazy = [p for p in node.peers if p not in node.mesh]
                for peer in self.rng.sample(lazy, min(D_LAZY, len(lazy))):
                    self.push_bytes += RPC_ENVELOPE + 40 + CONTROL_ID * len(recent)
                    self.at(
                        self.now + self.lat(index, peer), self.receive_ihave, peer, index, recent
                    )
        node.mcache.append([])
        if len(node.mcache) > HISTORY_GOSSIP + 2:
            del node.mcache[0]

    def join_new(self, node: SimNode) -> None:
        """Mesh maintenance also covers the first heartbeat's empty mcache."""
        if not node.mcache:
            node.mcache.append([])

    def receive_ihave(self, index: int, sender: int, ids: list[bytes]) -> None:
        node = self.nodes[index]
        if not self.reachable(index, sender):
            return
        wanted = [i for i in ids if i not in node.seen and i not in node.encoded]
        if not wanted:
            return
        self.push_bytes += RPC_ENVELOPE + 40 + CONTROL_ID * len(wanted)
        self.at(self.now + self.lat(index, sender), self.receive_iwant, sender, index, wanted)

    def receive_iwant(self, index: int, asker: int, ids: list[bytes]) -> None:
        node = self.nodes[index]
        if not self.reachable(index, asker):
            return
        for op_id in ids:
            data = node.encoded.get(op_id)
            if data is None:
                continue
            hops = node.hops.get(op_id, 0)
            self.push_bytes += RPC_ENVELOPE + MESSAGE_FIELDS + len(encode_batch([data]))
            self.at(
                self.now + self.lat(index, asker),
                self.receive_message,
                asker,
                index,
                op_id,
                data,
                hops + 1,
            )

    # -- sync ----------------------------------------------------------------------------------

    def periodic_sync(self, index: int) -> None:
        node = self.nodes[index]
        self.at(self.now + self.rng.uniform(0.8, 1.2) * SYNC_INTERVAL, self.periodic_sync, index)
        if not node.online:
            return
        peers = sorted(p for p in node.peers if p not in node.syncing)
        if peers:
            self.start_sync(index, self.rng.choice(peers))

    def start_sync(self, a: int, b: int) -> None:
        """A whole session between ``a`` (initiator) and ``b``, its effect applied when it ends."""
        na, nb = self.nodes[a], self.nodes[b]
        if b in na.syncing or not self.reachable(a, b):
            return
        self.sync_sessions += 1
        latency = self.lat(a, b)
        if na.fingerprint() == nb.fingerprint() and not na.replica.missing():
            count = len(na.items)
            hello = encode_hello(count, na.fingerprint(), 1 << 20)
            done = encode_done()
            self.sync_bytes += 2 * (len(hello) + len(done) + 2 * SYNC_FRAME_ENVELOPE)
            return
        self.real_sessions += 1
        initiator = SyncSession(
            na.items, na, initiator=True, now=self.now, want=sorted(na.replica.missing())
        )
        responder = SyncSession(nb.items, nb, initiator=False, now=self.now)
        to_a: list[bytes] = []
        to_b: list[bytes] = []
        turns = 0
        total = 0
        progress = True
        while progress:
            progress = False
            for source, target, inbox in (
                (initiator, responder, to_b),
                (responder, initiator, to_a),
            ):
                sent = False
                while (frame := source.next_frame()) is not None:
                    sent = progress = True
                    total += len(frame) + SYNC_FRAME_ENVELOPE
                    if not target.done:
                        target.receive_frame(frame, now=self.now)
                        inbox.extend(_ops(target))
                turns += sent
        self.sync_bytes += total
        round_trips = math.ceil(turns / 2)
        self.max_round_trips = max(self.max_round_trips, round_trips)
        for session in (initiator, responder):
            if session.error is not None:  # honest in-memory peers: a bug here, not a result
                raise RuntimeError(f"a simulated sync session failed: {session.error}")
        duration = turns * latency + total / BANDWIDTH
        na.syncing.add(b)
        nb.syncing.add(a)
        self.at(self.now + duration, self.end_sync, a, b, to_a, to_b)

    def end_sync(self, a: int, b: int, to_a: list[bytes], to_b: list[bytes]) -> None:
        na, nb = self.nodes[a], self.nodes[b]
        na.syncing.discard(b)
        nb.syncing.discard(a)
        if not self.reachable(a, b):
            return  # the connection dropped before the session ended: nothing is kept
        for node, other, ops in ((na, nb, to_a), (nb, na, to_b)):
            for data in ops:
                op = self.world.codec.decode(data)
                if op.id not in node.encoded:
                    self.apply(node, op, other.hops.get(op.id, 0) + 1)


def _ops(session: SyncSession) -> Iterable[bytes]:
    while (event := session.next_event()) is not None:
        assert isinstance(event, OpsReceived)
        yield from event.ops


class World:
    """The operations every scenario shares: a thread and its history, made once."""

    def __init__(self, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.keys = [SigningKey(bytes([k + 1]) * 32) for k in range(8)]
        self.codec = Codec()
        self.start_ms = 1_700_000_000_000
        thread = make_operation(
            self.keys[0], ThreadPayload(title="A popular post"), timestamp_ms=self.start_ms
        )
        self.thread = thread
        writer = Replica()
        writer.apply(thread)
        history = [thread]
        for k in range(HISTORY - 1):
            state = writer.thread(thread.id)
            parent = rng.choice(history)
            op = make_operation(
                self.keys[rng.randrange(len(self.keys))],
                CommentPayload(body=f"earlier comment {k}"),
                timestamp_ms=self.start_ms + 1000 * (k + 1),
                thread=thread.id,
                refs=(parent.id,),
                deps=frozenset(state.causal_deps()),
            )
            writer.apply(op)
            history.append(op)
        self.history = [self.codec.decode(op.encoded) for op in history]


def simulate(scenario: Scenario, mode: str, world: World | None = None) -> Outcome:
    return Simulation(scenario, mode, world or World(scenario.seed)).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--comments", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    world = World(args.seed)
    header = (
        f"{'mode':<14} {'nodes':>6} {'conv':>5} {'conv s':>7} {'rounds':>6} {'hops':>5} "
        f"{'push B/node/op':>15} {'sync B/node/op':>15} {'total B/node/op':>16} "
        f"{'sessions':>9} {'real':>6} {'max RT':>6}"
    )
    print(
        f"{args.comments} new comments on a {HISTORY}-operation thread; 10% churn, a partition"
        " 40-100 s, 1% of nodes nearly empty; D=6 D_lo=4 D_hi=12, heartbeat 1 s, sync every 30 s"
    )
    print(header)
    print("-" * len(header))
    base: dict[str, Outcome] = {}
    for mode in MODES:
        for n in args.nodes:
            out = simulate(Scenario(nodes=n, comments=args.comments, seed=args.seed), mode, world)
            base.setdefault(mode, out)
            total = out.push_per_node_op + out.sync_per_node_op
            print(
                f"{mode:<14} {n:>6} {'yes' if out.converged else 'NO':>5} "
                f"{out.converge_seconds:>7.1f} {math.ceil(out.converge_seconds / HEARTBEAT):>6} "
                f"{out.max_hops:>5} {out.push_per_node_op:>15.0f} {out.sync_per_node_op:>15.0f} "
                f"{total:>16.0f} {out.sync_sessions:>9} {out.real_sessions:>6} "
                f"{out.max_round_trips:>6}",
                flush=True,
            )
    print(
        "conv s: simulated seconds from the last disturbance (last comment, heal, rejoin) until"
        " every node holds every operation with equal view digests; rounds: heartbeats in it;"
        " hops: longest forward/sync chain; real: sessions run on the real core (sets differed);"
        " max RT: most round trips of one session"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
