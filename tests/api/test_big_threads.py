"""A thread or a page of more comments than `handlers._COMMENTS_INLINE` is made into JSON off
the loop from what was read of the node on it: the same document, its rules and per-comment
verdicts included, as one made inline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import trio
import trio.testing
from nacl.signing import SigningKey

from p2pcomments.api import handlers, rendered
from p2pcomments.api.rendered import Rendered
from p2pcomments.core import thread_state
from p2pcomments.core.ops import CommentPayload, ProfilePayload, ThreadMode, make_operation
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.node import moderation, open_node

T = TypeVar("T")


def _json(document: object) -> object:
    """A handler's document: a big thread or page comes rendered (`api.rendered`)."""
    return json.loads(document.body) if isinstance(document, Rendered) else document


def _made_in_workers(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """From now on, threads of more than 5 comments are made off the loop; the functions run
    in worker threads are listed in the list returned."""
    made: list[object] = []
    run_sync = trio.to_thread.run_sync

    async def counted(*args: object, **kwargs: object) -> object:
        made.append(getattr(args[0], "func", args[0]))
        return await run_sync(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(handlers, "_COMMENTS_INLINE", 5)
    monkeypatch.setattr(trio.to_thread, "run_sync", counted)
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

        inline = _json(await handlers.thread(node, thread=text))
        made_in_workers = _made_in_workers(monkeypatch)
        off_loop = _json(await handlers.thread(node, thread=text))

    assert rendered._render in made_in_workers  # made and rendered there (api.rendered)
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

        inline = _json(await handlers.page(node, url=url, owner=owner, alias=[]))
        made_in_workers = _made_in_workers(monkeypatch)
        off_loop = _json(await handlers.page(node, url=url, owner=owner, alias=[]))

    assert rendered._render in made_in_workers  # made and rendered there (api.rendered)
    assert off_loop == inline
    assert len(inline["comments"]) == 12
    reported = next(c for c in inline["comments"] if c["body"] == "comment 5")
    assert [report["reason"] for report in reported["reports"]] == ["off topic"]
    assert inline["rules"] is not None


@pytest.mark.trio
async def test_a_cold_big_thread_is_shown_from_a_view_and_verdicts_made_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Node.loading` makes a big thread's view and the rules' verdicts in the worker thread
    that read it (thread_walk rule 5): the loop only takes them, and the page is the one a warm
    node shows, its site's rules, a reader's name and pre-moderation included."""
    monkeypatch.setattr(thread_state, "_KEPT_ABOVE", 5)
    url, reader = "https://blog.example.org/popular", SigningKey(b"\x07" * 32)
    async with open_node(tmp_path / "data", create_identity=True) as node:
        site = await node.ensure_site_thread("blog.example.org")
        await node.set_mode(site.id, ThreadMode.PRE_MODERATED)
        page = await node.ensure_page_thread(url, node.author)
        now_ms = int(time.time() * 1000)  # after the site's mode: held for a moderator
        ops = [make_operation(reader, ProfilePayload(name="A Reader"), timestamp_ms=now_ms)]
        ops += [
            make_operation(
                reader,
                CommentPayload(body=f"comment {n}"),
                timestamp_ms=now_ms + n,
                thread=page.id,
                refs=(page.id,),
                deps=frozenset({page.id}),
            )
            for n in range(12)
        ]
        await node.ingest([op.encoded for op in ops])
        await node.approve_comment(ops[4].id)
        await node.comment(page.id, "the owner's own")
        owner, thread = node.author.hex(), format_id(TextKind.THREAD, page.id)
        warm_page = _json(await handlers.page(node, url=url, owner=owner, alias=[]))
        warm_thread = _json(await handlers.thread(node, thread=thread))

    made_on: list[str] = []
    view, judge = thread_state.ThreadState._view, moderation.judge_thread

    def where(make: Callable[..., T]) -> Callable[..., T]:
        def recorded(*args: object) -> T:
            made_on.append(
                "loop" if threading.current_thread() is threading.main_thread() else "worker"
            )
            return make(*args)

        return recorded

    monkeypatch.setattr(thread_state.ThreadState, "_view", where(view))
    monkeypatch.setattr(moderation, "judge_thread", where(judge))
    async with open_node(tmp_path / "data") as node:  # the page thread is not in memory
        assert node.replica.in_memory(page.id) is None
        cold_page = _json(await handlers.page(node, url=url, owner=owner, alias=[]))
        assert made_on == ["worker", "worker"]  # one view, one set of verdicts
        cold_thread = _json(await handlers.thread(node, thread=thread))
    assert made_on == ["worker", "worker"]  # the thread's document took them as they were
    for document in (cold_thread, warm_thread):  # the node's open time
        del document["completeness"]["rejections_since_ms"]
    assert cold_thread == warm_thread
    assert cold_page == warm_page
    assert warm_page["rules"]["site"]["mode"] == "pre-moderated"
    names = {c["author_name"] for c in warm_page["comments"]}
    assert "A Reader" in names
    withheld = [c["body"] for c in warm_page["comments"] if c["withheld"] == ["pre-moderated"]]
    assert len(withheld) == 11
    assert "comment 3" not in withheld  # approved: shown


@pytest.mark.trio
@pytest.mark.parametrize("breaks", [False, True], ids=["stale", "broken"])
async def test_a_view_made_while_a_comment_arrives_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, breaks: bool
) -> None:
    """thread_walk rule 5: the loop applies a comment while the worker thread makes the view;
    what the worker made (stale, or an exception from reading a state that changed under it) is
    dropped, and the view shown, made on the loop, has the comment."""
    monkeypatch.setattr(thread_state, "_KEPT_ABOVE", 5)
    applied, made_on = threading.Event(), []
    view = thread_state.ThreadState._view

    def made_late(state: thread_state.ThreadState, names: object) -> object:
        if threading.current_thread() is threading.main_thread():
            made_on.append("loop")
        else:
            made_on.append("worker")
            assert applied.wait(10)
            if breaks:
                raise RuntimeError("dictionary changed size during iteration")
        return view(state, names)  # type: ignore[arg-type]

    async with open_node(tmp_path / "data", create_identity=True) as node:
        thread = await node.create_thread("Popular")
        for n in range(8):
            await node.comment(thread.id, f"comment {n}")
        monkeypatch.setattr(thread_state.ThreadState, "_view", made_late)
        shown: dict[str, object] = {}

        async def show() -> None:
            shown.update(
                _json(await handlers.thread(node, thread=format_id(TextKind.THREAD, thread.id)))
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(show)
            await trio.testing.wait_all_tasks_blocked()  # the worker waits for the comment
            await node.comment(thread.id, "arrived meanwhile")
            applied.set()
    assert made_on == ["worker", "loop"]
    bodies = [comment["body"] for comment in shown["comments"]]  # type: ignore[attr-defined]
    assert bodies[-1] == "arrived meanwhile"
    assert len(bodies) == 9
