"""Exporting back: WXR that re-imports to the same operations, JSON of everything readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from p2pcomments.core.thread_state import ThreadView
from p2pcomments.importers import ImportOptions, import_export
from p2pcomments.importers.export import (
    EXPORT_FORMAT,
    JSON_THREAD_START,
    export_json,
    export_wxr,
    stream_json,
    stream_wxr,
)
from p2pcomments.importers.wordpress import read_wordpress
from p2pcomments.node import Node, open_node
from tests.importers.conftest import fixture

pytestmark = pytest.mark.trio

CASES = [
    ("isso/wordpress.xml", ImportOptions()),
    ("wordpress-importer-valid-wxr-1.1.xml", ImportOptions()),
    ("wordpress-importer-theme-unit-test-data.xml", ImportOptions(include_unapproved=True)),
]


def _shape(view: ThreadView) -> tuple[object, ...]:
    rows = tuple(
        (
            c.depth,
            c.body,
            c.retracted,
            c.timestamp_ms,
            c.provenance
            and (
                c.provenance.author_name,
                c.provenance.author_url,
                c.provenance.entry_kind,
                c.provenance.original_id,
            ),
        )
        for c in view.comments
    )
    return (view.title, view.url, view.closed, rows)


@pytest.mark.parametrize(("name", "options"), CASES)
async def test_wxr_export_reimports_to_the_same_operations(
    tmp_path: Path, node: Node, name: str, options: ImportOptions
) -> None:
    await import_export(node, fixture(name), source="wordpress", options=options)
    held = set(_all_ids(node))
    exported = tmp_path / "export.xml"
    exported.write_text(export_wxr(node), encoding="utf-8")
    again = await import_export(node, exported, source="wordpress", options=options)
    assert again.new_operations == 0  # the same page threads, titles, comments and closes
    assert set(_all_ids(node)) == held
    # Another node (another key) gets threads that look the same.
    async with open_node(tmp_path / "other", create_identity=True) as other:
        await import_export(other, exported, source="wordpress", options=options)
        mine = sorted(_shape(node.thread_view(t.id)) for t in node.threads())
        theirs = sorted(_shape(other.thread_view(t.id)) for t in other.threads())
        assert mine == theirs


def _all_ids(node: Node) -> list[bytes]:
    return [op_id for state in node.replica.threads.values() for op_id in state.ops]


async def test_wxr_has_the_structure_of_wordpress_exports(tmp_path: Path, node: Node) -> None:
    await import_export(node, fixture("isso/wordpress.xml"), source="wordpress")
    text = export_wxr(node)
    for needle in (
        "<wp:wxr_version>1.2</wp:wxr_version>",
        'xmlns:wp="http://wordpress.org/export/1.2/"',
        "<wp:post_type>post</wp:post_type>",
        "<wp:comment_parent>6</wp:comment_parent>",
        "<wp:comment_approved>1</wp:comment_approved>",
        "<wp:status>publish</wp:status>",
    ):
        assert needle in text
    path = tmp_path / "x.xml"
    path.write_text(text, encoding="utf-8")
    entries = list(read_wordpress(path).entries)  # well-formed, and readable as WXR
    assert len(entries) == 3 + 8


async def test_json_export_holds_every_thread_and_comment(node: Node) -> None:
    await import_export(node, fixture("isso/disqus.xml"), source="disqus")
    document = export_json(node)
    assert document["format"] == EXPORT_FORMAT
    assert document["version"] == 1
    threads = document["threads"]
    assert len(threads) == 2
    comments = [c for t in threads for c in t["comments"]]
    assert len(comments) == 4
    labels = {c["provenance"]["label"] for c in comments}
    assert labels == {"imported from Disqus, 10 Oct 2013", "imported from Disqus, 11 Oct 2013"}
    one = export_json(node, node.threads()[0].id)
    assert len(one["threads"]) == 1


async def test_wxr_of_everything_streamed_is_the_same_text_in_the_memory_of_a_few_threads(
    tmp_path: Path,
) -> None:
    """`stream_wxr`: threads read a few at a time off the event loop and let go after, the
    text exactly `export_wxr`'s, through a cache that keeps no thread."""
    data_dir = tmp_path / "data"
    async with open_node(data_dir, create_identity=True) as node:
        for name, options in CASES:
            await import_export(node, fixture(name), source="wordpress", options=options)
    async with open_node(data_dir, cache_operations=1) as node:
        sizes = [len(node.replica.threads[s.id]) for s in node.threads()]
        largest = max(sizes)
        assert sum(sizes) > largest * 4  # so holding every thread would show
        pieces = []
        async for piece in stream_wxr(node, now_ms=1_700_000_000_000):
            pieces.append(piece)
            assert node.replica._cached_ops <= largest * 2  # what the last piece read, let go
        streamed = "".join(pieces)
        assert streamed == export_wxr(node, now_ms=1_700_000_000_000)
    assert streamed.count("<item>") > 10


async def test_json_of_everything_streamed_is_the_document_in_the_memory_of_a_few_threads(
    tmp_path: Path,
) -> None:
    """`stream_json`: `export_json`'s document (threads before profiles), indented as
    ``json.dumps(..., indent=2)`` writes it, threads read a few at a time and let go after."""
    data_dir = tmp_path / "data"
    async with open_node(data_dir, create_identity=True) as node:
        await node.set_profile("The exporter")
        await import_export(node, fixture("isso/disqus.xml"), source="disqus")
        for name, options in CASES:
            await import_export(node, fixture(name), source="wordpress", options=options)
    async with open_node(data_dir, cache_operations=1) as node:
        sizes = [len(node.replica.threads[s.id]) for s in node.threads()]
        assert sum(sizes) > max(sizes) * 4
        pieces = []
        async for piece in stream_json(node):
            pieces.append(piece)
            assert node.replica._cached_ops <= max(sizes) * 2
        streamed = "".join(pieces)
        document = export_json(node)
    reordered = {k: document[k] for k in ("format", "version", "exported_by", "threads")}
    reordered["profiles"] = document["profiles"]
    assert streamed == json.dumps(reordered, ensure_ascii=False, indent=2) + "\n"
    assert document["profiles"]  # the node's own name at least
    assert streamed.encode().count(JSON_THREAD_START) == len(document["threads"]) > 5


async def test_json_of_no_thread_streamed_is_still_a_document(node: Node) -> None:
    streamed = "".join([piece async for piece in stream_json(node)])
    assert json.loads(streamed) == export_json(node)
    assert json.loads(streamed)["threads"] == []
