"""Reading an export's XML safely and in bounded memory.

Rules:

1. The parser is defusedxml's: a document that declares an entity (billion laughs, quadratic
   blow-up) or refers to anything external (external entities, external DTDs) is refused with
   `ExportFormatError` (``forbidden-xml``) before anything is expanded or fetched.
2. Not well-formed XML (or an encoding the parser can't read) is refused with `ExportFormatError`
   (``not-well-formed``) whose message names the line and column (or the encoding), never a
   traceback.
3. Elements are streamed (``iterparse``) and cleared once read, so memory holds one post at a
   time, not the document. `check_export` reads a whole file this way without keeping anything:
   importers run it first, so a file that fails half-way has written nothing.
"""

from __future__ import annotations

import calendar
import html
import re
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Final
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from p2pcomments.importers.records import ExportFormatError, ParsedExport

__all__ = [
    "check_export",
    "clean_line",
    "local_name",
    "parse_time_ms",
    "stream_elements",
    "text_of",
]

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$"
)
_ZERO_DATE: Final = "0000-00-00 00:00:00"


def local_name(tag: str) -> str:
    """``{namespace}name`` → ``name``."""
    return tag.rsplit("}", 1)[-1]


def namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def stream_elements(
    path: Path, tracker: ParsedExport | None = None
) -> Iterator[tuple[str, Element]]:
    """``iterparse`` (start and end events) with the rules above; `ExportFormatError` for what
    breaks them. ``tracker.position`` follows the bytes read."""
    try:
        with path.open("rb") as file:
            for count, (event, element) in enumerate(
                iterparse(file, events=("start", "end"), forbid_dtd=False)
            ):
                if tracker is not None and not count % 256:
                    tracker.position = file.tell()
                yield event, element
    except ParseError as error:
        line, column = error.position
        detail = str(error).split(":", 1)[0]
        raise ExportFormatError(
            f"{path.name} is not well-formed XML: {detail} at line {line}, column {column + 1}",
            reason="not-well-formed",
        ) from None
    except DefusedXmlException as error:
        raise ExportFormatError(
            f"{path.name} declares XML entities or refers to external ones ({type(error).__name__}"
            f": {error}); exports never need them, and they are not expanded or fetched",
            reason="forbidden-xml",
        ) from None
    except OSError as error:
        raise ExportFormatError(
            f"cannot read {path}: {error.strerror or error}", reason="unreadable"
        ) from None
    except (LookupError, ValueError) as error:  # expat: an encoding it does not know
        raise ExportFormatError(
            f"{path.name} declares an encoding that can't be read ({error}); exports are UTF-8",
            reason="not-well-formed",
        ) from None


def check_export(path: Path, root_names: frozenset[str]) -> str:
    """Read the whole file with the rules above, keeping nothing; return the root's local name,
    which must be one of ``root_names``."""
    root: Element | None = None
    for event, element in stream_elements(path):
        if root is None:
            root = element
            if local_name(element.tag) not in root_names:
                expected = " or ".join(f"<{name}>" for name in sorted(root_names))
                raise ExportFormatError(
                    f"{path.name} is not this kind of export: its root element is "
                    f"<{local_name(element.tag)}>, expected {expected}",
                    reason="not-an-export",
                )
        elif event == "end":
            element.clear()
    if root is None:  # pragma: no cover - an empty document is not well-formed
        raise ExportFormatError(f"{path.name} is empty", reason="not-well-formed")
    return local_name(root.tag)


def text_of(element: Element | None) -> str:
    """An element's text with surrounding white space removed ("" when absent)."""
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def clean_line(value: str, limit: int, *, unescape: bool = False) -> str:
    """One line of display text (a name, a title) as the wire takes it: entities decoded if
    ``unescape`` (WordPress stores names and titles HTML-escaped), white space runs made one
    space, control characters gone, NFC, cut to ``limit`` UTF-8 bytes at a character boundary."""
    if unescape:
        value = html.unescape(value)
    value = unicodedata.normalize("NFC", _CONTROL.sub(" ", value))
    value = _SPACES.sub(" ", value).strip()
    encoded = value.encode("utf-8")
    if len(encoded) <= limit:
        return value
    return unicodedata.normalize("NFC", encoded[:limit].decode("utf-8", "ignore")).strip()


def parse_time_ms(value: str) -> int | None:
    """Milliseconds since the epoch for ``YYYY-MM-DD HH:MM:SS`` (UTC) or ISO 8601 with ``Z`` or
    an offset; None for an empty, zero or unreadable date."""
    value = value.strip()
    if not value or value == _ZERO_DATE:
        return None
    match = _ISO.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    try:
        parsed = time.struct_time((year, month, day, hour, minute, second, 0, 0, 0))
        seconds = calendar.timegm(parsed)
        time.gmtime(seconds)
    except (ValueError, OverflowError):
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    offset = match.group(7)
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    if seconds < 0:
        return None
    return seconds * 1000
