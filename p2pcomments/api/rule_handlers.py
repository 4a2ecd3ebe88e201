"""The handlers of the rule actions (SPEC §11; `api.actions` `_RULE_ACTIONS`): rules in, the
rules in force, the moderation queue, reports and the reader's mutes out. They only translate:
ids from text, results to JSON (`rules_json`); what is allowed is for the Node to say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from p2pcomments.api.errors import BadRequest
from p2pcomments.api.ids import read_id
from p2pcomments.api.representations import JSONObject, operation_json
from p2pcomments.core.ops import Operation, ReplyGate, ThreadMode
from p2pcomments.core.textform import TextKind, format_id, parse_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from p2pcomments.core.page_view import PageView
    from p2pcomments.core.rules import CommentRules, RuleSet, ThreadRules
    from p2pcomments.core.thread_state import ThreadView
    from p2pcomments.node import Node

__all__ = [
    "annotate_comment",
    "annotate_page",
    "annotate_thread",
    "approve_author",
    "approve_comment",
    "ban",
    "list_subscribe",
    "list_unsubscribe",
    "moderation_queue",
    "mute",
    "mutes",
    "recommend_list",
    "report",
    "reports",
    "revoke_author",
    "rules",
    "set_difficulty",
    "set_mode",
    "set_replies",
    "unban",
    "unmute",
]

_KEY: Final = frozenset({TextKind.KEY})
MODES: Final = {
    "open": ThreadMode.OPEN,
    "pre-moderated": ThreadMode.PRE_MODERATED,
    "members-only": ThreadMode.MEMBERS_ONLY,
    "read-only": ThreadMode.READ_ONLY,
}
REPLY_GATES: Final = {
    "everyone": ReplyGate.EVERYONE,
    "approved": ReplyGate.APPROVED,
    "nobody-new": ReplyGate.NOBODY_NEW,
}
_MODE_NAMES: Final = {int(v): k for k, v in MODES.items()}
_GATE_NAMES: Final = {int(v): k for k, v in REPLY_GATES.items()}


def _key_text(key: bytes) -> str:
    return format_id(TextKind.KEY, key)


async def _scope(node: Node, thread: str | None, site: str | None) -> bytes:
    """A rule's scope (module rule 1 of `node.moderation`): a thread, or this author's site
    thread of ``site`` (stored here if need be)."""
    if (thread is None) == (site is None):
        raise BadRequest("give a thread or a site, not both", reason="missing-field")
    if site is not None:
        return (await node.ensure_site_thread(site.strip())).id
    assert thread is not None
    return await read_id(node, thread, TextKind.THREAD)


def _int(text: str, name: str, *, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise BadRequest(f"{name} must be an integer", reason="bad-field") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be in [{low}, {high}]", reason="bad-field")
    return value


# -- writes --------------------------------------------------------------------------------------


async def ban(
    node: Node,
    *,
    key: str,
    thread: str | None = None,
    site: str | None = None,
    reason: str = "",
    until_ms: str = "0",
) -> JSONObject:
    until = _int(until_ms, "until_ms", low=0, high=2**63 - 1)
    scope = await _scope(node, thread, site)
    return operation_json(
        await node.ban(scope, parse_id(key, expect=_KEY), reason=reason, until_ms=until)
    )


async def unban(
    node: Node, *, key: str, thread: str | None = None, site: str | None = None, reason: str = ""
) -> JSONObject:
    scope = await _scope(node, thread, site)
    return operation_json(await node.unban(scope, parse_id(key, expect=_KEY), reason=reason))


async def approve_author(
    node: Node, *, key: str, thread: str | None = None, site: str | None = None, reason: str = ""
) -> JSONObject:
    scope = await _scope(node, thread, site)
    return operation_json(
        await node.approve_author(scope, parse_id(key, expect=_KEY), reason=reason)
    )


async def revoke_author(
    node: Node, *, key: str, thread: str | None = None, site: str | None = None, reason: str = ""
) -> JSONObject:
    scope = await _scope(node, thread, site)
    return operation_json(
        await node.revoke_author(scope, parse_id(key, expect=_KEY), reason=reason)
    )


async def approve_comment(
    node: Node, *, comment: str, site: str | None = None, reason: str = ""
) -> JSONObject:
    comment_id = await read_id(node, comment, TextKind.COMMENT)
    scope = (await node.ensure_site_thread(site.strip())).id if site is not None else None
    return operation_json(await node.approve_comment(comment_id, scope=scope, reason=reason))


async def set_mode(
    node: Node, *, mode: str, thread: str | None = None, site: str | None = None, reason: str = ""
) -> JSONObject:
    if mode not in MODES:
        raise BadRequest(f"mode is one of {', '.join(MODES)}", reason="bad-field")
    scope = await _scope(node, thread, site)
    return operation_json(await node.set_mode(scope, MODES[mode], reason=reason))


async def set_replies(
    node: Node, *, who: str, thread: str | None = None, site: str | None = None, reason: str = ""
) -> JSONObject:
    if who not in REPLY_GATES:
        raise BadRequest(f"who is one of {', '.join(REPLY_GATES)}", reason="bad-field")
    scope = await _scope(node, thread, site)
    return operation_json(await node.set_replies(scope, REPLY_GATES[who], reason=reason))


async def set_difficulty(
    node: Node, *, bits: str, thread: str | None = None, site: str | None = None, reason: str = ""
) -> JSONObject:
    value = _int(bits, "bits", low=0, high=64)
    scope = await _scope(node, thread, site)
    return operation_json(await node.set_difficulty(scope, value, reason=reason))


async def report(node: Node, *, comment: str, reason: str) -> JSONObject:
    comment_id = await read_id(node, comment, TextKind.COMMENT)
    return operation_json(await node.report(comment_id, reason))


async def recommend_list(
    node: Node,
    *,
    list: str,
    thread: str | None = None,
    site: str | None = None,
    recommend: str = "true",
) -> JSONObject:
    scope = await _scope(node, thread, site)
    list_thread = parse_id(list, expect=frozenset({TextKind.THREAD}))
    return operation_json(
        await node.recommend_list(scope, list_thread, recommend=recommend.strip() != "false")
    )


# -- reads ---------------------------------------------------------------------------------------


def rule_set_json(rule_set: RuleSet) -> JSONObject:
    return {
        "thread": format_id(TextKind.THREAD, rule_set.thread),
        "owner": _key_text(rule_set.owner),
        "moderators": [_key_text(k) for k in sorted(rule_set.moderators)],
        "mode": _MODE_NAMES[rule_set.mode.value] if rule_set.mode else "open",
        "replies": _GATE_NAMES[rule_set.replies.value] if rule_set.replies else "everyone",
        "difficulty": rule_set.difficulty.value if rule_set.difficulty else 0,
        "bans": [
            {
                "key": _key_text(ban.author),
                "by": _key_text(ban.by),
                "reason": ban.reason,
                "until_ms": ban.until_ms or None,
                "timestamp_ms": ban.timestamp_ms,
            }
            for ban in sorted(rule_set.bans.values(), key=lambda b: b.author)
        ],
        "approved_authors": [_key_text(k) for k in sorted(rule_set.approved_authors)],
        "approved_comments": [
            format_id(TextKind.COMMENT, c) for c in sorted(rule_set.approved_comments)
        ],
        "recommended_lists": [format_id(TextKind.THREAD, t) for t in rule_set.recommended_lists],
        "report_count": len(rule_set.reports),
    }


def thread_rules_json(rules: ThreadRules) -> JSONObject:
    return {
        "thread": rule_set_json(rules.own),
        "site": rule_set_json(rules.site) if rules.site is not None else None,
        "difficulty": max((s.difficulty.value for s in rules.scopes if s.difficulty), default=0),
    }


def comment_rules_json(verdict: CommentRules) -> JSONObject:
    return {
        "withheld": list(verdict.withheld),
        "muted": verdict.muted,
        "reports": [
            {
                "reporter": _key_text(r.reporter),
                "reason": r.reason,
                "timestamp_ms": r.timestamp_ms,
                "id": format_id(TextKind.OPERATION, r.op_id),
            }
            for r in verdict.reports
        ],
    }


def annotate_thread(
    document: JSONObject,
    view: ThreadView,
    rules: ThreadRules,
    verdicts: Mapping[bytes, CommentRules],
) -> JSONObject:
    """Adds to a thread's JSON (GET /api/threads/{thread}, made of ``view`` by `thread_json`)
    the rules in force and, per comment, ``withheld``, ``muted`` and ``reports`` (SPEC §11.3;
    not in the digest), from ``Node.thread_rules`` and ``Node.comment_rules``. Pure: a big
    thread's is made off the loop."""
    document["rules"] = thread_rules_json(rules)
    for row, comment in zip(view.comments, document["comments"], strict=True):
        verdict = verdicts.get(row.id)
        if verdict is not None:
            comment.update(comment_rules_json(verdict))
    return document


def annotate_page(
    document: JSONObject,
    page: PageView,
    rules: ThreadRules | None,
    verdicts: Mapping[bytes, Mapping[bytes, CommentRules]],
) -> JSONObject:
    """`annotate_thread` for a page (GET /api/page, made of ``page`` by `page_json`): its
    comments, each by its own thread's rules (``verdicts`` by thread, from
    ``Node.comment_rules``), and the canonical thread's rules (None while the node does not
    hold it). Pure: a big page's is made off the loop."""
    document["rules"] = None if rules is None else thread_rules_json(rules)
    for item, comment in zip(page.comments, document["comments"], strict=True):
        verdict = verdicts.get(item.thread_id, {}).get(item.comment.id)
        if verdict is not None:
            comment.update(comment_rules_json(verdict))
    return document


def annotate_comment(node: Node, thread_id: bytes, document: JSONObject) -> JSONObject:
    """`annotate_thread` for one comment's JSON (GET /api/comments/{comment})."""
    verdict = node.comment_rules(thread_id).get(parse_id(document["id"]))
    if verdict is not None:
        document.update(comment_rules_json(verdict))
    return document


async def rules(node: Node, *, thread: str) -> JSONObject:
    thread_id = await read_id(node, thread, TextKind.THREAD)
    return thread_rules_json(node.thread_rules(thread_id))


def _comment_entry(node: Node, thread_id: bytes, op: Operation) -> dict[str, Any]:
    return {
        "thread": format_id(TextKind.THREAD, thread_id),
        "id": format_id(TextKind.COMMENT, op.id),
        "author": _key_text(op.author),
        "author_name": node.replica.names().get(op.author),
        "timestamp_ms": op.timestamp_ms,
        "body": op.payload.body,  # type: ignore[union-attr]
    }


async def moderation_queue(node: Node, *, thread: str | None = None) -> JSONObject:
    thread_id = await read_id(node, thread, TextKind.THREAD) if thread is not None else None
    entries = await node.moderation_queue(thread_id)
    return {
        "waiting": [
            {**_comment_entry(node, e.thread, e.comment), "withheld": list(e.withheld)}
            for e in entries
        ]
    }


async def reports(node: Node, *, thread: str | None = None) -> JSONObject:
    thread_id = await read_id(node, thread, TextKind.THREAD) if thread is not None else None
    return {
        "reported": [
            {**_comment_entry(node, e.thread, e.comment), **comment_rules_json(e.verdict)}
            for e in await node.reports(thread_id)
        ]
    }


def _mutes_json(node: Node) -> JSONObject:
    current = node.mutes()
    return {
        "keys": sorted(_key_text(k) for k in current.keys),
        "lists": sorted(format_id(TextKind.THREAD, t) for t in current.lists),
        "muted": sorted(_key_text(k) for k in node.muted_keys()),
    }


async def mutes(node: Node) -> JSONObject:
    return _mutes_json(node)


async def mute(node: Node, *, key: str) -> JSONObject:
    changed = node.mute(parse_id(key, expect=_KEY))
    return {**_mutes_json(node), "changed": changed}


async def unmute(node: Node, *, key: str) -> JSONObject:
    changed = node.unmute(parse_id(key, expect=_KEY))
    return {**_mutes_json(node), "changed": changed}


async def list_subscribe(node: Node, *, list: str) -> JSONObject:
    changed = node.subscribe_list(parse_id(list, expect=frozenset({TextKind.THREAD})))
    return {**_mutes_json(node), "changed": changed}


async def list_unsubscribe(node: Node, *, thread: str) -> JSONObject:
    changed = node.unsubscribe_list(parse_id(thread, expect=frozenset({TextKind.THREAD})))
    return {**_mutes_json(node), "changed": changed}
