"""Importing comments from other systems (WordPress WXR, Disqus XML) and exporting them back.

`import_export(node, path, source="wordpress")` reads a file and writes its posts and comments
into the node as page threads and comments with provenance (SPEC §2, §10.2); `export_json` and
`export_wxr` write threads back out. The parsers stream (bounded memory) and refuse unsafe XML
(`xml_input`). Submodules load on first use, so `importers.labels` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p2pcomments.importers.plan import ImportOptions
    from p2pcomments.importers.records import ExportFormatError
    from p2pcomments.importers.run import ImportReport, import_export

__all__ = ["ExportFormatError", "ImportOptions", "ImportReport", "import_export"]

_WHERE = {
    "ExportFormatError": "records",
    "ImportOptions": "plan",
    "ImportReport": "run",
    "import_export": "run",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
