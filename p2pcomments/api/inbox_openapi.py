"""The OpenAPI pieces of the inbox and the feeds (`api.inbox_json`, `api.inbox_routes`), which
`p2pcomments.api.openapi` merges into its document."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["INBOX_EXTRA_ROUTES", "INBOX_SCHEMAS"]

_TEXT: Final = {"type": "string"}
_NULLABLE_TEXT: Final = {"type": ["string", "null"]}
_INT: Final = {"type": "integer"}

_ENTRY: Final[dict[str, Any]] = {
    "type": "object",
    "description": "One thing another author did near this author's comments or threads.",
    "properties": {
        "id": {**_TEXT, "description": "cmt_… (reply, comment) or op_… (the others)."},
        "kind": {"enum": ["reply", "comment", "reaction", "edit", "moderation"]},
        "read": {"type": "boolean", "description": "Marked read on this node."},
        "thread": {**_TEXT, "description": "thr_…"},
        "thread_title": _TEXT,
        "subject": {**_TEXT, "description": "What it concerns: thr_… or cmt_…."},
        "subject_body": {**_NULLABLE_TEXT, "description": "The current text of the subject."},
        "actor": {**_TEXT, "description": "key_… of who did it."},
        "actor_name": _NULLABLE_TEXT,
        "timestamp_ms": _INT,
        "text": {
            **_NULLABLE_TEXT,
            "description": "The reply's or comment's current body, the reaction, the edit's body"
            " or the moderation's reason (a retitle's new title).",
        },
        "action": {
            **_NULLABLE_TEXT,
            "description": "For a moderation: hide, unhide, add-moderator, remove-moderator,"
            " close, reopen or retitle.",
        },
    },
}
_ENTRY["required"] = sorted(_ENTRY["properties"])

INBOX_SCHEMAS: Final[dict[str, Any]] = {
    "InboxEntry": _ENTRY,
    "Inbox": {
        "type": "object",
        "properties": {
            "author": _TEXT,
            "total": _INT,
            "unread": _INT,
            "entries": {"type": "array", "items": {"$ref": "#/components/schemas/InboxEntry"}},
        },
        "required": ["author", "entries", "total", "unread"],
    },
    "InboxMarked": {
        "type": "object",
        "properties": {"marked": _INT, "total": _INT, "unread": _INT},
        "required": ["marked", "total", "unread"],
    },
}

_ATOM: Final = "application/atom+xml"
# (method, path, summary, media type of the response), as `openapi.EXTRA_ROUTES`
INBOX_EXTRA_ROUTES: Final = (
    (
        "GET",
        "/api/inbox/events",
        "Server-sent events of this author's inbox: a `: watching` comment line first, then one"
        " `entry` event per new entry (an InboxEntry), `lagged` when the reader fell behind.",
        "text/event-stream",
    ),
    (
        "GET",
        "/feeds/inbox.atom",
        "The author's inbox as an Atom feed; needs the token (`?token=` or a Bearer header).",
        _ATOM,
    ),
    ("GET", "/feeds/thread/{name}", "A thread's comments as an Atom feed (thr_….atom).", _ATOM),
    ("GET", "/feeds/site/{name}", "A site's comments as an Atom feed (<site>.atom).", _ATOM),
)
