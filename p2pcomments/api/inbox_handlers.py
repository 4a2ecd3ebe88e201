"""The handlers of the inbox's actions (`p2pcomments.api.actions`: ``inbox``,
``inbox_mark_read``); `p2pcomments.api.handlers` re-exports them under those names.

Rules:

1. ``unread`` and ``all`` are ``true`` or ``false`` (400 ``bad-parameter`` otherwise); ``limit``
   a whole number (400).
2. An id to mark is a whole text form or 64 hex digits, or a prefix of exactly one entry's text
   id (``cmt_ab12…``: what ``p2pc inbox`` shows); none is 404, several are 400 ``ambiguous-id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pcomments.api.errors import BadRequest, UnprocessableRequest
from p2pcomments.api.ids import read_id
from p2pcomments.api.inbox_json import inbox_entry_json, inbox_json
from p2pcomments.api.representations import JSONObject
from p2pcomments.core.textform import TextKind, parse_id
from p2pcomments.errors import NotFound, TextFormError

if TYPE_CHECKING:
    from p2pcomments.node import Node

__all__ = ["inbox", "inbox_mark_read"]


def _flag(name: str, value: str | None) -> bool:
    if value in (None, "", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise BadRequest(f"{name} must be true or false, not {value!r}", reason="bad-parameter")


async def inbox(
    node: Node,
    *,
    unread: str | None = "false",
    limit: str | None = None,
    thread: str | None = None,
) -> JSONObject:
    count: int | None = None
    if limit is not None:
        if not limit.isdigit():
            raise BadRequest(f"limit must be a whole number, not {limit!r}", reason="bad-parameter")
        count = int(limit)
    thread_id = None if thread is None else await read_id(node, thread, TextKind.THREAD)
    return inbox_json(
        await node.inbox(thread_id=thread_id, unread_only=_flag("unread", unread), limit=count)
    )


def _entry_ids(node: Node, texts: list[str]) -> list[bytes]:
    entries = {inbox_entry_json(e, read=False)["id"]: e.id for e in node.inbox_entries()}
    found: list[bytes] = []
    for text in texts:
        if text in entries:
            found.append(entries[text])
            continue
        try:
            found.append(parse_id(text))
            continue
        except TextFormError:
            pass
        matches = [raw for shown, raw in entries.items() if shown.startswith(text)]
        if not matches:
            raise NotFound(f"no inbox entry whose id starts with {text}")
        if len(matches) > 1:
            raise TextFormError(
                f"{text} starts the ids of {len(matches)} inbox entries: give more of it",
                reason="ambiguous-id",
            )
        found.append(matches[0])
    return found


async def inbox_mark_read(
    node: Node, *, ids: str | None = "", all: str | None = "false"
) -> JSONObject:
    texts = (ids or "").split()
    everything = _flag("all", all)
    if everything == bool(texts):
        raise UnprocessableRequest("give ids, or all: true (not both)", reason="missing-field")
    marked = await node.mark_inbox_read(None if everything else _entry_ids(node, texts))
    result = inbox_json(await node.inbox(limit=0))
    return {"marked": marked, "unread": result["unread"], "total": result["total"]}
