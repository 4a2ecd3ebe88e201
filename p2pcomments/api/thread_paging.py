"""One page of the thread list (newest activity first) and the cursor to the next one, for
``GET /api/threads?limit=…&after=…`` and the server-rendered list at ``/t/``.

Rules:

1. A cursor names the last thread a page showed by its place in the order, as text:
   ``<last_activity_ms>.<thr_…>``. The next page holds the threads after that place in the order
   as it is when the page is asked for (keyset paging): a thread added meanwhile shifts nothing,
   and a thread whose new activity moved it up is not shown again (it is on the first page).
2. ``limit`` is a whole number from 1 to `MAX_LIMIT`; without it, every thread after the cursor
   (the API's answer before paging, which the CLI still reads whole). A bad ``limit`` or cursor
   is 400 ``bad-parameter``, with what was wrong.
3. ``next`` is the cursor after the page's last thread when more follow it, else None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from p2pcomments.api.errors import BadRequest
from p2pcomments.core.textform import TextKind, format_id, parse_id
from p2pcomments.errors import TextFormError
from p2pcomments.node.values import ThreadSummary

__all__ = ["MAX_LIMIT", "cursor_of", "page_of", "read_cursor", "read_limit"]

MAX_LIMIT: Final = 1000


def _place(summary: ThreadSummary) -> tuple[int, bytes]:
    """A thread's place in the list's order (`Node.threads` sorts by it, descending)."""
    return (summary.last_activity_ms, summary.id)


def cursor_of(summary: ThreadSummary) -> str:
    return f"{summary.last_activity_ms}.{format_id(TextKind.THREAD, summary.id)}"


def read_cursor(text: str) -> tuple[int, bytes]:
    """The place a cursor names (rule 1). Raises `BadRequest` (``bad-parameter``)."""
    millis, dot, thread = text.strip().partition(".")
    if not dot or not millis.isdigit() or not millis.isascii():
        raise BadRequest(
            f"after must be a cursor from a page's 'next' (<ms>.<thr_…>), not {text!r}",
            reason="bad-parameter",
        )
    try:
        thread_id = parse_id(thread, expect=frozenset({TextKind.THREAD}))
    except TextFormError as error:
        raise BadRequest(f"after: {error.message}", reason="bad-parameter") from None
    return int(millis), thread_id


def read_limit(text: str) -> int:
    """A page's size (rule 2). Raises `BadRequest` (``bad-parameter``)."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}",
            reason="bad-parameter",
        )
    return int(text)


def page_of(
    summaries: Sequence[ThreadSummary], *, limit: int | None, after: tuple[int, bytes] | None
) -> tuple[list[ThreadSummary], str | None]:
    """The page of ``summaries`` (sorted as `Node.threads` sorts) after ``after`` and the
    cursor to the next page (rules 1 and 3)."""
    start = 0
    if after is not None:  # the first thread placed after the cursor (the order is descending)
        high = len(summaries)
        while start < high:
            middle = (start + high) // 2
            if _place(summaries[middle]) >= after:
                start = middle + 1
            else:
                high = middle
    end = len(summaries) if limit is None else min(len(summaries), start + limit)
    shown = list(summaries[start:end])
    more = end < len(summaries)
    return shown, (cursor_of(shown[-1]) if more and shown else None)
