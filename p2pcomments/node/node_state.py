"""What every part of the Node shares: its replica, store, key and health, and the lookups by id.

Rules:

1. When a commit of operations memory already holds fails, memory is ahead of disk: the node
   refuses every further write with `StoreError` (reason ``store-failed``; `DiskFull` when the
   disk was full) until it is reopened; reads keep working. `store_failure` tells (the daemon
   stops itself then, so a restart reopens it). A closed node refuses writes with
   `ConflictError` (``node-closed``).
2. The author key is unlocked at open, or (``defer_unlock``) never: a local write then raises
   `PassphraseError` before anything is signed.
3. Lookups by id raise `NotFound` naming the id in its text form: a thread not held here, a
   comment not applied here (saying so when it waits for what it references), an id that is not
   a comment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import trio
from nacl.signing import SigningKey

from p2pcomments.core.completeness import RejectionLog
from p2pcomments.core.replica import Replica
from p2pcomments.core.textform import TextKind, display_id, format_id
from p2pcomments.core.thread_state import ThreadState
from p2pcomments.errors import (
    ConflictError,
    DiskFull,
    NotFound,
    PassphraseError,
    StoreError,
)
from p2pcomments.node.apply_order import ApplyOrder
from p2pcomments.node.changes import ChangeFeed
from p2pcomments.node.thread_source import StoreThreads
from p2pcomments.store.op_store import OpStore, WriteBatch

if TYPE_CHECKING:
    from p2pcomments.net.interface import NetworkService

__all__ = ["Loaded", "NodeState"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """A store read into memory at open (`p2pcomments.node.opening`)."""

    replica: Replica
    source: StoreThreads
    unloadable: int
    seconds: float


class NodeState:
    """The state of an opened data dir; `Node` adds writes, ingest, reads and watching to it."""

    def __init__(
        self,
        *,
        data_dir: Path,
        author: bytes,
        signing_key: SigningKey | None,
        store: OpStore,
        loaded: Loaded,
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
        self._unloaded_at_open = loaded.unloadable
        self._source = loaded.source
        self._decode_threads = decode_threads
        self._decode_limiter = trio.CapacityLimiter(decode_threads)
        self._apply_order = ApplyOrder()  # `ingest` rule 5
        self._showing: dict[bytes, trio.Event] = {}  # `thread_walk` rule 5: one make a thread
        self._changes = ChangeFeed()
        self._rejected = 0
        # Per thread, what was rejected since open, and why (`core.completeness` rule 2).
        self._rejections = RejectionLog(since_ms=clock())
        self._closed = False
        self._failure: BaseException | None = None
        self.network: NetworkService | None = None
        """The network service while one runs for this node (it sets and clears this itself)."""

    def __repr__(self) -> str:
        return f"<Node {self.data_dir} author={format_id(TextKind.KEY, self.author)}>"

    def _signer(self) -> SigningKey:
        """The author key, for a local write (rule 2)."""
        if self._signing_key is None:
            raise PassphraseError(
                f"the author key in {self.data_dir} is encrypted: writing needs its passphrase",
                reason="passphrase-required",
            )
        return self._signing_key

    @property
    def _unloadable(self) -> int:
        """Stored operations that did not decode, verify or apply, at open or since, as their
        threads were loaded (`node.thread_source` rule 1)."""
        return self._unloaded_at_open + self._source.damaged + len(self.replica.unloadable)

    def _check_writable(self) -> None:
        """Rule 1."""
        if self._closed:
            raise ConflictError(f"the node for {self.data_dir} is closed", reason="node-closed")
        if self._failure is not None:
            # A full disk stays a DiskFull (HTTP 507), so the caller knows space is the fix.
            error = DiskFull if isinstance(self._failure, DiskFull) else StoreError
            raise error(
                f"an earlier write to {self.store.path} failed ({self._failure}); memory may be"
                " ahead of disk, so this node takes no more writes until it is reopened (a"
                " daemon stops itself: start it again)",
                reason="store-failed",
            )

    @property
    def store_failure(self) -> BaseException | None:
        """The failed commit that stopped this node's writes (rule 1), or None."""
        return self._failure

    async def _write_or_fail(self, batch: WriteBatch) -> None:
        """Commit what memory already holds; on failure the node stops writing (rule 1)."""
        try:
            await self.store.write(batch)
        except BaseException as error:
            self._failure = error
            raise
        self.replica.saved(batch.promote)

    def _thread_state(self, thread_id: bytes) -> ThreadState:
        state = self.replica.threads.get(thread_id)
        if state is None:
            raise NotFound(f"no thread {display_id(TextKind.THREAD, thread_id)} here")
        return state

    def _comment_thread(self, comment_id: bytes) -> ThreadState:
        """The thread of an applied comment; `NotFound` if there is no such comment here."""
        thread_id = self.replica.thread_of(comment_id)
        if thread_id is None:
            waiting = comment_id in self.replica.pending
            detail = " (it is waiting for operations it references)" if waiting else ""
            raise NotFound(f"no comment {display_id(TextKind.COMMENT, comment_id)} here{detail}")
        state = self.replica.threads.get(thread_id)
        if state is None:  # its thread turned out damaged on disk as it loaded
            raise NotFound(f"no comment {display_id(TextKind.COMMENT, comment_id)} here")
        if state.comment(comment_id) is None:
            raise NotFound(
                f"{display_id(TextKind.OPERATION, comment_id)} is not a comment",
                reason="not-a-comment",
            )
        return state
