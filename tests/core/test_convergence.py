"""Invariants 1 and 2 (DESIGN.md §5) as a state machine: replicas over a hostile network converge.

Several nodes write operations from their own views (usually valid, sometimes not) and broadcast
them. The network is one inbox per node that reorders (delivery picks any message), duplicates,
delays and drops (a dropped message is resent later); some broadcasts carry a forged copy too.
Along the way every node's incrementally kept state must equal a fresh build of what it received,
and nothing forged may ever be applied. At the end (rule `deliver_everything`, and again at
teardown) every node has received every operation and all states are identical, and identical to
a fresh replica that applied the union in causal order and to one that got it backwards.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from p2pcomments.core.ops import Kind, Operation

from .strategies import KEYS, Clock, Node, budget, fingerprint, replica_of, write_operation

NODES = 3


def _forge(op: Operation, how: int) -> bytes:
    """A copy of ``op`` a hostile relay might send instead: never valid."""
    data = bytearray(op.encoded)
    if how == 0:  # a flipped bit in the body of the message
        data[len(data) // 2] ^= 0x01
    elif how == 1:  # a flipped bit in the signature
        data[-3] ^= 0x80
    else:  # another author's key in place of the author's
        author = op.encoded.index(op.author)
        other = bytes(KEYS[(how + 1) % len(KEYS)].verify_key)
        if other == op.author:
            other = bytes(KEYS[(how + 2) % len(KEYS)].verify_key)
        data[author : author + 32] = other
    return bytes(data)


class ConvergenceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.nodes = [Node() for _ in range(NODES)]
        self.inboxes: list[list[bytes]] = [[] for _ in range(NODES)]
        self.lost: list[list[bytes]] = [[] for _ in range(NODES)]
        self.written: list[Operation] = []  # every honest operation, in writing (causal) order
        self.honest: set[bytes] = set()
        self.clock = Clock()

    # -- writing ---------------------------------------------------------------------------------

    @initialize(data=st.data())
    def open_a_thread(self, data: st.DataObject) -> None:
        self._write(0, data, action="thread")

    @rule(at=st.integers(0, NODES - 1), data=st.data())
    def write(self, at: int, data: st.DataObject) -> None:
        self._write(at, data)

    @rule(at=st.integers(0, NODES - 1), count=st.integers(2, 4), data=st.data())
    def write_several(self, at: int, count: int, data: st.DataObject) -> None:
        """A burst from one node, each operation on top of the one before."""
        for _ in range(count):
            self._write(at, data)

    def _write(self, at: int, data: st.DataObject, action: str | None = None) -> None:
        node = self.nodes[at]
        threads = sum(op.kind is Kind.THREAD for op in self.written)
        op = write_operation(
            node, data.draw, self.clock, may_open_thread=threads < 2, action=action
        )
        self.written.append(op)
        self.honest.add(op.id)
        node.receive(op)
        for other in range(NODES):
            if other != at:
                self.inboxes[other].append(op.encoded)
        if data.draw(st.integers(0, 7), label="forge") == 0:
            victim = data.draw(st.integers(0, NODES - 1), label="victim")
            self.inboxes[victim].append(_forge(op, data.draw(st.integers(0, 2), label="how")))

    # -- the network -----------------------------------------------------------------------------

    def _busy(self) -> list[int]:
        return [i for i in range(NODES) if self.inboxes[i]]

    @precondition(lambda self: any(self.inboxes))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        """Deliver one message, whichever is chosen: messages overtake each other."""
        at = data.draw(st.sampled_from(self._busy()), label="to")
        inbox = self.inboxes[at]
        message = inbox.pop(data.draw(st.integers(0, len(inbox) - 1), label="message"))
        self.nodes[at].receive_bytes(message)

    @precondition(lambda self: any(self.inboxes))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        at = data.draw(st.sampled_from(self._busy()), label="at")
        inbox = self.inboxes[at]
        message = inbox[data.draw(st.integers(0, len(inbox) - 1), label="message")]
        inbox.insert(data.draw(st.integers(0, len(inbox)), label="position"), message)

    @precondition(lambda self: any(self.inboxes))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        at = data.draw(st.sampled_from(self._busy()), label="at")
        inbox = self.inboxes[at]
        self.lost[at].append(inbox.pop(data.draw(st.integers(0, len(inbox) - 1), label="message")))

    @precondition(lambda self: any(self.lost))
    @rule(data=st.data())
    def resend(self, data: st.DataObject) -> None:
        at = data.draw(st.sampled_from([i for i in range(NODES) if self.lost[i]]), label="at")
        self.inboxes[at].extend(self.lost[at])
        self.lost[at].clear()

    @precondition(lambda self: bool(self.written))
    @rule(source=st.integers(0, NODES - 1), sink=st.integers(0, NODES - 1))
    def sync(self, source: int, sink: int) -> None:
        """A direct sync session: ``sink`` receives everything ``source`` has, in its order."""
        self.nodes[sink].learn_from(self.nodes[source])

    @precondition(lambda self: len(self.written) >= 8)
    @rule()
    def deliver_everything(self) -> None:
        self._flush()
        self._check_converged()

    # -- checks ----------------------------------------------------------------------------------

    def _flush(self) -> None:
        while any(self.inboxes) or any(self.lost):
            for at in range(NODES):
                self.inboxes[at].extend(self.lost[at])
                self.lost[at].clear()
                while self.inboxes[at]:
                    self.nodes[at].receive_bytes(self.inboxes[at].pop())

    def _check_converged(self) -> None:
        ops = self.written
        expected = fingerprint(replica_of(ops), ops)
        assert fingerprint(replica_of(reversed(ops)), ops) == expected
        for index, node in enumerate(self.nodes):
            assert set(node.received) == self.honest, f"node {index} missed operations"
            assert fingerprint(node.replica, ops) == expected, f"node {index} diverged"

    @invariant()
    def nothing_forged_is_applied(self) -> None:
        for node in self.nodes:
            assert set(node.received) <= self.honest
            assert node.replica.operation_count() <= len(self.honest)

    @precondition(lambda self: bool(self.written))
    @rule(at=st.integers(0, NODES - 1))
    def check_incremental_state(self, at: int) -> None:
        """Mid-way, pending operations and all: what a node shows is a function of what it
        received, not of the order it came in (a fresh replica gets it sorted by id)."""
        node = self.nodes[at]
        received = list(node.received.values())
        fresh = replica_of(sorted(received, key=lambda op: op.id))
        assert fingerprint(node.replica, received) == fingerprint(fresh, received)

    @invariant()
    def pending_only_for_missing_parents(self) -> None:
        for node in self.nodes:
            for op_id, missing in node.replica.pending.items():
                assert missing
                assert not any(m in node.replica for m in missing), op_id.hex()

    def teardown(self) -> None:
        self._flush()
        self._check_converged()


ConvergenceMachine.TestCase.settings = settings(
    max_examples=budget(0.6), stateful_step_count=settings().stateful_step_count
)
TestConvergence = ConvergenceMachine.TestCase
