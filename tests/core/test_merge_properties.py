"""Invariant 1 (DESIGN.md §5) as properties: the replica state is a function of the operation set.

Merge is union: commutative (any order), idempotent (any repetition), associative (any grouping of
partial replicas), and the incremental view equals the one a fresh replica builds in causal order.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcomments.core.ops import Kind
from p2pcomments.core.replica import Replica

from .strategies import History, budget, fingerprint, histories, replica_of

EXAMPLES = settings(max_examples=budget(0.4))


@EXAMPLES
@given(history=histories(), seed=st.randoms(use_true_random=False))
def test_any_order_gives_the_same_state(history: History, seed: random.Random) -> None:
    expected = fingerprint(replica_of(history.ops), history.ops)
    shuffled = list(history.ops)
    seed.shuffle(shuffled)
    assert fingerprint(replica_of(shuffled), history.ops) == expected
    assert fingerprint(replica_of(reversed(history.ops)), history.ops) == expected


@EXAMPLES
@given(history=histories(), seed=st.randoms(use_true_random=False))
def test_duplicates_change_nothing(history: History, seed: random.Random) -> None:
    expected = fingerprint(replica_of(history.ops), history.ops)
    doubled = [op for op in history.ops for _ in range(seed.randint(1, 3))]
    seed.shuffle(doubled)
    replica = replica_of(doubled)
    assert fingerprint(replica, history.ops) == expected
    replica.merge(history.ops)  # everything again, after the fact
    assert fingerprint(replica, history.ops) == expected


@EXAMPLES
@given(history=histories(), data=st.data())
def test_union_of_partial_replicas_in_any_grouping(history: History, data: st.DataObject) -> None:
    """Three nodes hold overlapping parts; merging them pairwise in any grouping converges."""
    expected = fingerprint(replica_of(history.ops), history.ops)
    parts = [
        [op for op in history.ops if data.draw(st.booleans(), label=f"part {i} holds it")]
        for i in range(3)
    ]
    union = {op.id for part in parts for op in part}
    missed = [op for op in history.ops if op.id not in union]
    parts[0].extend(missed)
    a, b, c = parts
    left = replica_of(a)  # (a + b) + c
    left.merge(b)
    left.merge(c)
    right = replica_of(c)  # a + (c + b), applied from the other end
    right.merge(reversed(b))
    right.merge(reversed(a))
    assert fingerprint(left, history.ops) == expected
    assert fingerprint(right, history.ops) == expected


@EXAMPLES
@given(history=histories())
def test_incremental_view_equals_a_fresh_build_at_every_prefix(history: History) -> None:
    """After each operation, the incrementally kept view is the one built from scratch."""
    replica = Replica()
    for index, op in enumerate(history.ops):
        replica.apply(op)
        if op.kind in (Kind.MODERATE, Kind.EDIT) or index == len(history.ops) - 1:
            prefix = history.ops[: index + 1]
            fresh = replica_of(sorted(prefix, key=lambda o: o.id))
            assert fingerprint(replica, prefix) == fingerprint(fresh, prefix)


@EXAMPLES
@given(history=histories())
def test_operations_listed_by_a_thread_rebuild_it(history: History) -> None:
    replica = replica_of(history.ops)
    for thread_id, state in replica.threads.items():
        listed = state.operations()
        assert listed[0].id == thread_id
        rebuilt = replica_of(listed)
        assert rebuilt.threads[thread_id].view().digest() == state.view().digest()
