"""Writing threads back out: a JSON document of everything readable, or WordPress WXR 1.2.

Rules:

1. JSON (`export_json`): ``{"format": "p2pcomments-threads", "version": 1, "exported_by",
   "profiles": [{"key", "name"}], "threads": [...]}``, each thread as the API shows it
   (`api.representations.thread_json`: every comment with its author, dates, edit history,
   state and provenance), threads in the node's order, the display names of their authors.
   Every thread at once streams (`stream_json`): the same document, indented by two, with
   ``"threads"`` before ``"profiles"`` (the names are known once every thread has been read).
2. WXR (`export_wxr`): the structure WordPress's importer reads (as in the WXR fixtures): an RSS
   2.0 document with the ``excerpt``, ``content``, ``wfw``, ``dc`` and ``wp`` (1.2) namespaces,
   ``wp:wxr_version``, and per thread one ``<item>`` of ``wp:post_type`` ``post`` with its
   ``<link>``, ``<title>``, ``wp:post_id``, dates, ``wp:comment_status`` (``closed`` when the
   thread is closed) and one ``wp:comment`` per comment with an integer ``wp:comment_id`` and
   ``wp:comment_parent``, author, author URL, dates (GMT), ``wp:comment_approved`` (``1``;
   ``0`` for a hidden comment, ``trash`` for a retracted one), ``wp:comment_type`` and the body.
   E-mail and IP elements are present and empty.
3. An imported comment goes out as it came in: its original id (when numeric, else a new number),
   author name and URL, date and entry kind, and the post's date is that of the title operation,
   so re-importing an export of imported WordPress threads makes the very same operations.
   Bodies are the Markdown text, entity-escaped, fenced code as ``<pre>`` (WordPress shows them
   with line breaks; the importer reads them back unchanged). Comments written here keep their
   author's display name (or key) and their date to the second.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final
from xml.sax.saxutils import escape

from p2pcomments.clock import shown_moment
from p2pcomments.core.ops import EntryKind, Kind, ModAction, ModeratePayload
from p2pcomments.core.textform import TextKind, format_id

if TYPE_CHECKING:
    from p2pcomments.core.thread_state import CommentView, ThreadState, ThreadView
    from p2pcomments.node import Node

__all__ = [
    "EXPORT_FORMAT",
    "JSON_THREAD_START",
    "export_json",
    "export_wxr",
    "stream_json",
    "stream_wxr",
]

EXPORT_FORMAT: Final = "p2pcomments-threads"
WXR_MEDIA_TYPE: Final = "application/rss+xml"
_TYPES: Final = {
    EntryKind.COMMENT: "",
    EntryKind.PINGBACK: "pingback",
    EntryKind.TRACKBACK: "trackback",
}


def _thread_ids(node: Node, thread_id: bytes | None) -> list[bytes]:
    if thread_id is not None:
        node.thread_view(thread_id)  # NotFound for a thread not held here
        return [thread_id]
    return [summary.id for summary in node.threads()]


async def _every_thread(node: Node) -> list[bytes]:
    """`_thread_ids` of every thread, the list read off the loop (`Node.read_threads`)."""
    return [summary.id for summary in await node.read_threads()]


def export_json(node: Node, thread_id: bytes | None = None) -> dict[str, Any]:
    """Rule 1: one thread, or every thread held here."""
    from p2pcomments.api.representations import key_text, thread_json

    threads = [node.thread_view(t) for t in _thread_ids(node, thread_id)]
    names = node.replica.names()
    authors = {node.author} if thread_id is None else set()
    for view in threads:
        authors.add(view.owner)
        authors.update(comment.author for comment in view.comments)
    return {
        "format": EXPORT_FORMAT,
        "version": 1,
        "exported_by": key_text(node.author),
        "profiles": [
            {"key": key_text(key), "name": names[key]} for key in sorted(authors) if key in names
        ],
        "threads": [thread_json(view) for view in threads],
    }


# How each thread of `stream_json`'s document begins, and nothing else in it (deeper objects are
# indented further, and a string holds no raw newline): what counts the threads as they pass.
JSON_THREAD_START: Final = b'\n    {\n      "id": '


async def stream_json(node: Node) -> AsyncIterator[str]:
    """Rule 1's document of every thread, a piece at a time, threads read a few at a time off
    the event loop and let go after (`Node.each_thread`): its text is that of ``json.dumps(...,
    ensure_ascii=False, indent=2)`` with ``"threads"`` before ``"profiles"``, and a newline."""
    from p2pcomments.api.representations import key_text, thread_json

    names = node.replica.names()
    authors = {node.author}
    head = {"format": EXPORT_FORMAT, "version": 1, "exported_by": key_text(node.author)}
    yield (
        "{\n" + "".join(f"  {_json(k)}: {_json(v)},\n" for k, v in head.items()) + '  "threads": ['
    )

    def thread_text(state: ThreadState) -> str:
        view = node.thread_view(state.id)
        authors.add(view.owner)
        authors.update(comment.author for comment in view.comments)
        return _json(thread_json(view), indent=2).replace("\n", "\n    ")

    first = True
    async for texts in node.each_thread(await _every_thread(node), thread_text):
        pieces = []
        for text in texts:
            pieces.append(("\n    " if first else ",\n    ") + text)
            first = False
        yield "".join(pieces)
    profiles = [
        {"key": key_text(key), "name": names[key]} for key in sorted(authors) if key in names
    ]
    yield ("]" if first else "\n  ]") + ',\n  "profiles": '
    yield _json(profiles, indent=2).replace("\n", "\n  ") + "\n}\n"


def _json(value: object, *, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _date(timestamp_ms: int) -> str:
    moment = shown_moment(timestamp_ms)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _rfc822(timestamp_ms: int) -> str:
    moment = shown_moment(timestamp_ms)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return (
        f"{days[moment.weekday()]}, {moment.day:02d} {months[moment.month - 1]} {moment.year} "
        f"{moment:%H:%M:%S} +0000"
    )


def _title_timestamp(node: Node, thread_id: bytes, view: ThreadView) -> int:
    """The date of the retitle that gives the title shown, else the thread's own."""
    best: tuple[int, bytes] | None = None
    state = node.replica.threads[thread_id]
    for op in state.ops.values():
        payload = op.payload
        if (
            op.kind is Kind.MODERATE
            and isinstance(payload, ModeratePayload)
            and payload.action is getattr(ModAction, "RETITLE", None)
            and op.author == view.owner
            and payload.reason == view.title
            and (best is None or (op.timestamp_ms, op.id) > best)
        ):
            best = (op.timestamp_ms, op.id)
    return best[0] if best is not None else view.timestamp_ms


def _comment_ids(comments: Iterable[CommentView]) -> dict[bytes, int]:
    """Rule 3: a WordPress comment's original id where it is a number not taken, else the next
    number above every original id."""
    rows = list(comments)
    taken: dict[bytes, int] = {}
    used: set[int] = set()
    for comment in rows:
        provenance = comment.provenance
        if provenance is not None and provenance.original_id.isdigit():
            number = int(provenance.original_id)
            if number > 0 and number not in used:
                taken[comment.id] = number
                used.add(number)
    following = max(used, default=0) + 1
    for comment in rows:
        if comment.id not in taken:
            taken[comment.id] = following
            following += 1
    return taken


def _body_html(body: str) -> str:
    """The Markdown body as WordPress comment text: escaped, fenced code as ``<pre>``."""
    out: list[str] = []
    code: list[str] | None = None
    for line in body.split("\n"):
        if code is None:
            if line.startswith("```"):
                code = []
            else:
                out.append(escape(line))
        elif line == "```":
            out.append("<pre>" + escape("\n".join(code)) + "</pre>")
            code = None
        else:
            code.append(line)
    if code is not None:  # a fence never closed: as the renderer does, the rest is code
        out.append("<pre>" + escape("\n".join(code)) + "</pre>")
    return "\n".join(out)


def _comment_xml(comment: CommentView, number: int, parent: int, names: Mapping[bytes, str]) -> str:
    provenance = comment.provenance
    if provenance is not None:
        author = provenance.author_name
        url = provenance.author_url or ""
        timestamp = provenance.original_timestamp_ms
        kind = _TYPES[provenance.entry_kind]
    else:
        author = (
            comment.author_name
            or names.get(comment.author)
            or format_id(TextKind.KEY, comment.author)
        )
        url = ""
        timestamp = comment.timestamp_ms
        kind = ""
    if comment.retracted:
        approved, body = "trash", "[deleted]"
    else:
        approved, body = ("0" if comment.hidden else "1"), comment.body or ""
    date = _date(timestamp)
    return f"""
		<wp:comment>
			<wp:comment_id>{number}</wp:comment_id>
			<wp:comment_author>{_cdata(author)}</wp:comment_author>
			<wp:comment_author_email></wp:comment_author_email>
			<wp:comment_author_url>{escape(url)}</wp:comment_author_url>
			<wp:comment_author_IP></wp:comment_author_IP>
			<wp:comment_date>{date}</wp:comment_date>
			<wp:comment_date_gmt>{date}</wp:comment_date_gmt>
			<wp:comment_content>{_cdata(_body_html(body))}</wp:comment_content>
			<wp:comment_approved>{approved}</wp:comment_approved>
			<wp:comment_type>{kind}</wp:comment_type>
			<wp:comment_parent>{parent}</wp:comment_parent>
			<wp:comment_user_id>0</wp:comment_user_id>
		</wp:comment>"""


def export_wxr(node: Node, thread_id: bytes | None = None, *, now_ms: int | None = None) -> str:
    """Rule 2: one thread, or every thread held here that has a URL, as WXR 1.2 text."""
    names = node.replica.names()
    items = []
    for post_id, thread in enumerate(_thread_ids(node, thread_id), start=1):
        items.append(_wxr_item(node, post_id, thread, names))
    return _wxr_head(now_ms) + "".join(items) + _WXR_TAIL


async def stream_wxr(node: Node, *, now_ms: int | None = None) -> AsyncIterator[str]:
    """`export_wxr` of every thread, a piece at a time: the same text, threads read a few at a
    time off the event loop and let go after (`Node.each_thread`), so a store larger than
    memory is exported in the memory of a few threads."""
    yield _wxr_head(now_ms)
    names = node.replica.names()
    thread_ids = await _every_thread(node)
    post_ids = {thread: post_id for post_id, thread in enumerate(thread_ids, start=1)}
    async for items in node.each_thread(
        thread_ids, lambda state: _wxr_item(node, post_ids[state.id], state.id, names)
    ):
        yield "".join(items)
    yield _WXR_TAIL


def _wxr_item(node: Node, post_id: int, thread: bytes, names: Mapping[bytes, str]) -> str:
    """One thread's ``<item>``, or nothing for a thread without a URL (rule 2)."""
    view = node.thread_view(thread)
    if view.url is None:
        return ""
    numbers = _comment_ids(view.comments)
    comments = "".join(
        _comment_xml(c, numbers[c.id], numbers.get(c.parent, 0), names) for c in view.comments
    )
    posted = _title_timestamp(node, thread, view)
    return f"""
	<item>
		<title>{escape(view.title)}</title>
		<link>{escape(view.url)}</link>
		<pubDate>{_rfc822(posted)}</pubDate>
		<dc:creator>{_cdata(view.owner_name or format_id(TextKind.KEY, view.owner))}</dc:creator>
		<guid isPermaLink="false">{format_id(TextKind.THREAD, thread)}</guid>
		<description></description>
		<content:encoded><![CDATA[]]></content:encoded>
		<excerpt:encoded><![CDATA[]]></excerpt:encoded>
		<wp:post_id>{post_id}</wp:post_id>
		<wp:post_date>{_date(posted)}</wp:post_date>
		<wp:post_date_gmt>{_date(posted)}</wp:post_date_gmt>
		<wp:comment_status>{"closed" if view.closed else "open"}</wp:comment_status>
		<wp:ping_status>closed</wp:ping_status>
		<wp:post_name></wp:post_name>
		<wp:status>publish</wp:status>
		<wp:post_parent>0</wp:post_parent>
		<wp:menu_order>0</wp:menu_order>
		<wp:post_type>post</wp:post_type>
		<wp:post_password></wp:post_password>
		<wp:is_sticky>0</wp:is_sticky>{comments}
	</item>"""


def _wxr_head(now_ms: int | None) -> str:
    from p2pcomments.clock import wall_clock_ms

    generated = _rfc822(wall_clock_ms() if now_ms is None else now_ms)
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<!-- This is a WordPress eXtended RSS file generated by p2pcomments, for WordPress's importer. -->
<rss version="2.0"
	xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:wfw="http://wellformedweb.org/CommentAPI/"
	xmlns:dc="http://purl.org/dc/elements/1.1/"
	xmlns:wp="http://wordpress.org/export/1.2/"
>
<channel>
	<title>p2pcomments export</title>
	<link></link>
	<description>Threads and comments exported from p2pcomments</description>
	<pubDate>{generated}</pubDate>
	<language>en</language>
	<wp:wxr_version>1.2</wp:wxr_version>
	<generator>p2pcomments</generator>"""


_WXR_TAIL: Final = """
</channel>
</rss>
"""
