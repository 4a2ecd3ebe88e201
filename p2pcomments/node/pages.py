"""The Node's web side: page threads (SPEC §10), a page's merged view, and operations that readers
signed in their browsers, submitted through the API.

Rules:

1. A page thread needs no set-up: its id follows from (owner, URL), and `page_view` answers for a
   page whose thread nobody sent yet (empty). `ensure_page_thread` stores it here (idempotent) and
   gossips it, as a local write would be.
2. `submit_operations` checks what it is given exactly as the gossip validator does (SPEC §8.6):
   decoding, canonical form, authenticity, and the rules that need the operations referenced when
   those are applied here; an operation whose references are missing is kept pending. If any
   item fails, nothing is stored and `OperationRefused` names its index and the spec's reason.
   Otherwise every item is ingested as it is (its bytes are never altered) and published like the
   node's own operations. An item that turns out invalid only against another item of the same
   submission is refused then, the others kept (as gossip does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from p2pcomments.core.ops import Operation, decode_operations, page_thread
from p2pcomments.core.page_view import PageView, page_view
from p2pcomments.core.replica import Applied, Duplicate, Pending, Rejected
from p2pcomments.errors import (
    InvalidOperation,
    OperationRefused,
    OperationRefusedNotAuthorized,
)
from p2pcomments.node.ingest import Ingest

__all__ = ["Submitted", "WebPages"]

_NOT_AUTHORIZED: Final = frozenset({"not-author", "not-owner", "not-moderator"})
SUBMITTED_SOURCE: Final = "local"  # published and followed like this node's own writes


@dataclass(frozen=True, slots=True, kw_only=True)
class Submitted:
    """What became of one submitted operation: ``valid`` (applied) or ``pending`` (waiting for
    what it references), and whether this node held it already."""

    op: Operation
    state: Literal["valid", "pending"]
    duplicate: bool


def _refused(index: int, total: int, reason: str, message: str) -> OperationRefused:
    where = f"operation {index + 1} of {total}: " if total > 1 else ""
    kind = OperationRefusedNotAuthorized if reason in _NOT_AUTHORIZED else OperationRefused
    return kind(where + message, reason=reason, index=index)


class WebPages(Ingest):
    """Page threads and submitted operations (module rules 1-2)."""

    def page_thread_id(self, url: str, owner: bytes) -> bytes:
        """The id of the page thread of ``url`` owned by ``owner`` (`PageUrlError` for a URL
        that can't name a page)."""
        return page_thread(owner, url).id

    async def ensure_page_thread(self, url: str, owner: bytes) -> Operation:
        """The page thread of ``url`` owned by ``owner``, stored here and gossiped if it was not
        held yet (rule 1). Anyone may make it: it is the same operation whoever does."""
        op = page_thread(owner, url)
        if op.id not in self.replica:
            [outcome] = await self.ingest([op.encoded], source=SUBMITTED_SOURCE)
            assert isinstance(outcome, Applied | Duplicate), outcome
        return op

    def page_view(self, url: str, owner: bytes, aliases: Sequence[str] = ()) -> PageView:
        """The page's comments: its page thread's, merged with its aliases' (SPEC §10.4)."""
        return page_view(self.replica, owner, url, aliases)

    async def submit_operations(self, encoded_ops: Sequence[bytes]) -> list[Submitted]:
        """Check, store and relay operations signed elsewhere (rule 2), in order."""
        self._check_writable()
        blobs = [bytes(data) for data in encoded_ops]
        total = len(blobs)
        decoded = decode_operations(blobs)
        replica = self.replica
        ops: list[Operation] = []
        for index, item in enumerate(decoded):
            if isinstance(item, InvalidOperation):
                raise _refused(index, total, item.reason, item.message)
            held = replica.get(item.id)
            if held is None or held.encoded != item.encoded:
                reason = replica.verdict(item)
                if reason is not None:
                    raise _refused(index, total, reason, f"the operation is refused: {reason}")
            ops.append(item)
        held_before = [replica.get(op.id) is not None for op in ops]
        outcomes = await self.ingest(blobs, source=SUBMITTED_SOURCE)
        results: list[Submitted] = []
        for index, (op, outcome) in enumerate(zip(ops, outcomes, strict=True)):
            if isinstance(outcome, Rejected):
                raise _refused(index, total, outcome.reason, outcome.message)
            if isinstance(outcome, Applied) or op.id in replica:
                state: Literal["valid", "pending"] = "valid"
            else:
                assert isinstance(outcome, Pending | Duplicate), outcome
                state = "pending"
            results.append(Submitted(op=op, state=state, duplicate=held_before[index]))
        return results
