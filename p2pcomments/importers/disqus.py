"""Disqus XML exports to records.

Rules:

1. The root is ``<disqus>``; its ``<thread>`` children are posts (pages) and its ``<post>``
   children comments, in any order. Threads are read in a first pass (they are small), comments
   streamed in a second.
2. A thread is a page thread when its ``<link>`` is an http(s) URL (else ``no-url``); a deleted
   thread is left out with its comments (``deleted-thread``). ``<isClosed>true`` means closed.
3. A comment's original id is its ``dsq:id`` attribute, else its ``<id>`` text, else it is left
   out (``no-id``); one whose thread is not in the file is left out (``no-thread``); one whose
   ``createdAt`` does not read as a date is left out (``no-date``). ``isDeleted`` true means
   deleted, ``isSpam`` true spam; Disqus exports hold no unapproved comments.
4. The author is ``<author><name>`` (else the username); Disqus gives no author URL. E-mail and
   IP elements are never read. Bodies (HTML) go through `markup.html_to_markdown`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
from p2pcomments.importers.wordpress import MAX_AUTHOR_BYTES
from p2pcomments.importers.xml_input import (
    check_export,
    clean_line,
    local_name,
    parse_time_ms,
    stream_elements,
    text_of,
)

__all__ = ["read_disqus"]

SOURCE: Final = "disqus"
_INTERNALS: Final = "{http://disqus.com/disqus-internals}id"
_COMMENT_REASONS: Final = {"no-url": "comment-without-url", "deleted-thread": "comment-on-deleted"}


@dataclass(frozen=True, slots=True)
class _Thread:
    post: ImportedPost | None  # None: left out, for ``reason``
    reason: str


def read_disqus(path: Path) -> ParsedExport:
    """Check the whole file (`xml_input.check_export`), then return its entries as a stream."""
    check_export(path, frozenset({"disqus"}))
    export = ParsedExport(source=SOURCE, entries=iter(()))
    export.entries = _entries(path, export)
    return export


def _children(path: Path, name: str, export: ParsedExport) -> Iterator[Element]:
    """The root's children called ``name``, each cleared and let go once read."""
    depth = 0
    root: Element | None = None
    for event, element in stream_elements(path, export):
        if event == "start":
            depth += 1
            if root is None:
                root = element
            continue
        depth -= 1
        if depth == 1 and root is not None:
            if local_name(element.tag) == name:
                yield element
            element.clear()
            root.remove(element)


def _dsq_id(element: Element | None) -> str:
    return "" if element is None else (element.get(_INTERNALS) or "").strip()


def _child(element: Element, name: str) -> Element | None:
    for child in element:
        if local_name(child.tag) == name:
            return child
    return None


def _entries(path: Path, export: ParsedExport) -> Iterator[ImportedPost | ImportedComment]:
    threads: dict[str, _Thread] = {}
    for element in _children(path, "thread", export):
        key = _dsq_id(element)
        thread = _thread(element, key)
        if key and key not in threads:
            threads[key] = thread
        if thread.post is None:
            export.skip(thread.reason)
        else:
            yield thread.post
    for element in _children(path, "post", export):
        found = threads.get(_dsq_id(_child(element, "thread")))
        if found is None:
            export.skip("no-thread")
            continue
        thread = found
        if thread.post is None:
            export.skip(
                f"comment-{thread.reason}" if thread.reason != "no-url" else "comment-without-url"
            )
            continue
        comment = _comment(element, thread.post.original_id, export)
        if comment is not None:
            yield comment


def _thread(element: Element, key: str) -> _Thread:
    if text_of(_child(element, "isDeleted")) == "true":
        return _Thread(None, "deleted-thread")
    try:
        url = normalise_page_url(text_of(_child(element, "link")))
    except PageUrlError:
        return _Thread(None, "no-url")
    return _Thread(
        ImportedPost(
            original_id=key or url,
            url=url,
            title=clean_line(text_of(_child(element, "title")), MAX_TITLE_BYTES),
            timestamp_ms=parse_time_ms(text_of(_child(element, "createdAt"))) or 0,
            closed=text_of(_child(element, "isClosed")) == "true",
        ),
        "",
    )


def _comment(element: Element, post_id: str, export: ParsedExport) -> ImportedComment | None:
    original_id = _dsq_id(element) or text_of(_child(element, "id"))
    if not original_id:
        export.skip("no-id")
        return None
    timestamp = parse_time_ms(text_of(_child(element, "createdAt")))
    if timestamp is None:
        export.skip("no-date")
        return None
    if text_of(_child(element, "isDeleted")) == "true":
        status = CommentStatus.DELETED
    elif text_of(_child(element, "isSpam")) == "true":
        status = CommentStatus.SPAM
    else:
        status = CommentStatus.APPROVED
    author = _child(element, "author")
    name = ""
    if author is not None:
        name = text_of(_child(author, "name")) or text_of(_child(author, "username"))
    message = _child(element, "message")
    parent = _dsq_id(_child(element, "parent"))
    return ImportedComment(
        post_id=post_id,
        original_id=original_id,
        parent_id=parent or None,
        author_name=clean_line(name, MAX_AUTHOR_BYTES),
        author_url=None,
        timestamp_ms=timestamp,
        body=html_to_markdown(message.text or "" if message is not None else ""),
        entry_kind=EntryKind.COMMENT,
        status=status,
    )
