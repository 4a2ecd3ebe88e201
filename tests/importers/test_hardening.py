"""Hostile and broken XML: refused with a clear error, nothing expanded, fetched or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pcomments.importers import ExportFormatError, import_export
from p2pcomments.importers.disqus import read_disqus
from p2pcomments.importers.wordpress import read_wordpress
from p2pcomments.node import Node

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss xmlns:wp="http://wordpress.org/export/1.2/"><channel><item>
<title>&lol9;</title><link>http://example.org/a</link><wp:post_type>post</wp:post_type>
</item></channel></rss>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE disqus [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals">
<thread dsq:id="1"><link>http://example.org/</link><title>&secret;</title></thread>
</disqus>
"""

EXTERNAL_DTD_PARAMETER = """<?xml version="1.0"?>
<!DOCTYPE rss [ <!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote; ]>
<rss><channel/></rss>
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "export.xml"
    path.write_text(text, encoding="utf-8")
    return path


def test_billion_laughs_is_refused_before_expansion(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError) as caught:
        read_wordpress(_write(tmp_path, BILLION_LAUGHS))
    assert caught.value.reason == "forbidden-xml"
    assert "entities" in caught.value.message


def test_external_entity_is_refused_and_never_read(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError) as caught:
        read_disqus(_write(tmp_path, EXTERNAL_ENTITY))
    assert caught.value.reason == "forbidden-xml"
    assert "root:" not in caught.value.message


def test_external_parameter_entity_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError) as caught:
        read_wordpress(_write(tmp_path, EXTERNAL_DTD_PARAMETER))
    assert caught.value.reason == "forbidden-xml"


def test_truncated_file_names_line_and_column(tmp_path: Path) -> None:
    text = '<?xml version="1.0"?>\n<rss>\n<channel>\n<item><title>x</title>\n'
    with pytest.raises(ExportFormatError) as caught:
        read_wordpress(_write(tmp_path, text))
    assert caught.value.reason == "not-well-formed"
    assert "line 5" in caught.value.message


@pytest.mark.parametrize("encoding", ["x", "utf-32-xx", "UTF-7"])
def test_an_encoding_the_parser_does_not_know_is_an_export_error(
    tmp_path: Path, encoding: str
) -> None:
    """Found by scripts/fuzz_boundaries.py (import-file): a LookupError escaped the reader."""
    text = f'<?xml version="1.0" encoding="{encoding}"?><rss><channel/></rss>'
    with pytest.raises(ExportFormatError) as caught:
        read_wordpress(_write(tmp_path, text))
    assert caught.value.reason == "not-well-formed"
    assert "encoding" in caught.value.message


def test_missing_file_is_an_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError) as caught:
        read_wordpress(tmp_path / "absent.xml")
    assert caught.value.reason == "unreadable"


@pytest.mark.trio
async def test_hostile_file_writes_nothing(tmp_path: Path, node: Node) -> None:
    with pytest.raises(ExportFormatError):
        await import_export(node, _write(tmp_path, BILLION_LAUGHS), source="wordpress")
    assert node.threads() == []
    assert node.statistics().operations == 0
