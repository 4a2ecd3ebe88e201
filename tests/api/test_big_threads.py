"""A thread or a page of more comments than `handlers._COMMENTS_INLINE` is made into JSON off
the loop from what was read of the node on it: the same document, its rules and per-comment
verdicts included, as one made inline."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from p2pcomments.api import handlers
from p2pcomments.core.ops import ThreadMode
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.node import open_node


def _made_in_workers(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """From now on, threads of more than 5 comments are made off the loop; the functions run
    in worker threads are listed in the list returned."""
    made: list[object] = []
    run_sync = trio.to_thread.run_sync

    async def counted(*args: object, **kwargs: object) -> object:
        made.append(getattr(args[0], "func", args[0]))
        return await run_sync(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(handlers, "_COMMENTS_INLINE", 5)
    monkeypatch.setattr(handlers.trio.to_thread, "run_sync", counted)
    return made


@pytest.mark.trio
async def test_a_big_thread_is_the_same_document_made_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_node(tmp_path / "data", create_identity=True) as node:
        thread = await node.create_thread("Popular")
        comments = [await node.comment(thread.id, f"comment {n}") for n in range(12)]
        await node.report(comments[3].id, "spam")
        await node.set_mode(thread.id, ThreadMode.PRE_MODERATED)
        text = format_id(TextKind.THREAD, thread.id)

        inline = await handlers.thread(node, thread=text)
        made_in_workers = _made_in_workers(monkeypatch)
        off_loop = await handlers.thread(node, thread=text)

    assert handlers._thread_document in made_in_workers
    assert off_loop == inline
    reported = next(c for c in inline["comments"] if c["body"] == "comment 3")
    assert [report["reason"] for report in reported["reports"]] == ["spam"]
    assert inline["rules"]["thread"]["mode"] == "pre-moderated"


@pytest.mark.trio
async def test_a_big_page_is_the_same_document_made_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "https://blog.example/popular"
    async with open_node(tmp_path / "data", create_identity=True) as node:
        page = await node.ensure_page_thread(url, node.author)
        comments = [await node.comment(page.id, f"comment {n}") for n in range(12)]
        await node.report(comments[5].id, "off topic")
        owner = node.author.hex()

        inline = await handlers.page(node, url=url, owner=owner, alias=[])
        made_in_workers = _made_in_workers(monkeypatch)
        off_loop = await handlers.page(node, url=url, owner=owner, alias=[])

    assert handlers._page_document in made_in_workers
    assert off_loop == inline
    assert len(inline["comments"]) == 12
    reported = next(c for c in inline["comments"] if c["body"] == "comment 5")
    assert [report["reason"] for report in reported["reports"]] == ["off topic"]
    assert inline["rules"] is not None
