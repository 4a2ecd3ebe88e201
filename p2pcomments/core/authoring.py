"""Authoring: how this node's author makes an operation. Pure: the clock's reading is passed in.

Rules:

1. Text is taken in the form the wire requires: CRLF line ends become LF, then Unicode NFC (text
   typed on some systems arrives decomposed, and the decoder would refuse it).
2. An operation in a thread has the timestamp ``max(now_ms, 1 + the greatest timestamp of its
   parents)``, so a reply never predates what it answers, whatever the local clock says. A
   profile's is at least 1 + the author's current profile's, so the newest name wins.
3. Refused before anything is signed, with `ConflictError`: a comment, reply, edit or reaction in
   a closed thread (validity would accept it, but the causal close never shows it: the caller is
   told instead of writing something nobody sees); an edit or retraction of a retracted comment.
4. An operation made here is checked against its thread (`ThreadState.check`) before it is
   returned; core's "not allowed" reasons reach the caller as `AuthorizationError`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Final

from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    CommentPayload,
    EditPayload,
    Operation,
    Payload,
    ProfilePayload,
    ReactPayload,
    RetractPayload,
    ThreadPayload,
    make_operation,
)
from p2pcomments.core.pow import mine
from p2pcomments.core.textform import TextKind, display_id
from p2pcomments.core.thread_state import ThreadState
from p2pcomments.errors import AuthorizationError, ConflictError, InvalidOperation

__all__ = [
    "in_thread_operation",
    "optional_wire_text",
    "profile_operation",
    "refuse",
    "refuse_if_closed",
    "refuse_if_retracted",
    "thread_operation",
    "wire_text",
]

_AUTHORIZATION_REASONS: Final = frozenset({"not-author", "not-owner", "not-moderator"})
_REFUSED_WHEN_CLOSED: Final = (CommentPayload, EditPayload, ReactPayload)
_REFUSED_WHEN_RETRACTED: Final = (EditPayload, RetractPayload)


def wire_text(value: str) -> str:
    """What people type, in the form the wire requires (rule 1)."""
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n"))


def optional_wire_text(value: str | None) -> str | None:
    return None if value is None else wire_text(value)


def refuse_if_closed(state: ThreadState) -> None:
    """`ConflictError` (reason ``thread-closed``) when the thread is closed (rule 3)."""
    if state.closed:
        raise ConflictError(
            f"thread {display_id(TextKind.THREAD, state.id)} is closed", reason="thread-closed"
        )


def refuse_if_retracted(state: ThreadState, comment_id: bytes) -> None:
    """`ConflictError` (reason ``retracted``) when the comment is retracted (rule 3)."""
    if state.is_retracted(comment_id):
        raise ConflictError(
            f"comment {display_id(TextKind.COMMENT, comment_id)} is retracted", reason="retracted"
        )


def refuse(state: ThreadState, payload: Payload, target: bytes) -> None:
    """Rule 3 for ``payload`` aimed at ``target`` in ``state``'s thread."""
    if isinstance(payload, _REFUSED_WHEN_CLOSED):
        refuse_if_closed(state)
    if isinstance(payload, _REFUSED_WHEN_RETRACTED):
        refuse_if_retracted(state, target)


def thread_operation(
    key: SigningKey, title: str, *, url: str | None, site: str | None, now_ms: int
) -> Operation:
    """A new thread, owned by ``key``'s author."""
    payload = ThreadPayload(
        title=wire_text(title), url=optional_wire_text(url), site=optional_wire_text(site)
    )
    return make_operation(key, payload, timestamp_ms=now_ms)


def profile_operation(
    key: SigningKey, name: str, *, current: Operation | None, now_ms: int
) -> Operation:
    """The author's display name; ``current`` is the profile it replaces, if any (rule 2)."""
    floor = current.timestamp_ms + 1 if current is not None else 0
    return make_operation(
        key, ProfilePayload(name=wire_text(name)), timestamp_ms=max(now_ms, floor)
    )


def in_thread_operation(
    key: SigningKey,
    state: ThreadState,
    payload: Payload,
    *,
    target: bytes,
    now_ms: int,
    difficulty: int = 0,
    progress: Callable[[int], None] | None = None,
    avoid: frozenset[bytes] = frozenset(),
) -> Operation:
    """An operation on ``target`` (the thread or one of its comments) that depends on the
    thread's current heads, with rule 2's timestamp, checked against the thread (rule 4).
    The caller applies rule 3 (`refuse`) first, before it unlocks ``key``. With a
    ``difficulty``, its nonce is mined (`core.pow.mine`, SPEC §11.6). Heads in ``avoid`` (what
    the rules withhold as unpaid) are not depended on: where they were refused, an operation
    depending on them would wait for them for ever."""
    deps = state.causal_deps()
    if avoid:
        deps = tuple(dep for dep in deps if dep not in avoid)
    ops = state.ops
    newest_parent = max(ops[parent].timestamp_ms for parent in (target, *deps))
    timestamp_ms = max(now_ms, newest_parent + 1)
    if difficulty:
        op = mine(
            key,
            payload,
            difficulty=difficulty,
            timestamp_ms=timestamp_ms,
            thread=state.id,
            refs=(target,),
            deps=deps,
            progress=progress,
        )
    else:
        op = make_operation(
            key, payload, timestamp_ms=timestamp_ms, thread=state.id, refs=(target,), deps=deps
        )
    try:
        state.check(op)
    except InvalidOperation as error:
        raise _for_caller(error) from None
    return op


def _for_caller(error: InvalidOperation) -> InvalidOperation:
    """Core says "not allowed" with a reason code; the caller gets `AuthorizationError` for it."""
    if error.reason in _AUTHORIZATION_REASONS and not isinstance(error, AuthorizationError):
        return AuthorizationError(error.message, reason=error.reason)
    return error
