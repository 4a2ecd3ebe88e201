"""How an imported comment's origin is shown: "imported from WordPress, 24 Jan 2012".

Cheap to import (no parser, no signing): the API's JSON, the CLI and the HTML page use it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

__all__ = ["ENTRY_KIND_NAMES", "provenance_label", "source_name"]

_SOURCE_NAMES: Final = {"wordpress": "WordPress", "disqus": "Disqus"}
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
ENTRY_KIND_NAMES: Final = {1: "comment", 2: "pingback", 3: "trackback"}


def source_name(source: str) -> str:
    """``"wordpress"`` → ``"WordPress"``; other sources as they are."""
    return _SOURCE_NAMES.get(source, source)


def provenance_label(source: str, original_timestamp_ms: int, entry_kind: int = 1) -> str:
    """``imported from WordPress, 24 Jan 2012`` (the date in UTC); a pingback or trackback says
    so first: ``pingback imported from WordPress, 24 Jan 2012``."""
    try:
        day = datetime.fromtimestamp(original_timestamp_ms / 1000, tz=UTC)
        when = f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
    except (OverflowError, ValueError, OSError):
        when = "an unknown date"
    kind = ENTRY_KIND_NAMES.get(entry_kind, "comment")
    prefix = "imported" if kind == "comment" else f"{kind} imported"
    return f"{prefix} from {source_name(source)}, {when}"
