"""What an export holds, as read from its file: posts with their comments, and what was left out.

Parsers (`wordpress`, `disqus`) yield these; `plan` turns them into operations. Nothing here holds
an e-mail address or an IP address: parsers never read those elements.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

from p2pcomments.core.ops import EntryKind
from p2pcomments.errors import P2PCommentsError

__all__ = [
    "CommentStatus",
    "ExportFormatError",
    "ImportedComment",
    "ImportedPost",
    "ParsedExport",
]


class ExportFormatError(P2PCommentsError, ValueError):
    """An export file that can't be imported: not well-formed XML (the message names the line and
    column), XML that declares entities or a DTD (refused: no entity is ever expanded, nothing
    external is ever loaded), or a document that is not the export it was said to be.

    ``reason`` is ``not-well-formed``, ``forbidden-xml`` or ``not-an-export``."""

    http_status = 422
    default_reason = "not-an-export"


class CommentStatus(Enum):
    APPROVED = "approved"
    UNAPPROVED = "unapproved"
    SPAM = "spam"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedComment:
    """One comment as the export has it. ``body`` is already Markdown (`markup`); ``post_id`` is
    the original id of its post; ``parent_id`` the original id of the comment it answers, or None
    at the top level."""

    post_id: str
    original_id: str
    parent_id: str | None
    author_name: str
    author_url: str | None
    timestamp_ms: int
    body: str
    entry_kind: EntryKind
    status: CommentStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedPost:
    """One post or page: its normal URL (the page thread's), title and state. Its comments come
    after it in the stream."""

    original_id: str
    url: str
    title: str
    timestamp_ms: int
    closed: bool


@dataclass(slots=True, kw_only=True)
class ParsedExport:
    """A parser's output: posts and comments (an iterator, read once, in file order; a post comes
    before its comments) and the tallies of what it left out before any mapping, by reason,
    filled in as the stream is read. ``source`` names the system (``"wordpress"``)."""

    source: str
    entries: Iterator[ImportedPost | ImportedComment]
    skipped: dict[str, int] = field(default_factory=dict)
    grouped: bool = False  # every post's comments follow it, before the next post (WXR)
    position: int = 0  # bytes of the file read so far by the stream, for progress

    def skip(self, reason: str, count: int = 1) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count
