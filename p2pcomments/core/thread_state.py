"""One thread's replica: the set of its valid operations and, incrementally, the view made of it.

Rules (protocol/SPEC.md §5-§6 states them for other implementations):

1. An operation is applied here only when every operation it references (refs and deps) is already
   here; `core.replica.Replica` holds the others as pending. So the causal past of every applied
   operation is complete, and validity depends only on an operation and its causal past.
2. Validity: every parent belongs to this thread; a comment's parent is the thread or a comment;
   edit, retract, react and hide/unhide target a comment; edit and retract only by the comment's
   author; adding or removing moderators only by the owner (the thread's author), who can't be
   removed; hide/unhide/close/reopen by the owner, or by a moderator *in the operation's causal
   past*: an ADD_MODERATOR for that key that no REMOVE_MODERATOR in that past has seen (add wins
   over a concurrent remove).
3. Order: siblings sort by (height, timestamp, id), where height = 1 + the greatest height of the
   parents (the thread has height 0). An operation always sorts after everything in its causal past.
4. Edits: the body shown is that of the edit with the greatest (timestamp, id), else the original.
   A retraction is final: the comment stays as a tombstone (replies stay attached), with no body.
5. Reactions: one per (author, comment), the greatest (timestamp, id) wins; the empty reaction
   withdraws. Hide/unhide: the greatest (timestamp, id) among valid ones wins. So does a retitle
   (by the owner or a moderator), whose text is then the thread's title.
6. Closing is causal, not by clock: an effective close C *suppresses* every comment, edit and
   reaction outside C's causal past, unless a reopen R that has C in its past also has that
   operation in its past or in its future. Suppressed operations are kept and marked, never shown
   by default, and take no part in rules 4-5. The thread is closed while some close has no reopen
   that saw it.
7. A reply is marked ``parent_edited_after`` when the edit that gives its parent's current body is
   not in the reply's causal past: nobody can silently change what a reply answered. Such a reply
   names the version it answered (``answered``): of the parent's edits in its causal past, the
   one with the greatest (timestamp, id), else the original. Suppressed edits are never that one.
8. The thread's activity is derived here too, and only here: ``comment_count`` counts comments
   (those after a close included) less the retracted ones; ``last_activity_ms`` is the greatest
   author timestamp of any of its operations, the thread's own included.
9. Claims (SPEC §2, §6 rule 12): anyone may claim an imported comment (one with provenance);
   the thread's owner accepts a claim by an accept_claim that targets it and names its author.
   A comment's ``claimed_by`` is the key named by the accept with the greatest (timestamp, id)
   among those of claims on it, so any arrival order gives the same view.
10. `listing` is what a list of threads shows of one (title, activity, closed...), a function of
   the operations like the rest, small enough to keep for every thread of a large store without
   its operations; ``operations`` says how many operations it was made from.
11. A view is a function of the operations (every change to a state is an operation applied)
   and of the names shown: a big thread's (more than `_KEPT_ABOVE` comments) is kept and given
   again while neither has changed, the names judged by the version the caller gives
   (`Replica.names_version`). Making the view of 10,000 comments takes ~180 ms, and a popular
   post is shown again and again between two changes. `kept` does the same for what else is a
   function of the operations and something the caller names (the rules' verdicts).
12. A state may be read in another thread while its own only reads it or applies to it: what
   that thread made of it (a view, say: rule 11) is kept only if nothing was applied meanwhile
   (`keep`, asked on the state's own thread once it is made), since a state changes only by an
   operation applied and its operations only grow. (Made under an apply, it may be anything, an
   exception included: the caller drops it.)
"""

from __future__ import annotations

import hashlib
from bisect import insort
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

import msgpack

from p2pcomments.core.ops import (
    RULE_ACTIONS,
    THREAD_LEVEL_ACTIONS,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    Provenance,
    ThreadPayload,
)
from p2pcomments.errors import AuthorizationError, InvalidOperation

__all__ = [
    "KEPT_VIEW",
    "CommentView",
    "EditView",
    "ReactionView",
    "ThreadListing",
    "ThreadState",
    "ThreadView",
]

_SUPPRESSIBLE: Final = frozenset({Kind.COMMENT, Kind.EDIT, Kind.REACT})
_EMPTY: Final[frozenset[bytes]] = frozenset()

OrderKey = tuple[int, int, bytes]  # (height, timestamp_ms, id)
_Controls = tuple[bytes, ...]  # ids of control operations, sorted: a set, held as a tuple (below)
_NO_CONTROLS: Final[_Controls] = ()
_HEIGHT_BITS: Final = 48  # height and edit mask share one int: mask << _HEIGHT_BITS | height
_HEIGHT_MASK: Final = (1 << _HEIGHT_BITS) - 1
T = TypeVar("T")
_KEPT_ABOVE: Final = 500  # comments: a bigger thread keeps its view (rule 11)
KEPT_VIEW: Final = "view"  # the name a big thread keeps its view under (`kept`, rule 11)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadListing:
    """One thread as a list of threads shows it (rule 10). ``timestamp_ms`` is the thread
    operation's; ``operations`` counts the operations it was made from (the thread's own too)."""

    id: bytes
    title: str
    url: str | None
    site: str | None
    owner: bytes
    comment_count: int
    last_activity_ms: int
    closed: bool
    has_rules: bool  # holds rule operations (SPEC §11): a moderator may have work here
    timestamp_ms: int
    operations: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EditView:
    id: bytes
    timestamp_ms: int
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionView:
    reaction: str
    authors: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CommentView:
    """One comment as the thread shows it. ``body`` is None once retracted.

    Its history is ``original_body`` (at ``timestamp_ms``) then ``edits`` (by timestamp); both
    are empty once retracted. ``answered`` is the parent's version a reply flagged
    ``parent_edited_after`` answered (rule 7; the parent's own id for its original), else None.
    Neither is in the digest: both follow from what is (the operations). Nor is
    ``provenance``, the imported comment's origin (SPEC §2), which its id already names.
    """

    id: bytes
    author: bytes
    author_name: str | None
    parent: bytes
    depth: int
    timestamp_ms: int
    body: str | None
    edits: tuple[EditView, ...]
    retracted: bool
    hidden: bool
    hidden_by: bytes | None
    reactions: tuple[ReactionView, ...]
    parent_edited_after: bool
    after_close: bool
    reply_count: int
    original_body: str | None = None
    answered: EditView | None = None
    provenance: Provenance | None = None
    claimed_by: bytes | None = None  # the key of an accepted claim's author (rule 9)
    claimed_by_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadView:
    """The visible thread: a pure function of the operation set (and the known profiles).

    ``comments`` is the whole tree in display order (depth-first, siblings by rule 3) with a
    ``depth`` per comment: flat, so that arbitrarily deep reply chains need no recursion.
    """

    id: bytes
    owner: bytes
    owner_name: str | None
    title: str
    url: str | None
    site: str | None
    timestamp_ms: int
    closed: bool
    moderators: tuple[bytes, ...]
    comments: tuple[CommentView, ...]
    operation_count: int

    def digest(self) -> bytes:
        """SHA-256 of the canonical encoding of this view (protocol/SPEC.md §6.4)."""
        rows = [
            (
                c.id,
                c.author,
                c.author_name,
                c.parent,
                c.depth,
                c.timestamp_ms,
                c.body,
                tuple(e.id for e in c.edits),
                c.retracted,
                c.hidden,
                c.hidden_by,
                tuple((r.reaction, r.authors) for r in c.reactions),
                c.parent_edited_after,
                c.after_close,
            )
            + (() if c.claimed_by is None else (c.claimed_by, c.claimed_by_name))
            for c in self.comments
        ]
        header = (
            self.id,
            self.owner,
            self.owner_name,
            self.title,
            self.url,
            self.site,
            self.closed,
            self.moderators,
        )
        return hashlib.sha256(msgpack.packb((header, rows), use_bin_type=True)).digest()


class _Comment:
    """Mutable bookkeeping for one comment; what views are made from."""

    __slots__ = (
        "body",
        "children",
        "edits",
        "hide_winner",
        "key",
        "op",
        "parent_edited_after",
        "reactions",
        "retracted",
        "winning_edit",
    )

    def __init__(self, op: Operation, key: OrderKey) -> None:
        self.op = op
        self.key = key
        # Most comments never get a reply, edit or reaction: until one does, these hold the shared
        # empty tuple, not three lists per comment that the cyclic GC would walk again and again
        # (they were half the objects the GC tracked for a large thread).
        self.children: list[OrderKey] | tuple[()] = ()
        self.edits: list[Operation] | tuple[()] = ()
        self.reactions: list[Operation] | tuple[()] = ()
        self.winning_edit: Operation | None = None
        self.body: str = op.payload.body  # type: ignore[union-attr]
        self.retracted = False
        self.hide_winner: Operation | None = None
        self.parent_edited_after = False


def _insert_sorted(keys: list[OrderKey], key: OrderKey) -> None:
    # A new comment is nearly always the highest of its siblings (its height is greater than
    # theirs): one comparison with the last, where bisecting compares keys all over memory.
    if not keys or keys[-1] < key:
        keys.append(key)
    else:
        insort(keys, key)


def _union(controls: _Controls, others: _Controls) -> _Controls:
    """The union of two sets of control ids, sharing either one when it holds the other."""
    if not others or others is controls:
        return controls
    if not controls:
        return others
    merged = set(controls).union(others)
    if len(merged) == len(controls):
        return controls
    if len(merged) == len(others):
        return others
    return tuple(sorted(merged))


def _lww_key(op: Operation) -> tuple[int, bytes]:
    return (op.timestamp_ms, op.id)


class ThreadState:
    """The operations of one thread and its incrementally maintained view."""

    # Slots, not an instance dict: applying an operation reads a dozen of these, and each read
    # through a dict is another cache line to fetch (applying is bound by memory, not arithmetic).
    __slots__ = (
        "_causal",
        "_claims",
        "_closed",
        "_closes",
        "_comments",
        "_controls",
        "_controls_of",
        "_edit_bit",
        "_heads",
        "_kept",
        "_last_activity_ms",
        "_live_comments",
        "_moderators",
        "_reactions",
        "_reopens_by_close",
        "_rules",
        "_suppressed",
        "_suppressing",
        "_title_winner",
        "_top",
        "id",
        "ops",
        "owner",
        "payload",
        "thread_op",
    )

    def __init__(self, thread_op: Operation) -> None:
        if thread_op.kind is not Kind.THREAD:
            raise InvalidOperation("a thread state starts from a thread operation")
        payload = thread_op.payload
        assert isinstance(payload, ThreadPayload)
        self.thread_op = thread_op
        self.id = thread_op.id
        self.owner = thread_op.author
        self.payload = payload
        self.ops: dict[bytes, Operation] = {thread_op.id: thread_op}
        # What each operation's causal past holds, read for every parent of a new operation:
        # - `_causal`: its height (rule 3) and a bit mask of the edits in its past (rule 7; each
        #   edit's bit is in `_edit_bit`), packed in one int. One lookup per parent, not two; and
        #   a dict of ints is one the cyclic GC never tracks, nor walks (applying is bound by
        #   memory, and by GC, more than by arithmetic: scripts/bench_core.py).
        # - `_controls_of`: the ids of control operations (moderator changes, close, reopen) in
        #   its past, itself included, for the few operations that have any. Sorted tuples, not
        #   frozensets: they hold no cycle, so the GC can stop tracking them.
        self._causal: dict[bytes, int] = {thread_op.id: 0}
        self._controls_of: dict[bytes, _Controls] = {}
        self._controls: list[Operation] = []
        self._edit_bit: dict[bytes, int] = {}
        # Rule 6 bookkeeping: closes in arrival order, the reopens that saw each, what each close
        # suppresses now, and the union of those.
        self._closes: list[bytes] = []
        self._reopens_by_close: dict[bytes, list[bytes]] = {}
        self._suppressing: dict[bytes, set[bytes]] = {}
        self._suppressed: set[bytes] = set()
        self._comments: dict[bytes, _Comment] = {}
        self._top: list[OrderKey] = []
        self._reactions: dict[bytes, dict[bytes, Operation]] = {}  # comment → author → react
        self._heads: set[bytes] = {thread_op.id}
        self._moderators: frozenset[bytes] = _EMPTY
        self._closed = False
        self._title_winner: Operation | None = None  # the retitle that gives the title shown
        self._rules: list[Operation] = []  # rule operations (SPEC §11, `core.rules`)
        self._claims: dict[bytes, Operation] = {}  # comment → the winning accept_claim (rule 9)
        self._live_comments = 0  # rule 8: comments less retracted ones
        self._last_activity_ms = thread_op.timestamp_ms
        # what `kept` keeps: name -> (operations, the caller's version, the value) (rule 11)
        self._kept: dict[str, tuple[int, object, object]] | None = None

    # -- reading -------------------------------------------------------------------------------

    def __contains__(self, op_id: bytes) -> bool:
        return op_id in self.ops

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def heads(self) -> frozenset[bytes]:
        """Operations no other operation here references: what a new operation should depend on."""
        return frozenset(self._heads)

    def causal_deps(self, limit: int = 16) -> tuple[bytes, ...]:
        """Up to ``limit`` heads for a new operation's deps, preferring control operations (so
        a reply made after a close or reopen always has it in its past) then the highest ones."""
        if len(self._heads) <= limit:
            return tuple(sorted(self._heads))

        def preference(head: bytes) -> tuple[bool, int, bytes]:
            is_control = head in self._controls_of.get(head, _NO_CONTROLS)
            return (is_control, self._causal[head] & _HEIGHT_MASK, head)

        return tuple(sorted(sorted(self._heads, key=preference, reverse=True)[:limit]))

    def comment(self, comment_id: bytes) -> Operation | None:
        entry = self._comments.get(comment_id)
        return entry.op if entry else None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def title(self) -> str:
        """The title shown: the winning retitle's (the greatest (timestamp, id) among the valid
        ones), else the thread operation's own."""
        winner = self._title_winner
        return self.payload.title if winner is None else winner.payload.reason  # type: ignore[union-attr]

    @property
    def moderators(self) -> frozenset[bytes]:
        return self._moderators

    def is_suppressed(self, op_id: bytes) -> bool:
        return op_id in self._suppressed

    def is_retracted(self, comment_id: bytes) -> bool:
        """Whether the comment is here and its author has retracted it (rule 4)."""
        entry = self._comments.get(comment_id)
        return entry is not None and entry.retracted

    @property
    def comment_count(self) -> int:
        """Comments less retracted ones (rule 8)."""
        return self._live_comments

    @property
    def last_activity_ms(self) -> int:
        """The greatest author timestamp among the thread's operations (rule 8)."""
        return self._last_activity_ms

    def listing(self) -> ThreadListing:
        """The thread as a list of threads shows it (rule 10)."""
        payload = self.payload
        return ThreadListing(
            id=self.id,
            title=self.title,
            url=payload.url,
            site=payload.site,
            owner=self.owner,
            comment_count=self._live_comments,
            last_activity_ms=self._last_activity_ms,
            closed=self._closed,
            has_rules=bool(self._rules),
            timestamp_ms=self.thread_op.timestamp_ms,
            operations=len(self.ops),
        )

    def holds_all(self, op_ids: Iterable[bytes]) -> bool:
        """Whether every one of ``op_ids`` is applied here."""
        causal = self._causal
        for op_id in op_ids:  # noqa: SIM110 - all(...) would allocate a generator per operation
            if op_id not in causal:
                return False
        return True

    # -- validating and applying ---------------------------------------------------------------

    def check(self, op: Operation) -> None:
        """Raise `InvalidOperation` unless ``op`` is valid here. Every parent must be present."""
        causal = self._causal  # what `apply` reads next: asking it here warms it for that
        for parent in op.parents:
            if parent not in causal:
                raise InvalidOperation(
                    "references an operation of another thread", reason="wrong-thread"
                )
        kind = op.kind
        target = self.ops[op.target]
        if kind is Kind.COMMENT:
            if target.kind is not Kind.COMMENT and target.kind is not Kind.THREAD:
                raise InvalidOperation(
                    "a comment replies to the thread or a comment", reason="bad-reference"
                )
            return
        if kind is not Kind.MODERATE:
            if target.kind is not Kind.COMMENT:
                raise InvalidOperation(
                    f"a {kind.name.lower()} targets a comment", reason="bad-reference"
                )
            if kind is not Kind.REACT and target.author != op.author:
                raise AuthorizationError(
                    f"only a comment's author may {kind.name.lower()} it", reason="not-author"
                )
            return
        payload = op.payload
        assert isinstance(payload, ModeratePayload)
        action = payload.action
        if action is ModAction.ADD_MODERATOR or action is ModAction.REMOVE_MODERATOR:
            if op.author != self.owner:
                raise AuthorizationError(
                    "only the thread's owner appoints moderators", reason="not-owner"
                )
            if action is ModAction.REMOVE_MODERATOR and payload.subject == self.owner:
                raise InvalidOperation("the owner can't be removed", reason="bad-field")
            return
        if action in (ModAction.HIDE, ModAction.UNHIDE) and target.kind is not Kind.COMMENT:
            raise InvalidOperation("hide and unhide target a comment", reason="bad-reference")
        if action is ModAction.REPORT:  # a reader's flag (SPEC §11.5): anyone's
            return
        if action is ModAction.CLAIM or action is ModAction.ACCEPT_CLAIM:
            self._check_claim(op, payload, target)
            return
        if op.author != self.owner and not self._moderator_in(op.author, self._past_controls(op)):
            raise AuthorizationError(
                "only the owner or a moderator may moderate", reason="not-moderator"
            )

    def apply(self, op: Operation) -> None:
        """Add a valid operation (call `check` first) and update the view incrementally."""
        op_id = op.id
        parents = op.parents
        self.ops[op_id] = op
        causal = self._causal
        height = 0
        mask = 0
        for parent in parents:
            packed = causal[parent]
            if packed & _HEIGHT_MASK >= height:
                height = (packed & _HEIGHT_MASK) + 1
            mask |= packed >> _HEIGHT_BITS
        control = self._past_controls(op) if self._controls_of else _NO_CONTROLS
        kind = op.kind
        action = op.payload.action if kind is Kind.MODERATE else None  # type: ignore[union-attr]
        if action in THREAD_LEVEL_ACTIONS:  # moderator changes, close, reopen
            control = _union(control, (op_id,))
        if kind is Kind.EDIT:
            mask |= 1 << len(self._edit_bit)
            self._edit_bit[op_id] = len(self._edit_bit)
        causal[op_id] = mask << _HEIGHT_BITS | height
        if control:
            self._controls_of[op_id] = control
        heads = self._heads
        heads.difference_update(parents)
        heads.add(op_id)
        if op.timestamp_ms > self._last_activity_ms:
            self._last_activity_ms = op.timestamp_ms

        if self._closes and kind in _SUPPRESSIBLE and self._suppress_on_arrival(op_id, control):
            self._suppressed.add(op_id)
        if kind is Kind.COMMENT:
            self._add_comment(op, height)
        elif kind is Kind.EDIT:
            entry = self._comments[op.target]
            if isinstance(entry.edits, list):
                entry.edits.append(op)
            else:
                entry.edits = [op]
            if op_id not in self._suppressed:
                current = entry.winning_edit
                if current is None or _lww_key(op) > _lww_key(current):
                    entry.winning_edit = op
                    entry.body = op.payload.body  # type: ignore[union-attr]
                    # Every reply here was applied before this edit, so none has it in its past.
                    for child_key in entry.children:
                        self._comments[child_key[2]].parent_edited_after = True
        elif kind is Kind.RETRACT:
            entry = self._comments[op.target]
            if not entry.retracted:
                entry.retracted = True
                self._live_comments -= 1
        elif kind is Kind.REACT:
            entry = self._comments[op.target]
            if isinstance(entry.reactions, list):
                entry.reactions.append(op)
            else:
                entry.reactions = [op]
            if op_id not in self._suppressed:
                self._offer_reaction(op)
        elif action is ModAction.HIDE or action is ModAction.UNHIDE:
            entry = self._comments[op.target]
            winner = entry.hide_winner
            if winner is None or _lww_key(op) > _lww_key(winner):
                entry.hide_winner = op
        elif action is ModAction.CLOSE:
            self._apply_close(op_id)
        elif action is ModAction.RETITLE:
            winner = self._title_winner
            if winner is None or _lww_key(op) > _lww_key(winner):
                self._title_winner = op
        elif action is ModAction.REOPEN:
            self._apply_reopen(op_id, control)
        elif action in RULE_ACTIONS:  # view rules: `core.rules` reads them
            self._rules.append(op)
        elif action is ModAction.ACCEPT_CLAIM:  # rule 9; a claim alone changes nothing shown
            comment_id = self.ops[op.target].target
            winner = self._claims.get(comment_id)
            if winner is None or _lww_key(op) > _lww_key(winner):
                self._claims[comment_id] = op
        elif action is ModAction.CLAIM:
            pass
        else:  # add or remove a moderator
            self._controls.append(op)
            self._moderators = self._current_moderators()

    def _check_claim(self, op: Operation, payload: ModeratePayload, target: Operation) -> None:
        """Rule 9: a claim is anyone's, on an imported comment; its acceptance the owner's."""
        if payload.action is ModAction.CLAIM:
            if target.kind is not Kind.COMMENT or target.payload.provenance is None:  # type: ignore[union-attr]
                raise InvalidOperation(
                    "a claim targets an imported comment (one with provenance)",
                    reason="bad-reference",
                )
            return
        claim = target.payload
        if not isinstance(claim, ModeratePayload) or claim.action is not ModAction.CLAIM:
            raise InvalidOperation("accept_claim targets a claim", reason="bad-reference")
        if op.author != self.owner:
            raise AuthorizationError("only the thread's owner accepts a claim", reason="not-owner")
        if payload.subject != target.author:
            raise InvalidOperation(
                "accept_claim names the key of the claim's author", reason="bad-field"
            )

    def _add_comment(self, op: Operation, height: int) -> None:
        key = (height, op.timestamp_ms, op.id)
        entry = _Comment(op, key)
        self._comments[op.id] = entry
        self._live_comments += 1
        parent = self._comments.get(op.target)
        if parent is None:
            _insert_sorted(self._top, key)
            return
        if isinstance(parent.children, list):
            _insert_sorted(parent.children, key)
        else:
            parent.children = [key]
        if parent.winning_edit is not None:
            entry.parent_edited_after = not self._edit_in_past(parent.winning_edit.id, op.id)

    def _offer_reaction(self, op: Operation) -> None:
        by_author = self._reactions.setdefault(op.target, {})
        current = by_author.get(op.author)
        if current is None or _lww_key(op) > _lww_key(current):
            by_author[op.author] = op

    # -- causality -----------------------------------------------------------------------------

    def _past_controls(self, op: Operation) -> _Controls:
        controls_of = self._controls_of
        result = _NO_CONTROLS
        for parent in op.parents:
            other = controls_of.get(parent)
            if other is not None and other is not result:
                result = _union(result, other)
        return result

    def _past(self, op_id: bytes) -> frozenset[bytes]:
        """Every operation in the causal past of ``op_id`` (not itself)."""
        seen: set[bytes] = set()
        stack = list(self.ops[op_id].parents)
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.ops[current].parents)
        return frozenset(seen)

    def _edit_in_past(self, edit_id: bytes, op_id: bytes) -> bool:
        """Whether the edit ``edit_id`` is in the causal past of ``op_id``. Every operation keeps
        a bit mask of the edits in its past (the OR of its parents'), so this is one bit test."""
        return bool(self._causal[op_id] >> _HEIGHT_BITS >> self._edit_bit[edit_id] & 1)

    def _moderator_in(self, key: bytes, controls: Collection[bytes]) -> bool:
        """Rule 2 over a set of control operations: an add for ``key`` that no remove saw."""
        adds = []
        removes = []
        for control_id in controls:
            payload = self.ops[control_id].payload
            assert isinstance(payload, ModeratePayload)
            if payload.subject != key:
                continue
            if payload.action is ModAction.ADD_MODERATOR:
                adds.append(control_id)
            elif payload.action is ModAction.REMOVE_MODERATOR:
                removes.append(control_id)
        controls_of = self._controls_of
        return any(not any(add in controls_of[remove] for remove in removes) for add in adds)

    def _current_moderators(self) -> frozenset[bytes]:
        everything = frozenset(c.id for c in self._controls)
        subjects = {
            c.payload.subject  # type: ignore[union-attr]
            for c in self._controls
            if c.payload.action is ModAction.ADD_MODERATOR  # type: ignore[union-attr]
        }
        return frozenset(
            key for key in subjects if key is not None and self._moderator_in(key, everything)
        )

    # -- closing (rule 6) ----------------------------------------------------------------------
    # Each close keeps the set of operations it suppresses. A close or reopen is applied only once
    # its whole past is here, so anything that arrives later is outside that past: a newcomer is
    # suppressed by every close unless it has seen a reopen of that close.

    def _suppress_on_arrival(self, op_id: bytes, control: _Controls) -> bool:
        suppressed = False
        for close_id, reopens in self._reopens_by_close.items():
            if not any(reopen in control for reopen in reopens):
                self._suppressing[close_id].add(op_id)
                suppressed = True
        return suppressed

    def _apply_close(self, close_id: bytes) -> None:
        self._controls.append(self.ops[close_id])
        self._closes.append(close_id)
        past = self._past(close_id)
        newly = {
            op_id
            for op_id, op in self.ops.items()
            if op.kind in _SUPPRESSIBLE and op_id not in past
        }
        self._suppressing[close_id] = newly
        self._reopens_by_close[close_id] = []
        self._closed = True
        changed = newly - self._suppressed
        self._suppressed |= newly
        self._refresh(changed)

    def _apply_reopen(self, reopen_id: bytes, control: _Controls) -> None:
        self._controls.append(self.ops[reopen_id])
        past = self._past(reopen_id)
        for close_id in self._closes:
            if close_id in control:
                self._reopens_by_close[close_id].append(reopen_id)
                self._suppressing[close_id] -= past
        still = set().union(*self._suppressing.values())
        changed = self._suppressed - still
        self._suppressed = still
        self._closed = any(not reopens for reopens in self._reopens_by_close.values())
        self._refresh(changed)

    def _refresh(self, changed_ops: set[bytes]) -> None:
        """Recompute what rules 4, 5 and 7 derive for the comments that ``changed_ops`` touch,
        after their suppression changed."""
        touched: set[bytes] = set()
        for op_id in changed_ops:
            op = self.ops[op_id]
            touched.add(op_id if op.kind is Kind.COMMENT else op.target)
        for comment_id in touched:
            entry = self._comments[comment_id]
            visible_edits = [e for e in entry.edits if e.id not in self._suppressed]
            winner = max(visible_edits, key=_lww_key, default=None)
            if winner is not entry.winning_edit:
                entry.winning_edit = winner
                source = winner or entry.op
                entry.body = source.payload.body  # type: ignore[union-attr]
                for child_key in entry.children:
                    child = self._comments[child_key[2]]
                    child.parent_edited_after = winner is not None and not self._edit_in_past(
                        winner.id, child.op.id
                    )
            self._reactions.pop(comment_id, None)
            for reaction in entry.reactions:
                if reaction.id not in self._suppressed:
                    self._offer_reaction(reaction)

    # -- the view ------------------------------------------------------------------------------

    def view(
        self, names: Mapping[bytes, str] | None = None, *, names_version: int | None = None
    ) -> ThreadView:
        """The thread as shown, with display names from ``names`` (author key → name). With
        ``names_version`` (it changes whenever ``names`` does), a big thread's view is kept and
        given again while neither changes (rule 11)."""
        if names_version is None:
            return self._view(names or {})
        return self.kept(KEPT_VIEW, names_version, lambda: self._view(names or {}))

    @property
    def keeps_views(self) -> bool:
        """Whether it is big enough to keep its view and what `kept` makes (rule 11)."""
        return len(self._comments) > _KEPT_ABOVE

    def kept(self, name: str, version: object, make: Callable[[], T]) -> T:
        """``make()``, kept under ``name`` by a big thread (rule 11) and given again while its
        operations and ``version`` (compared with ``==``) stay the same. ``make`` must be a
        function of the operations and of what ``version`` stands for alone."""
        if not self.keeps_views:
            return make()
        if self.is_kept(name, version):
            return self._kept[name][2]  # type: ignore[index, return-value]
        value = make()
        self.keep(name, version, value, made_at=len(self.ops))
        return value

    def is_kept(self, name: str, version: object) -> bool:
        """Whether `kept` would give ``name`` at ``version`` as kept, without making it."""
        kept = self._kept.get(name) if self._kept is not None else None
        return kept is not None and kept[0] == len(self.ops) and kept[1] == version

    def keep(self, name: str, version: object, value: object, *, made_at: int) -> bool:
        """Keep ``value`` as `kept` would have made it, made (elsewhere: rule 12) of this state
        as it was when it held ``made_at`` operations (`len`); False, and nothing kept, if
        operations were applied since or it is not big enough to keep anything."""
        if made_at != len(self.ops) or not self.keeps_views:
            return False
        if self._kept is None:
            self._kept = {}
        self._kept[name] = (made_at, version, value)
        return True

    def _view(self, names: Mapping[bytes, str]) -> ThreadView:
        reactions: dict[bytes, dict[str, list[bytes]]] = {}
        for target, by_author in self._reactions.items():
            for author, op in by_author.items():
                reaction = op.payload.reaction  # type: ignore[union-attr]
                if reaction:
                    reactions.setdefault(target, {}).setdefault(reaction, []).append(author)
        rows: list[CommentView] = []
        stack: list[tuple[OrderKey, int]] = [(key, 0) for key in reversed(self._top)]
        while stack:
            key, depth = stack.pop()
            entry = self._comments[key[2]]
            rows.append(self._comment_view(entry, depth, names, reactions.get(key[2], {})))
            stack.extend((child, depth + 1) for child in reversed(entry.children))
        return ThreadView(
            id=self.id,
            owner=self.owner,
            owner_name=names.get(self.owner),
            title=self.title,
            url=self.payload.url,
            site=self.payload.site,
            timestamp_ms=self.thread_op.timestamp_ms,
            closed=self._closed,
            moderators=tuple(sorted(self._moderators)),
            comments=tuple(rows),
            operation_count=len(self.ops),
        )

    def _comment_view(
        self,
        entry: _Comment,
        depth: int,
        names: Mapping[bytes, str],
        reactions: dict[str, list[bytes]],
    ) -> CommentView:
        op = entry.op
        hider = entry.hide_winner
        hidden = hider is not None and hider.payload.action is ModAction.HIDE  # type: ignore[union-attr]
        accept = self._claims.get(op.id)
        claimant = None if accept is None else accept.payload.subject  # type: ignore[union-attr]
        edits: tuple[EditView, ...] = ()
        if not entry.retracted:
            edits = tuple(
                EditView(id=e.id, timestamp_ms=e.timestamp_ms, body=e.payload.body)  # type: ignore[union-attr]
                for e in sorted(entry.edits, key=_lww_key)
                if e.id not in self._suppressed
            )
        return CommentView(
            id=op.id,
            author=op.author,
            author_name=names.get(op.author),
            parent=op.target,
            depth=depth,
            timestamp_ms=op.timestamp_ms,
            body=None if entry.retracted else entry.body,
            edits=edits,
            retracted=entry.retracted,
            hidden=hidden,
            hidden_by=hider.author if hidden and hider is not None else None,
            reactions=tuple(
                ReactionView(reaction=r, authors=tuple(sorted(a)))
                for r, a in sorted(reactions.items())
            ),
            parent_edited_after=entry.parent_edited_after,
            after_close=op.id in self._suppressed,
            reply_count=len(entry.children),
            original_body=None if entry.retracted else op.payload.body,  # type: ignore[union-attr]
            answered=self._answered(entry) if entry.parent_edited_after else None,
            provenance=op.payload.provenance,  # type: ignore[union-attr]
            claimed_by=claimant,
            claimed_by_name=None if claimant is None else names.get(claimant),
        )

    def _answered(self, entry: _Comment) -> EditView | None:
        """The version of its parent that a reply had in its causal past (rule 7)."""
        parent = self._comments.get(entry.op.target)
        if parent is None or parent.retracted:
            return None
        reply_id = entry.op.id
        seen = max(
            (
                edit
                for edit in parent.edits
                if edit.id not in self._suppressed and self._edit_in_past(edit.id, reply_id)
            ),
            key=_lww_key,
            default=parent.op,
        )
        return EditView(id=seen.id, timestamp_ms=seen.timestamp_ms, body=seen.payload.body)  # type: ignore[union-attr]

    @property
    def has_rules(self) -> bool:
        """Whether any rule operation (SPEC §11) is held: the common case is none."""
        return bool(self._rules)

    @property
    def rule_count(self) -> int:
        """How many rule operations are held (they are only ever added)."""
        return len(self._rules)

    @property
    def rule_operations(self) -> tuple[Operation, ...]:
        """The valid rule operations (SPEC §11) of this thread, in arrival order."""
        return tuple(self._rules)

    def causal_past(self, op_id: bytes) -> frozenset[bytes]:
        """Every operation in the causal past of the held operation ``op_id`` (not itself)."""
        return self._past(op_id)

    def operations(self) -> list[Operation]:
        """Every operation here in a causal order (each after all of its parents)."""
        return sorted(self.ops.values(), key=lambda op: (self._causal[op.id] & _HEIGHT_MASK, op.id))
