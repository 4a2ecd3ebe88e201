"""The handlers of the action table (`p2pcomments.api.actions`), one per action, named as it is.

Each takes the Node and the action's parameters as keyword arguments (ids in text form) and
returns the JSON form of the result (`p2pcomments.api.representations`) or a bundle's bytes. They
only translate: ids from text, results to JSON. What is allowed is for the Node to say.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Final

import trio

from p2pcomments.api.bundle import decode_bundle, encode_bundle, stream_bundle
from p2pcomments.api.errors import BadRequest, UnprocessableRequest
from p2pcomments.api.ids import read_id
from p2pcomments.api.inbox_handlers import inbox as inbox
from p2pcomments.api.inbox_handlers import inbox_mark_read as inbox_mark_read
from p2pcomments.api.rendered import Rendered, documents_of, ready_or_version
from p2pcomments.api.representations import (
    JSONObject,
    comment_json,
    deps_json,
    key_text,
    network_counters_json,
    network_json,
    operation_json,
    outcomes_json,
    page_json,
    statistics_json,
    submitted_json,
    sync_counts_json,
    thread_json,
    thread_summary_json,
)
from p2pcomments.api.rule_handlers import annotate_comment, annotate_page, annotate_thread
from p2pcomments.core.textform import TextKind, parse_id
from p2pcomments.errors import ConflictError, NotFound
from p2pcomments.follows import Follows
from p2pcomments.net.interface import NetworkService, peer_id_of_data_dir

if TYPE_CHECKING:
    from p2pcomments.core.completeness import ThreadCompleteness
    from p2pcomments.core.ops import Operation
    from p2pcomments.core.page_view import PageView
    from p2pcomments.core.rules import CommentRules, ThreadRules
    from p2pcomments.core.thread_state import ThreadView
    from p2pcomments.node import Node

_KEY: Final = frozenset({TextKind.KEY})
_COMMENTS_INLINE: Final = 500  # a thread or page of more is made and rendered off the loop, once


async def _thread(node: Node, text: str) -> bytes:
    return await read_id(node, text, TextKind.THREAD)


async def _comment(node: Node, text: str) -> bytes:
    return await read_id(node, text, TextKind.COMMENT)


def _key(text: str) -> bytes:
    return parse_id(text, expect=_KEY)


def _own_name(node: Node) -> str | None:
    return node.replica.names().get(node.author)


# -- reads ---------------------------------------------------------------------------------------


async def identity(node: Node) -> JSONObject:
    network = node.network
    return {
        "author": key_text(node.author),
        "name": _own_name(node),
        "data_dir": str(node.data_dir),
        # The peer id is known offline too (once the network ran); addresses only while it runs.
        "peer_id": network.peer_id if network is not None else peer_id_of_data_dir(node.data_dir),
        "multiaddrs": network.multiaddrs() if network is not None else [],
    }


async def statistics(node: Node) -> JSONObject:
    result = statistics_json(node.statistics())
    if node.network is not None:
        result["network"] = network_counters_json(node.network.counters())
    return result


async def threads(
    node: Node, *, url: str | None = None, limit: str | None = None, after: str | None = None
) -> JSONObject:
    from p2pcomments.api.thread_paging import page_of, read_cursor, read_limit

    size = None if limit is None else read_limit(limit)
    place = None if after is None else read_cursor(after)
    shown, cursor = page_of(await node.read_threads(url=url), limit=size, after=place)
    return {"threads": [thread_summary_json(summary) for summary in shown], "next": cursor}


async def thread(node: Node, *, thread: str) -> JSONObject | Rendered:
    thread_id = await _thread(node, thread)
    key = ("thread", thread_id)
    async with node.loading([thread_id]):  # a cold thread is read off the loop
        completeness = node.thread_completeness(thread_id)  # NotFound for a thread not held
        # Fewer operations than `_COMMENTS_INLINE` hold fewer comments: never rendered here.
        big = len(node.replica.thread(thread_id)) > _COMMENTS_INLINE
        if big:
            ready, version = await ready_or_version(
                node, key, lambda: _thread_version(node, thread_id)
            )
            if ready is not None:
                return ready
            completeness = version[2]  # as the version read it
        view = node.thread_view(thread_id)
        deps = _deps(node, node.replica.thread(thread_id).causal_deps())
        rules = node.thread_rules(thread_id)
        verdicts = node.comment_rules(thread_id)
    made = functools.partial(_thread_document, view, completeness, deps, rules, verdicts)
    if not big or len(view.comments) <= _COMMENTS_INLINE:
        return made()
    return await documents_of(node).render(key, version, made)


def _thread_version(node: Node, thread_id: bytes) -> tuple[int, ThreadRules, ThreadCompleteness]:
    """What a thread's document is made of (api.rendered rule 1): the names, its rules and its
    completeness (its operations counted, those waiting, rejections)."""
    return (
        node.replica.names_version,
        node.thread_rules(thread_id),
        node.thread_completeness(thread_id),
    )


def _thread_document(
    view: ThreadView,
    completeness: ThreadCompleteness,
    deps: list[str],
    rules: ThreadRules,
    verdicts: Mapping[bytes, CommentRules],
) -> JSONObject:
    document = thread_json(view, completeness)
    document["deps"] = deps
    return annotate_thread(document, view, rules, verdicts)


def _deps(node: Node, deps: tuple[bytes, ...]) -> list[str]:
    """The heads a new operation in the thread should depend on, as text ids."""
    ops = [node.get_operation(dep) for dep in deps]
    return deps_json([op for op in ops if op is not None])


def page_threads(*, url: str, owner: str, alias: list[str]) -> frozenset[bytes]:
    """The ids of a page's threads: its own and its aliases' (for its event stream)."""
    from p2pcomments.core.ops import page_thread

    owner_key = _key(owner)
    return frozenset(page_thread(owner_key, page_url).id for page_url in (url, *alias))


async def page(node: Node, *, url: str, owner: str, alias: list[str]) -> JSONObject | Rendered:
    threads = page_threads(url=url, owner=owner, alias=alias)
    # Every widget on a popular post reloads it after each comment: one render for them all,
    # found before anything is made of the page.
    key = ("page", url, owner, tuple(alias))
    async with node.loading(list(threads)):  # cold threads are read off the loop
        held = [thread_id for thread_id in threads if thread_id in node.replica.threads]
        # Fewer operations than `_COMMENTS_INLINE` hold fewer comments: never rendered here.
        big = sum(len(node.replica.thread(thread_id)) for thread_id in held) > _COMMENTS_INLINE
        if big:
            ready, version = await ready_or_version(node, key, lambda: _page_version(node, held))
            if ready is not None:
                return ready
        view = node.page_view(url, _key(owner), aliases=alias)
        deps = [op for op in map(node.get_operation, view.canonical.deps) if op]
        canonical = view.canonical.operation.id
        rules = node.thread_rules(canonical) if canonical in held else None
        verdicts = {thread_id: node.comment_rules(thread_id) for thread_id in held}
    make = functools.partial(_page_document, view, deps, rules, verdicts)
    if not big or len(view.comments) <= _COMMENTS_INLINE:
        return make()
    return await documents_of(node).render(key, version, make)


def _page_version(node: Node, held: list[bytes]) -> object:
    """What a page's document is made of (api.rendered rule 1): its threads' operations, the
    names and each thread's rules, read in the step that makes it."""
    return (
        [(thread_id, len(node.replica.thread(thread_id))) for thread_id in held],
        node.replica.names_version,
        [node.thread_rules(thread_id) for thread_id in held],
    )


def _page_document(
    view: PageView,
    deps: list[Operation],
    rules: ThreadRules | None,
    verdicts: Mapping[bytes, Mapping[bytes, CommentRules]],
) -> JSONObject:
    return annotate_page(page_json(view, deps), view, rules, verdicts)


async def submit_operations(node: Node, *, operations: list[bytes]) -> JSONObject:
    submitted = await node.submit_operations(operations)
    if len(operations) == 1:
        return submitted_json(submitted[0])
    return {"operations": [submitted_json(item) for item in submitted]}


async def get_comment(node: Node, *, comment: str) -> JSONObject:
    comment_id = await _comment(node, comment)
    thread_id, _ = node.resolve(comment_id)
    async with node.loading([thread_id]):
        view = node.thread_view(thread_id)
    for row in view.comments:
        if row.id == comment_id:
            return annotate_comment(node, thread_id, comment_json(row, thread_id))
    raise NotFound(f"no comment {comment} here")


async def profile(node: Node) -> JSONObject:
    return {"author": key_text(node.author), "name": _own_name(node)}


async def export(node: Node) -> AsyncIterator[bytes]:
    """Every operation held, streamed: a store larger than memory exports a few threads at a
    time (`Node.export_pieces`)."""
    return stream_bundle(node.export_pieces())


async def export_thread(node: Node, *, thread: str) -> bytes:
    thread_id = await _thread(node, thread)
    async with node.loading([thread_id]):
        return encode_bundle(node.export_operations(thread_id))


# -- writes --------------------------------------------------------------------------------------


async def create_thread(
    node: Node, *, title: str, url: str | None = None, site: str | None = None
) -> JSONObject:
    return operation_json(await node.create_thread(title, url=url, site=site))


async def comment(node: Node, *, thread: str, body: str) -> JSONObject:
    return operation_json(await node.comment(await _thread(node, thread), body))


async def reply(node: Node, *, comment: str, body: str) -> JSONObject:
    return operation_json(await node.reply(await _comment(node, comment), body))


async def edit(node: Node, *, comment: str, body: str) -> JSONObject:
    return operation_json(await node.edit(await _comment(node, comment), body))


async def retract(node: Node, *, comment: str) -> JSONObject:
    return operation_json(await node.retract(await _comment(node, comment)))


async def react(node: Node, *, comment: str, reaction: str) -> JSONObject:
    return operation_json(await node.react(await _comment(node, comment), reaction))


async def hide(node: Node, *, comment: str, reason: str = "") -> JSONObject:
    return operation_json(await node.hide(await _comment(node, comment), reason=reason))


async def unhide(node: Node, *, comment: str, reason: str = "") -> JSONObject:
    return operation_json(await node.unhide(await _comment(node, comment), reason=reason))


async def claim(node: Node, *, comment: str, note: str = "") -> JSONObject:
    return operation_json(await node.claim(await _comment(node, comment), note=note))


async def accept_claim(node: Node, *, claim: str, note: str = "") -> JSONObject:
    claim_id = await read_id(node, claim, TextKind.OPERATION)
    return operation_json(await node.accept_claim(claim_id, note=note))


async def close(node: Node, *, thread: str, reason: str = "") -> JSONObject:
    return operation_json(await node.close(await _thread(node, thread), reason=reason))


async def reopen(node: Node, *, thread: str, reason: str = "") -> JSONObject:
    return operation_json(await node.reopen(await _thread(node, thread), reason=reason))


async def add_moderator(node: Node, *, thread: str, key: str) -> JSONObject:
    return operation_json(await node.add_moderator(await _thread(node, thread), _key(key)))


async def remove_moderator(node: Node, *, thread: str, key: str) -> JSONObject:
    return operation_json(await node.remove_moderator(await _thread(node, thread), _key(key)))


async def retitle(node: Node, *, thread: str, title: str) -> JSONObject:
    return operation_json(await node.retitle(await _thread(node, thread), title))


async def ensure_page_thread(node: Node, *, url: str, owner: str) -> JSONObject | Rendered:
    owner_key = _key(owner)
    await node.ensure_page_thread(url, owner_key)
    return await page(node, url=url, owner=owner, alias=[])


async def set_profile(node: Node, *, name: str) -> JSONObject:
    return operation_json(await node.set_profile(name))


async def import_bundle(node: Node, *, bundle: bytes) -> JSONObject:
    return outcomes_json(await node.ingest(decode_bundle(bundle), source="import"))


def _flag(name: str, value: str | None) -> bool:
    if value in (None, "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise BadRequest(f"{name} is true or false, not {value!r}", reason="bad-field")


async def import_wordpress(node: Node, *, export: bytes, **flags: str | None) -> JSONObject:
    return await _import_export(node, "wordpress", export, **flags)


async def import_disqus(node: Node, *, export: bytes, **flags: str | None) -> JSONObject:
    return await _import_export(node, "disqus", export, **flags)


async def _import_export(
    node: Node,
    format: str,
    export: bytes,
    *,
    include_unapproved: str | None = None,
    include_spam: str | None = None,
    include_deleted: str | None = None,
    dry_run: str | None = None,
) -> JSONObject:
    import tempfile
    from pathlib import Path

    from p2pcomments.importers import ImportOptions
    from p2pcomments.importers import import_export as run_import

    options = ImportOptions(
        include_unapproved=_flag("include_unapproved", include_unapproved),
        include_spam=_flag("include_spam", include_spam),
        include_deleted=_flag("include_deleted", include_deleted),
    )
    # The importer streams from a file (bounded memory, two passes): the body goes to one in
    # the data dir, removed once read.
    with tempfile.TemporaryDirectory(prefix="import-", dir=node.data_dir) as directory:
        path = Path(directory) / f"{format}.xml"
        await trio.to_thread.run_sync(path.write_bytes, export)
        report = await run_import(
            node,
            path,
            source=format,
            options=options,
            dry_run=_flag("dry_run", dry_run),
        )
    return report.to_json()


async def export_json(node: Node) -> AsyncIterator[bytes]:
    """Every thread as readable JSON, streamed a few threads at a time (as `export`)."""
    from p2pcomments.importers.export import stream_json

    return (piece.encode("utf-8") async for piece in stream_json(node))


async def export_thread_json(node: Node, *, thread: str) -> JSONObject:
    from p2pcomments.importers.export import export_json as document

    return document(node, await _thread(node, thread))


async def export_wxr(node: Node) -> AsyncIterator[bytes]:
    """Every thread with a URL as WXR, streamed a few threads at a time (as `export`)."""
    from p2pcomments.importers.export import stream_wxr

    return (piece.encode("utf-8") async for piece in stream_wxr(node))


async def export_thread_wxr(node: Node, *, thread: str) -> bytes:
    from p2pcomments.importers.export import export_wxr as document

    return document(node, await _thread(node, thread)).encode("utf-8")


# -- the network ---------------------------------------------------------------------------------


def _network(node: Node) -> NetworkService:
    if node.network is None:
        raise ConflictError(
            "the network is not running here: start `p2pc daemon` (without --no-network)",
            reason="network-off",
        )
    return node.network


async def _follow_target(
    node: Node, thread: str | None, site: str | None
) -> tuple[bytes | None, str | None]:
    if (thread is None) == (site is None):
        raise UnprocessableRequest("give either a thread or a site", reason="missing-field")
    if thread is not None:
        return await _thread(node, thread), None
    return None, site


def _follows_json(follows: Follows, changed: bool | None = None) -> JSONObject:
    result: JSONObject = dict(follows.to_json())
    if changed is not None:
        result["changed"] = changed
    return result


async def network(node: Node) -> JSONObject:
    return network_json(_network(node).describe())


async def network_connect(node: Node, *, multiaddr: str) -> JSONObject:
    try:
        peer_id = await _network(node).connect(multiaddr.strip())
    except ValueError as error:
        raise BadRequest(f"not a peer address: {error}", reason="bad-multiaddr") from None
    return {"peer_id": peer_id}


async def network_sync(node: Node, *, peer_id: str | None = None) -> JSONObject:
    counts = await _network(node).sync_now(peer_id or None)
    return sync_counts_json(counts)


async def follows(node: Node) -> JSONObject:
    return _follows_json(node.follows())


async def follow(node: Node, *, thread: str | None = None, site: str | None = None) -> JSONObject:
    thread_id, site_name = await _follow_target(node, thread, site)
    try:
        changed = await node.follow(thread=thread_id, site=site_name)
    except ValueError as error:
        raise BadRequest(str(error), reason="bad-site") from None
    return _follows_json(node.follows(), changed)


async def unfollow(node: Node, *, thread: str | None = None, site: str | None = None) -> JSONObject:
    thread_id, site_name = await _follow_target(node, thread, site)
    try:
        changed = await node.unfollow(thread=thread_id, site=site_name)
    except ValueError as error:
        raise BadRequest(str(error), reason="bad-site") from None
    return _follows_json(node.follows(), changed)
