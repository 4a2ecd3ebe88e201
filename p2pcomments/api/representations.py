"""The JSON forms of what the Node returns: the API's responses and the CLI's ``--json`` output.

Rules:

1. Every key and id is in its text form (`core.textform`): ``thr_`` for threads, ``cmt_`` for
   comments, ``key_`` for author keys, ``op_`` for any other operation. Raw bytes never appear.
2. Fields are listed explicitly (an allowlist): a new attribute on a view is not published until
   it is added here, and the OpenAPI document describes exactly these keys.
3. Times are integers, milliseconds since the Unix epoch, as the operations carry them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from p2pcomments.core.ops import (
    CommentPayload,
    EditPayload,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    ProfilePayload,
    Provenance,
    ReactPayload,
    ThreadPayload,
)
from p2pcomments.core.replica import Applied, Duplicate, Outcome, Pending, Rejected
from p2pcomments.core.textform import TextKind, format_id

if TYPE_CHECKING:
    from p2pcomments.core.completeness import ThreadCompleteness
    from p2pcomments.core.page_view import PageView
    from p2pcomments.core.thread_state import CommentView, EditView, ThreadView
    from p2pcomments.net.network_statistics import NetworkCounters
    from p2pcomments.net.service import NetworkDescription, PeerSummary, SyncCounts
    from p2pcomments.node import NodeStatistics, ThreadChange, ThreadSummary
    from p2pcomments.node.pages import Submitted

__all__ = [
    "JSONObject",
    "JSONValue",
    "change_json",
    "comment_json",
    "completeness_json",
    "deps_json",
    "key_text",
    "network_counters_json",
    "network_json",
    "operation_json",
    "operation_text_id",
    "outcomes_json",
    "page_json",
    "peer_summary_json",
    "short_key",
    "statistics_json",
    "submitted_json",
    "sync_counts_json",
    "thread_json",
    "thread_summary_json",
]

JSONValue: TypeAlias = Any  # what json.loads returns; precise recursive types buy nothing here
JSONObject: TypeAlias = dict[str, JSONValue]


@functools.lru_cache(maxsize=65_536)
def _text_form(kind: TextKind, raw: bytes) -> str:
    # A thread's view names each comment twice (as itself and as its replies' parent) and each
    # author many times; base32 in pure Python is the largest cost of a big view, so cache it.
    return format_id(kind, raw)


def key_text(key: bytes) -> str:
    return _text_form(TextKind.KEY, key)


def short_key(key: bytes) -> str:
    """A key abbreviated for display where no name is known: ``key_`` and 8 characters."""
    return key_text(key)[:12]


def _optional_key(key: bytes | None) -> str | None:
    return None if key is None else key_text(key)


def operation_text_id(op_id: bytes, kind: Kind | None) -> str:
    """The text form that says what ``op_id`` is: thr_, cmt_ or op_."""
    if kind is Kind.THREAD:
        return _text_form(TextKind.THREAD, op_id)
    if kind is Kind.COMMENT:
        return _text_form(TextKind.COMMENT, op_id)
    return _text_form(TextKind.OPERATION, op_id)


def _reference(ref: bytes, thread: bytes | None) -> str:
    """A reference is the thread or a comment (moderation of a thread targets the thread)."""
    if ref == thread:
        return _text_form(TextKind.THREAD, ref)
    return _text_form(TextKind.COMMENT, ref)


def operation_json(op: Operation) -> JSONObject:
    """One signed operation, as written responses and events carry it."""
    thread_id = op.thread_id
    result: JSONObject = {
        "id": operation_text_id(op.id, op.kind),
        "kind": op.kind.name.lower(),
        "author": key_text(op.author),
        "thread": None if thread_id is None else _text_form(TextKind.THREAD, thread_id),
        "target": _reference(op.refs[0], op.thread) if op.refs else None,
        "timestamp_ms": op.timestamp_ms,
    }
    payload = op.payload
    match payload:
        case ThreadPayload(title=title, url=url, site=site):
            result.update(title=title, url=url, site=site)
        case CommentPayload(body=body, provenance=provenance):
            result["body"] = body
            if provenance is not None:
                result["provenance"] = provenance_json(provenance)
        case EditPayload(body=body):
            result["body"] = body
        case ReactPayload(reaction=reaction):
            result["reaction"] = reaction
        case ModeratePayload(action=action, subject=subject, reason=reason, value=value):
            result.update(
                action=action.name.lower().replace("_", "-"),
                subject=_subject_text(action, subject),
                reason=reason,
            )
            if value is not None:  # a rule's value (SPEC §11.1)
                result["value"] = value
        case ProfilePayload(name=name):
            result["name"] = name
        case _:  # retract: nothing beyond the target
            pass
    return result


def _subject_text(action: ModAction, subject: bytes | None) -> str | None:
    """A moderation's subject in text form: a comment or a thread for the rules that name one
    (SPEC §11.1), else a key."""
    if subject is not None and action in (ModAction.APPROVE_COMMENT, ModAction.REPORT):
        return format_id(TextKind.COMMENT, subject)
    if subject is not None and action is ModAction.RECOMMEND_LIST:
        return format_id(TextKind.THREAD, subject)
    return _optional_key(subject)


def _version(version: EditView, comment_id: bytes) -> JSONObject:
    """One version of a comment's text: its original (the comment's id) or an edit (op_…)."""
    kind = TextKind.COMMENT if version.id == comment_id else TextKind.OPERATION
    return {
        "id": _text_form(kind, version.id),
        "timestamp_ms": version.timestamp_ms,
        "body": version.body,
    }


def comment_json(comment: CommentView, thread_id: bytes) -> JSONObject:
    """One comment. Its history is ``original`` then ``edits`` (both empty once retracted);
    ``answered_version`` is the parent's version a reply flagged ``parent_edited_after``
    answered (the parent's ``original`` or one of its ``edits``), else null."""
    answered = comment.answered
    return {
        "id": _text_form(TextKind.COMMENT, comment.id),
        "author": key_text(comment.author),
        "author_name": comment.author_name,
        "parent": _reference(comment.parent, thread_id),
        "depth": comment.depth,
        "timestamp_ms": comment.timestamp_ms,
        "body": comment.body,
        "edited": bool(comment.edits),
        "edits": [
            {
                "id": _text_form(TextKind.OPERATION, edit.id),
                "timestamp_ms": edit.timestamp_ms,
                "body": edit.body,
            }
            for edit in comment.edits
        ],
        "original": None
        if comment.original_body is None
        else {
            "id": _text_form(TextKind.COMMENT, comment.id),
            "timestamp_ms": comment.timestamp_ms,
            "body": comment.original_body,
        },
        "retracted": comment.retracted,
        "hidden": comment.hidden,
        "hidden_by": _optional_key(comment.hidden_by),
        "reactions": [
            {
                "reaction": reaction.reaction,
                "count": len(reaction.authors),
                "authors": [key_text(author) for author in reaction.authors],
            }
            for reaction in comment.reactions
        ],
        "parent_edited_after": comment.parent_edited_after,
        "answered_version": None if answered is None else _version(answered, comment.parent),
        "after_close": comment.after_close,
        "reply_count": comment.reply_count,
        "provenance": provenance_json(comment.provenance),
        "claimed_by": _optional_key(comment.claimed_by),
        "claimed_by_name": comment.claimed_by_name,
    }


def provenance_json(provenance: Provenance | None) -> JSONObject | None:
    """Where an imported comment comes from (SPEC §2), with the line readers are shown."""
    if provenance is None:
        return None
    from p2pcomments.importers.labels import ENTRY_KIND_NAMES, provenance_label, source_name

    return {
        "source": provenance.source,
        "source_name": source_name(provenance.source),
        "original_id": provenance.original_id,
        "author_name": provenance.author_name,
        "author_url": provenance.author_url,
        "original_timestamp_ms": provenance.original_timestamp_ms,
        "entry_kind": ENTRY_KIND_NAMES[int(provenance.entry_kind)],
        "label": provenance_label(
            provenance.source, provenance.original_timestamp_ms, int(provenance.entry_kind)
        ),
    }


def completeness_json(completeness: ThreadCompleteness, digest: bytes) -> JSONObject:
    """How complete the thread is here (`core.completeness`), with the view's digest."""
    return {
        "verified": completeness.verified,
        "held": completeness.held,
        "pending": len(completeness.pending),
        "rejected": completeness.rejected_count,
        "digest": digest.hex(),
        "pending_operations": [
            {
                "id": operation_text_id(item.id, item.kind),
                "kind": item.kind.name.lower(),
                "missing": [_text_form(TextKind.OPERATION, op_id) for op_id in item.missing],
            }
            for item in completeness.pending
        ],
        "rejected_operations": [
            {
                "id": _text_form(TextKind.OPERATION, item.id),
                "code": item.reason,
                "message": item.message,
                "at_ms": item.at_ms,
            }
            for item in completeness.rejected
        ],
        "rejections_since_ms": completeness.rejections_since_ms,
    }


def thread_json(view: ThreadView, completeness: ThreadCompleteness | None = None) -> JSONObject:
    """The whole thread: header and every comment in display order, each with its depth, and
    (when given) how complete it is here."""
    result = _thread_header(view, completeness)
    result["comments"] = [comment_json(comment, view.id) for comment in view.comments]
    return result


def _thread_header(view: ThreadView, completeness: ThreadCompleteness | None) -> JSONObject:
    """`thread_json` but its comments."""
    digest = view.digest()
    return {
        "id": _text_form(TextKind.THREAD, view.id),
        "title": view.title,
        "url": view.url,
        "site": view.site,
        "owner": key_text(view.owner),
        "owner_name": view.owner_name,
        "timestamp_ms": view.timestamp_ms,
        "closed": view.closed,
        "moderators": [key_text(key) for key in view.moderators],
        "operation_count": view.operation_count,
        "comment_count": len(view.comments),
        "digest": digest.hex(),
        "completeness": None if completeness is None else completeness_json(completeness, digest),
    }


def thread_summary_json(summary: ThreadSummary) -> JSONObject:
    return {
        "id": _text_form(TextKind.THREAD, summary.id),
        "title": summary.title,
        "url": summary.url,
        "site": summary.site,
        "owner": key_text(summary.owner),
        "owner_name": summary.owner_name,
        "comment_count": summary.comment_count,
        "last_activity_ms": summary.last_activity_ms,
        "closed": summary.closed,
        "timestamp_ms": summary.timestamp_ms,
    }


def _plain(value: object) -> JSONValue:
    if isinstance(value, bytes):
        return key_text(value) if len(value) == 32 else value.hex()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def statistics_json(statistics: NodeStatistics) -> JSONObject:
    """Every field of the node's statistics (counters, paths; the author key in text form)."""
    result = _plain(statistics)
    assert isinstance(result, dict)
    return result


def change_json(change: ThreadChange, op: Operation | None, author_name: str | None) -> JSONObject:
    """One live change, as a server-sent event's data."""
    return {
        "thread": None
        if change.thread_id is None
        else _text_form(TextKind.THREAD, change.thread_id),
        "kind": None if change.kind is None else change.kind.name.lower(),
        "id": None if change.op_id is None else operation_text_id(change.op_id, change.kind),
        "lagged": change.lagged,
        "operation": None if op is None else operation_json(op),
        "author_name": author_name,
    }


def outcomes_json(outcomes: list[Outcome]) -> JSONObject:
    """What importing a bundle did: counts, and why each rejected operation was refused."""
    counts = {"applied": 0, "duplicate": 0, "pending": 0, "rejected": 0}
    rejections: list[JSONObject] = []
    for outcome in outcomes:
        match outcome:
            case Applied():
                counts["applied"] += 1
            case Duplicate():
                counts["duplicate"] += 1
            case Pending():
                counts["pending"] += 1
            case Rejected(op_id=op_id, reason=reason, message=message):
                counts["rejected"] += 1
                rejections.append(
                    {
                        "id": _text_form(TextKind.OPERATION, op_id),
                        "code": reason,
                        "message": message,
                    }
                )
    return {**counts, "total": len(outcomes), "rejections": rejections}


def network_counters_json(counters: NetworkCounters) -> JSONObject:
    """The network's counters (``statistics.network``), field by field."""
    return dataclasses.asdict(counters)


def peer_summary_json(peer: PeerSummary) -> JSONObject:
    return {
        "peer_id": peer.peer_id,
        "addrs": list(peer.addrs),
        "connected_since_ms": peer.connected_since_ms,
    }


def sync_counts_json(counts: SyncCounts) -> JSONObject:
    """What a sync round did (``POST /api/network/sync``)."""
    return {
        "peers_synced": counts.peers_synced,
        "received": counts.received,
        "sent": counts.sent,
        "failed": dict(counts.failed),
    }


def network_json(description: NetworkDescription) -> JSONObject:
    """``GET /api/network``: identity, peers, follows, and every statistic of the network."""
    statistics = description.statistics
    gossip = dataclasses.asdict(statistics.gossip)
    gossip["topics"] = list(statistics.gossip.topics)
    host = dataclasses.asdict(statistics.host)
    host["suppressed_logs"] = dict(statistics.host.suppressed_logs)
    return {
        "peer_id": description.peer_id,
        "multiaddrs": list(description.multiaddrs),
        "peers": [peer_summary_json(peer) for peer in description.peers],
        "follows": description.follows.to_json(),
        "statistics": {
            **network_counters_json(statistics.counters),
            "last_sync_error": statistics.last_sync_error,
            "topics": list(statistics.topics),
            "host": host,
            "gossip": gossip,
        },
    }


def deps_json(deps: Sequence[Operation]) -> list[str]:
    """Heads for a new operation's deps, each in the text form of what it is."""
    return [operation_text_id(dep.id, dep.kind) for dep in deps]


def page_json(page: PageView, deps: Sequence[Operation]) -> JSONObject:
    """A web page (SPEC §10): its canonical thread in the shape of `thread_json`, with the
    comments of its aliases' threads merged in (each naming its ``thread``), whether the page
    thread exists here, its bytes (to send before a first comment), ``deps`` (the canonical
    thread's heads, for a new operation) and the aliases."""
    canonical = page.canonical
    result = _thread_header(canonical.view, None)
    comments = []
    for item in page.comments:
        row = comment_json(item.comment, item.thread_id)
        row["thread"] = _text_form(TextKind.THREAD, item.thread_id)
        comments.append(row)
    result.update(
        comments=comments,
        comment_count=len(comments),
        operation_count=canonical.view.operation_count if canonical.exists else 0,
        exists=canonical.exists,
        page_operation=canonical.operation.encoded.hex(),
        deps=deps_json(deps),
        aliases=[
            {
                "url": alias.url,
                "thread": _text_form(TextKind.THREAD, alias.id),
                "exists": alias.exists,
                "closed": alias.view.closed,
            }
            for alias in page.aliases
        ],
    )
    return result


def submitted_json(submitted: Submitted) -> JSONObject:
    """What became of one submitted operation."""
    return {
        "id": operation_text_id(submitted.op.id, submitted.op.kind),
        "state": submitted.state,
        "duplicate": submitted.duplicate,
    }
