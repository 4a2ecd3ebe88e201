"""The OpenAPI 3.1 document of the local API, generated from the action table.

Routes that are not actions (event streams, this document, the HTML pages) are described in
`EXTRA_ROUTES`; a test checks that every route the application serves is listed here.
"""

from __future__ import annotations

from typing import Any, Final

from p2pcomments import __version__
from p2pcomments.api.actions import (
    ACTIONS,
    OPERATION_MEDIA_TYPE,
    OPERATIONS_MEDIA_TYPE,
    Action,
    path_parameters,
)
from p2pcomments.api.bundle import BUNDLE_MEDIA_TYPE
from p2pcomments.api.inbox_openapi import INBOX_EXTRA_ROUTES, INBOX_SCHEMAS
from p2pcomments.api.rules_openapi import (
    RULE_ACTION_NAMES,
    RULE_COMMENT_PROPERTIES,
    RULE_THREAD_PROPERTIES,
    RULES_SCHEMAS,
)

__all__ = ["EXTRA_ROUTES", "openapi_document"]

_TEXT_FORMS: Final = {
    "thread": ("thr_", "A thread id in text form (thr_…), or a prefix of one naming one thread."),
    "comment": (
        "cmt_",
        "A comment id in text form (cmt_…), or a prefix of one naming one comment.",
    ),
    "key": ("key_", "An author key in text form (key_…)."),
    "claim": ("op_", "A claim's id in text form (op_…), or a prefix of one naming one operation."),
    "name": ("", "A feed's file name: thr_….atom (a thread id or prefix) or <site>.atom."),
}

# (method, path, summary, media type of the response)
EXTRA_ROUTES: Final = (
    (
        "GET",
        "/api/threads/{thread}/events",
        "Server-sent events: one `operation` event per change to the thread (`lagged` when the "
        "reader fell behind and should re-read the thread). A `: watching` comment line is sent "
        "first; changes after it are never missed.",
        "text/event-stream",
    ),
    (
        "GET",
        "/api/events",
        "Server-sent events for every thread held here (same events as a thread's stream).",
        "text/event-stream",
    ),
    (
        "GET",
        "/api/page/events",
        "Server-sent events of a web page's threads (query as GET /api/page: url, owner, alias"
        "...): the same events as a thread's stream, for the page thread and its aliases',"
        " which may not exist yet.",
        "text/event-stream",
    ),
    ("GET", "/api/openapi.json", "This document.", "application/json"),
    ("GET", "/", "The reader UI (JavaScript; its modules are under /web/).", "text/html"),
    ("GET", "/t/", "An HTML page listing the threads (no script).", "text/html"),
    ("GET", "/embed.js", "The blog widget's loader (modules under /web/).", "text/javascript"),
    ("GET", "/t/{thread}", "A thread as a read-only HTML page.", "text/html"),
    *INBOX_EXTRA_ROUTES,
)

_S = dict[str, Any]

# Thread and comment ids in paths may be any unique prefix of at least 4 characters
# (`core.id_prefix`); a key must be whole.
_PATTERNS: Final = {
    "thread": "^{prefix}[a-z2-7]{{4,56}}$",
    "comment": "^{prefix}[a-z2-7]{{4,56}}$",
    "claim": "^{prefix}[a-z2-7]{{4,56}}$",
    "key": "^{prefix}[a-z2-7]{{56}}$",
    "name": "^{prefix}.+[.]atom$",
}


def _string(description: str = "", *, nullable: bool = False) -> _S:
    schema: _S = {"type": ["string", "null"] if nullable else "string"}
    if description:
        schema["description"] = description
    return schema


def _object(properties: dict[str, _S]) -> _S:
    return {"type": "object", "properties": properties, "required": sorted(properties)}


_INT: Final[_S] = {"type": "integer"}
_BOOL: Final[_S] = {"type": "boolean"}

_SCHEMAS: Final[dict[str, _S]] = {
    "Error": _object(
        {
            "error": _object(
                {"code": _string("A stable machine-readable code."), "message": _string()}
            )
        }
    ),
    "Operation": {
        "type": "object",
        "description": "A signed operation; kind-specific fields (body, reaction, action, "
        "subject, reason, title, url, site, name) are present for the kinds that have them.",
        "properties": {
            "id": _string("thr_… for a thread, cmt_… for a comment, op_… otherwise."),
            "kind": {
                "enum": ["thread", "comment", "edit", "retract", "react", "moderate", "profile"]
            },
            "author": _string("key_…"),
            "thread": _string("thr_…", nullable=True),
            "target": _string("The referenced thread or comment.", nullable=True),
            "timestamp_ms": _INT,
            "body": _string(),
            "reaction": _string(),
            "action": {
                "enum": [
                    "hide",
                    "unhide",
                    "add-moderator",
                    "remove-moderator",
                    "close",
                    "reopen",
                    "retitle",
                    *RULE_ACTION_NAMES,
                    "claim",
                    "accept-claim",
                ]
            },
            "subject": _string(nullable=True),
            "value": {**_INT, "description": "A rule's value (SPEC §11.1), where it has one."},
            "reason": _string(),
            "title": _string(),
            "url": _string(nullable=True),
            "site": _string(nullable=True),
            "name": _string(),
            "provenance": {"$ref": "#/components/schemas/Provenance"},
        },
        "required": ["id", "kind", "author", "thread", "target", "timestamp_ms"],
    },
    "Comment": _object(
        {
            "id": _string("cmt_…"),
            "author": _string("key_…"),
            "author_name": _string(nullable=True),
            "parent": _string("thr_… for a top-level comment, else cmt_…"),
            "depth": _INT,
            "timestamp_ms": _INT,
            "body": _string("null once retracted", nullable=True),
            "edited": _BOOL,
            "edits": {
                "type": "array",
                "description": "The edits, by timestamp (the greatest gives the body shown).",
                "items": {"$ref": "#/components/schemas/Version"},
            },
            "original": {
                "oneOf": [{"$ref": "#/components/schemas/Version"}, {"type": "null"}],
                "description": "The text as first written (id: the comment's); null once"
                " retracted. With `edits`, the whole history.",
            },
            "retracted": _BOOL,
            "hidden": _BOOL,
            "hidden_by": _string(nullable=True),
            "reactions": {
                "type": "array",
                "items": _object(
                    {
                        "reaction": _string(),
                        "count": _INT,
                        "authors": {"type": "array", "items": _string()},
                    }
                ),
            },
            "parent_edited_after": _BOOL,
            "answered_version": {
                "oneOf": [{"$ref": "#/components/schemas/Version"}, {"type": "null"}],
                "description": "For a reply with parent_edited_after: the version of the parent"
                " it answered (the parent's original, or one of its edits); else null.",
            },
            "after_close": _BOOL,
            "reply_count": _INT,
            "provenance": {
                "oneOf": [{"$ref": "#/components/schemas/Provenance"}, {"type": "null"}],
                "description": "For an imported comment: where it comes from; else null.",
            },
            "claimed_by": _string(
                "key_… of the person whose claim to have written this imported comment the"
                " thread's owner accepted (SPEC §2, claims); else null.",
                nullable=True,
            ),
            "claimed_by_name": _string("The claimant's display name, if known.", nullable=True),
        }
    ),
    "Provenance": _object(
        {
            "source": _string("The system it was imported from: wordpress, disqus..."),
            "source_name": _string("The system's name as shown: WordPress, Disqus..."),
            "original_id": _string("The comment's id there."),
            "author_name": _string("Who wrote it there (the operation's author imported it)."),
            "author_url": _string("The author's web site there.", nullable=True),
            "original_timestamp_ms": _INT,
            "entry_kind": {"enum": ["comment", "pingback", "trackback"]},
            "label": _string('What readers are shown: "imported from WordPress, 24 Jan 2012".'),
        }
    ),
    "Version": _object(
        {
            "id": _string("cmt_… for the original text, op_… for an edit."),
            "timestamp_ms": _INT,
            "body": _string(),
        }
    ),
    "Completeness": _object(
        {
            "verified": _INT,
            "held": _INT,
            "pending": _INT,
            "rejected": _INT,
            "digest": _string("The view's digest, as the thread's `digest`."),
            "pending_operations": {
                "type": "array",
                "description": "Held and valid so far, waiting for the operations they miss.",
                "items": _object(
                    {
                        "id": _string(),
                        "kind": _string(),
                        "missing": {"type": "array", "items": _string("op_…")},
                    }
                ),
            },
            "rejected_operations": {
                "type": "array",
                "description": "The most recent rejections (never stored), oldest first.",
                "items": _object(
                    {
                        "id": _string(),
                        "code": _string("The spec's reason code."),
                        "message": _string(),
                        "at_ms": _INT,
                    }
                ),
            },
            "rejections_since_ms": _INT,
        }
    ),
    "ThreadSummary": _object(
        {
            "id": _string("thr_…"),
            "title": _string(),
            "url": _string(nullable=True),
            "site": _string(nullable=True),
            "owner": _string("key_…"),
            "owner_name": _string(nullable=True),
            "comment_count": _INT,
            "last_activity_ms": _INT,
            "closed": _BOOL,
            "timestamp_ms": _INT,
        }
    ),
    "ThreadList": _object(
        {
            "threads": {"type": "array", "items": {"$ref": "#/components/schemas/ThreadSummary"}},
            "next": _string(
                "The cursor to the next page (give it as `after`); null after the last.",
                nullable=True,
            ),
        }
    ),
    "Thread": _object(
        {
            "id": _string("thr_…"),
            "title": _string(),
            "url": _string(nullable=True),
            "site": _string(nullable=True),
            "owner": _string("key_…"),
            "owner_name": _string(nullable=True),
            "timestamp_ms": _INT,
            "closed": _BOOL,
            "moderators": {"type": "array", "items": _string()},
            "operation_count": _INT,
            "comment_count": _INT,
            "digest": _string("SHA-256 of the view, hex: equal on nodes that agree."),
            "completeness": {
                "oneOf": [{"$ref": "#/components/schemas/Completeness"}, {"type": "null"}],
                "description": "Operations verified of those held, what is pending and what"
                " was rejected here (since the node opened), and why.",
            },
            "comments": {
                "type": "array",
                "description": "Display order (depth-first); each with its depth.",
                "items": {"$ref": "#/components/schemas/Comment"},
            },
        }
    ),
    "Page": {
        "allOf": [
            {"$ref": "#/components/schemas/Thread"},
            _object(
                {
                    "exists": _BOOL,
                    "page_operation": _string(
                        "Hex of the page thread operation's bytes: POST it to /api/ops before"
                        " a first comment (SPEC §10.2)."
                    ),
                    "deps": {
                        "type": "array",
                        "items": _string(),
                        "description": "Up to 16 heads of the page thread: a new operation's"
                        " deps (thr_…, cmt_… or op_…).",
                    },
                    "aliases": {
                        "type": "array",
                        "items": _object(
                            {
                                "url": _string("The alias URL in normal form."),
                                "thread": _string("thr_…"),
                                "exists": _BOOL,
                                "closed": _BOOL,
                            }
                        ),
                    },
                }
            ),
        ],
        "description": "A web page's thread, shaped as a Thread; its comments (each with its"
        " `thread`) merge those of its aliases' threads (SPEC §10.4).",
    },
    "SubmittedOperation": _object(
        {
            "id": _string("thr_…, cmt_… or op_…"),
            "state": {"enum": ["valid", "pending"]},
            "duplicate": _BOOL,
        }
    ),
    "Submitted": {
        "oneOf": [
            {"$ref": "#/components/schemas/SubmittedOperation"},
            _object(
                {
                    "operations": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/SubmittedOperation"},
                    }
                }
            ),
        ],
        "description": "One operation submitted: its outcome; a batch: one per operation.",
    },
    "Identity": _object(
        {
            "author": _string("key_…"),
            "name": _string(nullable=True),
            "data_dir": _string(),
            "peer_id": _string("The libp2p peer id (null before the network ran).", nullable=True),
            "multiaddrs": {
                "type": "array",
                "items": _string(),
                "description": "Dialable addresses ending in /p2p/<peer id>; empty offline.",
            },
        }
    ),
    "Profile": _object({"author": _string("key_…"), "name": _string(nullable=True)}),
    "Statistics": {"type": "object", "description": "Counters; keys may be added over time."},
    "Network": _object(
        {
            "peer_id": _string(),
            "multiaddrs": {"type": "array", "items": _string()},
            "peers": {
                "type": "array",
                "items": _object(
                    {
                        "peer_id": _string(),
                        "addrs": {"type": "array", "items": _string()},
                        "connected_since_ms": _INT,
                    }
                ),
            },
            "follows": {"$ref": "#/components/schemas/Follows"},
            "statistics": {"type": "object", "description": "Counters; keys may be added."},
        }
    ),
    "Connected": _object({"peer_id": _string()}),
    "SyncResult": _object(
        {
            "peers_synced": _INT,
            "received": _INT,
            "sent": _INT,
            "failed": {
                "type": "object",
                "description": "Peer id to the reason its round failed.",
                "additionalProperties": _string(),
            },
        }
    ),
    "Follows": {
        "type": "object",
        "properties": {
            "version": _INT,
            "threads": {"type": "array", "items": _string("thr_…")},
            "sites": {"type": "array", "items": _string()},
            "unfollowed": _object(
                {
                    "threads": {"type": "array", "items": _string("thr_…")},
                    "sites": {"type": "array", "items": _string()},
                }
            ),
            "changed": {"type": "boolean", "description": "After a change: whether it did."},
        },
        "required": ["version", "threads", "sites", "unfollowed"],
    },
    "ExportImportReport": _object(
        {
            "source": {"enum": ["wordpress", "disqus"]},
            "file": _string(),
            "dry_run": _BOOL,
            "threads": _INT,
            "closed_threads": _INT,
            "imported": {
                "type": "object",
                "description": "comments, pingbacks, trackbacks imported (new or already here)",
                "additionalProperties": _INT,
            },
            "imported_by_status": {
                "type": "object",
                "description": "among them, the unapproved, spam and deleted ones included",
                "additionalProperties": _INT,
            },
            "skipped": {
                "type": "object",
                "description": "left out, by reason (unapproved, spam, deleted, empty, no-url...)",
                "additionalProperties": _INT,
            },
            "orphans": _INT,
            "operations": _INT,
            "new_operations": _INT,
            "rejected": {"type": "object", "additionalProperties": _INT},
            "thread_ids": {"type": "array", "items": _string("thr_…")},
        }
    ),
    "ThreadsDocument": _object(
        {
            "format": {"enum": ["p2pcomments-threads"]},
            "version": _INT,
            "exported_by": _string("key_… of the node that exported it"),
            "profiles": {
                "type": "array",
                "items": _object({"key": _string("key_…"), "name": _string()}),
            },
            "threads": {"type": "array", "items": {"$ref": "#/components/schemas/Thread"}},
        }
    ),
    "ImportResult": _object(
        {
            "applied": _INT,
            "duplicate": _INT,
            "pending": _INT,
            "rejected": _INT,
            "total": _INT,
            "rejections": {
                "type": "array",
                "items": _object({"id": _string(), "code": _string(), "message": _string()}),
            },
        }
    ),
    **INBOX_SCHEMAS,
    **RULES_SCHEMAS,
}

# What the rules say (SPEC §11), on the comments and threads that GET /api/threads/{thread},
# /api/comments/{comment} and /api/page return.
_SCHEMAS["Comment"]["properties"] |= RULE_COMMENT_PROPERTIES
_SCHEMAS["Thread"]["properties"] |= RULE_THREAD_PROPERTIES

_ERRORS: Final = {
    "400": "A malformed id or body.",
    "401": "A write without the API token.",
    "403": "Not allowed (not the author, owner or a moderator).",
    "404": "Unknown thread or comment.",
    "413": "The body is too large.",
    "415": "A body of a media type the endpoint does not take.",
    "429": "Over a public gateway's rate limit (see Retry-After).",
    "422": "Unknown, missing or invalid fields.",
}


def _ref(name: str) -> _S:
    return {"$ref": f"#/components/schemas/{name}"}


def _parameters(path: str) -> list[_S]:
    parameters = []
    for name in path_parameters(path):
        prefix, description = _TEXT_FORMS[name]
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": {"type": "string", "pattern": _PATTERNS[name].format(prefix=prefix)},
            }
        )
    return parameters


def _error_responses(codes: list[str]) -> dict[str, _S]:
    return {
        code: {
            "description": _ERRORS[code],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for code in codes
    }


def _operation(action: Action) -> _S:
    operation: _S = {"operationId": action.name, "summary": action.summary}
    parameters = _parameters(action.path) + [
        {
            "name": field.name,
            "in": "query",
            "required": field.required,
            "description": field.description,
            "schema": {"type": "array", "items": {"type": "string"}}
            if field.repeated
            else {"type": "string"},
            **({"explode": True} if field.repeated else {}),
        }
        for field in action.query
    ]
    if parameters:
        operation["parameters"] = parameters
    if action.public:
        operation["description"] = "Also served by a public gateway (`p2pc daemon --public`)."
    if action.consumes == "operations":
        operation["requestBody"] = {
            "required": True,
            "description": "Sent as they are, never altered: one operation's canonical bytes,"
            " or a batch as the gossip payload of SPEC §8.4 (a msgpack array of bin).",
            "content": {
                OPERATION_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
                OPERATIONS_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    elif action.consumes == "json":
        properties = {
            field.name: _string(field.description, nullable=field.nullable)
            for field in action.fields
        }
        operation["requestBody"] = {
            "required": any(field.required for field in action.fields),
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": properties,
                        "required": [field.name for field in action.fields if field.required],
                        "additionalProperties": False,
                    }
                }
            },
        }
    elif action.consumes == "bundle":
        operation["requestBody"] = {
            "required": True,
            "description": "One JSON string of hex per line: an operation's signed bytes.",
            "content": {BUNDLE_MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    if action.consumes == "export":
        operation["requestBody"] = {
            "required": True,
            "description": "The export file as it is: WordPress WXR or Disqus XML.",
            "content": {"application/xml": {"schema": {"type": "string"}}},
        }
    if action.produces == "bundle":
        content: _S = {BUNDLE_MEDIA_TYPE: {"schema": {"type": "string"}}}
    elif action.produces == "xml":
        content = {"application/xml": {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": _ref(action.response)}}
    operation["responses"] = {str(action.status): {"description": "OK", "content": content}}
    codes = ["400", "404"] if parameters else []
    if action.query:
        codes = ["400"]
    if action.writes:
        codes = ["400", "401", "403", "404", "413", "422"]
        operation["security"] = [{"token": []}]
    if action.consumes == "operations":
        codes += ["415", "429"]
    operation["responses"].update(_error_responses(sorted(set(codes))))
    return operation


def openapi_document() -> dict[str, Any]:
    paths: dict[str, _S] = {}
    for action in ACTIONS:
        paths.setdefault(action.path, {})[action.method.lower()] = _operation(action)
    for method, path, summary, media_type in EXTRA_ROUTES:
        operation: _S = {
            "summary": summary,
            "responses": {"200": {"description": "OK", "content": {media_type: {}}}},
        }
        parameters = _parameters(path)
        if parameters:
            operation["parameters"] = parameters
            operation["responses"].update(_error_responses(["400", "404"]))
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "p2pcomments local API",
            "version": __version__,
            "description": "The daemon's API on localhost. Reads are open; writes need "
            "`Authorization: Bearer <token>`, the token being in `api.json` in the data "
            'directory. Errors are `{"error": {"code", "message"}}`.',
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }
