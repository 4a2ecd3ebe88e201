"""`core.replica` rule 7: a replica that keeps its threads in a `ThreadSource` and only a few in
memory says exactly what one holding everything says, whatever was dropped and loaded again.

The source here stands for the node's store: what the replica applied is "saved" into it in
batches, some of them late (the replica must not drop a thread whose operations are not saved
yet), and a replica reopened over the source, with its pending operations given again as the
node gives them at open, ends in the same state.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Collection

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcomments.core.authoring import in_thread_operation, thread_operation
from p2pcomments.core.ops import CommentPayload, Operation
from p2pcomments.core.replica import Applied, Replica, ThreadLoad
from p2pcomments.core.thread_state import ThreadState

from .strategies import KEYS, History, budget, fingerprint, histories, replica_of

EXAMPLES = settings(max_examples=budget(0.2), deadline=None)


class SavedThreads:
    """A `ThreadSource` over operations saved in memory, counting the loads it served."""

    def __init__(self) -> None:
        self.by_thread: dict[bytes, list[Operation]] = {}
        self.by_id: dict[bytes, Operation] = {}
        self.pending: dict[bytes, Operation] = {}
        self.loads = 0

    def save(self, ops: Collection[Operation]) -> None:
        for op in ops:
            self.pending.pop(op.id, None)
            if op.id in self.by_id:
                continue
            self.by_id[op.id] = op
            if op.thread_id is not None:
                self.by_thread.setdefault(op.thread_id, []).append(op)

    def thread_operations(
        self, thread_id: bytes, *, checked: bytes | None = None
    ) -> list[Operation]:
        self.loads += 1
        return list(reversed(self.by_thread.get(thread_id, [])))  # any order will do

    def threads_of(self, op_ids: Collection[bytes]) -> dict[bytes, bytes]:
        found = {}
        for op_id in op_ids:
            op = self.by_id.get(op_id)
            if op is not None and op.thread_id is not None:
                found[op_id] = op.thread_id
        return found

    def encoded(self, op_ids: Collection[bytes]) -> dict[bytes, bytes]:
        held = {**self.by_id, **self.pending}
        return {op_id: held[op_id].encoded for op_id in op_ids if op_id in held}

    def threads_with_author(self, author: bytes) -> list[bytes]:
        return [t for t, ops in self.by_thread.items() if any(op.author == author for op in ops)]


def _thread_count(source: SavedThreads) -> int:
    return sum(len(ops) for ops in source.by_thread.values())


def _apply_all(
    replica: Replica, source: SavedThreads, ops: list[Operation], seed: random.Random
) -> None:
    """Apply ``ops`` as the node does: save what was applied, sometimes only much later."""
    unsaved: list[list[Operation]] = []
    for op in ops:
        result = replica.apply(op)
        applied = [op] if isinstance(result.outcome, Applied) else []
        applied += [o for o, outcome in result.released if isinstance(outcome, Applied)]
        if not isinstance(result.outcome, Applied) and op.id in replica.pending:
            source.pending[op.id] = op
        for released, outcome in result.released:
            if not isinstance(outcome, Applied):  # waited, now rejected: the store discards it
                source.pending.pop(released.id, None)
        unsaved.append(applied)
        if seed.random() < 0.5:  # a commit lands: everything queued before it is saved
            for batch in unsaved:
                source.save(batch)
                replica.saved(batch)
            unsaved = []
    for batch in unsaved:
        source.save(batch)
        replica.saved(batch)


@EXAMPLES
@given(
    history=histories(),
    seed=st.randoms(use_true_random=False),
    cache=st.integers(1, 12),
)
def test_a_small_cache_says_what_memory_says(
    history: History, seed: random.Random, cache: int
) -> None:
    expected = fingerprint(replica_of(history.ops), history.ops)
    shuffled = list(history.ops)
    seed.shuffle(shuffled)
    source = SavedThreads()
    lazy = Replica(source, cache_operations=cache)
    _apply_all(lazy, source, shuffled, seed)
    everything = replica_of(history.ops)
    assert lazy.operation_count() == everything.operation_count()
    assert set(lazy.threads) == set(everything.threads)
    for op in history.ops:
        assert (lazy.get(op.id) is None) == (everything.get(op.id) is None)
        assert lazy.thread_of(op.id) == everything.thread_of(op.id)
        assert lazy.verdict(op) == everything.verdict(op)
    assert lazy.encoded(op.id for op in history.ops) == everything.encoded(
        op.id for op in history.ops
    )
    assert fingerprint(lazy, history.ops) == expected
    assert not lazy.unloadable


@EXAMPLES
@given(
    history=histories(),
    seed=st.randoms(use_true_random=False),
    cache=st.integers(1, 12),
)
def test_a_replica_reopened_over_its_source_is_the_same(
    history: History, seed: random.Random, cache: int
) -> None:
    ops = list(history.ops)
    seed.shuffle(ops)
    source = SavedThreads()
    first = Replica(source, cache_operations=cache)
    _apply_all(first, source, ops, seed)
    # What the node does at open: the ids of the threads held and the count from the store,
    # the profiles and pending operations applied again (threads load as they are needed).
    reopened = Replica(
        source,
        held_threads=list(source.by_thread),
        stored_operations=_thread_count(source),
        cache_operations=cache,
    )
    profiles = [op for op in source.by_id.values() if op.thread_id is None]
    reopened.merge(profiles)
    reopened.merge(list(source.pending.values()))
    assert reopened.operation_count() == first.operation_count()
    assert fingerprint(reopened, history.ops) == fingerprint(first, history.ops)
    assert fingerprint(reopened, history.ops) == fingerprint(replica_of(ops), history.ops)


@EXAMPLES
@given(history=histories(max_steps=20), cache=st.integers(1, 4))
def test_the_cache_stays_bounded_once_everything_is_saved(history: History, cache: int) -> None:
    source = SavedThreads()
    lazy = Replica(source, cache_operations=cache)
    _apply_all(lazy, source, list(history.ops), random.Random(0))
    for thread_id in list(lazy.threads):
        lazy.thread(thread_id)  # load each in turn
    largest = max((len(lazy.thread(t)) for t in lazy.threads), default=0)
    # Over the bound by at most the thread used last (never dropped: its caller holds it).
    assert lazy._cached_ops <= max(cache, largest) + largest


def _comment(state: ThreadState, body: str, at_ms: int) -> Operation:
    return in_thread_operation(
        KEYS[1], state, CommentPayload(body=body), target=state.id, now_ms=at_ms
    )


def test_a_thread_with_unsaved_operations_is_never_dropped() -> None:
    source = SavedThreads()
    lazy = Replica(source, cache_operations=1)
    first = thread_operation(KEYS[0], "first", url=None, site=None, now_ms=1_000)
    second = thread_operation(KEYS[0], "second", url=None, site=None, now_ms=2_000)
    lazy.apply(first)
    comment = _comment(lazy.thread(first.id), "only in memory", 1_500)
    lazy.apply(comment)
    lazy.apply(second)
    source.save([second])
    lazy.saved([second])
    lazy.thread(first.id)  # used last: now `second` is the one to drop
    lazy.saved(())
    assert lazy.thread(second.id).thread_op == second
    assert source.loads == 1  # `second` was dropped and loaded again
    # `first` and its comment are not saved: dropping them would lose them.
    assert comment.id in lazy.thread(first.id).ops
    assert source.loads == 1
    source.save([first, comment])
    lazy.saved([first, comment])
    lazy.thread(second.id)  # loaded again; `first` may go now, and comes back whole
    assert lazy.get(comment.id) == comment
    assert source.loads == 3
    assert lazy.operation_count() == 3


def test_a_pinned_thread_stays_and_the_bound_holds_after() -> None:
    source = SavedThreads()
    threads = [
        thread_operation(KEYS[0], f"t{i}", url=None, site=None, now_ms=1_000 + i) for i in range(4)
    ]
    source.save(threads)
    lazy = Replica(
        source, held_threads=[t.id for t in threads], stored_operations=4, cache_operations=2
    )
    with lazy.pinned(threads[0].id):
        pinned = lazy.thread(threads[0].id)
        for other in threads[1:]:
            lazy.thread(other.id)
        assert lazy.thread(threads[0].id) is pinned  # never dropped meanwhile
    loads = source.loads
    for other in threads[1:]:
        lazy.thread(other.id)
    assert lazy._cached_ops <= 2
    assert lazy.thread(threads[0].id) is not pinned
    assert source.loads > loads


def test_a_thread_dropped_last_is_rebuilt_from_the_second_tier_without_the_source() -> None:
    source = SavedThreads()
    threads = [
        thread_operation(KEYS[0], f"t{i}", url=None, site=None, now_ms=1_000 + i) for i in range(6)
    ]
    source.save(threads)
    # A bound of 4 operations: the second tier keeps the operations of one dropped thread.
    lazy = Replica(
        source, held_threads=[t.id for t in threads], stored_operations=6, cache_operations=4
    )
    for thread in threads:
        lazy.thread(thread.id)
    assert source.loads == 6
    assert lazy._cached_ops <= 4
    lazy.thread(threads[1].id)  # dropped last: in the second tier, so not read again
    assert source.loads == 6
    assert lazy.thread(threads[1].id).thread_op == threads[1]
    lazy.thread(threads[0].id)  # dropped first, past the second tier's bound: read again
    assert source.loads == 7
    assert lazy._spare_ops <= 1
    assert [lazy.thread(t.id).thread_op for t in threads] == threads


def _apply_with_loads(
    replica: Replica, source: SavedThreads, ops: list[Operation], seed: random.Random
) -> None:
    """`_apply_all` as the node's ingest does it (rule 8): threads claimed, read "elsewhere" and
    installed before an operation needs them, some claims taken over by the replica loading
    the thread itself, some given up, some installed late; evictions in slices."""
    claims: list[ThreadLoad] = []
    unsaved: list[list[Operation]] = []
    for op in ops:
        for thread_id in replica.threads_to_load([op]):
            claims.append(replica.claim_load(thread_id))
        seed.shuffle(claims)
        while claims and seed.random() < 0.7:
            load = claims.pop()
            if seed.random() < 0.8:
                load.read(source)
            choice = seed.random()
            if load.built is not None and choice < 0.7:
                replica.install_load(load)
            elif choice < 0.85:
                replica.abandon_load(load)
            else:
                claims.append(load)  # kept: the replica may take it over, or it goes later
                break
        result = replica.apply(op)
        applied = [op] if isinstance(result.outcome, Applied) else []
        applied += [o for o, outcome in result.released if isinstance(outcome, Applied)]
        if not isinstance(result.outcome, Applied) and op.id in replica.pending:
            source.pending[op.id] = op
        for released, outcome in result.released:
            if not isinstance(outcome, Applied):
                source.pending.pop(released.id, None)
        unsaved.append(applied)
        if seed.random() < 0.5:
            for batch in unsaved:
                source.save(batch)
                replica.saved(batch, evict=False)
            unsaved = []
            budget = seed.randrange(1, 4)
            while replica.evict(budget):
                pass
    for load in claims:  # those still out: a late read is refused if it was taken over
        if load.built is None:
            load.read(source)
        if seed.random() < 0.5:
            replica.install_load(load)
        else:
            replica.abandon_load(load)
    for batch in unsaved:
        source.save(batch)
        replica.saved(batch)


@EXAMPLES
@given(
    history=histories(),
    seed=st.randoms(use_true_random=False),
    cache=st.integers(1, 12),
)
def test_threads_loaded_elsewhere_say_what_memory_says(
    history: History, seed: random.Random, cache: int
) -> None:
    expected = fingerprint(replica_of(history.ops), history.ops)
    shuffled = list(history.ops)
    seed.shuffle(shuffled)
    source = SavedThreads()
    lazy = Replica(source, cache_operations=cache)
    _apply_with_loads(lazy, source, shuffled, seed)
    everything = replica_of(history.ops)
    assert lazy.operation_count() == everything.operation_count()
    assert set(lazy.threads) == set(everything.threads)
    for op in history.ops:
        assert (lazy.get(op.id) is None) == (everything.get(op.id) is None)
        assert lazy.verdict(op) == everything.verdict(op)
    assert fingerprint(lazy, history.ops) == expected
    assert not lazy.unloadable
    assert not lazy._loading


def test_a_read_taken_over_by_the_replica_is_refused_when_late() -> None:
    source = SavedThreads()
    lazy = Replica(source, cache_operations=1)
    first = thread_operation(KEYS[0], "first", url=None, site=None, now_ms=1_000)
    second = thread_operation(KEYS[0], "second", url=None, site=None, now_ms=2_000)
    for op in (first, second):
        lazy.apply(op)
        source.save([op])
        lazy.saved([op])
    assert lazy.threads_to_load([_comment(lazy.thread(first.id), "x", 1_100)]) == []
    lazy.thread(second.id)  # `first` is dropped now
    comment = _comment(ThreadState(first), "late", 1_500)
    assert lazy.threads_to_load([comment]) == [first.id]
    load = lazy.claim_load(first.id)
    load.read(source)  # read before the comment is applied: it lacks it
    assert lazy.threads_to_load([comment]) == []  # being loaded
    assert isinstance(lazy.apply(comment).outcome, Applied)  # the replica loads it itself
    assert not lazy.install_load(load)  # what was read is older than what is held
    assert comment.id in lazy.thread(first.id).ops
    source.save([comment])
    lazy.saved([comment])
    lazy.thread(second.id)
    load = lazy.claim_load(first.id)
    load.read(source)
    assert lazy.install_load(load)
    assert comment.id in lazy.thread(first.id).ops
    assert lazy.operation_count() == 3


def test_loading_a_thread_drops_about_what_it_brings_not_the_whole_excess() -> None:
    """Once a burst of pinned threads is let go, the cache is far over its bound; the next
    thread loaded drops about as many operations as it brings (one step on the node's loop
    stays short), and `evict` drops the rest a slice at a time."""
    source = SavedThreads()
    threads = [
        thread_operation(KEYS[0], f"t{i}", url=None, site=None, now_ms=1_000 + i) for i in range(10)
    ]
    source.save(threads)
    lazy = Replica(
        source, held_threads=[t.id for t in threads], stored_operations=10, cache_operations=2
    )
    with contextlib.ExitStack() as pins:
        for thread in threads[:8]:
            pins.enter_context(lazy.pinned(thread.id))
            lazy.thread(thread.id)
    assert lazy._cached_ops == 8  # all pinned while they loaded: none could go
    lazy.thread(threads[8].id)
    assert lazy._cached_ops == 8  # one in, one out
    assert lazy.evict(3)  # a slice, and more to go
    assert lazy._cached_ops == 5
    while lazy.evict(3):
        pass
    assert lazy._cached_ops == 2
    assert [lazy.thread(t.id).thread_op for t in threads] == threads
