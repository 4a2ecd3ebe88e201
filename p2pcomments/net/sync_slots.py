"""Which sync sessions may run: one per peer pair, one reconciling session at a time, and no id
asked of two peers at once.

Rules:

1. One session per peer pair (SPEC §9.4), whichever side opened it: a session is in flight from
   the moment it is decided (before its snapshot is built) until everything it received is
   ingested. Meanwhile we open none with that peer (background rounds skip it, `sync_now` and
   fetches wait) and decline one it opens with ERROR ``busy``, except when both sides opened
   at once, the peer has not answered ours yet and its peer id (bytes) is smaller than ours:
   then its session goes on and ours is declined.
2. Across peers, we run one reconciling session at a time (``reconciling``: a sketch or WANT_ALL
   asks for what it lacks without naming every id in full), and an id one of our sessions asked
   for is not asked of another peer (nor fetched) until that session is over (``asked``).
3. When a pair's last session ends, ``on_release`` is called (what waited for it may go now).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

import trio
from libp2p.peer.id import ID

from p2pcomments.core.replica import Replica
from p2pcomments.core.sync_protocol import SyncSession

__all__ = ["BUSY", "InitiatorOps", "Pair", "ReplicaOps", "SyncSlots", "declined"]

BUSY: Final = "busy"  # the ERROR reason of a declined session (rule 1)


class ReplicaOps:
    """`core.sync_protocol.OpSource` over the replica (its threads in memory or in the store)."""

    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    def get_encoded(self, op_ids: Sequence[bytes]) -> Mapping[bytes, bytes]:
        return self._replica.encoded(op_ids)


class InitiatorOps(ReplicaOps):
    """The `OpSource` of a session we open, keeping track of what our sessions ask for (rule 2).

    An initiator asks its `OpSource` which of the ids reconciliation found it needs are held
    here after all, and asks the peer for the rest. So an id not held is *asked* from that
    moment (counted in ``asked``, shared by our sessions, until `release`); one that another
    session of ours has asked already is answered as held, with empty bytes, so no second peer
    is asked for it, and listed in `left_to_others`. Those empty bytes are never sent: such an
    id is not an item here, and a session only sends its items.
    """

    def __init__(self, replica: Replica, asked: Counter[bytes]) -> None:
        super().__init__(replica)
        self._asked_by_all = asked
        self._asked: set[bytes] = set()
        self.left_to_others: set[bytes] = set()

    def get_encoded(self, op_ids: Sequence[bytes]) -> Mapping[bytes, bytes]:
        held = self._replica.encoded(op_ids)
        found: dict[bytes, bytes] = {}
        asked_by_all, asked = self._asked_by_all, self._asked
        for op_id in op_ids:
            encoded = held.get(op_id)
            if encoded is not None:
                found[op_id] = encoded
            elif op_id in asked:
                continue
            elif asked_by_all[op_id]:
                found[op_id] = b""
                self.left_to_others.add(op_id)
            else:
                asked.add(op_id)
                asked_by_all[op_id] += 1
        return found

    def ask(self, op_ids: Iterable[bytes]) -> None:
        """Count ids the session asks for without asking us (a targeted fetch) as asked."""
        for op_id in op_ids:
            if op_id not in self._asked:
                self._asked.add(op_id)
                self._asked_by_all[op_id] += 1

    def release(self) -> None:
        """The session is over and what it received ingested: nothing of it is asked any more."""
        asked_by_all = self._asked_by_all
        for op_id in self._asked:
            if asked_by_all[op_id] <= 1:
                del asked_by_all[op_id]
            else:
                asked_by_all[op_id] -= 1
        self._asked.clear()


@dataclass(slots=True)
class Pair:
    """The sync sessions in flight between us and one peer (rule 1): normally one, two only
    while both sides' simultaneous sessions are being sorted out."""

    outgoing: bool = False
    """We opened one (a round or a fetch), from before its snapshot until it is ingested."""
    answered: bool = False
    """The peer answered one we opened with its HELLO (it serves it)."""
    incoming: int = 0
    """Sessions the peer opened that we serve."""
    idle: trio.Event = field(default_factory=trio.Event)
    """Set once nothing is in flight with the peer any more."""


def declined(session: SyncSession) -> bool:
    error = session.error
    return error is not None and error.from_peer and error.reason == BUSY


def peer_id_bytes(peer_id: str) -> bytes:
    return ID.from_base58(peer_id).to_bytes()


class SyncSlots:
    """The sessions in flight with each peer (rule 1) and what our sessions asked for (rule 2)."""

    def __init__(self, own_peer_id: str, *, on_release: Callable[[], None]) -> None:
        self._own_peer_id = peer_id_bytes(own_peer_id)
        self._on_release = on_release
        self._pairs: dict[str, Pair] = {}  # peers a session is in flight with (rule 1)
        self.asked: Counter[bytes] = Counter()  # id → our sessions in flight that asked for it
        self.reconciling = trio.Lock()  # held by the one reconciling session we run (rule 2)

    def busy_with(self, peer_id: str) -> bool:
        """Whether a session with the peer is in flight."""
        return peer_id in self._pairs

    def initiator_ops(self, replica: Replica) -> InitiatorOps:
        """The `OpSource` for a session we open, counting what it asks for (rule 2)."""
        return InitiatorOps(replica, self.asked)

    def admit(self, peer_id: str) -> Pair | None:
        """The slot for a session the peer opens, or None to decline it (rule 1). The caller
        ends it with `release` once the session's operations are ingested."""
        pair = self._pairs.get(peer_id)
        if not self._admits(peer_id, pair):
            return None
        if pair is None:
            pair = self._pairs[peer_id] = Pair()
        pair.incoming += 1
        return pair

    def end_incoming(self, peer_id: str, pair: Pair) -> None:
        pair.incoming -= 1
        self.release(peer_id, pair)

    @asynccontextmanager
    async def opening(self, peer_id: str, *, wait: bool) -> AsyncIterator[Pair | None]:
        """Hold the pair's slot for sessions we open. When a session with the peer is in flight
        already: wait for its end, or (``wait`` False) yield None and hold nothing."""
        while (pair := self._pairs.get(peer_id)) is not None:
            if not wait:
                yield None
                return
            await pair.idle.wait()
        pair = self._pairs[peer_id] = Pair(outgoing=True)
        try:
            yield pair
        finally:
            pair.outgoing = False
            self.release(peer_id, pair)

    def _admits(self, peer_id: str, pair: Pair | None) -> bool:
        """Whether to serve a session the peer opens now (rule 1's tie-break)."""
        if pair is None:
            return True
        if pair.incoming or not pair.outgoing or pair.answered:
            return False
        return peer_id_bytes(peer_id) < self._own_peer_id

    def release(self, peer_id: str, pair: Pair) -> None:
        if pair.outgoing or pair.incoming:
            return
        if self._pairs.get(peer_id) is pair:
            del self._pairs[peer_id]
        pair.idle.set()
        self._on_release()
