"""How imported comments are shown: the label, the thread page, the CLI tree."""

from __future__ import annotations

import pytest

from p2pcomments.api.pages import thread_page
from p2pcomments.api.representations import thread_json
from p2pcomments.cli.render import render_thread
from p2pcomments.core.ops import page_thread_id
from p2pcomments.importers import import_export
from p2pcomments.importers.labels import provenance_label
from p2pcomments.node import Node
from tests.importers.conftest import fixture


def test_labels() -> None:
    assert (
        provenance_label("wordpress", 1_327_406_400_000) == "imported from WordPress, 24 Jan 2012"
    )
    assert provenance_label("disqus", 0, 2) == "pingback imported from Disqus, 1 Jan 1970"
    assert provenance_label("blogger", 1_327_406_400_000, 3).startswith(
        "trackback imported from blogger, "
    )
    assert provenance_label("wordpress", 2**63 - 1).endswith("an unknown date")


@pytest.mark.trio
async def test_the_thread_page_and_the_cli_show_where_comments_come_from(node: Node) -> None:
    await import_export(
        node, fixture("wordpress-importer-theme-unit-test-data.xml"), source="wordpress"
    )
    url = "https://wpthemetestdata.wordpress.com/2012/01/01/template-pingbacks-an-trackbacks"
    view = node.thread_view(page_thread_id(node.author, url))
    page = thread_page(view)
    assert "pingback imported from WordPress" in page
    assert "trackback imported from WordPress" in page
    assert "Ping 1 « What\u2019s a tellyworth?" in page
    assert "<script" not in page
    text = render_thread(thread_json(view), now_ms=2_000_000_000_000)
    assert "imported from WordPress, 21 Nov 2007" in text
