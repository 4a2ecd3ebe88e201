"""A web page's comments: its page thread and those of its aliases, merged for display (SPEC §10.4).

Rules:

1. A page is (owner, canonical URL, alias URLs). Its threads are the page threads
   (`core.ops.page_thread`) of the canonical URL, then of each alias URL, in the order given;
   an alias whose normal form is the canonical URL's, or repeats an earlier one, is dropped.
2. A thread nobody has sent yet is shown as its page thread alone would make it: no comments,
   not closed. Nothing here creates it.
3. Merged order: each thread keeps its own display order (SPEC §6 rule 2). The blocks of each
   thread (a top-level comment and the replies under it) are merged like sorted lists by the
   (timestamp_ms, id) of the block's top-level comment; on a tie the earlier thread's block
   comes first. With no alias comments the order is the canonical thread's own.
4. Each merged comment names its thread: a reply goes into the thread of the comment it
   answers. The page is closed when its canonical thread is.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from p2pcomments.core.ops import Operation, page_thread
from p2pcomments.core.page_url import normalise_page_url
from p2pcomments.core.replica import Replica
from p2pcomments.core.thread_state import CommentView, ThreadState, ThreadView

__all__ = ["PageComment", "PageThread", "PageView", "page_view"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PageThread:
    """One of a page's threads: the canonical URL's or an alias's."""

    url: str  # normal form
    operation: Operation  # the page thread operation (held here or not)
    exists: bool  # held (applied) here
    view: ThreadView
    deps: tuple[bytes, ...]  # heads for a new operation in this thread; empty if not held

    @property
    def id(self) -> bytes:
        return self.operation.id


@dataclass(frozen=True, slots=True, kw_only=True)
class PageComment:
    thread_id: bytes
    comment: CommentView


@dataclass(frozen=True, slots=True, kw_only=True)
class PageView:
    """The page as shown: the canonical thread's header, the merged comments (rule 3)."""

    owner: bytes
    canonical: PageThread
    aliases: tuple[PageThread, ...]
    comments: tuple[PageComment, ...]

    @property
    def closed(self) -> bool:
        return self.canonical.view.closed


def page_view(
    replica: Replica,
    owner: bytes,
    url: str,
    aliases: Sequence[str] = (),
    *,
    names: Mapping[bytes, str] | None = None,
) -> PageView:
    """The page of ``url`` owned by ``owner`` with its ``aliases`` as ``replica`` holds it.
    Raises `PageUrlError` for a URL (canonical or alias) that can't name a page."""
    # The replica's own names are versioned: a big thread's view is then kept (thread_state
    # rule 11); names given by the caller are not.
    version = replica.names_version if names is None else None
    shown = replica.names() if names is None else names
    canonical_url = normalise_page_url(url)
    seen = {canonical_url}
    alias_urls = []
    for alias in aliases:
        normal = normalise_page_url(alias)
        if normal not in seen:
            seen.add(normal)
            alias_urls.append(normal)
    canonical = _page_thread(replica, owner, canonical_url, shown, version)
    others = tuple(_page_thread(replica, owner, alias, shown, version) for alias in alias_urls)
    return PageView(
        owner=owner,
        canonical=canonical,
        aliases=others,
        comments=tuple(_merged((canonical, *others))),
    )


def _page_thread(
    replica: Replica, owner: bytes, url: str, names: Mapping[bytes, str], version: int | None
) -> PageThread:
    op = page_thread(owner, url)
    state = replica.threads.get(op.id)
    if state is None:
        return PageThread(
            url=url, operation=op, exists=False, view=ThreadState(op).view(names), deps=()
        )
    return PageThread(
        url=url,
        operation=op,
        exists=True,
        view=state.view(names, names_version=version),
        deps=state.causal_deps(),
    )


def _blocks(thread: PageThread) -> Iterator[tuple[tuple[int, bytes], int, list[PageComment]]]:
    block: list[PageComment] = []
    for comment in thread.view.comments:
        if comment.depth == 0 and block:
            head = block[0].comment
            yield (head.timestamp_ms, head.id), 0, block
            block = []
        block.append(PageComment(thread_id=thread.id, comment=comment))
    if block:
        head = block[0].comment
        yield (head.timestamp_ms, head.id), 0, block


def _merged(threads: Sequence[PageThread]) -> Iterator[PageComment]:
    if not any(thread.view.comments for thread in threads[1:]):
        for comment in threads[0].view.comments:
            yield PageComment(thread_id=threads[0].id, comment=comment)
        return
    # heapq.merge keeps each input's order and, on equal keys, takes the earlier input first.
    streams = [
        ((key, index, block) for key, _, block in _blocks(thread))
        for index, thread in enumerate(threads)
    ]
    for _, _, block in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        yield from block
