"""A node's whole replica: every thread it holds, the profiles, and operations still waiting.

Rules:

1. State is the set of valid operations; merging two replicas is the union of their sets, whatever
   the order or repetition of `apply` calls (tests/core/test_convergence.py checks it).
2. `apply` answers for one operation: Applied, Duplicate, Pending (naming what is missing) or
   Rejected (with the spec's reason code). An operation whose parents are not all here waits; when
   the last one arrives it is applied too, and reported in the result's ``released``.
3. Rejection is final and deterministic. An operation that waits on a rejected one is rejected too
   (``bad-reference``), as it would be on every node.
4. Profiles are last-writer-wins per author by (timestamp, id).
5. `verdict` judges an operation without applying it, for a gossip validator that must answer at
   once: the rejection reason when its thread and every parent are applied here (or one of them
   is a profile, or applied in another thread), else None (it is valid, or only the arrival of
   what it references decides). It never judges by what is pending or rejected here, so every
   node that holds the same applied operations reaches the same verdict.
6. Admission (SPEC §11.6): an operation that does not carry the proof of work the rules held
   here require of it (`admission`) is refused as ``unpaid`` when it arrives, applied or
   pending alike, and neither stored nor forwarded. This is not validity: the refusal is not
   remembered (a lowered difficulty lets the same bytes in later), and an operation applied
   before its thread's difficulty was known stays applied; the view withholds it
   (`core.rules` rule 5), so what is shown does not depend on the order.
7. Threads may live elsewhere (a `ThreadSource`: the node's store): then only the ids of the
   threads held, the profiles and the pending operations stay in memory, and a thread is loaded
   on first use into a cache bounded by operations (least recently used first out). What the
   replica says never depends on what is cached: a thread with operations applied here but not
   yet saved (`saved`), or in use (`pinned`), is never dropped. The operations of the threads
   dropped last stay (a quarter of the bound, without their thread state) and rebuild a thread
   needed again without reading the source.
8. A thread may be loaded off the replica's thread, so that reading and checking it holds
   nothing up: `claim_load` takes it (with what the second tier kept of it), `ThreadLoad.read`
   reads and builds it anywhere (it touches only the source), `install_load` puts it in memory.
   If the replica has to load it itself meanwhile, it takes the claim over, and the late read is
   refused when installed: what was read then may not hold what has been applied since.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, ItemsView, Iterable, Iterator, Mapping, ValuesView
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from p2pcomments.core.ops import (
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    encoded_digest,
    is_site_thread,
    site_thread,
)
from p2pcomments.core.rules import RuleSet, ThreadRules, leading_zero_bits, thread_rules
from p2pcomments.core.thread_state import ThreadState, ThreadView
from p2pcomments.errors import InvalidOperation, NotFound, PageUrlError

__all__ = [
    "Applied",
    "ApplyResult",
    "Duplicate",
    "Outcome",
    "Pending",
    "Rejected",
    "Replica",
    "ThreadLoad",
    "ThreadSource",
]


class ThreadSource(Protocol):
    """Where the threads a `Replica` does not keep in memory are (rule 7): applied operations
    only, as they were saved. Implemented outside core (the node's store)."""

    def thread_operations(
        self, thread_id: bytes, *, checked: bytes | None = None
    ) -> Iterable[Operation]:
        """The saved applied operations of one thread, its thread operation included, in any
        order; what is damaged is left out (and reported by the source). ``checked``, when
        given, is the `encoded_digest` of the thread's operations as they were in memory, all
        verified: bytes that still match it need no signature check again."""
        ...

    def threads_of(self, op_ids: Collection[bytes]) -> Mapping[bytes, bytes]:
        """The thread of each of ``op_ids`` saved as an applied operation of a thread."""
        ...

    def encoded(self, op_ids: Collection[bytes]) -> Mapping[bytes, bytes]:
        """The saved bytes of those of ``op_ids`` held (applied or pending), by id."""
        ...

    def threads_with_author(self, author: bytes) -> Collection[bytes]:
        """The threads holding a saved operation by ``author``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    op_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicate:
    op_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Pending:
    op_id: bytes
    missing: frozenset[bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    op_id: bytes
    reason: str
    message: str


Outcome = Applied | Duplicate | Pending | Rejected


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """What one `apply` did: the operation's own outcome, and what happened to operations that had
    been waiting for it (applied now, or rejected because it was invalid)."""

    outcome: Outcome
    released: tuple[tuple[Operation, Applied | Rejected], ...] = field(default=())


# Every applied operation gets an `Applied` in an `ApplyResult`. These build them by setting the
# slots directly: the frozen dataclasses' __init__ costs twice as much, on the path every
# operation takes (scripts/bench_core.py).
_new = object.__new__
_SET_APPLIED_ID = Applied.__dict__["op_id"].__set__
_SET_OUTCOME = ApplyResult.__dict__["outcome"].__set__
_SET_RELEASED = ApplyResult.__dict__["released"].__set__


def _applied(op_id: bytes) -> Applied:
    applied: Applied = _new(Applied)
    _SET_APPLIED_ID(applied, op_id)
    return applied


def _result(
    outcome: Outcome, released: tuple[tuple[Operation, Applied | Rejected], ...] = ()
) -> ApplyResult:
    result: ApplyResult = _new(ApplyResult)
    _SET_OUTCOME(result, outcome)
    _SET_RELEASED(result, released)
    return result


_SETTLED = (Applied, Rejected)


class _Values(ValuesView[ThreadState]):
    _mapping: ThreadMap

    def __iter__(self) -> Iterator[ThreadState]:
        for _, state in self._mapping.loaded():
            yield state


class _Items(ItemsView[bytes, ThreadState]):
    _mapping: ThreadMap

    def __iter__(self) -> Iterator[tuple[bytes, ThreadState]]:
        return self._mapping.loaded()


class ThreadMap(Mapping[bytes, ThreadState]):
    """`Replica.threads`: every thread held, by id; a thread not in memory is loaded when looked
    up (rule 7), so iterating the values of a large store loads every thread in turn."""

    __slots__ = ("_replica",)

    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    def __getitem__(self, thread_id: bytes) -> ThreadState:
        state = self._replica._state(thread_id)
        if state is None:
            raise KeyError(thread_id)
        return state

    def __contains__(self, thread_id: object) -> bool:
        return thread_id in self._replica._held

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._replica._held))

    def __len__(self) -> int:
        return len(self._replica._held)

    def loaded(self) -> Iterator[tuple[bytes, ThreadState]]:
        """Every thread, loaded in turn; one whose thread operation turns out damaged as it
        loads is no longer held, and skipped."""
        for thread_id in self:
            state = self._replica._state(thread_id)
            if state is not None:
                yield thread_id, state

    def values(self) -> ValuesView[ThreadState]:
        return _Values(self)

    def items(self) -> ItemsView[bytes, ThreadState]:
        return _Items(self)


class ThreadLoad:
    """One thread being loaded from a `ThreadSource` (rule 8). `read` touches neither the
    replica nor anything shared but the source, so it may run on another thread."""

    __slots__ = ("built", "checked", "spare", "thread_id")

    def __init__(
        self, thread_id: bytes, spare: tuple[Operation, ...] | None, checked: bytes | None
    ) -> None:
        self.thread_id = thread_id
        self.spare = spare  # its operations kept in the second tier, if they were
        self.checked = checked  # the digest they had when dropped, if they were
        # (the state, or None if its thread operation is damaged; op id -> why it did not
        # load; operations read, its thread operation included)
        self.built: tuple[ThreadState | None, dict[bytes, str], int] | None = None

    def read(self, source: ThreadSource) -> None:
        """Read the thread's operations (from the second tier, else the source) and build its
        state, applying them in causal order whatever order they came in."""
        if self.spare is not None:
            ops = {op.id: op for op in self.spare}
        else:
            ops = {
                op.id: op for op in source.thread_operations(self.thread_id, checked=self.checked)
            }
        self.spare = None
        self.built = _build_thread(self.thread_id, ops)


def _build_thread(
    thread_id: bytes, ops: dict[bytes, Operation]
) -> tuple[ThreadState | None, dict[bytes, str], int]:
    """A thread's state from its saved operations (``ops``, by id, its thread operation
    included), with what did not apply and why, and how many of them count as held (for a
    damaged thread operation, all but it)."""
    read = len(ops)
    root = ops.pop(thread_id, None)
    if root is None or root.kind is not Kind.THREAD:
        return None, dict.fromkeys(ops, "missing-parent"), len(ops)
    unloadable: dict[bytes, str] = {}
    state = ThreadState(root)
    # Apply in causal order, whatever order the source gave: each operation once all its
    # parents are in (all in this thread, or it would never have been applied). Most come
    # in it already (the store's is the order they were applied in): those at once.
    later: list[Operation] = []
    for op in ops.values():
        if not state.holds_all(op.parents):
            later.append(op)
        else:
            _apply_saved(state, op, unloadable)
    waiting: dict[bytes, list[Operation]] = {}
    blocked: dict[bytes, int] = {}
    ready: list[Operation] = []
    for op in reversed(later):
        inner = set(op.parents).difference(state.ops)
        if not inner:
            ready.append(op)
            continue
        blocked[op.id] = len(inner)
        for parent in inner:
            waiting.setdefault(parent, []).append(op)
    while ready:
        op = ready.pop()
        if not _apply_saved(state, op, unloadable):
            continue
        for child in waiting.pop(op.id, ()):
            blocked[child.id] -= 1
            if not blocked[child.id]:
                ready.append(child)
    if len(state) <= len(ops):  # some were not applied: a damaged or missing parent
        for op_id in ops:
            if op_id not in state.ops:
                unloadable.setdefault(op_id, "missing-parent")
    return state, unloadable, read


def _apply_saved(state: ThreadState, op: Operation, unloadable: dict[bytes, str]) -> bool:
    """Apply one saved operation whose parents are in; False (and why, in ``unloadable``) if
    it no longer checks."""
    try:
        state.check(op)
    except InvalidOperation as error:
        unloadable[op.id] = error.reason
        return False
    state.apply(op)
    return True


class Replica:
    """Threads, profiles and pending operations of one node: in memory, or (with a `source`)
    the threads loaded on first use into a cache of about ``cache_operations`` (rule 7)."""

    def __init__(
        self,
        source: ThreadSource | None = None,
        *,
        held_threads: Iterable[bytes] = (),
        stored_operations: int = 0,
        cache_operations: int = 50_000,
    ) -> None:
        self._source = source
        self._held: dict[bytes, None] = dict.fromkeys(held_threads)  # thread ids held, in order
        # The threads in memory: all of them without a source, else the cache (LRU order).
        self._cache: OrderedDict[bytes, ThreadState] = OrderedDict()
        self._cached_ops = 0
        self._cache_limit = cache_operations
        # thread id → `encoded_digest` of its operations when last dropped from the cache: a
        # thread read back unchanged is not verified again (a bulk ingest larger than the cache
        # reloads threads over and over, and checking signatures is most of what a load costs).
        self._dropped: dict[bytes, bytes] = {}
        # A second tier, LRU: the operations of the threads dropped last, kept as they were
        # (about a third of what a thread in memory costs per operation: no thread state), so
        # a thread needed again soon is rebuilt from them, neither read nor parsed again. Past
        # its bound a thread leaves it for `_dropped`.
        self._spare: OrderedDict[bytes, tuple[Operation, ...]] = OrderedDict()
        self._spare_ops = 0
        self._spare_limit = cache_operations // 4
        self._loading: dict[bytes, ThreadLoad] = {}  # threads claimed, being read (rule 8)
        # thread id → operations applied and not yet saved, plus uses in progress (`pinned`).
        self._pins: dict[bytes, int] = {}
        self._thread_op_count = stored_operations  # applied operations in threads
        self.unloadable: dict[bytes, str] = {}  # op id → why it did not load with its thread
        self.threads: Mapping[bytes, ThreadState] = ThreadMap(self)
        self.profiles: dict[bytes, Operation] = {}  # author → winning profile operation
        self.names_version = 0  # changes whenever `names` would (`ThreadState.view` rule 11)
        self._names: tuple[int, Mapping[bytes, str]] = (0, MappingProxyType({}))
        self._profile_ops: dict[bytes, Operation] = {}  # every applied profile operation by id
        # op id → thread id, for the applied thread ops of the threads in memory
        self._thread_of: dict[bytes, bytes] = {}
        self._pending: dict[bytes, tuple[Operation, set[bytes]]] = {}
        self._waiting_on: dict[bytes, set[bytes]] = {}  # missing id → ids of ops waiting on it
        self._rejected: dict[bytes, str] = {}
        self._site_of: dict[bytes, bytes | None] = {}  # thread id → its site thread's id
        # thread id → (rule operations seen, moderators, its RuleSet): a flood of reports
        # (anyone's) must not make every admission read them all again.
        self._rule_sets: dict[bytes, tuple[int, frozenset[bytes], RuleSet]] = {}

    # -- threads in memory and in the source (rule 7) -------------------------------------------

    def _state(self, thread_id: bytes) -> ThreadState | None:
        """The thread ``thread_id`` if held, loading it if need be."""
        state = self._cache.get(thread_id)
        if state is not None:
            if self._source is not None:
                self._cache.move_to_end(thread_id)
            return state
        if self._source is None or thread_id not in self._held:
            return None
        return self._load(thread_id, self._source)

    def _load(self, thread_id: bytes, source: ThreadSource) -> ThreadState | None:
        load = self._loading.pop(thread_id, None) or self._claim(thread_id)
        load.read(source)
        return self._install(load)

    # Loading a thread off the loop (rule 8): claim on the replica's thread, read anywhere,
    # install on the replica's thread again.

    def threads_to_load(self, ops: Iterable[Operation]) -> list[bytes]:
        """The threads held here but not in memory that applying ``ops`` would load (rule 8),
        each once, in the order ``ops`` first name them; those being loaded already left out."""
        if self._source is None:
            return []
        cache = self._cache
        held = self._held
        loading = self._loading
        wanted: dict[bytes, None] = {}
        for op in ops:
            thread_id = op.thread
            if (
                thread_id is not None
                and thread_id not in cache
                and thread_id in held
                and thread_id not in loading
            ):
                wanted[thread_id] = None
        return list(wanted)

    def claim_load(self, thread_id: bytes) -> ThreadLoad:
        """Start loading one thread held here and not in memory (rule 8): `ThreadLoad.read`
        it on any thread, then give it to `install_load`."""
        if self._source is None or thread_id in self._cache or thread_id not in self._held:
            raise ValueError("only a thread held and not in memory is loaded")
        if thread_id in self._loading:
            raise ValueError("this thread is being loaded already")
        load = self._claim(thread_id)
        self._loading[thread_id] = load
        return load

    def install_load(self, load: ThreadLoad) -> bool:
        """Put a thread read by `ThreadLoad.read` in memory; False (and nothing done) if it is
        no longer wanted: the replica loaded it itself meanwhile, so what was read may be old."""
        if self._loading.get(load.thread_id) is not load:
            return False
        del self._loading[load.thread_id]
        if load.thread_id in self._cache:  # pragma: no cover - a claim is dropped when it loads
            return False
        self._install(load)
        return True

    def abandon_load(self, load: ThreadLoad) -> None:
        """End a claim not installed (nothing if it was, or was taken over): one read already is
        installed; else what the second tier kept of the thread goes back to it, so nothing is
        read or checked again for nothing."""
        if self._loading.get(load.thread_id) is not load:
            return
        del self._loading[load.thread_id]
        if load.built is not None:
            self._install(load)
        elif load.spare is not None:
            self._keep_spare(load.thread_id, load.spare)
        elif load.checked is not None:
            self._dropped[load.thread_id] = load.checked

    def _claim(self, thread_id: bytes) -> ThreadLoad:
        spare = self._spare.pop(thread_id, None)
        if spare is not None:
            self._spare_ops -= len(spare)
        return ThreadLoad(thread_id, spare, self._dropped.pop(thread_id, None))

    def _install(self, load: ThreadLoad) -> ThreadState | None:
        thread_id = load.thread_id
        built = load.built
        assert built is not None, "read before it is installed"
        state, unloadable, read = built
        self.unloadable.update(unloadable)
        if state is None:
            # Its thread operation is damaged (and reported by the source): not held after all.
            del self._held[thread_id]
            self._thread_op_count -= read
            return None
        self._thread_op_count -= read - len(state)
        self._cache[thread_id] = state
        self._cached_ops += len(state)
        thread_of = self._thread_of
        for op_id in state.ops:
            thread_of[op_id] = thread_id
        # About as many out as came in: the cache does not grow, and one install drops a thread
        # or two, not every thread the cache is over by (after a burst of pinned threads that
        # was ~50 of them, 69 ms on the loop); `saved` and `evict` drop the rest.
        self._evict(len(state))
        return state

    def evict(self, budget: int) -> bool:
        """Drop threads as `saved` does, but about ``budget`` operations at most; True if more
        are to go (a caller keeping its steps short drops a large excess a slice at a time)."""
        return self._evict(budget)

    def _evict(self, budget: int | None = None) -> bool:
        """Drop least recently used threads while over the limit (up to ``budget`` operations):
        never one with operations not yet saved, one pinned, nor the one used last (its caller
        is using it). True if it stopped at the budget with more to drop."""
        over = self._cached_ops - self._cache_limit
        if over <= 0 or len(self._cache) < 2:
            return False
        pins = self._pins
        newest = next(reversed(self._cache))
        victims: list[bytes] = []
        left = budget
        more = False
        for thread_id, state in self._cache.items():
            if over <= 0:
                break
            if thread_id == newest or pins.get(thread_id):
                continue
            if left is not None:
                if left <= 0:
                    more = True
                    break
                left -= len(state)
            victims.append(thread_id)
            over -= len(state)
        thread_of = self._thread_of
        for thread_id in victims:
            state = self._cache.pop(thread_id)
            self._cached_ops -= len(state)
            for op_id in state.ops:
                del thread_of[op_id]
            self._rule_sets.pop(thread_id, None)
            self._keep_spare(thread_id, tuple(state.ops.values()))
        return more

    def _keep_spare(self, thread_id: bytes, ops: tuple[Operation, ...]) -> None:
        """Keep a dropped thread's operations in the second tier, or (past its bound) only the
        digest of their bytes."""
        spare = self._spare
        if len(ops) > self._spare_limit:
            self._dropped[thread_id] = encoded_digest(op.encoded for op in ops)
            return
        spare[thread_id] = ops
        self._spare_ops += len(ops)
        while self._spare_ops > self._spare_limit:
            oldest, oldest_ops = spare.popitem(last=False)
            self._spare_ops -= len(oldest_ops)
            self._dropped[oldest] = encoded_digest(op.encoded for op in oldest_ops)

    def saved(self, ops: Iterable[Operation], *, evict: bool = True) -> None:
        """``ops``, applied here, are now saved in the source: their threads may be dropped
        (now, or with ``evict=False`` by the caller's `evict`)."""
        if self._source is None:
            return
        pins = self._pins
        for op in ops:
            thread_id = op.thread_id
            if thread_id is None:
                continue
            left = pins.get(thread_id, 0) - 1
            if left > 0:
                pins[thread_id] = left
            else:
                pins.pop(thread_id, None)
        if evict:
            self._evict()

    @contextmanager
    def pinned(self, thread_id: bytes) -> Iterator[None]:
        """Keep the thread in memory while the block runs (a caller holding its state across a
        wait, then applying to it)."""
        pins = self._pins
        pins[thread_id] = pins.get(thread_id, 0) + 1
        try:
            yield
        finally:
            left = pins.get(thread_id, 0) - 1
            if left > 0:
                pins[thread_id] = left
            else:
                pins.pop(thread_id, None)

    def _applied_thread(self, op_id: bytes) -> bytes | None:
        """The thread of an applied operation (a thread is its own), looked up in the source if
        its thread is not in memory."""
        thread_id = self._thread_of.get(op_id)
        if thread_id is not None:
            return thread_id
        if op_id in self._held:
            return op_id
        if self._source is None or op_id in self._pending or op_id in self._profile_ops:
            return None
        return self._source.threads_of((op_id,)).get(op_id)

    def threads_with_author(self, author: bytes) -> list[ThreadState]:
        """The threads holding an operation by ``author`` (at least those: without a source,
        every thread), loaded."""
        if self._source is None:
            return list(self._cache.values())
        ids = dict.fromkeys(self._source.threads_with_author(author))
        for thread_id, state in self._cache.items():
            if thread_id not in ids and any(op.author == author for op in state.ops.values()):
                ids[thread_id] = None
        states = (self._state(thread_id) for thread_id in ids)
        return [state for state in states if state is not None]

    def peek(self, op_id: bytes) -> Operation | None:
        """`get` from memory only, loading nothing and changing nothing: safe from another
        thread while this one applies (a miss only means "not known to be here")."""
        thread_id = self._thread_of.get(op_id)
        if thread_id is not None:
            state = self._cache.get(thread_id)
            if state is not None:
                return state.ops.get(op_id)
        profile = self._profile_ops.get(op_id)
        if profile is not None:
            return profile
        pending = self._pending.get(op_id)
        return pending[0] if pending else None

    def encoded(self, op_ids: Iterable[bytes]) -> dict[bytes, bytes]:
        """The bytes of those of ``op_ids`` held here (applied or pending), by id; what is not in
        memory is read from the source without loading its thread."""
        found: dict[bytes, bytes] = {}
        elsewhere: list[bytes] = []
        for op_id in op_ids:
            op = self.peek(op_id)
            if op is not None:
                found[op_id] = op.encoded
            elif self._source is not None:
                elsewhere.append(op_id)
        if elsewhere:
            assert self._source is not None
            found.update(self._source.encoded(elsewhere))
        return found

    # -- reading -------------------------------------------------------------------------------

    def __contains__(self, op_id: bytes) -> bool:
        return (
            op_id in self._thread_of
            or op_id in self._profile_ops
            or self._applied_thread(op_id) is not None
        )

    def get(self, op_id: bytes) -> Operation | None:
        held = self.peek(op_id)
        if held is not None or self._source is None:
            return held
        thread_id = self._applied_thread(op_id)
        state = None if thread_id is None else self._state(thread_id)
        return None if state is None else state.ops.get(op_id)

    def thread(self, thread_id: bytes) -> ThreadState:
        state = self._state(thread_id)
        if state is None:
            raise NotFound("no such thread here")
        return state

    def in_memory(self, thread_id: bytes) -> ThreadState | None:
        """The thread if it is in memory now, else None; never loads it (rule 7) nor makes it
        recently used. A held thread not in memory has every applied operation saved."""
        return self._cache.get(thread_id)

    def thread_of(self, op_id: bytes) -> bytes | None:
        """The thread an applied operation belongs to."""
        return self._applied_thread(op_id)

    def names(self) -> Mapping[bytes, str]:
        """Display names by author key, from the profiles held. The same mapping is given again
        while they stay the same (`names_version`): a view or one name asked of 20,000 profiles
        no longer copies them all. It is never changed, a new one is made once they change, so
        a worker thread may read it while the loop takes in profiles (`Node.loading`)."""
        version, names = self._names
        if version != self.names_version:
            names = MappingProxyType(
                {author: op.payload.name for author, op in self.profiles.items()}  # type: ignore[union-attr]
            )
            self._names = (self.names_version, names)
        return names

    def view(self, thread_id: bytes) -> ThreadView:
        return self.thread(thread_id).view(self.names(), names_version=self.names_version)

    @property
    def pending(self) -> dict[bytes, frozenset[bytes]]:
        """Waiting operations and the ids each still misses."""
        return {op_id: frozenset(missing) for op_id, (_, missing) in self._pending.items()}

    def pending_operations(self) -> list[Operation]:
        return [op for op, _ in self._pending.values()]

    def missing(self) -> frozenset[bytes]:
        """Every id some pending operation waits for: what to fetch from peers."""
        return frozenset(self._waiting_on)

    def profile_operations(self) -> list[Operation]:
        return list(self._profile_ops.values())

    def operation_count(self) -> int:
        return self._thread_op_count + len(self._profile_ops)

    # -- rules (SPEC §11) -----------------------------------------------------------------------

    def site_thread_of(self, thread_id: bytes) -> bytes | None:
        """The id of the site thread whose rules hold for the thread ``thread_id`` (held here):
        for a thread with a site, that of (its owner, its site); None for a site thread or a
        thread without a site."""
        if thread_id in self._site_of:
            return self._site_of[thread_id]
        state = self.thread(thread_id)
        payload = state.payload
        site_id: bytes | None = None
        if payload.site is not None and not is_site_thread(state.thread_op):
            try:
                site_id = site_thread(state.owner, payload.site).id
            except PageUrlError:  # a site that is not a host in normal form: no site rules
                site_id = None
        self._site_of[thread_id] = site_id
        return site_id

    def rule_set(self, thread_id: bytes) -> RuleSet:
        """What the rule operations of one thread say (`core.rules` rule 3-4)."""
        state = self.thread(thread_id)
        count = state.rule_count
        moderators = state.moderators
        cached = self._rule_sets.get(thread_id)
        if cached is not None and cached[0] == count and cached[1] is moderators:
            return cached[2]
        rule_set = RuleSet.of(state.id, state.owner, moderators, state.rule_operations)
        self._rule_sets[thread_id] = (count, moderators, rule_set)
        return rule_set

    def rules(self, thread_id: bytes, muted: Iterable[bytes] = ()) -> ThreadRules:
        """The rules in force for a thread held here: its own and its site thread's, if held."""
        site_id = self.site_thread_of(self.thread(thread_id).id)
        site = self.rule_set(site_id) if site_id is not None and site_id in self._held else None
        return thread_rules(self.rule_set(thread_id), site, muted)

    def admission(self, op: Operation) -> str | None:
        """``"unpaid"`` if ``op`` lacks the proof of work its thread's rules held here require
        of it (rule 6), else None. Only comments, edits, reactions and reports pay."""
        kind = op.kind
        if kind is Kind.MODERATE:
            payload = op.payload
            assert isinstance(payload, ModeratePayload)
            if payload.action is not ModAction.REPORT:
                return None
        elif kind is not Kind.COMMENT and kind is not Kind.EDIT and kind is not Kind.REACT:
            return None
        thread_id = op.thread
        state = self._state(thread_id) if thread_id is not None else None
        if state is None:
            return None  # the thread's rules are not known here: it waits (rule 1)
        if not state.has_rules:
            site_id = self.site_thread_of(state.id)
            site = self._state(site_id) if site_id is not None else None
            if site is None or not site.has_rules:
                return None  # the common case: no rules at all
        required = self.rules(state.id).required_difficulty(op)
        if required and leading_zero_bits(op.id) < required:
            return "unpaid"
        return None

    def verdict(self, op: Operation) -> str | None:
        """Why ``op`` would be rejected, if that can be told now (rule 5); None otherwise."""
        unpaid = self.admission(op)
        if unpaid is not None:
            return unpaid
        if op.kind is Kind.THREAD or op.kind is Kind.PROFILE:
            return None
        thread_id = op.thread
        assert thread_id is not None
        state = self._state(thread_id)
        held = state.ops if state is not None else {}
        for parent in (thread_id, *op.parents):
            if parent in held:
                continue
            parent_thread = self._applied_thread(parent)
            if parent_thread is None:
                if parent in self._profile_ops:  # applied but in no thread: a profile
                    return "wrong-thread"
                return None  # not here yet, or pending: only the arrival decides
            if parent_thread != thread_id:
                return "wrong-thread"
        if state is None:
            return "wrong-thread"
        try:
            state.check(op)
        except InvalidOperation as error:
            return error.reason
        return None

    # -- applying ------------------------------------------------------------------------------

    def merge(self, ops: Iterable[Operation]) -> None:
        """Apply many operations, ignoring outcomes (for loading and tests)."""
        for op in ops:
            self.apply(op)

    def apply(self, op: Operation, *, admit: bool = True) -> ApplyResult:
        """Add one decoded, signature-checked operation (rules 1-4). ``admit=False`` skips rule
        6, for operations this node admitted before (loading its own store)."""
        op_id = op.id
        if op_id in self._thread_of or op_id in self._pending or op_id in self._profile_ops:
            return ApplyResult(outcome=Duplicate(op_id=op_id))
        if self._source is not None and self._saved_elsewhere(op):
            return ApplyResult(outcome=Duplicate(op_id=op_id))
        if op.kind is Kind.PROFILE:
            self._profile_ops[op_id] = op
            current = self.profiles.get(op.author)
            if current is None or (op.timestamp_ms, op_id) > (current.timestamp_ms, current.id):
                self.profiles[op.author] = op
                self.names_version += 1
            # Anything that waited on a profile waited in vain: a profile belongs to no thread.
            return ApplyResult(outcome=Applied(op_id=op_id), released=self._release(op_id))
        rejected = self._rejected.get(op_id)
        if rejected is not None:
            return ApplyResult(
                outcome=Rejected(op_id=op_id, reason=rejected, message="rejected before")
            )
        if admit and self.admission(op) is not None:  # rule 6: refused, and not remembered
            return _result(
                Rejected(
                    op_id=op_id,
                    reason="unpaid",
                    message="lacks the proof of work its thread's rules require",
                )
            )
        outcome = self._try_apply(op)
        if op_id not in self._waiting_on or not isinstance(outcome, _SETTLED):
            return _result(outcome)  # the common case: nothing waited for it
        return _result(outcome, self._release(op_id))

    def _saved_elsewhere(self, op: Operation) -> bool:
        """Whether ``op`` is applied in a thread not in memory (rule 7): an operation names its
        thread, so loading that thread answers."""
        if op.kind is Kind.THREAD:
            return op.id in self._held
        thread_id = op.thread
        if thread_id is None or thread_id in self._cache:
            return False  # a profile, or a thread in memory, whose ops `_thread_of` has
        state = self._state(thread_id)
        return state is not None and op.id in state.ops

    def _added(self, thread_id: bytes, op_id: bytes) -> None:
        self._thread_of[op_id] = thread_id
        self._thread_op_count += 1
        if self._source is not None:
            self._cached_ops += 1
            pins = self._pins
            pins[thread_id] = pins.get(thread_id, 0) + 1

    def _try_apply(self, op: Operation) -> Applied | Pending | Rejected:
        op_id = op.id
        if op.kind is Kind.THREAD:
            self._held[op_id] = None
            self._cache[op_id] = ThreadState(op)
            self._added(op_id, op_id)
            return _applied(op_id)
        thread_id = op.thread
        assert thread_id is not None
        state = self._state(thread_id)
        # The common case is that the thread holds every parent; that is asked of the thread, not
        # of the replica-wide index, which is larger and colder in the cache (applying is bound by
        # memory more than by arithmetic: scripts/bench_core.py).
        if state is None or not state.holds_all(op.parents):
            unready = self._wait_or_reject(op, thread_id)
            if unready is not None:
                return unready
            if state is None:
                return self._reject(
                    op, "wrong-thread", "its thread id names an operation that is not a thread"
                )
        try:
            state.check(op)  # a parent applied in another thread is rejected here
        except InvalidOperation as error:
            return self._reject(op, error.reason, error.message)
        state.apply(op)
        self._added(thread_id, op_id)
        return _applied(op_id)

    def _wait_or_reject(self, op: Operation, thread_id: bytes) -> Pending | Rejected | None:
        """For an operation some parent of which its thread does not hold: Pending while a parent
        is unknown, Rejected if one was rejected or is a profile, None if all are applied."""
        op_id = op.id
        applied = self._applied_thread
        if applied(thread_id) is not None and all(applied(p) is not None for p in op.parents):
            return None
        needed = (thread_id, *op.parents)
        # Decide only once every parent is known (applied, rejected or a profile), so the
        # outcome and its reason don't depend on the order in which they arrived.
        missing = {
            p
            for p in needed
            if p not in self._rejected and p not in self._profile_ops and applied(p) is None
        }
        if missing:
            self._pending[op_id] = (op, missing)
            for missing_id in missing:
                self._waiting_on.setdefault(missing_id, set()).add(op_id)
            return Pending(op_id=op_id, missing=frozenset(missing))
        for parent in needed:
            if parent in self._rejected:
                return self._reject(op, "bad-reference", "depends on an invalid operation")
            if parent in self._profile_ops:
                return self._reject(op, "wrong-thread", "references a profile, not a thread")
        return None  # pragma: no cover - every parent is applied, rejected or a profile

    def _reject(self, op: Operation, reason: str, message: str) -> Rejected:
        self._rejected[op.id] = reason
        return Rejected(op_id=op.id, reason=reason, message=message)

    def _release(self, first: bytes) -> tuple[tuple[Operation, Applied | Rejected], ...]:
        if first not in self._waiting_on:  # the common case: nothing waited for it
            return ()
        released: list[tuple[Operation, Applied | Rejected]] = []
        arrived = [first]
        while arrived:
            arrived_id = arrived.pop()
            for waiting_id in sorted(self._waiting_on.pop(arrived_id, ())):
                entry = self._pending.get(waiting_id)
                if entry is None:
                    continue
                waiting_op, missing = entry
                missing.discard(arrived_id)
                if missing:
                    continue
                del self._pending[waiting_id]
                outcome = self._try_apply(waiting_op)
                assert not isinstance(outcome, Pending)
                released.append((waiting_op, outcome))
                arrived.append(waiting_id)
        return tuple(released)
