"""Going through many threads of a store larger than memory, a few at a time, off the loop
(issue 14): what `Node.make_missing_listings`, `Node.export_pieces`, the exports and the
moderation queue of every thread share; and `Node.loading`, for a server about to show a thread.

Rules:

1. The threads are visited in the order asked, a group at a time; those not in memory are read,
   checked and built in worker threads (`Ingest._read_and_install`, one installed per loop
   step), and ``make`` runs on one thread per step, so a walk over every thread of a million
   operations holds the loop no longer than one thread's install or ``make`` (judging eight
   pages of a pre-moderated site in one step took 25-52 ms: scripts/bench_loop.py
   --scenario site-queue). A group is as many threads as hold about `_OPERATIONS_AT_ONCE`
   operations, judged by the threads of the group before (8 at first, at most 64), and never
   fewer than the decode threads, each of which reads a whole thread: they idle between two
   groups (the last read of one, its ``make``s, rule 3), and groups of 8 threads of 100
   operations made an export of 100,000 operations 8.2-8.6 s, 32 of them 7.0-7.8 s (64:
   7.2-7.3 s), while a group of huge threads stays small in memory (one thread at a time, on
   one decode thread, exported 24 threads of 2,500 in 5.4-6.3 s against 3.3-3.9 s).
2. A group is pinned while ``make`` runs on it, then the cache drops its excess a slice per step
   (`EVICT_STEP`), so memory holds a few threads beyond the cache, not every one.
3. After each group the walk collects the young generations itself (`gc.collect(1)`, a few
   milliseconds). A walk frees old threads as fast as it loads new ones, and the collector
   counts allocations less deallocations, so it seldom runs and then walks every object loaded
   since: 50-160 ms pauses with nothing to collect, in the loop or in a worker thread holding
   the GIL (at 300,000 operations, the site-queue scenario of scripts/bench_loop.py: the
   longest collection 78 ms -> 4 ms, the same total time).
4. A server about to show threads (the API, the HTML pages, the feeds) has them read, checked
   and built off the loop first (`Node.loading`), as a walk does; they stay in memory while it
   shows them. Otherwise the first show of a thread loads it on the loop (`node.thread_source`
   rule 2): a few milliseconds for a hundred comments; for a popular post's 10,000 the daemon
   answered nobody for 1.6 s (scripts/bench_loop.py --scenario popular-thread).
5. What a server shows of a big thread (`core.thread_state` rule 11: its view and the rules'
   verdicts), when it is not kept as it stands, is made in a worker thread too, from the names
   and the rules read on the loop, and kept only if nothing was applied to the thread meanwhile
   (`core.thread_state` rule 12; else it is made on the loop when shown, as before). Making them
   held the loop 94-97 ms for the first show of a cold 10,000-comment post and 101-105 ms for
   the first page after each new comment (every widget on the page reloads then); now the
   longest steps are 0.9-1.0 ms and 8.2-9.0 ms (scripts/bench_loop.py --scenario
   popular-thread). Readers asking at once wait for one make: 20 of them made it 20 times.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Final, TypeVar

import trio

from p2pcomments.core.thread_state import KEPT_VIEW, ThreadState
from p2pcomments.node.ingest import EVICT_STEP, Ingest

__all__ = ["ThreadWalk"]

T = TypeVar("T")

_OPERATIONS_AT_ONCE: Final = 3_200  # about as many operations read and pinned at once (rule 1)
_FIRST_GROUP: Final = 8  # threads in the first group, before any is measured
_MOST_AT_ONCE: Final = 64  # threads in a group at most, however small they are


class ThreadWalk(Ingest):
    """`Node.each_thread` (module rules 1-2)."""

    async def each_thread(
        self, thread_ids: Sequence[bytes], make: Callable[[ThreadState], T]
    ) -> AsyncGenerator[list[T], None]:
        """``make(state)`` of each thread of ``thread_ids`` held here, in that order, a few
        threads at a time: those not in memory are read in worker threads first and let go
        after, so going through every thread of a store larger than memory holds a few at a
        time. ``make`` runs while its thread is in memory (`Node.thread_view` of it is cheap)."""
        offset = 0
        group = _FIRST_GROUP
        while offset < len(thread_ids):
            async with self._threads_loaded(thread_ids[offset : offset + group]) as part:
                offset += group
                made = []
                for state in part:  # one thread per step (rule 1)
                    made.append(make(state))
                    await trio.lowlevel.checkpoint()
                held = sum(len(state.ops) for state in part)
            if part:  # the next group's size (rule 1), from this one's threads
                fits = _OPERATIONS_AT_ONCE * len(part) // max(1, held)
                group = max(self._decode_threads, min(_MOST_AT_ONCE, fits))
            gc.collect(1)  # rule 3
            yield made

    @contextlib.asynccontextmanager
    async def loading(self, thread_ids: Sequence[bytes]) -> AsyncIterator[None]:
        """While the block runs, the threads of ``thread_ids`` held here are in memory: those
        that were not are read, checked and built in worker threads first (rule 4), and a big
        one's view and verdicts made there too unless kept as it stands (rule 5). Threads not
        held are skipped (showing them raises `NotFound` as before)."""
        async with self._threads_loaded(thread_ids) as states:
            for state in states:
                if state.keeps_views:
                    await self._make_shown(state)
            yield

    def _to_show(self, state: ThreadState) -> list[tuple[str, object, Callable[[], object]]]:
        """What a server shows of a big thread, as `ThreadState.kept` keeps it: (name, version,
        make), ``make`` a function of the thread's operations and of the version alone, safe to
        run in a worker thread (rule 5). `RuleWrites` adds the rules' verdicts."""
        replica = self.replica
        view = functools.partial(state.view, replica.names())
        return [(KEPT_VIEW, replica.names_version, view)]

    async def _make_shown(self, state: ThreadState) -> None:
        """Rule 5: what `_to_show` lists and ``state`` does not keep as it stands, made in a
        worker thread and kept if nothing was applied to it meanwhile. Readers asking at once
        (every widget on a popular post reloads after each comment) wait for one make."""
        while (making := self._showing.get(state.id)) is not None:
            await making.wait()
        wanted = [item for item in self._to_show(state) if not state.is_kept(item[0], item[1])]
        if not wanted:
            return
        made_at, done = len(state), trio.Event()
        self._showing[state.id] = done
        try:
            made = await trio.to_thread.run_sync(
                lambda: [make() for _, _, make in wanted], limiter=self._decode_limiter
            )
        except Exception:
            if len(state) == made_at:  # made of a state nothing changed: a real error
                raise
            return  # made while the loop applied to it: dropped, made on the loop when shown
        finally:
            del self._showing[state.id]
            done.set()
        for (name, version, _), value in zip(wanted, made, strict=True):
            state.keep(name, version, value, made_at=made_at)

    @contextlib.asynccontextmanager
    async def _threads_loaded(
        self, thread_ids: Sequence[bytes]
    ) -> AsyncIterator[list[ThreadState]]:
        """The threads of ``thread_ids`` held here, in memory while the block runs (pinned),
        those not in memory read in worker threads first; then the cache drops its excess a
        slice per step."""
        replica = self.replica
        try:
            with contextlib.ExitStack() as pins:
                loads = []
                for thread_id in thread_ids:
                    pins.enter_context(replica.pinned(thread_id))
                    if replica.in_memory(thread_id) is None and thread_id in replica.threads:
                        with contextlib.suppress(ValueError):  # being loaded already: below
                            loads.append(replica.claim_load(thread_id))
                try:
                    await self._read_and_install(loads)
                finally:
                    for load in loads:
                        replica.abandon_load(load)
                found = (replica.in_memory(t) or replica.threads.get(t) for t in thread_ids)
                yield [state for state in found if state is not None]
        finally:
            with trio.CancelScope(shield=True):  # memory is bounded even for a cancelled caller
                while replica.evict(EVICT_STEP):
                    await trio.lowlevel.checkpoint()
