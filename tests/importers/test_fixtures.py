"""Every shared export fixture imports with its expected report, into a real node (SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pcomments.core.ops import EntryKind, page_thread_id
from p2pcomments.core.page_url import normalise_page_url
from p2pcomments.importers import ExportFormatError, ImportOptions, import_export
from p2pcomments.node import Node, open_node
from tests.importers.conftest import fixture

pytestmark = pytest.mark.trio


def _comments(node: Node, url: str) -> list[tuple[int, str, str | None]]:
    view = node.thread_view(page_thread_id(node.author, normalise_page_url(url)))
    rows = []
    for comment in view.comments:
        assert comment.provenance is not None
        rows.append((comment.depth, comment.provenance.original_id, comment.body))
    return rows


async def test_isso_wordpress_wxr_1_0(node: Node) -> None:
    report = await import_export(node, fixture("isso/wordpress.xml"), source="wordpress")
    assert report.threads == 3
    assert report.closed_threads == 0
    assert report.imported == {"comments": 8}
    assert report.skipped == {}
    assert report.orphans == 0
    assert report.new_operations == report.operations == 3 + 3 + 8  # threads, titles, comments
    rows = _comments(node, "http://example.tld/2014/test/")
    assert [(depth, original) for depth, original, _ in rows] == [
        (0, "2"),
        (0, "6"),
        (1, "7"),
        (2, "8"),
        (2, "9"),
        (0, "10"),
        (0, "11"),
    ]
    bodies = {original: body for _, original, body in rows}
    assert bodies["2"] == "Erster!1"
    assert bodies["7"] == "Drölfter!"
    assert (
        bodies["10"]
        == "When you have a comment with multiple lines:\nWordPress exports it like this."
    )
    # Comment ids repeat across posts (11 here and on ?p=4): each post keeps its own.
    assert [original for _, original, _ in _comments(node, "http://example.tld/?p=4")] == ["11"]
    view = node.thread_view(page_thread_id(node.author, "http://example.tld/2014/test"))
    assert view.title == "Hello, World…"
    first = view.comments[0]
    assert first.provenance is not None
    assert first.provenance.author_name == "Ohai"
    assert first.provenance.author_url == "http://example.tld/"
    assert first.provenance.source == "wordpress"
    assert first.timestamp_ms == first.provenance.original_timestamp_ms == 1389720732000
    empty = node.thread_view(page_thread_id(node.author, "http://example.tld/?p=6"))
    assert empty.title == "No comments"
    assert empty.comments == ()


async def test_wordpress_wxr_1_1_with_crlf(node: Node) -> None:
    path = fixture("wordpress-importer-valid-wxr-1.1.xml")
    assert b"\r\n" in path.read_bytes()
    report = await import_export(node, path, source="wordpress")
    assert (report.threads, report.imported, report.skipped) == (2, {"comments": 1}, {})
    [(depth, original, body)] = _comments(node, "http://localhost/?p=1")
    assert (depth, original) == (0, "1")
    assert body is not None
    assert "\r" not in body
    assert body.startswith("Hi, this is a comment.\nTo delete a comment, just log in")
    assert "post's comments" in body  # &#039; decoded


async def test_wordpress_theme_unit_test_data_wxr_1_2(node: Node) -> None:
    report = await import_export(
        node, fixture("wordpress-importer-theme-unit-test-data.xml"), source="wordpress"
    )
    assert report.threads == 77
    assert report.closed_threads == 47
    assert report.imported == {"comments": 26, "pingbacks": 2, "trackbacks": 2}
    assert report.imported_by_status == {}
    assert report.skipped == {"not-a-post": 107, "not-published": 2, "unapproved": 3}
    assert report.orphans == 0
    base = "https://wpthemetestdata.wordpress.com"
    chain = _comments(node, base + "/2012/01/03/template-comments/")
    depths = {original: depth for depth, original, _ in chain}
    reply_chain = ["904", "905", "906", "907", "910", "911", "912", "913", "914", "915"]
    assert [depths[c] for c in reply_chain] == list(range(10))
    view = node.thread_view(page_thread_id(node.author, base + "/2012/01/03/template-comments"))
    greek = [c for c in view.comments if c.provenance and "Γιάννης" in c.provenance.author_name]
    assert greek
    assert greek[0].provenance is not None
    assert greek[0].provenance.author_name == "John Γιάννης Doe Κάποιος"
    for comment in greek:  # HTML became Markdown (text that shows a tag, as code, stays)
        body = comment.body or ""
        assert not any(tag in body for tag in ("<h1", "<p>", "<ul", "<li", "<img", "<a ", "<br"))
    pings = node.thread_view(
        page_thread_id(node.author, base + "/2012/01/01/template-pingbacks-an-trackbacks")
    )
    assert pings.closed
    assert not any(c.after_close for c in pings.comments)  # closed after its comments
    kinds = sorted(c.provenance.entry_kind for c in pings.comments if c.provenance)
    assert kinds == [
        EntryKind.COMMENT,
        EntryKind.PINGBACK,
        EntryKind.PINGBACK,
        EntryKind.TRACKBACK,
        EntryKind.TRACKBACK,
    ]
    names = {c.provenance.author_name for c in pings.comments if c.provenance}
    assert "Ping 1 « What\u2019s a tellyworth?" in names  # &laquo; and &#8217; decoded


async def test_theme_unit_test_data_with_unapproved(node: Node) -> None:
    options = ImportOptions(include_unapproved=True)
    report = await import_export(
        node,
        fixture("wordpress-importer-theme-unit-test-data.xml"),
        source="wordpress",
        options=options,
    )
    assert report.imported == {"comments": 29, "pingbacks": 2, "trackbacks": 2}
    assert report.imported_by_status == {"unapproved": 3}
    assert "unapproved" not in report.skipped
    rows = _comments(node, "https://wpthemetestdata.wordpress.com/about/page-with-comments/")
    assert "1017" in {original for _, original, _ in rows}


async def test_isso_disqus_export(node: Node) -> None:
    report = await import_export(node, fixture("isso/disqus.xml"), source="disqus")
    assert report.threads == 2
    assert report.imported == {"comments": 4}
    # 9 is deleted; 6 points at thread 1337, which the file lacks; thread 3 has no link.
    assert report.skipped == {"deleted": 1, "no-thread": 1, "no-url": 1}
    assert report.orphans == 1  # 11 answers the deleted 9: it goes to the top level
    rows = _comments(node, "http://example.org/")
    assert [(depth, original) for depth, original, _ in rows] == [(0, "4"), (1, "5"), (0, "11")]
    assert rows[1][2] == "Hello, World."
    view = node.thread_view(page_thread_id(node.author, "http://example.org/"))
    assert view.title == "Hello, World!"
    untitled = node.thread_view(
        page_thread_id(node.author, "http://localhost:4000/blog/2013/02/12/redacted/index.html")
    )
    assert untitled.title == ""
    assert [c.body for c in untitled.comments] == ["Message from thread with empty title and id"]


async def test_isso_disqus_export_with_deleted(node: Node) -> None:
    options = ImportOptions(include_deleted=True)
    report = await import_export(node, fixture("isso/disqus.xml"), source="disqus", options=options)
    assert report.imported == {"comments": 5}
    assert report.imported_by_status == {"deleted": 1}
    assert report.orphans == 0
    view = node.thread_view(page_thread_id(node.author, "http://example.org/"))
    shown = [
        (c.depth, c.retracted, c.provenance.original_id if c.provenance else None)
        for c in view.comments
    ]
    # 4 and 9 have the same date: their order is by id (SPEC §6 rule 2).
    assert sorted(shown) == [(0, False, "4"), (0, True, "9"), (1, False, "11"), (1, False, "5")]
    by_original = {c.provenance.original_id: c for c in view.comments if c.provenance}
    assert by_original["11"].parent == by_original["9"].id  # the tombstone keeps its reply
    assert by_original["9"].body is None


async def test_remark42_disqus_is_not_well_formed(tmp_path: Path) -> None:
    async with open_node(tmp_path / "data", create_identity=True) as node:
        before = node.statistics()
        with pytest.raises(ExportFormatError) as caught:
            await import_export(node, fixture("remark42-disqus.xml"), source="disqus")
        assert caught.value.reason == "not-well-formed"
        assert "line 1, column 1" in caught.value.message
        assert node.statistics() == before
        assert node.threads() == []


async def test_remark42_without_its_backtick_fails_at_line_147(tmp_path: Path, node: Node) -> None:
    # The file's second flaw (an unquoted attribute) is found too, and named by its line.
    stripped = tmp_path / "remark42-stripped.xml"
    stripped.write_bytes(fixture("remark42-disqus.xml").read_bytes()[1:])
    with pytest.raises(ExportFormatError) as caught:
        await import_export(node, stripped, source="disqus")
    assert "line 147" in caught.value.message
    assert node.threads() == []  # parsed fully first: nothing half-imported


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("isso/wordpress.xml", "wordpress"),
        ("isso/disqus.xml", "disqus"),
        ("wordpress-importer-valid-wxr-1.1.xml", "wordpress"),
        ("wordpress-importer-theme-unit-test-data.xml", "wordpress"),
    ],
)
async def test_reimport_adds_nothing_and_carries_no_email_or_ip(
    node: Node, name: str, source: str
) -> None:
    first = await import_export(node, fixture(name), source=source)
    count = node.statistics().operations
    again = await import_export(node, fixture(name), source=source)
    assert again.new_operations == 0
    assert again.operations == first.operations
    assert node.statistics().operations == count
    stored = b"".join(node.export_operations(None))
    for needle in (
        b"@bar.com",
        b"@posativ.org",
        b"@example.org",
        b"127.0.0.1",
        b"86.56.63",
        b"82.119.20",
        b"@gmail.com",
        b"admin@",
    ):
        assert needle not in stored


async def test_wrong_kind_of_export_is_refused(node: Node) -> None:
    with pytest.raises(ExportFormatError) as caught:
        await import_export(node, fixture("isso/disqus.xml"), source="wordpress")
    assert caught.value.reason == "not-an-export"
    assert "<disqus>" in caught.value.message
    assert node.threads() == []


async def test_dry_run_writes_nothing(node: Node) -> None:
    report = await import_export(
        node, fixture("isso/wordpress.xml"), source="wordpress", dry_run=True
    )
    assert report.dry_run
    assert report.new_operations == report.operations == 14
    assert node.threads() == []
    real = await import_export(node, fixture("isso/wordpress.xml"), source="wordpress")
    assert real.new_operations == 14
    again = await import_export(
        node, fixture("isso/wordpress.xml"), source="wordpress", dry_run=True
    )
    assert again.new_operations == 0


async def test_progress_goes_to_the_end_and_the_summary_says_why(node: Node) -> None:
    from p2pcomments.cli.commands.importing import render_import_report

    path = fixture("wordpress-importer-theme-unit-test-data.xml")
    seen: list[tuple[int, int]] = []
    report = await import_export(
        node, path, source="wordpress", progress=lambda done, total: seen.append((done, total))
    )
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    summary = render_import_report(report.to_json())
    assert "imported 26 comments, 2 pingbacks, 2 trackbacks in 77 threads (47 closed)" in summary
    assert "skipped: 107 not-a-post, 2 not-published, 3 unapproved" in summary
    assert "(--include-unapproved to import those)" in summary
