"""An author's inbox: what others did to, under or near that author's comments and threads.

A pure function of the operations a node holds (its threads' states) and of one author key;
nothing here is on the wire, and whether an entry was read is the node's own business
(``p2pcomments.store.inbox_marks``). Rules (protocol/SPEC.md §8.7 states the delivery side):

1. For author A, an operation X in a thread is an inbox entry iff X is not A's own, is applied and
   shown by default (not suppressed by a close: `ThreadState.is_suppressed`), and X is one of:
   - ``reply``: a comment whose parent is a comment of A;
   - ``comment``: a top-level comment in a thread A owns;
   - ``reaction``: a non-empty reaction to a comment of A (a withdrawal is no news);
   - ``edit``: an edit of a comment A replied to, or of a reply to a comment of A ("edits near");
   - ``moderation``: a hide or unhide of a comment of A, or any moderation in a thread A owns.
   A comment (``reply``, ``comment``) that its author retracted is no entry any more, nor is an
   edit of a retracted comment: the inbox shows what readers can see.
2. One entry per operation; entries are ordered newest first by (timestamp_ms, id) of the
   operation, so every node holding the same operations lists the same inbox in the same order
   (tests/core/test_inbox.py checks it over random histories in any order of arrival).
3. An entry's texts are those the thread shows now: a reply's current body (after its edits), the
   body of A's comment it concerns; names are the winning profiles'.
4. Delivery (SPEC §8.2): `inbox_recipients` names every author in whose inbox an operation may
   land (a superset of rule 1's, from the operation and what it references alone), and
   `inbox_topic` the gossip topic an author's node joins to hear of it promptly: one of 256
   buckets, by the first byte of SHA-256(``"p2pcomments/inbox/v1"`` || key), so the topic a
   node joins tells an observer 8 bits of its author's key and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from p2pcomments.core.ops import (
    EditPayload,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    ReactPayload,
)
from p2pcomments.core.thread_state import CommentView, ThreadState

__all__ = [
    "INBOX_TOPIC_DOMAIN",
    "INBOX_TOPIC_PREFIX",
    "InboxEntry",
    "InboxKind",
    "author_inbox",
    "inbox_recipients",
    "inbox_topic",
    "thread_inbox",
]

INBOX_TOPIC_PREFIX: Final = "p2pc/1/inbox/"
INBOX_TOPIC_DOMAIN: Final = b"p2pcomments/inbox/v1"


class InboxKind(StrEnum):
    """What happened; the string is what the API and CLI show."""

    REPLY = "reply"
    COMMENT = "comment"
    REACTION = "reaction"
    EDIT = "edit"
    MODERATION = "moderation"


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxEntry:
    """One thing that happened near author A (rule 1).

    ``subject`` is what it concerns: A's comment replied to, reacted to or moderated, the comment
    edited, or the thread (for a top-level comment or a moderation of A's thread). ``text`` is the
    reply's or comment's current body, the reaction, the edit's body, or the moderation's reason
    (for a retitle, the new title); ``subject_body`` the current body of ``subject`` when it is a
    comment that is not retracted. ``action`` is the moderation's action, else None.
    """

    id: bytes
    kind: InboxKind
    thread: bytes
    thread_title: str
    subject: bytes
    subject_body: str | None
    actor: bytes
    actor_name: str | None
    timestamp_ms: int
    text: str | None
    action: ModAction | None = None


_NO_NAMES: Final[Mapping[bytes, str]] = {}


def thread_inbox(
    state: ThreadState, author: bytes, names: Mapping[bytes, str] | None = None
) -> list[InboxEntry]:
    """Author ``author``'s entries in one thread (rule 1), newest first (rule 2)."""
    owner = state.owner == author
    ops = state.ops
    mine = {op_id for op_id, op in ops.items() if op.kind is Kind.COMMENT and op.author == author}
    if not mine and not owner:
        return []  # the common case on a node that holds many threads: one pass, no view
    names = _NO_NAMES if names is None else names
    view = state.view(dict(names))
    comments: dict[bytes, CommentView] = {c.id: c for c in view.comments}
    replied_to = {comments[c].parent for c in mine if comments[c].parent in comments}
    replies_to_mine = {c.id for c in view.comments if c.parent in mine and c.author != author}
    near = replied_to | replies_to_mine
    entries: list[InboxEntry] = []

    def entry(
        op: Operation,
        kind: InboxKind,
        subject: bytes,
        text: str | None,
        action: ModAction | None = None,
    ) -> InboxEntry:
        target = comments.get(subject)
        return InboxEntry(
            id=op.id,
            kind=kind,
            thread=state.id,
            thread_title=view.title,
            subject=subject,
            subject_body=None if target is None else target.body,
            actor=op.author,
            actor_name=names.get(op.author),
            timestamp_ms=op.timestamp_ms,
            text=text,
            action=action,
        )

    for op_id, op in ops.items():
        if op.author == author or state.is_suppressed(op_id):
            continue
        kind = op.kind
        if kind is Kind.COMMENT:
            shown = comments[op_id]
            if shown.retracted:
                continue
            if shown.parent in mine:
                entries.append(entry(op, InboxKind.REPLY, shown.parent, shown.body))
            elif owner and shown.parent == state.id:
                entries.append(entry(op, InboxKind.COMMENT, state.id, shown.body))
        elif kind is Kind.REACT:
            payload = op.payload
            assert isinstance(payload, ReactPayload)
            if payload.reaction and op.target in mine:
                entries.append(entry(op, InboxKind.REACTION, op.target, payload.reaction))
        elif kind is Kind.EDIT:
            edited = comments[op.target]
            if op.target in near and not edited.retracted:
                payload_edit = op.payload
                assert isinstance(payload_edit, EditPayload)
                entries.append(entry(op, InboxKind.EDIT, op.target, payload_edit.body))
        elif kind is Kind.MODERATE:
            payload_moderate = op.payload
            assert isinstance(payload_moderate, ModeratePayload)
            if owner or op.target in mine:
                entries.append(
                    entry(
                        op,
                        InboxKind.MODERATION,
                        op.target,
                        payload_moderate.reason,
                        payload_moderate.action,
                    )
                )
    entries.sort(key=_order, reverse=True)
    return entries


def author_inbox(
    threads: Iterable[ThreadState], author: bytes, names: Mapping[bytes, str] | None = None
) -> list[InboxEntry]:
    """Author ``author``'s entries in every one of ``threads``, newest first (rule 2)."""
    entries = [e for state in threads for e in thread_inbox(state, author, names)]
    entries.sort(key=_order, reverse=True)
    return entries


def _order(entry: InboxEntry) -> tuple[int, bytes]:
    return (entry.timestamp_ms, entry.id)  # unique per entry: one operation, one entry


def inbox_topic(author: bytes) -> str:
    """The inbox gossip topic of ``author`` (rule 4): ``p2pc/1/inbox/<2 hex digits>``."""
    return f"{INBOX_TOPIC_PREFIX}{hashlib.sha256(INBOX_TOPIC_DOMAIN + author).digest()[0]:02x}"


def inbox_recipients(state: ThreadState, op: Operation) -> frozenset[bytes]:
    """The authors in whose inbox ``op`` (applied in ``state``) may be (rule 4), its own author
    excluded: a superset of rule 1, from ``op``'s references alone: the parent's author (the
    thread's owner for a top-level comment) of a comment; the target's author of a reaction or
    a hide/unhide and the thread's owner of any moderation; for an edit, the author of the
    comment the edited one answers and the authors of its replies."""
    ops = state.ops
    kind = op.kind
    found: set[bytes] = set()
    if kind is Kind.COMMENT or kind is Kind.REACT:
        target = ops.get(op.target)
        if target is not None:
            found.add(target.author)
    elif kind is Kind.MODERATE:
        found.add(state.owner)
        target = ops.get(op.target)
        if target is not None and target.kind is Kind.COMMENT:
            found.add(target.author)
    elif kind is Kind.EDIT:
        edited = ops.get(op.target)
        if edited is not None:
            parent = ops.get(edited.target)
            if parent is not None and parent.kind is Kind.COMMENT:
                found.add(parent.author)
            found.update(
                other.author
                for other in ops.values()
                if other.kind is Kind.COMMENT and other.target == edited.id
            )
    found.discard(op.author)
    return frozenset(found)
