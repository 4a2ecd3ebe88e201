"""Read-only HTML pages: the thread list at ``/t/`` (a page at a time) and a thread at ``/t/{id}``.

Server-rendered, no script. Every value from an operation goes through `html.escape`; links are
only made of ``http``/``https`` URLs. Hidden comments and comments made after the thread was
closed are shown as placeholders (their replies stay in place), as retracted ones are. An
edited comment carries its whole history (original first, with times), a reply marked "parent
edited after" the version of the parent it answered, and the thread its completeness line.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from p2pcomments.api.representations import completeness_json, short_key
from p2pcomments.cli.render import describe_completeness
from p2pcomments.clock import shown_moment
from p2pcomments.core.textform import TextKind, format_id

if TYPE_CHECKING:
    from collections.abc import Sequence

    from p2pcomments.core.completeness import ThreadCompleteness
    from p2pcomments.core.thread_state import CommentView, EditView, ThreadView
    from p2pcomments.node import ThreadSummary

__all__ = ["error_page", "index_page", "thread_page"]

_MAX_INDENT: Final = 12

_STYLE: Final = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
a { color: #0650a0; }
.meta { color: #666; font-size: 0.85rem; }
.comment { border-left: 2px solid #ddd; padding: 0.25rem 0 0.25rem 0.75rem; margin: 0.75rem 0; }
.body { white-space: pre-wrap; overflow-wrap: anywhere; }
.tombstone { color: #888; font-style: italic; }
.marker { color: #a05a00; font-size: 0.8rem; margin-left: 0.4rem; }
code { font-size: 0.8rem; }
.history, .answered { font-size: 0.85rem; color: #555; margin: 0.25rem 0; }
.history ol { margin: 0.25rem 0; padding-left: 1.5rem; }
.answered blockquote { margin: 0.25rem 0 0 0.5rem; padding-left: 0.5rem;
                       border-left: 2px solid #ccc; }
"""


def _document(title: str, content: str) -> str:
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{content}</body></html>\n"
    )


def _time(timestamp_ms: int) -> str:
    moment = shown_moment(timestamp_ms)
    return (
        f"<time datetime='{moment.isoformat(timespec='seconds')}'>"
        f"{moment:%Y-%m-%d %H:%M} UTC</time>"
    )


def _link(url: str | None) -> str:
    if url is None:
        return ""
    if url.lower().startswith(("http://", "https://")):
        return f"<a href='{escape(url, quote=True)}' rel='nofollow noopener'>{escape(url)}</a>"
    return escape(url)


def _who(name: str | None, key: bytes) -> str:
    return escape(name) if name else f"<code>{escape(short_key(key))}</code>"


def index_page(
    threads: Sequence[ThreadSummary], *, first: bool = True, next_cursor: str | None = None
) -> str:
    """One page of the thread list (``first``: the newest); ``next_cursor`` links the next."""
    if not threads:
        items = (
            "<p>No threads yet. Start one with <code>p2pc thread new --title …</code>.</p>"
            if first
            else "<p>No older threads.</p>"
        )
    else:
        rows = []
        for thread in threads:
            href = "/t/" + format_id(TextKind.THREAD, thread.id)
            closed = "<span class='marker'>[closed]</span>" if thread.closed else ""
            rows.append(
                f"<li><a href='{href}'>{escape(thread.title or thread.url or '(untitled)')}</a>"
                f"{closed}<div class='meta'>{thread.comment_count} comments · "
                f"{_who(thread.owner_name, thread.owner)} · last activity "
                f"{_time(thread.last_activity_ms)}</div></li>"
            )
        items = "<ul>" + "".join(rows) + "</ul>"
    links = [] if first else ["<a href='/t/'>← Newest threads</a>"]
    if next_cursor is not None:
        links.append(f"<a rel='next' href='/t/?after={quote(next_cursor)}'>Older threads →</a>")
    nav = f"<nav class='meta'>{' · '.join(links)}</nav>" if links else ""
    return _document("p2pcomments", f"<h1>Threads</h1>{items}{nav}")


def _versions(comment: CommentView) -> str:
    """An edited comment's history: every version, original first, with its time."""
    if comment.original_body is None or not comment.edits:
        return ""
    items = [
        f"<li>{_time(comment.timestamp_ms)} (original)<div class='body'>"
        f"{escape(comment.original_body)}</div></li>"
    ]
    items.extend(
        f"<li>{_time(edit.timestamp_ms)}<div class='body'>{escape(edit.body)}</div></li>"
        for edit in comment.edits
    )
    count = len(comment.edits) + 1
    return (
        f"<details class='history'><summary>history: {count} versions</summary>"
        f"<ol>{''.join(items)}</ol></details>"
    )


def _answered(version: EditView | None, parent: bytes) -> str:
    if version is None:
        return ""
    which = "its original" if version.id == parent else "an edit"
    return (
        f"<details class='answered'><summary>answered an earlier version of its parent "
        f"({which}, {_time(version.timestamp_ms)})</summary>"
        f"<blockquote class='body'>{escape(version.body)}</blockquote></details>"
    )


def _comment(comment: CommentView) -> str:
    markers = []
    if comment.edits and not comment.retracted:
        markers.append("edited")
    if comment.retracted:
        markers.append("deleted")
    if comment.hidden:
        markers.append("hidden")
    if comment.after_close:
        markers.append("after close")
    if comment.parent_edited_after:
        markers.append("parent edited after")
    marker_html = "".join(f"<span class='marker'>[{m}]</span>" for m in markers)
    if comment.body is None:
        body = "<div class='tombstone'>deleted by its author</div>"
    elif comment.hidden:
        body = "<div class='tombstone'>hidden by a moderator</div>"
    elif comment.after_close:
        body = "<div class='tombstone'>posted after the thread was closed</div>"
    else:
        body = f"<div class='body'>{escape(comment.body)}</div>"
        reactions = " ".join(f"{escape(r.reaction)} {len(r.authors)}" for r in comment.reactions)
        if reactions:
            body += f"<div class='meta'>{reactions}</div>"
        body += _versions(comment) + _answered(comment.answered, comment.parent)
    indent = min(comment.depth, _MAX_INDENT) * 1.5
    comment_id = format_id(TextKind.COMMENT, comment.id)
    who = _who(comment.author_name, comment.author)
    provenance = comment.provenance
    if provenance is not None:  # an imported comment: its original author and origin
        from p2pcomments.importers.labels import provenance_label

        who = f"<span class='author'>{escape(provenance.author_name or '(anonymous)')}</span>"
        if provenance.author_url:
            who = f"<a rel='nofollow ugc noopener' href='{escape(provenance.author_url)}'>{who}</a>"
        label = provenance_label(
            provenance.source, provenance.original_timestamp_ms, int(provenance.entry_kind)
        )
        shown = escape(label)
        if comment.claimed_by is not None:  # its writer's claim, accepted by the owner
            shown += " · claimed by " + _who(comment.claimed_by_name, comment.claimed_by)
        who += f" · <span class='provenance'>{shown}</span>"
    return (
        f"<div class='comment' id='{comment_id}' style='margin-left:{indent}rem'>"
        f"<div class='meta'>{who} · "
        f"<a href='#{comment_id}'>{_time(comment.timestamp_ms)}</a>{marker_html}</div>"
        f"{body}</div>"
    )


def _completeness(view: ThreadView, completeness: ThreadCompleteness | None) -> str:
    if completeness is None:
        return ""
    digest = view.digest()
    form = completeness_json(completeness, digest)
    line = describe_completeness(form)
    items = [
        f"<li>pending <code>{escape(item['id'])}</code> ({escape(item['kind'])}): waits for "
        + ", ".join(f"<code>{escape(missing)}</code>" for missing in item["missing"])
        + "</li>"
        for item in form["pending_operations"]
    ]
    items += [
        f"<li>rejected <code>{escape(item['id'])}</code>: {escape(item['code'])}:"
        f" {escape(item['message'])}</li>"
        for item in form["rejected_operations"]
    ]
    details = (
        f"<details class='meta'><summary>what is pending or rejected here</summary>"
        f"<ul>{''.join(items)}</ul></details>"
        if items
        else ""
    )
    return (
        f"<p class='meta completeness' title='view digest {digest.hex()}'>{escape(line)}</p>"
        + details
    )


def thread_page(view: ThreadView, completeness: ThreadCompleteness | None = None) -> str:
    title = view.title or view.url or "(untitled)"
    closed = "<span class='marker'>[closed]</span>" if view.closed else ""
    header = (
        f"<p><a href='/'>← threads</a></p><h1>{escape(title)}{closed}</h1>"
        f"<p class='meta'>{_link(view.url)} started by {_who(view.owner_name, view.owner)} · "
        f"{_time(view.timestamp_ms)} · {len(view.comments)} comments · "
        f"<code>{format_id(TextKind.THREAD, view.id)}</code></p>"
        + _completeness(view, completeness)
    )
    comments = "".join(_comment(comment) for comment in view.comments)
    return _document(title, header + (comments or "<p>No comments yet.</p>"))


def error_page(message: str) -> str:
    return _document("p2pcomments", f"<p><a href='/'>← threads</a></p><p>{escape(message)}</p>")
