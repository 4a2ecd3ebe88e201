"""The Node's local writes: this author's threads, comments, edits, reactions, moderation, profile.

Rules:

1. A local write is built and signed by `core.authoring` (text normalised, timestamp rule,
   refusals, checked against the replica), committed durably, and only then applied in memory
   and announced. A caller's mistake raises (`InvalidOperation`, `AuthorizationError`,
   `NotFound`, `ConflictError`) and stores nothing. Checking before committing and applying after
   means memory never holds a local operation the disk lacks.
2. The order of refusals: the id is looked up (`NotFound`), `core.authoring.refuse` (closed,
   retracted), then the node's health and the key (`node_state` rules 1-2), then validity.
"""

from __future__ import annotations

import contextlib
import functools

import trio

from p2pcomments.core import authoring
from p2pcomments.core.authoring import wire_text
from p2pcomments.core.ops import (
    CommentPayload,
    EditPayload,
    ModAction,
    ModeratePayload,
    Operation,
    Payload,
    ReactPayload,
    RetractPayload,
)
from p2pcomments.core.replica import Applied
from p2pcomments.core.rules import unpaid_operations
from p2pcomments.core.textform import TextKind, display_id
from p2pcomments.core.thread_state import ThreadState
from p2pcomments.errors import NotFound, StoreError
from p2pcomments.node import listings
from p2pcomments.node.node_state import NodeState
from p2pcomments.store.op_store import OpState, WriteBatch

__all__ = ["LocalWrites"]


class LocalWrites(NodeState):
    """The write methods of `Node` (rule 1); each returns the operation once it is durable."""

    async def create_thread(
        self, title: str, *, url: str | None = None, site: str | None = None
    ) -> Operation:
        """Open a discussion about ``title`` and/or ``url``; this node's author owns it."""
        self._check_writable()
        op = authoring.thread_operation(
            self._signer(), title, url=url, site=site, now_ms=self._clock()
        )
        return await self._commit_local(op)

    async def comment(self, thread_id: bytes, body: str) -> Operation:
        """A top-level comment in the thread."""
        state = self._thread_state(thread_id)
        return await self._write_in(state, CommentPayload(body=wire_text(body)), target=thread_id)

    async def reply(self, comment_id: bytes, body: str) -> Operation:
        """A reply to a comment; the thread is the comment's."""
        state = self._comment_thread(comment_id)
        return await self._write_in(state, CommentPayload(body=wire_text(body)), target=comment_id)

    async def edit(self, comment_id: bytes, body: str) -> Operation:
        """Replace the body of one of this author's comments (earlier bodies stay in history)."""
        state = self._comment_thread(comment_id)
        return await self._write_in(state, EditPayload(body=wire_text(body)), target=comment_id)

    async def retract(self, comment_id: bytes) -> Operation:
        """Delete one of this author's comments for good; replies stay attached to a tombstone."""
        state = self._comment_thread(comment_id)
        return await self._write_in(state, RetractPayload(), target=comment_id)

    async def react(self, comment_id: bytes, reaction: str) -> Operation:
        """This author's one reaction to a comment; ``""`` withdraws it."""
        state = self._comment_thread(comment_id)
        return await self._write_in(
            state, ReactPayload(reaction=wire_text(reaction)), target=comment_id
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

    async def retitle(self, thread_id: bytes, title: str) -> Operation:
        """Set the title the thread shows (owner or moderator; the latest retitle wins): how a
        page thread, which has none, gets one (SPEC §10.3)."""
        return await self._moderate_thread(thread_id, ModAction.RETITLE, reason=title)

    async def add_moderator(self, thread_id: bytes, key: bytes) -> Operation:
        """Let ``key`` hide comments and close the thread (owner only)."""
        return await self._moderate_thread(thread_id, ModAction.ADD_MODERATOR, subject=key)

    async def remove_moderator(self, thread_id: bytes, key: bytes) -> Operation:
        return await self._moderate_thread(thread_id, ModAction.REMOVE_MODERATOR, subject=key)

    async def claim(self, comment_id: bytes, *, note: str = "") -> Operation:
        """Say that this author wrote the imported comment ``comment_id`` (SPEC §2, claims): it
        shows as theirs once the thread's owner accepts (`accept_claim`)."""
        state = self._comment_thread(comment_id)
        payload = ModeratePayload(action=ModAction.CLAIM, reason=wire_text(note))
        return await self._write_in(state, payload, target=comment_id)

    async def accept_claim(self, claim_id: bytes, *, note: str = "") -> Operation:
        """Countersign the claim ``claim_id`` (the thread's owner only): its comment then shows
        as its claimant's."""
        thread_id = self.replica.thread_of(claim_id)
        state = None if thread_id is None else self.replica.threads.get(thread_id)
        claim = None if state is None else state.ops.get(claim_id)
        if state is None or claim is None:
            raise NotFound(f"no claim {display_id(TextKind.OPERATION, claim_id)} here")
        payload = claim.payload
        if not isinstance(payload, ModeratePayload) or payload.action is not ModAction.CLAIM:
            raise NotFound(
                f"{display_id(TextKind.OPERATION, claim_id)} is not a claim", reason="not-a-claim"
            )
        accept = ModeratePayload(
            action=ModAction.ACCEPT_CLAIM, subject=claim.author, reason=wire_text(note)
        )
        return await self._write_in(state, accept, target=claim_id)

    async def set_profile(self, name: str) -> Operation:
        """Set this author's display name (the latest profile wins everywhere)."""
        self._check_writable()
        op = authoring.profile_operation(
            self._signer(),
            name,
            current=self.replica.profiles.get(self.author),
            now_ms=self._clock(),
        )
        return await self._commit_local(op)

    async def _moderate_comment(
        self, comment_id: bytes, action: ModAction, reason: str
    ) -> Operation:
        state = self._comment_thread(comment_id)
        return await self._write_in(
            state, ModeratePayload(action=action, reason=wire_text(reason)), target=comment_id
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
        payload = ModeratePayload(action=action, subject=subject, reason=wire_text(reason))
        return await self._write_in(state, payload, target=thread_id)

    async def _write_in(self, state: ThreadState, payload: Payload, *, target: bytes) -> Operation:
        authoring.refuse(state, payload, target)  # rule 2
        self._check_writable()
        avoid = (
            unpaid_operations(state, self.replica.rules(state.id))
            if self._has_rules(state)
            else frozenset()
        )
        op = authoring.in_thread_operation(
            self._signer(), state, payload, target=target, now_ms=self._clock(), avoid=avoid
        )
        if self.replica.admission(op) is not None:  # the thread's rules want proof of work
            difficulty = self.replica.rules(state.id).required_difficulty(op)
            report = getattr(self, "mining_progress", None)
            op = await trio.to_thread.run_sync(
                functools.partial(
                    authoring.in_thread_operation,
                    self._signer(),
                    state,
                    payload,
                    target=target,
                    now_ms=self._clock(),
                    difficulty=difficulty,
                    progress=None if report is None else lambda n: report(n, difficulty),
                    avoid=avoid,
                )
            )
        return await self._commit_local(op)

    def _has_rules(self, state: ThreadState) -> bool:
        """Whether the thread or its site thread holds rule operations (SPEC §11)."""
        if state.has_rules:
            return True
        site_id = self.replica.site_thread_of(state.id)
        site = self.replica.threads.get(site_id) if site_id is not None else None
        return site is not None and site.has_rules

    async def _commit_local(self, op: Operation) -> Operation:
        self._check_writable()
        thread_id = op.thread_id
        if thread_id is None:
            return await self._commit_and_apply(op)
        # The thread stays in memory from before the write until the operation is applied to
        # it: loaded again from the store meanwhile, it would already hold it (a Duplicate).
        with self.replica.pinned(thread_id):
            self.replica.threads.get(thread_id)
            return await self._commit_and_apply(op)

    async def _commit_and_apply(self, op: Operation) -> Operation:
        await self.store.write(WriteBatch(insert=((op, OpState.APPLIED),)))
        # Valid when checked, and validity depends only on the causal past, which is immutable:
        # this applies (or is a Duplicate of an identical operation written concurrently).
        result = self.replica.apply(op)
        if not isinstance(result.outcome, Applied):
            return op
        self.replica.saved((op,))  # written above
        applied = [op]
        promote: list[Operation] = []
        discard: list[bytes] = []
        for released, outcome in result.released:
            if isinstance(outcome, Applied):
                applied.append(released)
                promote.append(released)
            else:
                discard.append(released.id)
        changed = listings.changed(self.replica, applied)
        if promote or discard:
            await self._write_or_fail(
                WriteBatch(promote=promote, discard=discard, listings=changed)
            )
        elif changed:  # behind the operation's own commit, not waited for (node.listings rule 3)
            with contextlib.suppress(StoreError):  # closed meanwhile: listed anew when next open
                self.store.enqueue(WriteBatch(listings=changed))
        self._changes.announce(applied, "local")
        return op
