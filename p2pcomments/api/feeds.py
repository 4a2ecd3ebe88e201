"""Atom feeds (RFC 4287) of a thread, of a site and of an author's inbox, for feed readers.

Pure: views and inbox entries in, the feed's bytes out. Rules:

1. Valid Atom 1.0: the feed and every entry carry ``id``, ``title`` and ``updated``; the feed
   and every entry an ``author``; a ``link rel="self"`` to the feed. Ids are stable URNs made
   from the text forms of operation ids (``urn:p2pcomments:cmt_…``), so a reader never shows an
   entry twice, whoever serves the feed.
2. Nothing from a comment is markup: every text is an XML text node of ``type="text"`` (the
   XML library escapes it), and characters XML 1.0 can't carry (U+FFFE, U+FFFF ...) become
   U+FFFD. Links are only ever ``http(s)`` URLs, so a thread's claimed URL can't be a
   ``javascript:`` link.
3. A comment's ``published`` is its author's timestamp, ``updated`` that of its latest edit;
   times are author-claimed (SPEC §1), clamped to what RFC 3339 can write. Entries are the
   newest `FEED_ENTRIES` by (updated, id); what readers don't see by default (hidden, retracted,
   after a close) is left out.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # writing XML only, never parsing it
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from p2pcomments.api.representations import key_text, short_key
from p2pcomments.core.inbox import InboxEntry, InboxKind
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.core.thread_state import CommentView, ThreadView

__all__ = ["ATOM_MEDIA_TYPE", "FEED_ENTRIES", "inbox_feed", "site_feed", "thread_feed"]

ATOM_MEDIA_TYPE: Final = "application/atom+xml; charset=utf-8"
FEED_ENTRIES: Final = 100
_ATOM: Final = "http://www.w3.org/2005/Atom"
_WEB_URL = re.compile(r"(?i)https?://[^\s<>\"]+")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LAST_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_GENERATOR: Final = "p2pcomments"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    id: str
    title: str
    author: str
    published_ms: int | None
    updated_ms: int
    content: str
    link: str | None


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _time(ms: int) -> str:
    clamped = min(max(ms, 0), _LAST_MS)
    moment = datetime.fromtimestamp(clamped // 1000, tz=UTC).replace(
        microsecond=clamped % 1000 * 1000
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{clamped % 1000:03d}Z"


def _web_link(url: str | None) -> str | None:
    """Rule 2: only an http(s) URL is ever a link."""
    if url is None or not _WEB_URL.fullmatch(url):
        return None
    return url


def _who(name: str | None, key: bytes) -> str:
    return name if name else short_key(key)


def _thread_title(view: ThreadView) -> str:
    return view.title or view.url or "(untitled thread)"


def _thread_link(view: ThreadView, base_url: str) -> str:
    return _web_link(view.url) or f"{base_url}/t/{format_id(TextKind.THREAD, view.id)}"


def _urn(text_id: str) -> str:
    return f"urn:p2pcomments:{text_id}"


def _comment_entries(view: ThreadView, base_url: str, *, with_thread: bool) -> list[_Entry]:
    by_id = {c.id: c for c in view.comments}
    link = _thread_link(view, base_url)
    entries = []
    for comment in view.comments:
        if comment.retracted or comment.hidden or comment.after_close or comment.body is None:
            continue
        who = _who(comment.author_name, comment.author)
        parent: CommentView | None = by_id.get(comment.parent)
        if parent is not None:
            title = f"{who} replied to {_who(parent.author_name, parent.author)}"
        else:
            title = f"{who} commented"
        if with_thread:
            title += f" on “{_thread_title(view)}”"
        updated = max([comment.timestamp_ms, *(e.timestamp_ms for e in comment.edits)])
        entries.append(
            _Entry(
                id=_urn(format_id(TextKind.COMMENT, comment.id)),
                title=title,
                author=who,
                published_ms=comment.timestamp_ms,
                updated_ms=updated,
                content=comment.body,
                link=link,
            )
        )
    return entries


def _newest(entries: Iterable[_Entry], limit: int) -> list[_Entry]:
    return sorted(entries, key=lambda e: (e.updated_ms, e.id), reverse=True)[:limit]


def _feed(
    *,
    feed_id: str,
    title: str,
    subtitle: str | None,
    author: str,
    self_url: str,
    alternate: str | None,
    entries: Sequence[_Entry],
    empty_updated_ms: int,
) -> bytes:
    ET.register_namespace("", _ATOM)

    def child(
        parent: ET.Element, tag: str, text: str | None = None, **attributes: str
    ) -> ET.Element:
        element = ET.SubElement(parent, f"{{{_ATOM}}}{tag}", attributes)
        if text is not None:
            element.text = _text(text)
        return element

    feed = ET.Element(f"{{{_ATOM}}}feed")
    child(feed, "id", feed_id)
    child(feed, "title", title, type="text")
    if subtitle:
        child(feed, "subtitle", subtitle, type="text")
    updated = max((e.updated_ms for e in entries), default=empty_updated_ms)
    child(feed, "updated", _time(updated))
    child(child(feed, "author"), "name", author)
    child(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    if alternate is not None:
        child(feed, "link", rel="alternate", type="text/html", href=alternate)
    child(feed, "generator", _GENERATOR)
    for entry in entries:
        element = child(feed, "entry")
        child(element, "id", entry.id)
        child(element, "title", entry.title, type="text")
        child(element, "updated", _time(entry.updated_ms))
        if entry.published_ms is not None:
            child(element, "published", _time(entry.published_ms))
        child(child(element, "author"), "name", entry.author)
        if entry.link is not None:
            child(element, "link", rel="alternate", type="text/html", href=entry.link)
        child(element, "content", entry.content, type="text")
    xml: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return xml


def thread_feed(
    view: ThreadView, *, base_url: str, self_url: str, limit: int = FEED_ENTRIES
) -> bytes:
    """The newest comments of one thread (rule 3)."""
    return _feed(
        feed_id=_urn(format_id(TextKind.THREAD, view.id)),
        title=_thread_title(view),
        subtitle=f"Comments on {_thread_title(view)}",
        author=_who(view.owner_name, view.owner),
        self_url=self_url,
        alternate=_thread_link(view, base_url),
        entries=_newest(_comment_entries(view, base_url, with_thread=False), limit),
        empty_updated_ms=view.timestamp_ms,
    )


def site_feed(
    site: str,
    threads: Iterable[tuple[int, Callable[[], ThreadView]]],
    *,
    base_url: str,
    self_url: str,
    limit: int = FEED_ENTRIES,
) -> bytes:
    """The newest comments of every thread of ``site`` held here (rule 3). ``threads``: each
    thread's last activity and a way to read its view, the most recently active first; a
    thread is read only while it may hold one of the newest (no comment of it is updated after
    its last activity), so a site of 10,000 threads reads a few, not all."""
    entries: list[_Entry] = []
    views: list[ThreadView] = []
    for last_activity_ms, read_view in threads:
        if len(entries) >= limit and last_activity_ms < entries[-1].updated_ms:
            break
        view = read_view()
        views.append(view)
        entries = _newest([*entries, *_comment_entries(view, base_url, with_thread=True)], limit)
    return _feed(
        feed_id=_urn(f"site:{site}"),
        title=f"Comments on {site}",
        subtitle=None,
        author=site,
        self_url=self_url,
        alternate=_web_link(f"https://{site}/"),
        entries=_newest(entries, limit),
        empty_updated_ms=max((view.timestamp_ms for view in views), default=0),
    )


_VERBS: Final = {
    InboxKind.REPLY: "replied to you",
    InboxKind.COMMENT: "commented",
    InboxKind.REACTION: "reacted",
    InboxKind.EDIT: "edited a comment near yours",
    InboxKind.MODERATION: "moderated",
}


def inbox_feed(
    author: bytes,
    author_name: str | None,
    entries: Sequence[InboxEntry],
    *,
    base_url: str,
    self_url: str,
    limit: int = FEED_ENTRIES,
) -> bytes:
    """The newest entries of ``author``'s inbox (`core.inbox`)."""
    rendered = []
    for entry in entries[:limit]:
        who = _who(entry.actor_name, entry.actor)
        verb = _VERBS[entry.kind]
        if entry.kind is InboxKind.MODERATION and entry.action is not None:
            verb = entry.action.name.lower().replace("_", " ")
        text = entry.text or ""
        if entry.kind is InboxKind.MODERATION and not text:
            text = f"({verb})"
        thread_text = format_id(TextKind.THREAD, entry.thread)
        kind_prefix = (
            TextKind.COMMENT
            if entry.kind in (InboxKind.REPLY, InboxKind.COMMENT)
            else TextKind.OPERATION
        )
        rendered.append(
            _Entry(
                id=_urn(format_id(kind_prefix, entry.id)),
                title=f"{who} {verb} on “{entry.thread_title or '(untitled thread)'}”",
                author=who,
                published_ms=entry.timestamp_ms,
                updated_ms=entry.timestamp_ms,
                content=text,
                link=f"{base_url}/t/{thread_text}",
            )
        )
    return _feed(
        feed_id=_urn(f"inbox:{key_text(author)}"),
        title=f"Inbox of {_who(author_name, author)}",
        subtitle="Replies, reactions and moderation near your comments",
        author=_who(author_name, author),
        self_url=self_url,
        alternate=None,
        entries=rendered,
        empty_updated_ms=0,
    )
