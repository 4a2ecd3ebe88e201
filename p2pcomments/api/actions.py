"""Everything the API can do, as one table: the HTTP routes, the OpenAPI document and the CLI (both
through a daemon and offline) are all made from it, so they can't drift apart.

Each `Action` names its HTTP method and path, the query parameters and body fields it accepts, and
its handler in `p2pcomments.api.handlers`, which takes the Node and keyword arguments (the path
parameters, in text form, the query parameters and the body fields) and returns the JSON form of
the result, or a bundle's bytes. A query parameter an action does not list is refused (400).

This module must stay cheap to import (no core, no Starlette, no trio): the CLI loads it on every
command, and one that talks to a daemon needs only the table, never the handlers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "ACTIONS",
    "ACTIONS_BY_NAME",
    "OPERATIONS_MEDIA_TYPE",
    "OPERATION_MEDIA_TYPE",
    "Action",
    "Field",
    "Handler",
    "path_parameters",
]

OPERATION_MEDIA_TYPE: Final = "application/vnd.p2pcomments.op"  # one operation's bytes
OPERATIONS_MEDIA_TYPE: Final = "application/vnd.p2pcomments.ops"  # a gossip batch, SPEC §8.4

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One field a JSON request body may hold. Every field is text (or null where ``nullable``)."""

    name: str
    description: str
    required: bool = False
    nullable: bool = False
    default: str | None = None
    repeated: bool = False  # a query parameter that may be given several times: a list


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    name: str
    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    summary: str
    fields: tuple[Field, ...] = ()
    query: tuple[Field, ...] = ()  # optional query parameters (text; absent: the default)
    # "export": WXR/Disqus; "operations": one operation or a batch (SPEC §8.4), by Content-Type
    consumes: Literal["nothing", "json", "bundle", "export", "operations"] = "nothing"
    produces: Literal["json", "bundle", "xml"] = "json"
    status: int = 200
    response: str = "Operation"  # the OpenAPI schema of a JSON response
    public: bool = False  # served by a public gateway too (`p2pc daemon --public`), tokenless
    module: Literal["handlers", "rule_handlers"] = "handlers"  # where the handler lives

    @property
    def writes(self) -> bool:
        """Writes need the API token; reads are open on localhost."""
        return self.method != "GET"

    @property
    def handler(self) -> Handler:
        """``p2pcomments.api.<module>.<name>``, imported on first use."""
        import importlib

        module = importlib.import_module(f"p2pcomments.api.{self.module}")
        handler: Handler = getattr(module, self.name)
        return handler


_PATH_PARAMETER = re.compile(r"{(\w+)}")


def path_parameters(path: str) -> list[str]:
    return _PATH_PARAMETER.findall(path)


# -- the table -----------------------------------------------------------------------------------

_BODY = Field(name="body", required=True, description="The comment's text (plain text).")
_REASON = Field(name="reason", default="", description="Why, shown to readers; may be empty.")
_NOTE = Field(name="note", default="", description="A note for the thread's owner; may be empty.")
_FOLLOW_FIELDS = (
    Field(name="thread", nullable=True, description="A thread id (thr_…)."),
    Field(name="site", nullable=True, description="A site name, as threads give it."),
)

_IMPORT_QUERY: Final = tuple(
    Field(name=name, default="false", description=description)
    for name, description in (
        ("include_unapproved", "true: import unapproved comments too."),
        ("include_spam", "true: import spam comments too."),
        ("include_deleted", "true: import deleted comments too (as tombstones)."),
        ("dry_run", "true: read and count everything, write nothing."),
    )
)

_NODE_ACTIONS: Final[tuple[Action, ...]] = (
    Action(
        name="identity",
        method="GET",
        path="/api/id",
        summary="This node's author key, display name and data directory.",
        response="Identity",
    ),
    Action(
        name="statistics",
        method="GET",
        path="/api/statistics",
        summary="Counters: operations, threads, pending and rejected operations...",
        response="Statistics",
    ),
    Action(
        name="threads",
        method="GET",
        path="/api/threads",
        summary="The threads held here, newest activity first (with `url`: about that page),"
        " all of them or a page at a time (`limit`, then `after` the previous page's `next`).",
        public=True,
        query=(
            Field(
                name="url",
                nullable=True,
                description="Only threads about this page; URLs compare in their normal form"
                " (SPEC §10.1), so tracking parameters, case and default ports don't matter.",
            ),
            Field(
                name="limit",
                nullable=True,
                description="At most this many threads (1-1000); without it, all of them.",
            ),
            Field(
                name="after",
                nullable=True,
                description="The threads after this cursor: the `next` of the previous page.",
            ),
        ),
        response="ThreadList",
    ),
    Action(
        name="create_thread",
        method="POST",
        path="/api/threads",
        summary="Open a thread about a title and/or a URL; this node's author owns it.",
        consumes="json",
        status=201,
        fields=(
            Field(name="title", default="", description="The thread's title."),
            Field(name="url", nullable=True, description="The page discussed."),
            Field(name="site", nullable=True, description="The site it belongs to (a host)."),
        ),
    ),
    Action(
        name="thread",
        method="GET",
        path="/api/threads/{thread}",
        summary="The whole thread: every comment in display order, with its depth and state.",
        response="Thread",
        public=True,
    ),
    Action(
        name="comment",
        method="POST",
        path="/api/threads/{thread}/comments",
        summary="Post a top-level comment.",
        consumes="json",
        status=201,
        fields=(_BODY,),
    ),
    Action(
        name="close",
        method="POST",
        path="/api/threads/{thread}/close",
        summary="Close the thread (owner or moderator).",
        consumes="json",
        status=201,
        fields=(_REASON,),
    ),
    Action(
        name="reopen",
        method="POST",
        path="/api/threads/{thread}/reopen",
        summary="Reopen a closed thread (owner or moderator).",
        consumes="json",
        status=201,
        fields=(_REASON,),
    ),
    Action(
        name="add_moderator",
        method="POST",
        path="/api/threads/{thread}/moderators",
        summary="Appoint a moderator (owner only).",
        consumes="json",
        status=201,
        fields=(Field(name="key", required=True, description="The moderator's key (key_…)."),),
    ),
    Action(
        name="remove_moderator",
        method="DELETE",
        path="/api/threads/{thread}/moderators/{key}",
        summary="Remove a moderator (owner only).",
    ),
    Action(
        name="export_thread",
        method="GET",
        path="/api/threads/{thread}/export",
        summary="A bundle of the thread's signed operations, in causal order.",
        produces="bundle",
    ),
    Action(
        name="get_comment",
        method="GET",
        path="/api/comments/{comment}",
        summary="One comment as its thread shows it.",
        response="Comment",
        public=True,
    ),
    Action(
        name="reply",
        method="POST",
        path="/api/comments/{comment}/replies",
        summary="Reply to a comment.",
        consumes="json",
        status=201,
        fields=(_BODY,),
    ),
    Action(
        name="edit",
        method="POST",
        path="/api/comments/{comment}/edits",
        summary="Edit one's own comment; earlier versions stay in its history.",
        consumes="json",
        status=201,
        fields=(_BODY,),
    ),
    Action(
        name="retract",
        method="POST",
        path="/api/comments/{comment}/retract",
        summary="Delete one's own comment: it stays as a tombstone, its replies stay.",
        consumes="json",
        status=201,
    ),
    Action(
        name="react",
        method="POST",
        path="/api/comments/{comment}/reactions",
        summary="Set this author's one reaction to a comment; the empty reaction withdraws it.",
        consumes="json",
        status=201,
        fields=(
            Field(
                name="reaction",
                required=True,
                description="A short reaction such as an emoji; empty to withdraw.",
            ),
        ),
    ),
    Action(
        name="hide",
        method="POST",
        path="/api/comments/{comment}/hide",
        summary="Hide a comment (owner or moderator).",
        consumes="json",
        status=201,
        fields=(_REASON,),
    ),
    Action(
        name="unhide",
        method="POST",
        path="/api/comments/{comment}/unhide",
        summary="Show a hidden comment again (owner or moderator).",
        consumes="json",
        status=201,
        fields=(_REASON,),
    ),
    Action(
        name="claim",
        method="POST",
        path="/api/comments/{comment}/claim",
        summary="Claim an imported comment as this author's (SPEC §2, claims): it shows as"
        " theirs once the thread's owner accepts the claim.",
        consumes="json",
        status=201,
        fields=(_NOTE,),
    ),
    Action(
        name="accept_claim",
        method="POST",
        path="/api/claims/{claim}/accept",
        summary="Accept a claim on an imported comment (the thread's owner): the comment then"
        " shows as its claimant's.",
        consumes="json",
        status=201,
        fields=(_NOTE,),
    ),
    Action(
        name="profile",
        method="GET",
        path="/api/profile",
        summary="This node's author key and display name.",
        response="Profile",
    ),
    Action(
        name="set_profile",
        method="PUT",
        path="/api/profile",
        summary="Set this author's display name.",
        consumes="json",
        status=201,
        fields=(Field(name="name", required=True, description="The display name."),),
    ),
    Action(
        name="export",
        method="GET",
        path="/api/export",
        summary="A bundle of every operation held here (profiles included), in causal order.",
        produces="bundle",
    ),
    Action(
        name="import_bundle",
        method="POST",
        path="/api/import",
        summary="Ingest a bundle: every operation is verified as if it came from a peer.",
        consumes="bundle",
        response="ImportResult",
    ),
    *(
        Action(
            name=f"import_{source}",
            method="POST",
            path=f"/api/import/{source}",
            summary=f"Import a {name} export (the request body, XML): its posts become page"
            " threads of this node's key, its comments comments with provenance. Importing the"
            " same file again adds nothing.",
            consumes="export",
            query=_IMPORT_QUERY,
            response="ExportImportReport",
        )
        for source, name in (("wordpress", "WordPress (WXR)"), ("disqus", "Disqus"))
    ),
    Action(
        name="export_json",
        method="GET",
        path="/api/export/json",
        summary="Every thread held here as readable JSON: comments, authors, dates, history.",
        response="ThreadsDocument",
    ),
    Action(
        name="export_thread_json",
        method="GET",
        path="/api/threads/{thread}/export/json",
        summary="One thread as readable JSON (the document of GET /api/export/json).",
        response="ThreadsDocument",
    ),
    Action(
        name="export_wxr",
        method="GET",
        path="/api/export/wxr",
        summary="Every thread with a URL as WordPress eXtended RSS, for WordPress's importer.",
        produces="xml",
    ),
    Action(
        name="export_thread_wxr",
        method="GET",
        path="/api/threads/{thread}/export/wxr",
        summary="One thread as WordPress eXtended RSS, for WordPress's importer.",
        produces="xml",
    ),
    Action(
        name="network",
        method="GET",
        path="/api/network",
        summary="This node on the network: peer id, dialable addresses, peers, follows, counters.",
        response="Network",
    ),
    Action(
        name="network_connect",
        method="POST",
        path="/api/network/connect",
        summary="Dial a peer and keep redialling it when it drops.",
        consumes="json",
        fields=(
            Field(
                name="multiaddr",
                required=True,
                description="The peer's full address, ending in /p2p/<peer id>.",
            ),
        ),
        response="Connected",
    ),
    Action(
        name="network_sync",
        method="POST",
        path="/api/network/sync",
        summary="Run a sync round now (with one peer, or every connected one) and wait for it.",
        consumes="json",
        fields=(
            Field(
                name="peer_id",
                nullable=True,
                description="Sync with this connected peer only (default: every connected peer).",
            ),
        ),
        response="SyncResult",
    ),
    Action(
        name="follows",
        method="GET",
        path="/api/follows",
        summary="The threads and sites whose gossip topics this node joins.",
        response="Follows",
    ),
    Action(
        name="follow",
        method="POST",
        path="/api/follows",
        summary="Follow a thread or a site (give one of the two).",
        consumes="json",
        fields=_FOLLOW_FIELDS,
        response="Follows",
    ),
    Action(
        name="unfollow",
        method="DELETE",
        path="/api/follows",
        summary="Stop following a thread or a site (give one of the two).",
        consumes="json",
        fields=_FOLLOW_FIELDS,
        response="Follows",
    ),
    Action(
        name="inbox",
        method="GET",
        path="/api/inbox",
        summary="This author's inbox: replies to their comments, comments in their threads,"
        " reactions, edits near them and moderation, newest first, each marked read or not.",
        query=(
            Field(name="unread", default="false", description="`true`: the unread entries only."),
            Field(name="limit", nullable=True, description="At most this many entries."),
            Field(
                name="thread",
                nullable=True,
                description="Only this thread's entries (thr_…); the counts are the thread's.",
            ),
        ),
        response="Inbox",
    ),
    Action(
        name="inbox_mark_read",
        method="POST",
        path="/api/inbox/read",
        summary="Mark inbox entries read (kept on this node only): those listed, or all of them.",
        consumes="json",
        fields=(
            Field(
                name="ids",
                default="",
                description="The entries' ids (cmt_…/op_…, or unique prefixes), space-separated.",
            ),
            Field(name="all", default="false", description="`true`: every entry held now."),
        ),
        response="InboxMarked",
    ),
)

_PAGE_QUERY: Final = (
    Field(
        name="url",
        required=True,
        description="The page's URL, in any form (it is normalised, SPEC §10.1).",
    ),
    Field(name="owner", required=True, description="The site owner's key (key_…)."),
    Field(
        name="alias",
        repeated=True,
        description="Another URL of the same page (may be repeated): its thread's comments are"
        " shown with the page's (SPEC §10.4).",
    ),
)

_WEB_ACTIONS: Final[tuple[Action, ...]] = (  # issue 9: web pages and the public gateway
    Action(
        name="page",
        method="GET",
        path="/api/page",
        summary="A web page's thread (SPEC §10): its id, whether it exists yet, and its comments"
        " merged with its aliases'; a page nobody commented on yet is an empty thread. A page"
        " of more than 500 comments comes with a weak ETag (If-None-Match that names it: 304),"
        " gzipped to a reader whose Accept-Encoding takes it.",
        query=_PAGE_QUERY,
        response="Page",
        public=True,
    ),
    Action(
        name="ensure_page_thread",
        method="POST",
        path="/api/page",
        summary="Store the page thread of a URL and owner here (idempotent), so that its owner"
        " can moderate it before anyone comments.",
        consumes="json",
        status=201,
        fields=(
            Field(name="url", required=True, description="The page's URL, in any form."),
            Field(name="owner", required=True, description="The site owner's key (key_…)."),
        ),
        response="Page",
    ),
    Action(
        name="retitle",
        method="POST",
        path="/api/threads/{thread}/title",
        summary="Set the title the thread shows (owner or moderator; the latest wins).",
        consumes="json",
        status=201,
        fields=(Field(name="title", required=True, description="The new title, one line."),),
    ),
    Action(
        name="submit_operations",
        method="POST",
        path="/api/ops",
        summary="Submit operations signed elsewhere (a reader's browser): checked as gossip is,"
        " then stored as they are and relayed. The body is one operation's bytes"
        f" ({OPERATION_MEDIA_TYPE}) or a batch as gossip carries it ({OPERATIONS_MEDIA_TYPE}).",
        consumes="operations",
        status=201,
        response="Submitted",
        public=True,
    ),
)

_SCOPE: Final = (
    Field(name="thread", nullable=True, description="The thread (thr_…) the rule is for."),
    Field(
        name="site",
        nullable=True,
        description="Or a site (a host): the rule is then this author's for every page thread of"
        " the site (its site thread, SPEC §11.2).",
    ),
)
_RULE_KEY: Final = Field(name="key", required=True, description="The author's key (key_…).")


def _rule_action(name: str, path: str, summary: str, *fields: Field) -> Action:
    return Action(
        name=name,
        method="POST",
        path=path,
        summary=summary,
        consumes="json",
        status=201,
        fields=fields,
        module="rule_handlers",
    )


_RULE_ACTIONS: Final[tuple[Action, ...]] = (  # issue 11: rules that travel with the thread
    _rule_action(
        "ban",
        "/api/rules/bans",
        "Ban an author from a thread or a site (owner or moderator): their comments are"
        " withheld, those before `until_ms` if given (their own timestamps, SPEC §11.3).",
        _RULE_KEY,
        *_SCOPE,
        _REASON,
        Field(name="until_ms", default="0", description="The ban's end (ms); 0: none."),
    ),
    _rule_action("unban", "/api/rules/unbans", "Lift a ban.", _RULE_KEY, *_SCOPE, _REASON),
    _rule_action(
        "approve_author",
        "/api/rules/approved",
        "Approve an author: past pre-moderation, a member, free of proof of work.",
        _RULE_KEY,
        *_SCOPE,
        _REASON,
    ),
    _rule_action(
        "revoke_author",
        "/api/rules/revoked",
        "Revoke an author's approval.",
        _RULE_KEY,
        *_SCOPE,
        _REASON,
    ),
    _rule_action(
        "approve_comment",
        "/api/comments/{comment}/approve",
        "Release one comment from the moderation queue.",
        Field(name="site", nullable=True, description="Approve it in its site's scope instead."),
        _REASON,
    ),
    _rule_action(
        "set_mode",
        "/api/rules/mode",
        "Set who is shown commenting: open, pre-moderated, members-only or read-only.",
        Field(name="mode", required=True, description="open|pre-moderated|members-only|read-only"),
        *_SCOPE,
        _REASON,
    ),
    _rule_action(
        "set_replies",
        "/api/rules/replies",
        "Set who may reply to a comment: everyone, approved (authors) or nobody-new.",
        Field(name="who", required=True, description="everyone|approved|nobody-new"),
        *_SCOPE,
        _REASON,
    ),
    _rule_action(
        "set_difficulty",
        "/api/rules/difficulty",
        "Require proof of work (leading zero bits of an operation's id, 0-64) of authors not"
        " approved; unpaid operations are refused on arrival (SPEC §11.6).",
        Field(name="bits", required=True, description="The difficulty, 0-64."),
        *_SCOPE,
        _REASON,
    ),
    _rule_action(
        "report",
        "/api/comments/{comment}/reports",
        "Report a comment to its moderators (anyone may); an empty reason withdraws it.",
        Field(name="reason", required=True, description="Why."),
    ),
    _rule_action(
        "recommend_list",
        "/api/rules/lists",
        "Recommend a mute list (a thread whose owner's bans are the list) to readers.",
        Field(name="list", required=True, description="The list's thread (thr_…)."),
        *_SCOPE,
        Field(name="recommend", default="true", description="`false`: stop recommending it."),
    ),
    Action(
        name="rules",
        method="GET",
        path="/api/threads/{thread}/rules",
        summary="The rules in force for a thread: its own and its site's.",
        response="Rules",
        public=True,
        module="rule_handlers",
    ),
    Action(
        name="moderation_queue",
        method="GET",
        path="/api/queue",
        summary="Comments waiting for a moderator (pre-moderated, members only, replies by"
        " authors not approved), of one thread or of every thread this author moderates.",
        query=(Field(name="thread", nullable=True, description="Only this thread (thr_…)."),),
        response="Queue",
        module="rule_handlers",
    ),
    Action(
        name="reports",
        method="GET",
        path="/api/reports",
        summary="Reported comments, of one thread or of every thread this author moderates.",
        query=(Field(name="thread", nullable=True, description="Only this thread (thr_…)."),),
        response="Reports",
        module="rule_handlers",
    ),
    Action(
        name="mutes",
        method="GET",
        path="/api/mutes",
        summary="This reader's muted keys and followed mute lists (local only).",
        response="Mutes",
        module="rule_handlers",
    ),
    Action(
        name="mute",
        method="POST",
        path="/api/mutes/keys",
        summary="Mute an author for this reader (nothing on the network changes).",
        consumes="json",
        fields=(_RULE_KEY,),
        response="Mutes",
        module="rule_handlers",
    ),
    Action(
        name="unmute",
        method="DELETE",
        path="/api/mutes/keys/{key}",
        summary="Unmute an author.",
        response="Mutes",
        module="rule_handlers",
    ),
    Action(
        name="list_subscribe",
        method="POST",
        path="/api/mutes/lists",
        summary="Follow a mute list: the authors its owner bans there are muted here.",
        consumes="json",
        fields=(Field(name="list", required=True, description="The list's thread (thr_…)."),),
        response="Mutes",
        module="rule_handlers",
    ),
    Action(
        name="list_unsubscribe",
        method="DELETE",
        path="/api/mutes/lists/{thread}",
        summary="Stop following a mute list.",
        response="Mutes",
        module="rule_handlers",
    ),
)

ACTIONS: Final[tuple[Action, ...]] = _NODE_ACTIONS + _WEB_ACTIONS + _RULE_ACTIONS
ACTIONS_BY_NAME: Final = {action.name: action for action in ACTIONS}
