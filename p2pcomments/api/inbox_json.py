"""The JSON forms of an author's inbox (`core.inbox`, `Node.inbox`), for the API and ``p2pc inbox``.

Rules (those of `p2pcomments.api.representations` too):

1. Ids and keys in text form: an entry's ``id`` is ``cmt_`` for a reply or comment, ``op_`` for a
   reaction, edit or moderation; ``subject`` is ``thr_`` for the thread, ``cmt_`` for a comment.
2. Fields are an allowlist; times are integers, milliseconds since the Unix epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pcomments.api.representations import JSONObject, key_text, operation_text_id
from p2pcomments.core.inbox import InboxEntry, InboxKind
from p2pcomments.core.ops import Kind
from p2pcomments.core.textform import TextKind, format_id

if TYPE_CHECKING:
    from p2pcomments.node import Inbox

__all__ = ["inbox_entry_json", "inbox_json"]

_KIND_OF_ENTRY = {
    InboxKind.REPLY: Kind.COMMENT,
    InboxKind.COMMENT: Kind.COMMENT,
    InboxKind.REACTION: Kind.REACT,
    InboxKind.EDIT: Kind.EDIT,
    InboxKind.MODERATION: Kind.MODERATE,
}


def inbox_entry_json(entry: InboxEntry, *, read: bool) -> JSONObject:
    """One entry (rule 1); ``read`` says whether it was marked read here."""
    subject_kind = TextKind.THREAD if entry.subject == entry.thread else TextKind.COMMENT
    return {
        "id": operation_text_id(entry.id, _KIND_OF_ENTRY[entry.kind]),
        "kind": str(entry.kind),
        "read": read,
        "thread": format_id(TextKind.THREAD, entry.thread),
        "thread_title": entry.thread_title,
        "subject": format_id(subject_kind, entry.subject),
        "subject_body": entry.subject_body,
        "actor": key_text(entry.actor),
        "actor_name": entry.actor_name,
        "timestamp_ms": entry.timestamp_ms,
        "text": entry.text,
        "action": None if entry.action is None else entry.action.name.lower().replace("_", "-"),
    }


def inbox_json(inbox: Inbox) -> JSONObject:
    return {
        "author": key_text(inbox.author),
        "total": inbox.total,
        "unread": inbox.unread,
        "entries": [inbox_entry_json(e, read=e.id in inbox.read) for e in inbox.entries],
    }
