"""HTML of old comments to the safe Markdown subset that bodies are written in.

The subset is what the web UI renders (``p2pcomments/web/markdown.js``): paragraphs separated by a
blank line, a newline is a line break, ``*em*``, ``**strong**``, ```code```, fenced code blocks,
``> `` quotes and ``[text](url)`` links; everything else is text.

Rules:

1. Kept: paragraphs, line breaks (``<br>`` and the newlines WordPress keeps in comment text become
   a newline), emphasis, strong emphasis, inline code, links to ``http``/``https`` URLs, block
   quotes, list items (a line each, ``- `` or ``1. ``), headings (as a strong paragraph) and
   preformatted text (a fenced code block).
2. Gone: every attribute but a link's ``href`` (classes, styles, event handlers, ``rel``...);
   ``script``, ``style``, ``iframe``, ``object``, ``embed``, ``noscript``, ``template``,
   ``svg``, ``math``, ``head`` and ``title`` elements with everything inside them; images (their
   ``alt`` text stays); links to anything but http(s) keep their text and lose the link; every
   other tag is dropped and its text kept.
3. Entities and character references are decoded once (by `html.parser`, never by regular
   expressions). Nothing else in the text changes: emoji, French quotes and apostrophes,
   ellipses, no-break spaces are kept exactly (the subset has no escapes, so text that looks
   like markup stays as typed). Runs of ASCII spaces and tabs become one space, and lines lose
   their surrounding spaces (pretty-printed exports indent bodies).
4. Control characters other than newline are removed, the result is in Unicode NFC, and empty
   output is ``""`` (the caller decides what an empty comment means).
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser
from typing import Final
from urllib.parse import quote, urlsplit

__all__ = ["html_to_markdown"]

_DROPPED_WITH_CONTENT: Final = frozenset(
    {
        "script",
        "style",
        "iframe",
        "object",
        "embed",
        "noscript",
        "template",
        "svg",
        "math",
        "head",
        "title",
        "textarea",
        "select",
    }
)
_BLOCKS: Final = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "aside",
        "table",
        "tr",
        "dl",
        "dt",
        "dd",
        "figure",
        "figcaption",
        "address",
        "hr",
        "center",
        "ul",
        "ol",
        "details",
        "summary",
    }
)
_HEADINGS: Final = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_EMPHASIS: Final = {"em": "*", "i": "*", "cite": "*", "strong": "**", "b": "**"}
_VOID: Final = frozenset({"br", "img", "hr", "wbr", "input", "meta", "link", "area", "source"})
_SPACES = re.compile(r"[ \t\r\f\v]+")
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_BREAK: Final = "\x00br\x00"  # a hard line break inside inline text, until the block is written


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.tight: list[bool] = []  # per block: inside a list (joined to the one before by "\n")
        self.inline: list[str] = []
        self.skipping: list[str] = []
        self.quote_depth = 0
        self.lists: list[list[int]] = []  # per open list: [is_ordered, next number]
        self.item_marker: str | None = None
        self.links: list[tuple[int, str | None]] = []  # (position in inline, href) per open <a>
        self.pre_depth = 0

    # -- blocks ----------------------------------------------------------------------------------

    def _flush(self) -> None:
        text = "".join(self.inline)
        self.inline = []
        marker, self.item_marker = self.item_marker, None
        if self.pre_depth:
            body = text.strip("\n")
            if body.strip():
                self._add_block(
                    "```\n"
                    + "\n".join(
                        " " + line if line.startswith("```") else line for line in body.split("\n")
                    )
                    + "\n```",
                    marker,
                )
            return
        paragraphs: list[list[str]] = [[]]
        for raw_line in text.replace(_BREAK, "\n").split("\n"):
            line = _SPACES.sub(" ", raw_line).strip(" ")
            if line:
                paragraphs[-1].append(line)
            elif paragraphs[-1]:
                paragraphs.append([])
        for lines in paragraphs:
            if lines:
                self._add_block("\n".join(lines), marker)
                marker = None

    def _add_block(self, block: str, marker: str | None) -> None:
        if marker is not None:
            indent = " " * len(marker)
            block = marker + block.replace("\n", "\n" + indent)
        if self.lists and marker is None:
            block = "  " * len(self.lists) + block.replace("\n", "\n" + "  " * len(self.lists))
        if self.quote_depth:
            prefix = "> " * self.quote_depth
            block = "\n".join(
                (prefix + line).rstrip(" ") if line.strip() else prefix.rstrip()
                for line in block.split("\n")
            )
        self.blocks.append(block)
        self.tight.append(bool(self.lists))

    # -- the parser's events ---------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            if tag in _DROPPED_WITH_CONTENT:
                self.skipping.append(tag)
            return
        if tag in _DROPPED_WITH_CONTENT:
            self.skipping.append(tag)
            return
        if tag == "br":
            self.inline.append(_BREAK)
        elif tag in _BLOCKS or tag in _HEADINGS:
            self._flush()
            if tag in ("ul", "ol"):
                self.lists.append([tag == "ol", 1])
            if tag in _HEADINGS:
                self.inline.append("**")
        elif tag == "li":
            self._flush()
            if self.lists and self.lists[-1][0]:
                self.item_marker = f"{self.lists[-1][1]}. "
                self.lists[-1][1] += 1
            else:
                self.item_marker = "- "
        elif tag == "blockquote":
            self._flush()
            self.quote_depth += 1
        elif tag == "pre":
            self._flush()
            self.pre_depth += 1
        elif tag in _EMPHASIS:
            self.inline.append(_EMPHASIS[tag])
        elif tag in ("code", "tt", "kbd", "samp") and not self.pre_depth:
            self.inline.append("`")
        elif tag == "a":
            href = dict(attrs).get("href")
            self.links.append((len(self.inline), _web_link(href)))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.handle_data(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag in _HEADINGS:
            self.inline.append("**")
            self._flush()
        elif tag in _BLOCKS or tag == "li":
            self._flush()
            if tag in ("ul", "ol") and self.lists:
                self.lists.pop()
        elif tag == "blockquote":
            self._flush()
            self.quote_depth = max(0, self.quote_depth - 1)
        elif tag == "pre":
            self._flush()
            self.pre_depth = max(0, self.pre_depth - 1)
        elif tag in _EMPHASIS:
            self._close_inline(_EMPHASIS[tag])
        elif tag in ("code", "tt", "kbd", "samp") and not self.pre_depth:
            self._close_inline("`")
        elif tag == "a" and self.links:
            start, href = self.links.pop()
            text = "".join(self.inline[start:]).strip()
            del self.inline[start:]
            if href is None:
                self.inline.append(text)
            else:
                label = text.replace("[", "(").replace("]", ")") or href
                self.inline.append(f"[{label}]({href})")

    def _close_inline(self, mark: str) -> None:
        # An emphasis with nothing inside would print its marks as text: drop both.
        if self.inline and self.inline[-1] == mark:
            self.inline.pop()
        else:
            self.inline.append(mark)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.pre_depth:
            self.inline.append(data)
        else:
            self.inline.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def _web_link(href: str | None) -> str | None:
    if not href:
        return None
    href = href.strip()
    try:
        scheme = urlsplit(href).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    return quote(href, safe="/:?#[]@!$&'*+,;=%~-._")


def html_to_markdown(html: str) -> str:
    """The Markdown form of a comment written in HTML (or WordPress's text with newlines)."""
    converter = _Converter()
    converter.feed(_CONTROL.sub("", html.replace("\r\n", "\n").replace("\r", "\n")))
    converter.close()
    pieces: list[str] = []
    for index, block in enumerate(converter.blocks):
        if index:
            tight = converter.tight[index] and converter.tight[index - 1]
            pieces.append("\n" if tight else "\n\n")
        pieces.append(block)
    return unicodedata.normalize("NFC", "".join(pieces)).strip("\n")
