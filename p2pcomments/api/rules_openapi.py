"""The OpenAPI pieces of the rule actions (SPEC §11; `api.rule_handlers`), which
`p2pcomments.api.openapi` merges into its document."""

from __future__ import annotations

from typing import Any, Final

from p2pcomments.core.rules import WITHHELD_REASONS

__all__ = [
    "RULES_SCHEMAS",
    "RULE_ACTION_NAMES",
    "RULE_COMMENT_PROPERTIES",
    "RULE_THREAD_PROPERTIES",
]

RULE_ACTION_NAMES: Final = (
    "ban",
    "unban",
    "approve-author",
    "revoke-author",
    "approve-comment",
    "set-mode",
    "set-replies",
    "set-difficulty",
    "report",
    "recommend-list",
)
"""The names the Operation schema's ``action`` takes for actions 8-17."""

_TEXT: Final = {"type": "string"}
_NULLABLE_TEXT: Final = {"type": ["string", "null"]}
_INT: Final = {"type": "integer"}
_KEYS: Final = {"type": "array", "items": _TEXT}


def _object(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
    }
    if description:
        schema["description"] = description
    return schema


_REPORT: Final = _object(
    {
        "reporter": _TEXT,
        "reason": _TEXT,
        "timestamp_ms": _INT,
        "id": {**_TEXT, "description": "op_…"},
    }
)
_WAITING: Final = {
    "thread": _TEXT,
    "id": _TEXT,
    "author": _TEXT,
    "author_name": _NULLABLE_TEXT,
    "timestamp_ms": _INT,
    "body": _TEXT,
}

RULE_COMMENT_PROPERTIES: Final[dict[str, Any]] = {
    "withheld": {
        "type": "array",
        "items": {"enum": list(WITHHELD_REASONS)},
        "description": "Why the thread's rules withhold the comment (SPEC §11.3); empty: shown."
        " Clients don't show a withheld comment's body by default.",
    },
    "muted": {"type": "boolean", "description": "This node's reader muted its author."},
    "reports": {"type": "array", "items": _REPORT, "description": "Readers' reports on it."},
}
RULE_THREAD_PROPERTIES: Final[dict[str, Any]] = {
    "rules": {
        "oneOf": [{"$ref": "#/components/schemas/Rules"}, {"type": "null"}],
        "description": "The rules in force (null on a page not held here yet).",
    },
}

RULES_SCHEMAS: Final[dict[str, Any]] = {
    "RuleSet": _object(
        {
            "thread": {
                **_TEXT,
                "description": "The scope: a thread, or a site thread (SPEC §11.2).",
            },
            "owner": _TEXT,
            "moderators": _KEYS,
            "mode": {"enum": ["open", "pre-moderated", "members-only", "read-only"]},
            "replies": {"enum": ["everyone", "approved", "nobody-new"]},
            "difficulty": {**_INT, "description": "Leading zero bits of proof of work required."},
            "bans": {
                "type": "array",
                "items": _object(
                    {
                        "key": _TEXT,
                        "by": _TEXT,
                        "reason": _TEXT,
                        "until_ms": {"type": ["integer", "null"]},
                        "timestamp_ms": _INT,
                    }
                ),
            },
            "approved_authors": _KEYS,
            "approved_comments": _KEYS,
            "recommended_lists": _KEYS,
            "report_count": _INT,
        },
        "What one scope's rule operations say (SPEC §11.3 rule 1).",
    ),
    "Rules": _object(
        {
            "thread": {"$ref": "#/components/schemas/RuleSet"},
            "site": {"oneOf": [{"$ref": "#/components/schemas/RuleSet"}, {"type": "null"}]},
            "difficulty": {**_INT, "description": "What a comment by an unapproved author pays."},
        },
        "The rules in force for a thread: its own and its site thread's (if held).",
    ),
    "Queue": _object(
        {
            "waiting": {
                "type": "array",
                "items": _object({**_WAITING, "withheld": _KEYS}),
            }
        },
        "Comments waiting for a moderator, oldest first.",
    ),
    "Reports": _object(
        {
            "reported": {
                "type": "array",
                "items": _object(
                    {
                        **_WAITING,
                        "withheld": _KEYS,
                        "muted": {"type": "boolean"},
                        "reports": {"type": "array", "items": _REPORT},
                    }
                ),
            }
        },
        "Reported comments, with each reader's report.",
    ),
    "Mutes": {
        "type": "object",
        "description": "This reader's mutes (local only, SPEC §11.7).",
        "properties": {
            "keys": _KEYS,
            "lists": _KEYS,
            "muted": {**_KEYS, "description": "Every key muted now, the followed lists' included."},
            "changed": {"type": "boolean"},
        },
        "required": ["keys", "lists", "muted"],
    },
}
