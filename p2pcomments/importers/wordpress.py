"""WordPress eXtended RSS (WXR 1.0, 1.1, 1.2; ``http`` or ``https`` namespaces) to records.

Rules:

1. Every ``<item>`` of type ``post`` or ``page`` with a ``<link>`` is a post; attachments, menu
   items and other types are not (counted as ``not-a-post``), nor are drafts, pending and trashed
   items (``not-published``; published, private and password-protected ones are posts).
2. ``wp:`` elements are recognised by their local name under any namespace URI that contains
   ``wordpress.org/export/`` (exports exist with http and https and versions 1.0 to 1.2).
3. A comment's date is ``comment_date_gmt``, else ``comment_date`` read as UTC; one with neither
   is left out (``no-date``). ``comment_approved`` ``1`` is approved, ``0`` unapproved, ``spam``
   spam, ``trash`` and ``post-trashed`` deleted. Type ``""``/``comment`` is a comment,
   ``pingback`` and ``trackback`` are kept as such, any other type is left out
   (``unsupported-type``). E-mail and IP elements are never read.
4. Names and titles are entity-decoded (WordPress stores them escaped); bodies go through
   `markup.html_to_markdown`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final
from xml.etree.ElementTree import Element

from p2pcomments.core.ops import MAX_TITLE_BYTES, EntryKind
from p2pcomments.core.page_url import normalise_page_url
from p2pcomments.errors import PageUrlError
from p2pcomments.importers.markup import html_to_markdown
from p2pcomments.importers.records import (
    CommentStatus,
    ImportedComment,
    ImportedPost,
    ParsedExport,
)
from p2pcomments.importers.xml_input import (
    check_export,
    clean_line,
    local_name,
    namespace,
    parse_time_ms,
    stream_elements,
    text_of,
)

__all__ = ["read_wordpress"]

SOURCE: Final = "wordpress"
_POST_TYPES: Final = frozenset({"post", "page"})
_PUBLISHED: Final = frozenset({"publish", "private", "inherit", ""})
_STATUSES: Final = {
    "1": CommentStatus.APPROVED,
    "approve": CommentStatus.APPROVED,
    "0": CommentStatus.UNAPPROVED,
    "hold": CommentStatus.UNAPPROVED,
    "spam": CommentStatus.SPAM,
    "trash": CommentStatus.DELETED,
    "post-trashed": CommentStatus.DELETED,
}
_ENTRY_KINDS: Final = {
    "": EntryKind.COMMENT,
    "comment": EntryKind.COMMENT,
    "pingback": EntryKind.PINGBACK,
    "trackback": EntryKind.TRACKBACK,
}
MAX_AUTHOR_BYTES: Final = 256


def _is_wp(tag: str) -> bool:
    return "wordpress.org/export/" in namespace(tag)


def _fields(element: Element) -> dict[str, Element]:
    """Direct children by local name (``wp:`` ones prefixed ``wp:``), the first of each."""
    found: dict[str, Element] = {}
    for child in element:
        name = local_name(child.tag)
        key = "wp:" + name if _is_wp(child.tag) else name
        found.setdefault(key, child)
    return found


def read_wordpress(path: Path) -> ParsedExport:
    """Check the whole file (`xml_input.check_export`), then return its posts as a stream."""
    check_export(path, frozenset({"rss"}))
    export = ParsedExport(source=SOURCE, entries=iter(()), grouped=True)
    export.entries = _entries(path, export)
    return export


def _entries(path: Path, export: ParsedExport) -> Iterator[ImportedPost | ImportedComment]:
    stack: list[Element] = []
    for event, element in stream_elements(path, export):
        if event == "start":
            stack.append(element)
            continue
        stack.pop()
        if local_name(element.tag) == "item" and not namespace(element.tag):
            yield from _post(element, export)
        if len(stack) <= 2 and stack:  # a child of <channel> (or of <rss>): read, let go
            element.clear()
            stack[-1].remove(element)


def _post(item: Element, export: ParsedExport) -> Iterator[ImportedPost | ImportedComment]:
    fields = _fields(item)
    post_type = text_of(fields.get("wp:post_type")) or "post"
    comments = [c for c in item if local_name(c.tag) == "comment" and _is_wp(c.tag)]
    if post_type not in _POST_TYPES:
        export.skip("not-a-post")
        export.skip("comment-not-on-a-post", len(comments))
        return
    if text_of(fields.get("wp:status")) not in _PUBLISHED:
        export.skip("not-published")
        export.skip("comment-on-unpublished", len(comments))
        return
    try:
        url = normalise_page_url(text_of(fields.get("link")))
    except PageUrlError:
        export.skip("no-url")
        export.skip("comment-without-url", len(comments))
        return
    timestamp = parse_time_ms(text_of(fields.get("wp:post_date_gmt"))) or parse_time_ms(
        text_of(fields.get("wp:post_date"))
    )
    post_id = text_of(fields.get("wp:post_id")) or url
    yield ImportedPost(
        original_id=post_id,
        url=url,
        title=clean_line(text_of(fields.get("title")), MAX_TITLE_BYTES, unescape=True),
        timestamp_ms=timestamp or 0,
        closed=text_of(fields.get("wp:comment_status")) == "closed",
    )
    for element in comments:
        comment = _comment(element, post_id, export)
        if comment is not None:
            yield comment


def _comment(element: Element, post_id: str, export: ParsedExport) -> ImportedComment | None:
    fields = _fields(element)
    comment_type = text_of(fields.get("wp:comment_type"))
    entry_kind = _ENTRY_KINDS.get(comment_type)
    if entry_kind is None:
        export.skip("unsupported-type")
        return None
    original_id = text_of(fields.get("wp:comment_id"))
    if not original_id:
        export.skip("no-id")
        return None
    timestamp = parse_time_ms(text_of(fields.get("wp:comment_date_gmt"))) or parse_time_ms(
        text_of(fields.get("wp:comment_date"))
    )
    if timestamp is None:
        export.skip("no-date")
        return None
    status = _STATUSES.get(text_of(fields.get("wp:comment_approved")), CommentStatus.UNAPPROVED)
    parent = text_of(fields.get("wp:comment_parent"))
    author_url = text_of(fields.get("wp:comment_author_url"))
    content = fields.get("wp:comment_content")
    return ImportedComment(
        post_id=post_id,
        original_id=original_id,
        parent_id=parent if parent not in ("", "0") else None,
        author_name=clean_line(
            text_of(fields.get("wp:comment_author")), MAX_AUTHOR_BYTES, unescape=True
        ),
        author_url=author_url or None,
        timestamp_ms=timestamp,
        body=html_to_markdown(content.text or "" if content is not None else ""),
        entry_kind=entry_kind,
        status=status,
    )
