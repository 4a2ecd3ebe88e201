"""The Node: the one object an embedder needs. Open a data dir, write, ingest, read, watch.

Rules:

1. A local write is built and signed, checked by `core` against the replica, committed durably,
   and only then applied in memory and announced. A caller's mistake raises (`InvalidOperation`,
   `AuthorizationError`, `NotFound`, `ConflictError`) and stores nothing. Checking before
   committing and applying after means memory never holds a local operation the disk lacks.
2. A new operation's timestamp is ``max(clock(), 1 + the greatest timestamp of its parents)``, so a
   reply never predates what it answers, whatever the local clock says.
3. `Node.ingest` never raises for bad input: each item gets an outcome (core's Applied, Duplicate,
   Pending, Rejected). Signatures are checked in worker threads (in parallel for large batches);
   what core accepts (applied or pending) is committed in one job; nothing rejected is stored.
   Operations released from pending are marked applied (or, if rejected, removed) in that same job.
4. Ingest applies in memory before committing (core decides what waits and what is released). If
   that commit fails, memory is ahead of disk, so the node refuses every further write with
   `StoreError` until it is reopened; reads keep working.
5. Watchers and applied-operation subscribers hear of operations only after they are committed.
   Their buffers are bounded and the node never waits for them: a watcher that falls behind gets
   one ``lagged`` change and must re-read the view; a subscriber's next batch says ``lagged``.
6. The data dir is locked for the node's lifetime (`p2pcomments.store.lock`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import unicodedata
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

import trio
from nacl.signing import SigningKey

from p2pcomments import identity
from p2pcomments.core.ops import (
    CommentPayload,
    EditPayload,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    Payload,
    ProfilePayload,
    ReactPayload,
    RetractPayload,
    ThreadPayload,
    claimed_id,
    decode_operations,
    load_stored_operation,
    make_operation,
)
from p2pcomments.core.replica import Applied, Outcome, Pending, Rejected, Replica
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.core.thread_state import ThreadState, ThreadView
from p2pcomments.errors import (
    AuthorizationError,
    ConflictError,
    DecodeError,
    InvalidOperation,
    NotFound,
    PassphraseError,
    StoreError,
)
from p2pcomments.store.data_dir import database_path
from p2pcomments.store.lock import DataDirLock
from p2pcomments.store.op_store import OpState, OpStore, WriteBatch, WriteTicket

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # what mypy sees behind trio.TASK_STATUS_IGNORED (server.py)

    from p2pcomments.net.interface import NetworkService

__all__ = [
    "AppliedBatch",
    "ChangeStream",
    "Node",
    "NodeStatistics",
    "ThreadChange",
    "ThreadSummary",
    "open_node",
]

logger = logging.getLogger(__name__)

WATCH_BUFFER: Final = 256
APPLIED_BUFFER: Final = 1024
_INLINE_DECODE: Final = 4  # batches this small are decoded without a thread hop
_DECODE_CHUNK: Final = 250  # operations per pipeline step (one thread hop and one commit job)
_DECODE_AHEAD: Final = 2  # chunks being decoded or waiting to be applied, per decode thread
_MAX_DECODE_THREADS: Final = 4  # decoding holds the GIL for a third of its time: more would queue
_AUTHORIZATION_REASONS: Final = frozenset({"not-author", "not-owner", "not-moderator"})


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadSummary:
    """One line of the thread list. ``comment_count`` counts comments, retracted ones excluded;
    ``last_activity_ms`` is the greatest author timestamp among the thread's operations."""

    id: bytes
    title: str
    url: str | None
    site: str | None
    owner: bytes
    owner_name: str | None
    comment_count: int
    last_activity_ms: int
    closed: bool
    timestamp_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadChange:
    """An operation was applied (and committed). ``thread_id`` is None for a profile change, which
    every watcher hears because it renames authors everywhere. ``lagged`` means changes were
    dropped because the watcher fell behind: re-read the view; ``op_id`` and ``kind`` are None."""

    thread_id: bytes | None
    op_id: bytes | None
    kind: Kind | None
    lagged: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedBatch:
    """Operations newly applied by one write or ingest call, in causal order, for the networking
    layer to gossip. ``source`` is the ``source`` given to `Node.ingest` (``"local"`` for this
    node's own writes). ``lagged`` means earlier batches were dropped because the subscriber fell
    behind; set reconciliation has to make up for them."""

    ops: tuple[Operation, ...]
    source: str
    lagged: bool = False


def _wire_text(value: str) -> str:
    """What people type, in the form the wire requires: LF line ends and Unicode NFC (text
    typed on some systems arrives decomposed, and would otherwise be refused)."""
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n"))


def _optional_text(value: str | None) -> str | None:
    return None if value is None else _wire_text(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeStatistics:
    operations: int  # applied operations held
    threads: int
    pending: int  # operations waiting for operations they reference
    rejected: int  # operations refused by ingest since open
    data_dir: str
    author: bytes
    profiles: int
    watchers: int
    applied_subscribers: int
    database_bytes: int
    store_commits: int  # transactions since open; fewer than writes under load (group commit)
    load_seconds: float  # time to load the store into memory at open
    unloadable: int  # stored operations that did not decode or apply at open (see the log)


# -- watching ----------------------------------------------------------------------------------


class _Watcher:
    __slots__ = ("lagged", "send", "thread_id")

    def __init__(self, thread_id: bytes | None, send: trio.MemorySendChannel[ThreadChange]) -> None:
        self.thread_id = thread_id
        self.send = send
        self.lagged = False

    def offer(self, change: ThreadChange) -> None:
        if self.lagged:
            return  # the consumer re-reads everything when it catches up
        try:
            self.send.send_nowait(change)
        except trio.WouldBlock:
            self.lagged = True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The consumer closed its end early; its `watch` block unregisters it on exit.
            self.lagged = True


class ChangeStream:
    """What `Node.watch` yields: an async iterator of `ThreadChange`; it ends when the node
    closes."""

    def __init__(self, watcher: _Watcher, receive: trio.MemoryReceiveChannel[ThreadChange]) -> None:
        self._watcher = watcher
        self._receive = receive

    def __aiter__(self) -> ChangeStream:
        return self

    async def __anext__(self) -> ThreadChange:
        watcher = self._watcher
        if watcher.lagged:
            # Everything buffered is superseded by the re-read the lagged change asks for.
            while True:
                try:
                    self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            watcher.lagged = False
            return ThreadChange(thread_id=watcher.thread_id, op_id=None, kind=None, lagged=True)
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None


class _Subscriber:
    __slots__ = ("lagged", "send")

    def __init__(self, send: trio.MemorySendChannel[AppliedBatch]) -> None:
        self.send = send
        self.lagged = False

    def offer(self, batch: AppliedBatch) -> None:
        try:
            self.send.send_nowait(replace(batch, lagged=True) if self.lagged else batch)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.lagged = True
        else:
            self.lagged = False


# -- bookkeeping -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Activity:
    """Per-thread counters kept alongside the replica (both only grow, so upkeep is O(1))."""

    comments: int = 0
    retracted: set[bytes] = field(default_factory=set)
    last_activity_ms: int = 0

    def add(self, op: Operation) -> None:
        if op.timestamp_ms > self.last_activity_ms:
            self.last_activity_ms = op.timestamp_ms
        if op.kind is Kind.COMMENT:
            self.comments += 1
        elif op.kind is Kind.RETRACT:
            self.retracted.add(op.refs[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class _Loaded:
    replica: Replica
    unloadable: int
    seconds: float


def _load(store: OpStore) -> _Loaded:
    """Rebuild the replica from the store, in insertion order. Stored bytes were verified when
    they arrived, so signatures are not checked again.

    Rows stored as pending that the replica applies are marked applied on the way (a crash
    between an operation's commit and the commit releasing its dependants leaves such rows).
    Blocks: run it in a worker thread.
    """
    started = time.perf_counter()
    replica = Replica()
    unloadable = 0
    stored_pending: list[bytes] = []
    for raw, state in store.iter_operations():
        try:
            op = load_stored_operation(raw)
        except InvalidOperation as error:
            unloadable += 1
            logger.warning("%s: a stored operation does not decode: %s", store.path, error)
            continue
        outcome = replica.apply(op).outcome
        if state is OpState.PENDING:
            stored_pending.append(op.id)
        if isinstance(outcome, Rejected):
            unloadable += 1
            logger.warning(
                "%s: stored operation %s is now rejected (%s)",
                store.path,
                op.id.hex(),
                outcome.reason,
            )
    released = [
        applied
        for op_id in stored_pending
        if op_id in replica and (applied := replica.get(op_id)) is not None
    ]
    if released:
        store.write_blocking(WriteBatch(promote=released))
    return _Loaded(replica=replica, unloadable=unloadable, seconds=time.perf_counter() - started)


def _decode_all(
    blobs: Sequence[bytes], held: Callable[[bytes], Operation | None]
) -> list[Operation | Rejected]:
    """Decode and verify each item; a bad one becomes a `Rejected` (rule 3). An item whose
    exact bytes are held already (``held`` looks up an id) is that operation, neither decoded
    nor verified again: applying it reports it `Duplicate`, as for any copy."""
    known_ops: list[Operation | None] = []
    fresh: list[bytes] = []
    for data in blobs:
        op_id = claimed_id(data)
        known = held(op_id) if op_id is not None else None
        if known is not None and known.encoded == data:
            known_ops.append(known)
        else:
            known_ops.append(None)
            fresh.append(data)
    decoded = iter(zip(fresh, decode_operations(fresh), strict=True))
    results: list[Operation | Rejected] = []
    for known in known_ops:
        if known is not None:
            results.append(known)
            continue
        data, op = next(decoded)
        if isinstance(op, InvalidOperation):
            # A DecodeError: not an operation, so no id of its own; otherwise it parsed.
            op_id = _undecodable_id(data) if isinstance(op, DecodeError) else claimed_id(data)
            assert op_id is not None
            results.append(Rejected(op_id=op_id, reason=op.reason, message=op.message))
        else:
            results.append(op)
    return results


def _undecodable_id(data: bytes) -> bytes:
    """Bytes that don't decode have no operation id; report the SHA-256 of the bytes instead, so
    every `Rejected.op_id` is 32 bytes and names what was sent."""
    return hashlib.sha256(bytes(data)).digest()


def _text(kind: TextKind, raw: bytes) -> str:
    return format_id(kind, raw) if len(raw) == 32 else raw.hex()


def _for_caller(error: InvalidOperation) -> InvalidOperation:
    """Core says "not allowed" with a reason code; the caller gets `AuthorizationError` for it."""
    if error.reason in _AUTHORIZATION_REASONS and not isinstance(error, AuthorizationError):
        return AuthorizationError(error.message, reason=error.reason)
    return error


# -- the node ----------------------------------------------------------------------------------


class Node:
    """A data dir opened: its replica in memory, its store on disk, its author key unlocked.

    Create with `open_node`. Reads are synchronous and in memory; writes and ingest are async and
    return once durable. ``replica`` is for reading only.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        author: bytes,
        signing_key: SigningKey | None,
        store: OpStore,
        loaded: _Loaded,
        clock: Callable[[], int],
        decode_threads: int,
    ) -> None:
        self.data_dir = data_dir
        self.author: bytes = author
        self.replica: Replica = loaded.replica
        self.store = store
        self._signing_key = signing_key
        self._clock = clock
        self._load_seconds = loaded.seconds
        self._unloadable = loaded.unloadable
        self._decode_threads = decode_threads
        self._decode_limiter = trio.CapacityLimiter(decode_threads)
        self._activity: dict[bytes, _Activity] = {}
        self._watchers: dict[bytes | None, set[_Watcher]] = {}
        self._subscribers: set[_Subscriber] = set()
        self._rejected = 0
        self._closed = False
        self._failure: BaseException | None = None
        self.network: NetworkService | None = None
        """The network service while one runs for this node (it sets and clears this itself)."""
        for state in self.replica.threads.values():
            activity = self._activity.setdefault(state.id, _Activity())
            for op in state.ops.values():
                activity.add(op)

    def __repr__(self) -> str:
        return f"<Node {self.data_dir} author={format_id(TextKind.KEY, self.author)}>"

    # -- local writes (rule 1) -----------------------------------------------------------------

    async def create_thread(
        self, title: str, *, url: str | None = None, site: str | None = None
    ) -> Operation:
        """Open a discussion about ``title`` and/or ``url``; this node's author owns it."""
        self._check_writable()
        op = make_operation(
            self._signer(),
            ThreadPayload(
                title=_wire_text(title), url=_optional_text(url), site=_optional_text(site)
            ),
            timestamp_ms=self._clock(),
        )
        return await self._commit_local(op)

    async def comment(self, thread_id: bytes, body: str) -> Operation:
        """A top-level comment in the thread."""
        state = self._thread_state(thread_id)
        self._refuse_if_closed(state)
        return await self._write_in(state, CommentPayload(body=_wire_text(body)), target=thread_id)

    async def reply(self, comment_id: bytes, body: str) -> Operation:
        """A reply to a comment; the thread is the comment's."""
        state = self._comment_thread(comment_id)
        self._refuse_if_closed(state)
        return await self._write_in(state, CommentPayload(body=_wire_text(body)), target=comment_id)

    async def edit(self, comment_id: bytes, body: str) -> Operation:
        """Replace the body of one of this author's comments (earlier bodies stay in history)."""
        state = self._comment_thread(comment_id)
        self._refuse_if_closed(state)
        self._refuse_if_retracted(state, comment_id)
        return await self._write_in(state, EditPayload(body=_wire_text(body)), target=comment_id)

    async def retract(self, comment_id: bytes) -> Operation:
        """Delete one of this author's comments for good; replies stay attached to a tombstone."""
        state = self._comment_thread(comment_id)
        self._refuse_if_retracted(state, comment_id)
        return await self._write_in(state, RetractPayload(), target=comment_id)

    async def react(self, comment_id: bytes, reaction: str) -> Operation:
        """This author's one reaction to a comment; ``""`` withdraws it."""
        state = self._comment_thread(comment_id)
        self._refuse_if_closed(state)
        return await self._write_in(
            state, ReactPayload(reaction=_wire_text(reaction)), target=comment_id
        )

    async def hide(self, comment_id: bytes, *, reason: str = "") -> Operation:
        """Hide a comment (owner or moderator)."""
        return await self._moderate_comment(comment_id, ModAction.HIDE, reason)

    async def unhide(self, comment_id: bytes, *, reason: str = "") -> Operation:
        return await self._moderate_comment(comment_id, ModAction.UNHIDE, reason)

    async def close(self, thread_id: bytes, *, reason: str = "") -> Operation:
        """Close the thread (owner or moderator): what comes after the close is not shown."""
        return await self._moderate_thread(thread_id, ModAction.CLOSE, reason=reason)

    async def reopen(self, thread_id: bytes, *, reason: str = "") -> Operation:
        return await self._moderate_thread(thread_id, ModAction.REOPEN, reason=reason)

    async def add_moderator(self, thread_id: bytes, key: bytes) -> Operation:
        """Let ``key`` hide comments and close the thread (owner only)."""
        return await self._moderate_thread(thread_id, ModAction.ADD_MODERATOR, subject=key)

    async def remove_moderator(self, thread_id: bytes, key: bytes) -> Operation:
        return await self._moderate_thread(thread_id, ModAction.REMOVE_MODERATOR, subject=key)

    async def set_profile(self, name: str) -> Operation:
        """Set this author's display name (the latest profile wins everywhere)."""
        self._check_writable()
        current = self.replica.profiles.get(self.author)
        floor = current.timestamp_ms + 1 if current is not None else 0
        op = make_operation(
            self._signer(),
            ProfilePayload(name=_wire_text(name)),
            timestamp_ms=max(self._clock(), floor),
        )
        return await self._commit_local(op)

    async def _moderate_comment(
        self, comment_id: bytes, action: ModAction, reason: str
    ) -> Operation:
        state = self._comment_thread(comment_id)
        return await self._write_in(
            state, ModeratePayload(action=action, reason=_wire_text(reason)), target=comment_id
        )

    async def _moderate_thread(
        self,
        thread_id: bytes,
        action: ModAction,
        *,
        reason: str = "",
        subject: bytes | None = None,
    ) -> Operation:
        state = self._thread_state(thread_id)
        payload = ModeratePayload(action=action, subject=subject, reason=_wire_text(reason))
        return await self._write_in(state, payload, target=thread_id)

    async def _write_in(self, state: ThreadState, payload: Payload, *, target: bytes) -> Operation:
        self._check_writable()
        deps = state.causal_deps()
        ops = state.ops
        newest_parent = max(ops[parent].timestamp_ms for parent in (target, *deps))
        op = make_operation(
            self._signer(),
            payload,
            timestamp_ms=max(self._clock(), newest_parent + 1),  # rule 2
            thread=state.id,
            refs=(target,),
            deps=deps,
        )
        try:
            state.check(op)
        except InvalidOperation as error:
            raise _for_caller(error) from None
        return await self._commit_local(op)

    async def _commit_local(self, op: Operation) -> Operation:
        self._check_writable()
        await self.store.write(WriteBatch(insert=((op, OpState.APPLIED),)))
        # Valid when checked, and validity depends only on the causal past, which is immutable:
        # this applies (or is a Duplicate of an identical operation written concurrently).
        result = self.replica.apply(op)
        if not isinstance(result.outcome, Applied):
            return op
        applied = [op]
        self._account(op)
        promote: list[Operation] = []
        discard: list[bytes] = []
        for released, outcome in result.released:
            if isinstance(outcome, Applied):
                self._account(released)
                applied.append(released)
                promote.append(released)
            else:
                discard.append(released.id)
        if promote or discard:
            await self._write_or_fail(WriteBatch(promote=promote, discard=discard))
        self._announce(applied, "local")
        return op

    # -- ingest (rule 3) -----------------------------------------------------------------------

    async def ingest(
        self,
        encoded_ops: Sequence[bytes],
        *,
        source: str = "local",
        task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> list[Outcome]:
        """Decode, verify, apply and durably store operations from outside (network, import).

        Returns one outcome per item, in order, as it stands when the call returns: an item that
        waited but was released by a later item of the same call reads Applied. When it returns,
        every item reported Applied, Pending or Duplicate is durable (a Duplicate another call is
        still committing included). Never raises for bad input; raises `StoreError` only when
        storing fails (then see rule 4).

        Large batches go through a pipeline: chunks are verified in worker threads ahead of this
        task, which applies finished chunks in order and queues each chunk's commit at once, so
        verifying, applying and committing overlap. If the call is cancelled, what was applied
        is still committed and announced before the cancellation goes on.

        Started with ``nursery.start``, it reports started once every item is applied and its
        commit queued, so a caller with a stream of batches can decode the next one while this
        one commits, and still apply them in order.
        """
        self._check_writable()
        blobs = list(encoded_ops)
        outcomes: list[Outcome] = []
        position: dict[bytes, int] = {}
        committing: deque[tuple[WriteTicket, list[Operation]]] = deque()
        try:
            if len(blobs) <= _INLINE_DECODE:
                decoded = _decode_all(blobs, self.replica.get)
                committing.append(self._apply_chunk(decoded, outcomes, position))
            else:
                await self._decode_and_apply(blobs, source, outcomes, position, committing)
            task_status.started()
        except BaseException:
            await self._settle(committing, source, raise_errors=False)
            raise
        await self._settle(committing, source, raise_errors=True)
        return outcomes

    async def ingest_verified(
        self, ops: Sequence[Operation], *, source: str = "local"
    ) -> list[Outcome]:
        """`ingest` for operations the caller has already decoded *and* whose signatures it has
        checked (the gossip validator does both before it accepts a message), so no signature is
        checked twice. Outcomes, durability and announcements are as for `ingest`.

        Only code that verified every signature itself may call this: an operation passed here
        unverified would be stored and served as if its author had signed it.
        """
        self._check_writable()
        outcomes: list[Outcome] = []
        committing: deque[tuple[WriteTicket, list[Operation]]] = deque()
        decoded: list[Operation | Rejected] = list(ops)
        try:
            committing.append(self._apply_chunk(decoded, outcomes, {}))
        except BaseException:
            await self._settle(committing, source, raise_errors=False)
            raise
        await self._settle(committing, source, raise_errors=True)
        return outcomes

    async def _decode_and_apply(
        self,
        blobs: list[bytes],
        source: str,
        outcomes: list[Outcome],
        position: dict[bytes, int],
        committing: deque[tuple[WriteTicket, list[Operation]]],
    ) -> None:
        chunks = [
            blobs[start : start + _DECODE_CHUNK] for start in range(0, len(blobs), _DECODE_CHUNK)
        ]
        decoded: list[list[Operation | Rejected]] = [[] for _ in chunks]
        ready = [trio.Event() for _ in chunks]

        in_order = iter(range(len(chunks)))
        # Bounds the chunks decoding or decoded but not yet applied (and so memory): workers
        # further ahead only take CPU and the GIL from applying and committing, which is what
        # the caller waits for.
        ahead = trio.Semaphore(self._decode_threads * _DECODE_AHEAD)

        async def decode_in_order() -> None:
            # Signature checks run in C without the GIL, so chunks verify in parallel; the
            # workers share one iterator, so chunks are taken in the order they are applied.
            for index in in_order:
                await ahead.acquire()
                decoded[index] = await trio.to_thread.run_sync(
                    _decode_all, chunks[index], self.replica.get, limiter=self._decode_limiter
                )
                ready[index].set()

        queued = [trio.Event() for _ in chunks]

        async def announce_as_committed() -> None:
            # Watchers hear of each chunk as soon as its commit lands, not only once the next
            # chunk has been decoded. This task alone pops `committing` while the nursery runs,
            # so its head is always chunk `index`.
            for index in range(len(chunks)):
                await queued[index].wait()
                ticket = committing[0][0]
                await ticket.wait_settled()
                if not ticket.committed:  # a failed commit stays queued for `_settle` to raise
                    return
                self._announce(committing.popleft()[1], source)

        async with trio.open_nursery() as nursery:
            for _ in range(self._decode_threads):
                nursery.start_soon(decode_in_order)
            nursery.start_soon(announce_as_committed)
            for index in range(len(chunks)):
                await ready[index].wait()
                self._check_writable()  # the node may have failed or closed meanwhile
                committing.append(self._apply_chunk(decoded[index], outcomes, position))
                queued[index].set()
                decoded[index] = []
                ahead.release()
            # Everything is applied and queued: `_settle` waits for and announces the rest.
            nursery.cancel_scope.cancel()

    def _apply_chunk(
        self,
        decoded: list[Operation | Rejected],
        outcomes: list[Outcome],
        position: dict[bytes, int],
    ) -> tuple[WriteTicket, list[Operation]]:
        """Apply one decoded chunk and queue its commit, with no checkpoint in between (so a
        cancellation can't leave applied operations without a queued commit). Returns the
        commit's ticket and the operations it makes applied, to announce once it is settled."""
        fresh: dict[bytes, tuple[Operation, OpState]] = {}
        promote: list[Operation] = []
        discard: list[bytes] = []
        applied: list[Operation] = []
        rejected = 0
        apply = self.replica.apply
        for item in decoded:
            if isinstance(item, Rejected):
                outcomes.append(item)
                rejected += 1
                continue
            result = apply(item)
            outcome = result.outcome
            if isinstance(outcome, Applied):
                fresh[item.id] = (item, OpState.APPLIED)
                applied.append(item)
            elif isinstance(outcome, Pending):
                fresh[item.id] = (item, OpState.PENDING)
                position[item.id] = len(outcomes)
            elif isinstance(outcome, Rejected):
                rejected += 1
            outcomes.append(outcome)
            for released, released_outcome in result.released:
                released_id = released.id
                if isinstance(released_outcome, Applied):
                    applied.append(released)
                    if released_id in fresh:
                        fresh[released_id] = (released, OpState.APPLIED)
                    else:  # stored as pending by an earlier commit
                        promote.append(released)
                else:
                    rejected += 1
                    if released_id in fresh:
                        del fresh[released_id]
                    else:
                        discard.append(released_id)
                if released_id in position:  # it waited earlier in this very call
                    outcomes[position.pop(released_id)] = released_outcome
        for op in applied:
            self._account(op)
        self._rejected += rejected
        batch = WriteBatch(insert=list(fresh.values()), promote=promote, discard=discard)
        try:
            return self.store.enqueue(batch), applied
        except BaseException as error:  # applied in memory but never to be committed: rule 4
            self._failure = error
            raise

    async def _settle(
        self,
        committing: deque[tuple[WriteTicket, list[Operation]]],
        source: str,
        *,
        raise_errors: bool,
    ) -> None:
        """Wait for queued commits in order and announce what each made applied (rule 5). A
        failed commit means memory is ahead of disk: the node stops taking writes (rule 4)."""
        failure: BaseException | None = None
        for ticket, applied in committing:
            try:
                await ticket.wait()
            except Exception as error:  # recorded for rule 4, raised below
                self._failure = failure = failure or error
                continue
            self._announce(applied, source)
        if failure is not None and raise_errors:
            raise failure

    async def _write_or_fail(self, batch: WriteBatch) -> None:
        """Commit what memory already holds; on failure the node stops writing (rule 4)."""
        try:
            await self.store.write(batch)
        except BaseException as error:
            self._failure = error
            raise

    # -- reads ---------------------------------------------------------------------------------

    def thread_view(self, thread_id: bytes) -> ThreadView:
        """The thread as shown. Raises `NotFound` for a thread not held here."""
        return self._thread_state(thread_id).view(self.replica.names())

    def threads(self) -> list[ThreadSummary]:
        """Every thread held here, most recent activity first."""
        names = self.replica.names()
        summaries = []
        for thread_id, state in self.replica.threads.items():
            activity = self._activity.get(thread_id) or _Activity()
            payload = state.payload
            summaries.append(
                ThreadSummary(
                    id=thread_id,
                    title=payload.title,
                    url=payload.url,
                    site=payload.site,
                    owner=state.owner,
                    owner_name=names.get(state.owner),
                    comment_count=activity.comments - len(activity.retracted),
                    last_activity_ms=activity.last_activity_ms,
                    closed=state.closed,
                    timestamp_ms=state.thread_op.timestamp_ms,
                )
            )
        summaries.sort(key=lambda s: (s.last_activity_ms, s.id), reverse=True)
        return summaries

    def get_operation(self, op_id: bytes) -> Operation | None:
        """A held operation, applied or pending."""
        return self.replica.get(op_id)

    def resolve(self, op_id: bytes) -> tuple[bytes, Kind]:
        """(thread id, kind) of a held operation (a thread resolves to itself).

        Raises `NotFound` for an unknown id, and for a profile, which belongs to no thread.
        """
        op = self.replica.get(op_id)
        if op is None:
            raise NotFound(f"no operation {_text(TextKind.OPERATION, op_id)} here")
        thread_id = op.thread_id
        if thread_id is None:
            raise NotFound(
                f"{_text(TextKind.OPERATION, op_id)} is a profile, not part of a thread",
                reason="not-in-thread",
            )
        return thread_id, op.kind

    def export_operations(self, thread_id: bytes | None = None) -> list[bytes]:
        """Canonical bytes of the thread's operations (or of everything, profiles included), each
        after the operations it references, so `ingest` on another node applies them in one pass.
        Pending operations come last (they will wait there too)."""
        if thread_id is not None:
            state = self._thread_state(thread_id)
            ops = state.operations()
            pending = [op for op in self.replica.pending_operations() if op.thread == thread_id]
        else:
            ops = sorted(self.replica.profile_operations(), key=lambda op: (op.timestamp_ms, op.id))
            states = sorted(
                self.replica.threads.values(),
                key=lambda s: (s.thread_op.timestamp_ms, s.id),
            )
            for state in states:
                ops.extend(state.operations())
            pending = self.replica.pending_operations()
        return [op.encoded for op in ops] + [op.encoded for op in pending]

    def statistics(self) -> NodeStatistics:
        store = self.store.statistics()
        return NodeStatistics(
            operations=self.replica.operation_count(),
            threads=len(self.replica.threads),
            pending=len(self.replica.pending),
            rejected=self._rejected,
            data_dir=str(self.data_dir),
            author=self.author,
            profiles=len(self.replica.profiles),
            watchers=sum(len(group) for group in self._watchers.values()),
            applied_subscribers=len(self._subscribers),
            database_bytes=store.database_bytes,
            store_commits=store.commits,
            load_seconds=self._load_seconds,
            unloadable=self._unloadable,
        )

    # -- maintenance ---------------------------------------------------------------------------

    async def integrity_check(self) -> list[str]:
        """Problems in the database (SQLite's check and the views'), empty when all is well."""
        return await trio.to_thread.run_sync(self.store.integrity_check)

    async def rebuild_views(self) -> None:
        """Recompute the store's view tables from its operations."""
        self._check_writable()
        await trio.to_thread.run_sync(self.store.rebuild_views)

    # -- watching (rule 5) ---------------------------------------------------------------------

    @asynccontextmanager
    async def watch(
        self, thread_id: bytes | None = None, *, max_buffered: int = WATCH_BUFFER
    ) -> AsyncIterator[ChangeStream]:
        """Live changes to one thread (or to all when None), from local writes and ingest alike::

            async with node.watch(thread_id) as changes:
                async for change in changes:
                    ...

        A thread not held yet may be watched (it may arrive). The iteration ends when the node
        closes. A watcher that falls ``max_buffered`` changes behind gets one ``lagged`` change.
        """
        send, receive = trio.open_memory_channel[ThreadChange](max_buffered)
        watcher = _Watcher(thread_id, send)
        self._watchers.setdefault(thread_id, set()).add(watcher)
        try:
            with receive:
                yield ChangeStream(watcher, receive)
        finally:
            group = self._watchers.get(thread_id)
            if group is not None:
                group.discard(watcher)
                if not group:
                    del self._watchers[thread_id]
            send.close()

    @contextmanager
    def subscribe_applied(
        self, *, max_buffered: int = APPLIED_BUFFER
    ) -> Iterator[trio.MemoryReceiveChannel[AppliedBatch]]:
        """Every newly applied operation, local writes and ingested ones alike, as `AppliedBatch`
        values (one per write or ingest call), for the networking layer to publish::

            with node.subscribe_applied() as batches:
                async for batch in batches:
                    if batch.source != "gossip": ...publish batch.ops...

        Bounded: when ``max_buffered`` batches are waiting, further ones are dropped and the next
        delivered batch has ``lagged=True``. The channel ends when the node closes.
        """
        send, receive = trio.open_memory_channel[AppliedBatch](max_buffered)
        subscriber = _Subscriber(send)
        self._subscribers.add(subscriber)
        try:
            with receive:
                yield receive
        finally:
            self._subscribers.discard(subscriber)
            send.close()

    def _announce(self, ops: list[Operation], source: str) -> None:
        if not ops:
            return
        if self._watchers:
            everything = self._watchers.get(None, set())
            for op in ops:
                thread_id = op.thread_id
                change = ThreadChange(thread_id=thread_id, op_id=op.id, kind=op.kind)
                if thread_id is None:  # a profile: names may change in every thread
                    for group in self._watchers.values():
                        for watcher in group:
                            watcher.offer(change)
                    continue
                for watcher in everything:
                    watcher.offer(change)
                for watcher in self._watchers.get(thread_id, ()):
                    watcher.offer(change)
        if self._subscribers:
            batch = AppliedBatch(ops=tuple(ops), source=source)
            for subscriber in self._subscribers:
                subscriber.offer(batch)

    # -- helpers -------------------------------------------------------------------------------

    def _account(self, op: Operation) -> None:
        thread_id = op.thread_id
        if thread_id is not None:
            activity = self._activity.get(thread_id)
            if activity is None:
                activity = self._activity[thread_id] = _Activity()
            activity.add(op)

    def _signer(self) -> SigningKey:
        """The author key, for a local write; `PassphraseError` if the node was opened with
        ``defer_unlock`` and no passphrase for an encrypted key (nothing is written then)."""
        if self._signing_key is None:
            raise PassphraseError(
                f"the author key in {self.data_dir} is encrypted: writing needs its passphrase",
                reason="passphrase-required",
            )
        return self._signing_key

    def _check_writable(self) -> None:
        if self._closed:
            raise ConflictError(f"the node for {self.data_dir} is closed", reason="node-closed")
        if self._failure is not None:
            raise StoreError(
                f"an earlier write to {self.store.path} failed ({self._failure}); memory may be"
                " ahead of disk, so this node takes no more writes: reopen it",
                reason="store-failed",
            )

    def _thread_state(self, thread_id: bytes) -> ThreadState:
        state = self.replica.threads.get(thread_id)
        if state is None:
            raise NotFound(f"no thread {_text(TextKind.THREAD, thread_id)} here")
        return state

    def _comment_thread(self, comment_id: bytes) -> ThreadState:
        """The thread of an applied comment; `NotFound` if there is no such comment here."""
        thread_id = self.replica.thread_of(comment_id)
        if thread_id is None:
            waiting = comment_id in self.replica.pending
            detail = " (it is waiting for operations it references)" if waiting else ""
            raise NotFound(f"no comment {_text(TextKind.COMMENT, comment_id)} here{detail}")
        state = self.replica.threads[thread_id]
        if state.comment(comment_id) is None:
            raise NotFound(
                f"{_text(TextKind.OPERATION, comment_id)} is not a comment", reason="not-a-comment"
            )
        return state

    def _refuse_if_closed(self, state: ThreadState) -> None:
        # Core would accept it, but a closed thread never shows it (causal close): refusing tells
        # the caller instead of silently writing something nobody will see.
        if state.closed:
            raise ConflictError(
                f"thread {_text(TextKind.THREAD, state.id)} is closed", reason="thread-closed"
            )

    def _refuse_if_retracted(self, state: ThreadState, comment_id: bytes) -> None:
        activity = self._activity.get(state.id)
        if activity is not None and comment_id in activity.retracted:
            raise ConflictError(
                f"comment {_text(TextKind.COMMENT, comment_id)} is retracted", reason="retracted"
            )

    async def _shutdown(self) -> None:
        self._closed = True
        for group in self._watchers.values():
            for watcher in group:
                watcher.send.close()
        for subscriber in self._subscribers:
            subscriber.send.close()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.store.close)


@asynccontextmanager
async def open_node(
    data_dir: Path | str | None = None,
    *,
    passphrase: str | None = None,
    create_identity: bool = False,
    clock: Callable[[], int] | None = None,
    decode_threads: int | None = None,
    defer_unlock: bool = False,
) -> AsyncIterator[Node]:
    """Open the node of ``data_dir`` (default: ``$P2PC_HOME``, else the user data dir).

    Locks the data dir (`ConflictError` naming the holder's pid if another process has it), unlocks
    the author key (`IdentityMissing` when there is none and ``create_identity`` is False;
    `PassphraseError`), opens and migrates the store (`StoreError` if it is unusable) and loads
    every stored operation into memory. ``clock`` returns ms since the epoch (tests inject one).
    ``decode_threads`` bounds the threads verifying signatures in parallel (default: the CPUs,
    at most 4). With ``defer_unlock``, an encrypted key and no passphrase still open the node,
    for reading: local writes then raise `PassphraseError` (reason ``passphrase-required``)
    before anything is signed. Closing commits what is queued and releases the lock.
    """
    directory = identity.resolve_data_dir(data_dir)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create the data dir {directory}: {error}") from None
    lock = DataDirLock.acquire(directory)
    try:
        if create_identity and not identity.has_identity(directory):
            created = await trio.to_thread.run_sync(
                lambda: identity.create_identity(directory, passphrase=passphrase)
            )
            author = _Author(public_key=created.public_key, signing_key=created.signing_key)
        else:
            author = await trio.to_thread.run_sync(
                lambda: _load_author(directory, passphrase, defer_unlock=defer_unlock)
            )
        store = await trio.to_thread.run_sync(OpStore.open, database_path(directory))
        try:
            loaded = await trio.to_thread.run_sync(_load, store)
        except BaseException:
            store.close()
            raise
        threads = decode_threads or min(_MAX_DECODE_THREADS, _cpu_count())
        node = Node(
            data_dir=directory,
            author=author.public_key,
            signing_key=author.signing_key,
            store=store,
            loaded=loaded,
            clock=clock or _wall_clock_ms,
            decode_threads=max(1, threads),
        )
        try:
            yield node
        finally:
            await node._shutdown()
    finally:
        lock.release()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Author:
    public_key: bytes
    signing_key: SigningKey | None  # None: encrypted, and opened with defer_unlock


def _load_author(directory: Path, passphrase: str | None, *, defer_unlock: bool) -> _Author:
    try:
        unlocked = identity.load_identity(directory, passphrase=passphrase)
    except PassphraseError as error:
        if not defer_unlock or error.reason != "passphrase-required":
            raise
        return _Author(public_key=identity.read_public_key(directory), signing_key=None)
    return _Author(public_key=unlocked.public_key, signing_key=unlocked.signing_key)


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
