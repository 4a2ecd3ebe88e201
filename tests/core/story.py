"""A scripted thread for rule tests: operations made by hand with explicit causality.

`Story` signs operations and applies each to its own `Replica` (the writer's view). By default a
new operation depends on every head the story has seen, so a script reads top to bottom as a
sequential history; ``after=[...]`` names exactly what an operation has seen, to make concurrent
ones. ``ts=`` forges a timestamp. Tests then replay `Story.ops` into fresh replicas in any order.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    CommentPayload,
    EditPayload,
    ModAction,
    ModeratePayload,
    Operation,
    Payload,
    ProfilePayload,
    ReactPayload,
    RetractPayload,
    ThreadPayload,
    make_operation,
)
from p2pcomments.core.replica import Outcome, Replica
from p2pcomments.core.thread_state import CommentView, ThreadView

from .strategies import KEYS

OWNER, ALICE, BOB, CAROL, MALLORY = KEYS


class Story:
    """One thread's operations, made in the order a test writes them."""

    def __init__(self, owner: SigningKey = OWNER, *, title: str = "A post", start: int = 1000):
        self.clock = start
        self.replica = Replica()
        self.ops: list[Operation] = []
        self.outcomes: dict[bytes, Outcome] = {}
        self.thread = self._record(
            make_operation(owner, ThreadPayload(title=title), timestamp_ms=self._tick(None))
        )

    # -- making operations ---------------------------------------------------------------------

    def _tick(self, ts: int | None) -> int:
        self.clock += 10
        return self.clock if ts is None else ts

    def _record(self, op: Operation) -> Operation:
        self.ops.append(op)
        self.outcomes[op.id] = self.replica.apply(op).outcome
        return op

    def make(
        self,
        key: SigningKey,
        payload: Payload,
        *,
        ref: Operation,
        after: Iterable[Operation] | None = None,
        ts: int | None = None,
        thread: Operation | None = None,
    ) -> Operation:
        if after is None:
            deps = self.replica.thread(self.thread.id).causal_deps()
        else:
            deps = tuple(op.id for op in after)
        op = make_operation(
            key,
            payload,
            timestamp_ms=self._tick(ts),
            thread=(thread or self.thread).id,
            refs=(ref.id,),
            deps=frozenset(deps),
        )
        return self._record(op)

    def comment(
        self,
        key: SigningKey,
        body: str = "hello",
        *,
        parent: Operation | None = None,
        after: Iterable[Operation] | None = None,
        ts: int | None = None,
    ) -> Operation:
        return self.make(
            key, CommentPayload(body=body), ref=parent or self.thread, after=after, ts=ts
        )

    def edit(self, key: SigningKey, target: Operation, body: str, **kw: object) -> Operation:
        return self.make(key, EditPayload(body=body), ref=target, **kw)  # type: ignore[arg-type]

    def retract(self, key: SigningKey, target: Operation, **kw: object) -> Operation:
        return self.make(key, RetractPayload(), ref=target, **kw)  # type: ignore[arg-type]

    def react(self, key: SigningKey, target: Operation, reaction: str, **kw: object) -> Operation:
        return self.make(key, ReactPayload(reaction=reaction), ref=target, **kw)  # type: ignore[arg-type]

    def moderate(
        self,
        key: SigningKey,
        action: ModAction,
        *,
        target: Operation | None = None,
        subject: SigningKey | None = None,
        **kw: object,
    ) -> Operation:
        payload = ModeratePayload(
            action=action, subject=bytes(subject.verify_key) if subject else None
        )
        return self.make(key, payload, ref=target or self.thread, **kw)  # type: ignore[arg-type]

    def hide(self, key: SigningKey, target: Operation, **kw: object) -> Operation:
        return self.moderate(key, ModAction.HIDE, target=target, **kw)

    def unhide(self, key: SigningKey, target: Operation, **kw: object) -> Operation:
        return self.moderate(key, ModAction.UNHIDE, target=target, **kw)

    def add_moderator(self, key: SigningKey, who: SigningKey, **kw: object) -> Operation:
        return self.moderate(key, ModAction.ADD_MODERATOR, subject=who, **kw)

    def remove_moderator(self, key: SigningKey, who: SigningKey, **kw: object) -> Operation:
        return self.moderate(key, ModAction.REMOVE_MODERATOR, subject=who, **kw)

    def close(self, key: SigningKey = OWNER, **kw: object) -> Operation:
        return self.moderate(key, ModAction.CLOSE, **kw)

    def reopen(self, key: SigningKey = OWNER, **kw: object) -> Operation:
        return self.moderate(key, ModAction.REOPEN, **kw)

    def profile(self, key: SigningKey, name: str, *, ts: int | None = None) -> Operation:
        op = make_operation(key, ProfilePayload(name=name), timestamp_ms=self._tick(ts))
        return self._record(op)

    # -- reading -------------------------------------------------------------------------------

    def reason(self, op: Operation) -> str | None:
        """The rejection reason the writer's replica gave ``op``, None if it was not rejected."""
        return getattr(self.outcomes[op.id], "reason", None)

    def view(self) -> ThreadView:
        return self.replica.view(self.thread.id)

    def replay(
        self, order: Sequence[Operation] | None = None, *, seed: int | None = None
    ) -> Replica:
        """A fresh replica that received ``order`` (default: every op, shuffled by ``seed`` if
        given, else in writing order)."""
        ops = list(self.ops if order is None else order)
        if seed is not None:
            random.Random(seed).shuffle(ops)
        replica = Replica()
        replica.merge(ops)
        return replica

    def replay_view(self, *, seed: int | None = None) -> ThreadView:
        return self.replay(seed=seed).view(self.thread.id)


def row(view: ThreadView, op: Operation) -> CommentView:
    """The row of comment ``op`` in ``view``."""
    for comment in view.comments:
        if comment.id == op.id:
            return comment
    raise AssertionError("comment not in the view")
