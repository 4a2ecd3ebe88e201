"""The longest step holding the trio loop during a large sync (issue 14: "the loop stays live",
target: no step over 50 ms during a 100k-operation sync).

Two real Nodes in one trio loop (real SQLite stores in a temporary dir) run one sync session
over an in-memory frame pipe, driven the way `net.sync_running` drives it: write every frame the
`SyncSession` has, read one, feed it with ``receive_frame``; the operations it brings go to a
second task that hands them to `Node.ingest` in batches of up to 5,000 (`_MAX_INGEST_BATCH`).
The item snapshot is read from the store in a worker thread, as the runner does. Scenarios:
``catch-up`` (the initiator holds nothing: every operation crosses) and ``1% sketch`` (it lacks
1% of them: coded symbols find the difference). A trio `Instrument` times every task step (the
run between two checkpoints) while the sync runs and prints the longest, by task; a task waking
every millisecond says how late the loop got to it (which also counts the time worker threads
held the GIL between steps, which no step shows); the reference beside them is the sync's own
wall time in the same run.

``site-queue`` is a blog that pre-moderates its whole site: one site thread of this node's
author (pre-moderated, 18 of the 20 commenters approved) and ``n / 100`` page threads of 100
comments, reopened so that most pages are on disk only; timed, the moderation queue and the
reports of every thread (`Node.moderation_queue`, `Node.reports`), with the same step timer.

``popular-thread`` is one post (a page thread) with ``n / 10`` comments (10,000 at the
default), reopened cold; timed, what the daemon does for ``GET /api/threads/{id}``
(`api.handlers.thread`) twice, cold then warm, then for the widget's ``GET /api/page``
(`api.handlers.page`), warm and again after one more comment (each widget reloads then), and
`READERS` widgets reloading it at once after another through the API app (JSON rendering
included), with the same step timer; the reference beside each is its wall time (and CPU).

Usage: .venv/bin/python scripts/bench_loop.py [--n 100000]
       [--scenario catch-up 1%-sketch site-queue popular-thread]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import trio
import trio.lowlevel
from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import make_ops, prose_bodies

from p2pcomments.api.app import build_app
from p2pcomments.api.rendered import Rendered
from p2pcomments.core.ops import (
    CommentPayload,
    ThreadMode,
    make_operation,
    page_thread,
)
from p2pcomments.core.reconcile import SortedItems
from p2pcomments.core.sync_protocol import SyncLimits, SyncSession
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.daemon import freeze_survivors, tune_gc
from p2pcomments.net.sync_running import SyncRunner, _snapshot
from p2pcomments.net.sync_slots import ReplicaOps
from p2pcomments.node import Node, open_node

if TYPE_CHECKING:
    from trio_typing import TaskStatus

TARGET_MS = 50.0
INGEST_BATCH = 5_000  # net.sync_running._MAX_INGEST_BATCH
TICK = 0.001  # seconds between the ticker's wake-ups (`_tick`)
GZIP_MAGIC = b"\x1f\x8b"
READERS = 20  # widgets open on the popular post, reloading at once after a comment
INGEST_AHEAD = 8  # net.sync_running._INGEST_AHEAD
INGEST_CALLS_IN_FLIGHT = 2  # net.sync_running._INGEST_CALLS_IN_FLIGHT


@dataclass(eq=False)
class StepTimer(trio.abc.Instrument):
    """The longest task step (between two checkpoints), per task name."""

    longest: dict[str, float] = field(default_factory=dict)
    longest_cpu: dict[str, float] = field(default_factory=dict)  # the loop thread's CPU time
    steps: int = 0
    _started: float | None = None  # None: the step running when it was added
    _cpu_started: float = 0.0

    late: float | None = None  # the most a `_tick` woke late, where one ran
    gc_longest: float = 0.0
    gc_longest_by_generation: dict[int, float] = field(default_factory=dict)
    gc_collections: dict[int, int] = field(default_factory=dict)
    _gc_started: float = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        """A `gc.callbacks` entry: the longest collection, which runs inside some task step."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            elapsed = time.perf_counter() - self._gc_started
            self.gc_longest = max(self.gc_longest, elapsed)
            generation = info["generation"]
            by_generation = self.gc_longest_by_generation
            by_generation[generation] = max(by_generation.get(generation, 0.0), elapsed)
            self.gc_collections[generation] = self.gc_collections.get(generation, 0) + 1

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._started = time.perf_counter()
        self._cpu_started = time.thread_time()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self._started is None:
            return
        elapsed = time.perf_counter() - self._started
        cpu = time.thread_time() - self._cpu_started
        self.steps += 1
        name = task.name.rsplit(".", 1)[-1]
        if elapsed > self.longest.get(name, 0.0):
            self.longest[name] = elapsed
        if cpu > self.longest_cpu.get(name, 0.0):
            self.longest_cpu[name] = cpu


INLINE = False  # --inline: the O(items) work on the loop, as before issue 14


async def snapshot(node: Node) -> SortedItems:
    store = node.store
    if INLINE:
        return await trio.to_thread.run_sync(lambda: SortedItems(store.iter_applied_keys()))
    return await trio.to_thread.run_sync(_snapshot, store)  # what SyncRunner.items runs


async def drive(
    node: Node,
    session: SyncSession,
    outgoing: trio.MemorySendChannel[bytes],
    incoming: trio.MemoryReceiveChannel[bytes],
) -> None:
    """`SyncRunner._drive` / `_converse` / `_ingest_received` without the network."""
    send, receive = trio.open_memory_channel[tuple[bytes, ...]](INGEST_AHEAD)

    in_flight = trio.Semaphore(INGEST_CALLS_IN_FLIGHT)

    async def ingest_batch(
        ops: list[bytes], task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await node.ingest(ops, source="sync", task_status=task_status)
        finally:
            in_flight.release()

    async def ingest_received() -> None:
        async with receive, trio.open_nursery() as calls:
            async for first in receive:
                ops = list(first)
                while len(ops) < INGEST_BATCH:
                    try:
                        ops += receive.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await in_flight.acquire()
                await calls.start(ingest_batch, ops)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ingest_received)
        async with send, outgoing:
            while True:
                while True:
                    if INLINE:
                        frame = session.next_frame()
                    else:  # as SyncRunner._converse: an OPS frame we serve, in a worker thread
                        frame = await SyncRunner._next_frame(session)
                    if frame is None:
                        break
                    await outgoing.send(frame)
                if session.done:
                    break
                data = await incoming.receive()
                if not INLINE and session.frame_is_costly(data):  # as SyncRunner._converse
                    await trio.to_thread.run_sync(session.prepare_frame, data)
                session.receive_frame(data, now=trio.current_time())
                while (event := session.next_event()) is not None:
                    await send.send(event.ops)


async def run_scenario(
    directory: Path, blobs: list[bytes], lacking: set[int], name: str
) -> tuple[StepTimer, float, int, str]:
    full = list(blobs)
    partial_set = [blob for index, blob in enumerate(blobs) if index not in lacking]
    async with (
        open_node(directory / f"{name}-responder", create_identity=True) as responder,
        open_node(directory / f"{name}-initiator", create_identity=True) as initiator,
    ):
        for start in range(0, len(full), INGEST_BATCH):  # set-up, not timed
            await responder.ingest(full[start : start + INGEST_BATCH], source="bench")
        for start in range(0, len(partial_set), INGEST_BATCH):
            await initiator.ingest(partial_set[start : start + INGEST_BATCH], source="bench")
        tune_gc()  # as the daemon does once its node is open: the held operations are frozen
        limits = SyncLimits()
        to_responder, from_initiator = trio.open_memory_channel[bytes](1)
        to_initiator, from_responder = trio.open_memory_channel[bytes](1)
        timer = StepTimer()
        trio.lowlevel.add_instrument(timer)
        gc.callbacks.append(timer.on_gc)
        started = time.perf_counter()
        try:
            items_i, items_r = await snapshot(initiator), await snapshot(responder)
            session_i = SyncSession(
                items_i,
                ReplicaOps(initiator.replica),
                initiator=True,
                now=trio.current_time(),
                limits=limits,
            )
            session_r = SyncSession(
                items_r,
                ReplicaOps(responder.replica),
                initiator=False,
                now=trio.current_time(),
                limits=limits,
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(freeze_survivors)  # as the daemon runs it
                nursery.start_soon(_tick, timer)
                async with trio.open_nursery() as sync:
                    sync.start_soon(drive, initiator, session_i, to_responder, from_responder)
                    sync.start_soon(drive, responder, session_r, to_initiator, from_initiator)
                nursery.cancel_scope.cancel()
        finally:
            trio.lowlevel.remove_instrument(timer)
            gc.callbacks.remove(timer.on_gc)
        elapsed = time.perf_counter() - started
        held = initiator.statistics().operations
        result = session_i.result()
        assert result.error is None, result.error
        assert held == len(blobs), f"the initiator holds {held} of {len(blobs)}"
        return timer, elapsed, result.ops_received, result.mode.value


QUEUE_COMMENTS = 100  # comments per page thread (site-queue)
QUEUE_AUTHORS = 20
QUEUE_UNAPPROVED = 2  # commenters the site has not approved: their comments wait


def site_pages(owner: bytes, pages: int, after_ms: int) -> list[bytes]:
    """``pages`` page threads of ``owner``'s blog.example with `QUEUE_COMMENTS` comments each,
    in causal order, written just after ``after_ms`` (the site's rules hold from their own
    time on), the commenters' keys fixed (`queue_commenters`)."""
    authors = queue_commenters()
    encoded: list[bytes] = []
    for index in range(pages):
        page = page_thread(owner, f"https://blog.example/{index}")
        encoded.append(page.encoded)
        head = page.id
        for number in range(QUEUE_COMMENTS):
            comment = make_operation(
                authors[(index + number) % QUEUE_AUTHORS],
                CommentPayload(body=f"comment {number} on page {index}"),
                timestamp_ms=after_ms + 1 + number,
                thread=page.id,
                refs=(page.id,),
                deps=frozenset({head}),
            )
            encoded.append(comment.encoded)
            head = comment.id
    return encoded


def queue_commenters() -> list[SigningKey]:
    return [SigningKey(bytes([0x40 + i]) * 32) for i in range(QUEUE_AUTHORS)]


async def run_site_queue(directory: Path, n: int) -> tuple[StepTimer, float, int, int]:
    """The moderation queue and reports of every thread of a pre-moderated site (set up, then
    reopened cold); returns the step timer, seconds, comments waiting and threads."""
    data_dir = directory / "site-queue"
    async with open_node(data_dir, create_identity=True) as node:  # set-up, not timed
        site = await node.ensure_site_thread("blog.example")
        await node.set_mode(site.id, ThreadMode.PRE_MODERATED)
        for key in queue_commenters()[QUEUE_UNAPPROVED:]:
            rule = await node.approve_author(site.id, bytes(key.verify_key))
        encoded = site_pages(node.author, max(1, n // (QUEUE_COMMENTS + 1)), rule.timestamp_ms)
        for start in range(0, len(encoded), INGEST_BATCH):
            await node.ingest(encoded[start : start + INGEST_BATCH], source="bench")
    async with open_node(data_dir) as node:
        tune_gc()
        timer = StepTimer()
        trio.lowlevel.add_instrument(timer)
        gc.callbacks.append(timer.on_gc)
        started = time.perf_counter()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(freeze_survivors)  # as the daemon runs it
                nursery.start_soon(_tick, timer)
                waiting = await node.moderation_queue()
                await node.reports()
                nursery.cancel_scope.cancel()
        finally:
            trio.lowlevel.remove_instrument(timer)
            gc.callbacks.remove(timer.on_gc)
        elapsed = time.perf_counter() - started
        return timer, elapsed, len(waiting), len(node.threads())


async def run_popular_thread(
    directory: Path, n: int
) -> list[tuple[str, StepTimer, float, float, int, int | None]]:
    """GET of one thread of ``n`` comments (replies to the post and to the comment before,
    by 50 authors), cold then warm, then its page: (which, step timer, seconds, CPU seconds,
    comments shown, bytes sent to each reader or None) each."""
    from p2pcomments.api import handlers  # the daemon's own handler of the request

    data_dir = directory / "popular-thread"
    authors = [SigningKey(bytes([0x60 + i]) * 32) for i in range(50)]
    owner, url = bytes(authors[0].verify_key), "https://blog.example/popular"
    post = page_thread(owner, url)
    encoded = [post.encoded]
    head = post.id
    prose = prose_bodies()
    for number in range(n):
        comment = make_operation(
            authors[number % len(authors)],
            CommentPayload(body=f"comment {number} " + prose[number % len(prose)]),
            timestamp_ms=2_000_000 + number,
            thread=post.id,
            refs=(post.id if number % 3 == 0 else head,),
            deps=frozenset({head}),
        )
        encoded.append(comment.encoded)
        head = comment.id
    async with open_node(data_dir, create_identity=True) as node:  # set-up, not timed
        for start in range(0, len(encoded), INGEST_BATCH):
            await node.ingest(encoded[start : start + INGEST_BATCH], source="bench")
    results = []
    async with open_node(data_dir) as node:
        tune_gc()
        app = build_app(node, token="bench", closing=trio.Event())
        scenarios = ("thread, cold", "thread, warm", "page, warm", "page, after a comment")
        for which in (*scenarios, f"page, {READERS} readers after a comment"):
            if which.endswith("after a comment"):  # a reader writes: every widget reloads
                comment = make_operation(
                    authors[1],
                    CommentPayload(body="one more"),
                    timestamp_ms=2_000_000 + n + len(results),
                    thread=post.id,
                    refs=(post.id,),
                    deps=frozenset({head}),
                )
                await node.ingest([comment.encoded], source="bench")
            timer = StepTimer()
            trio.lowlevel.add_instrument(timer)
            gc.callbacks.append(timer.on_gc)
            shown: dict[str, int] = {}
            pages: list[bytes] = []  # what the readers got, read once the timer is off

            async def get(
                shown: dict[str, int] = shown, which: str = which, pages: list[bytes] = pages
            ) -> None:
                if "readers" in which:  # through the API app, as the daemon serves them
                    pages.extend(await _readers(app, {"url": url, "owner": owner.hex()}))
                    return
                if which.startswith("page"):
                    document = await handlers.page(node, url=url, owner=owner.hex(), alias=[])
                else:
                    thread = format_id(TextKind.THREAD, post.id)
                    document = await handlers.thread(node, thread=thread)
                if isinstance(document, Rendered):  # a big one comes rendered
                    pages.append(document.body)
                else:
                    shown["comments"] = len(document["comments"])

            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_tick, timer)
                    await get()
                    elapsed = time.perf_counter() - started
                    nursery.cancel_scope.cancel()
                await trio.lowlevel.checkpoint()  # the request's last step ends
            finally:
                trio.lowlevel.remove_instrument(timer)
                gc.callbacks.remove(timer.on_gc)
            cpu = time.process_time() - cpu_started
            if pages:
                assert len(set(pages)) == 1, "every reader is shown the same page"
                sent = pages[0]
                shown["sent"] = len(sent)
                if sent[:2] == GZIP_MAGIC:
                    sent = gzip.decompress(sent)
                shown["comments"] = len(json.loads(sent)["comments"])
            results.append((which, timer, elapsed, cpu, shown["comments"], shown.get("sent")))
    return results


async def _tick(timer: StepTimer) -> None:
    """Wake every `TICK` seconds and note how late: a worker thread holding the GIL (the C JSON
    encoder does for a whole call) keeps the loop from running without any step showing it."""
    while True:
        before = time.perf_counter()
        await trio.sleep(TICK)
        timer.late = max(timer.late or 0.0, time.perf_counter() - before - TICK)


async def _readers(app: object, query: dict[str, str]) -> list[bytes]:
    """`READERS` widgets reloading the page at once through the API app (its JSON rendering
    included), asking for gzip as browsers do; returns what each got, as sent (the decoding is
    the readers' CPU, not the daemon's)."""
    bodies: list[bytes] = []
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:

        async def reload() -> None:
            headers = {"accept-encoding": "gzip"}
            async with client.stream("GET", "/api/page", params=query, headers=headers) as got:
                got.raise_for_status()
                bodies.append(b"".join([part async for part in got.aiter_raw()]))

        async with trio.open_nursery() as nursery:
            for _ in range(READERS):
                nursery.start_soon(reload)
    return bodies


def print_steps(timer: StepTimer) -> None:
    worst = sorted(timer.longest.items(), key=lambda item: -item[1])
    print(
        f"  longest step {worst[0][1] * 1000:.1f} ms in {worst[0][0]}"
        f" (target <= {TARGET_MS:.0f} ms)"
    )
    for name, seconds in worst[1:5]:
        print(f"    then {seconds * 1000:8.1f} ms in {name}")
    if timer.late is not None:
        print(
            f"  the loop woke a {TICK * 1000:.0f} ms ticker at most {timer.late * 1000:.1f} ms late"
            " (worker threads holding the GIL included)"
        )
    print(f"  longest cyclic-GC collection inside a step: {timer.gc_longest * 1000:.1f} ms")
    for generation, seconds in sorted(timer.gc_longest_by_generation.items()):
        print(
            f"    generation {generation}: {timer.gc_collections[generation]:,} collections,"
            f" longest {seconds * 1000:.1f} ms"
        )
    # Wall time includes waiting for a CPU on a loaded machine; the loop thread's own CPU
    # time in a step does not (nor the GIL waits, which are real on any machine).
    name, cpu = max(timer.longest_cpu.items(), key=lambda item: item[1])
    print(f"  most CPU in one step (loop thread, load-independent): {cpu * 1000:.1f} ms in {name}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument(
        "--scenario",
        nargs="+",
        default=["catch-up", "1%-sketch"],
        choices=["catch-up", "1%-sketch", "site-queue", "popular-thread"],
    )
    parser.add_argument(
        "--inline", action="store_true", help="keep the O(items) work on the loop (as before)"
    )
    args = parser.parse_args(argv)
    global INLINE
    INLINE = args.inline
    if "site-queue" in args.scenario:
        with tempfile.TemporaryDirectory(prefix="p2pc-bench-loop-") as temporary:
            timer, elapsed, waiting, threads = trio.run(run_site_queue, Path(temporary), args.n)
        print(
            f"site-queue: the queue and reports of every thread, {threads:,} threads,"
            f" {waiting:,} comments waiting, in {elapsed:.2f} s (reference),"
            f" {timer.steps:,} task steps"
        )
        print_steps(timer)
    if "popular-thread" in args.scenario:
        with tempfile.TemporaryDirectory(prefix="p2pc-bench-loop-") as temporary:
            results = trio.run(run_popular_thread, Path(temporary), max(1, args.n // 10))
        for which, timer, elapsed, cpu, comments, sent in results:
            what = "/api/page?url=" if which.startswith("page") else "/api/threads/{id}"
            print(
                f"popular-thread, {which}: GET {what} of {comments:,} comments"
                f" in {elapsed:.2f} s (reference), CPU {cpu:.2f} s, {timer.steps:,} task steps"
                + ("" if sent is None else f", {sent / 1e6:.2f} MB sent to each")
            )
            print_steps(timer)
    syncs = [s for s in args.scenario if s not in ("site-queue", "popular-thread")]
    if not syncs:
        return
    print(f"making {args.n:,} signed operations (not timed)...", flush=True)
    ops, _ = make_ops(args.n, 100, 300)
    blobs = [op.encoded for op in ops]
    for scenario in syncs:
        if scenario == "catch-up":
            lacking = set(range(len(blobs)))
        else:  # the newest 1% (so what the initiator holds is all applied, none pending)
            lacking = set(range(len(blobs) - len(blobs) // 100, len(blobs)))
        with tempfile.TemporaryDirectory(prefix="p2pc-bench-loop-") as temporary:
            timer, elapsed, received, mode = trio.run(
                run_scenario, Path(temporary), blobs, lacking, scenario
            )
        print(
            f"{scenario}: {received:,} operations received ({mode}) in {elapsed:.2f} s"
            f" (reference), {timer.steps:,} task steps"
        )
        print_steps(timer)


if __name__ == "__main__":
    main()
