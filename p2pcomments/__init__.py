"""p2pcomments: a peer-to-peer comment system that no one can take down.

Embed it with `open_node`::

    async with open_node(create_identity=True) as node:
        thread = await node.create_thread("Hello", url="https://example.org/hello")
        await node.comment(thread.id, "First!")

Names are loaded on first use (PEP 562), so ``import p2pcomments`` alone costs almost nothing and
CLI commands that only talk HTTP never load trio or SQLite; the networking stack (libp2p) is never
loaded from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from p2pcomments.core.ops import Kind, ModAction, Operation
    from p2pcomments.core.replica import Applied, Duplicate, Outcome, Pending, Rejected
    from p2pcomments.core.textform import TextKind, format_id, parse_id
    from p2pcomments.core.thread_state import CommentView, EditView, ReactionView, ThreadView
    from p2pcomments.errors import (
        AuthorizationError,
        ConflictError,
        DecodeError,
        IdentityFileError,
        IdentityMissing,
        InvalidOperation,
        NotFound,
        P2PCommentsError,
        PassphraseError,
        StoreError,
        TextFormError,
    )
    from p2pcomments.node import (
        AppliedBatch,
        ChangeStream,
        Node,
        NodeStatistics,
        ThreadChange,
        ThreadSummary,
        open_node,
    )

__version__ = "0.1.0"

__all__ = [
    "Applied",
    "AppliedBatch",
    "AuthorizationError",
    "ChangeStream",
    "CommentView",
    "ConflictError",
    "DecodeError",
    "Duplicate",
    "EditView",
    "IdentityFileError",
    "IdentityMissing",
    "InvalidOperation",
    "Kind",
    "ModAction",
    "Node",
    "NodeStatistics",
    "NotFound",
    "Operation",
    "Outcome",
    "P2PCommentsError",
    "PassphraseError",
    "Pending",
    "ReactionView",
    "Rejected",
    "StoreError",
    "TextFormError",
    "TextKind",
    "ThreadChange",
    "ThreadSummary",
    "ThreadView",
    "__version__",
    "format_id",
    "open_node",
    "parse_id",
]

_HOMES: Final = {
    "p2pcomments.core.ops": ("Kind", "ModAction", "Operation"),
    "p2pcomments.core.replica": ("Applied", "Duplicate", "Outcome", "Pending", "Rejected"),
    "p2pcomments.core.textform": ("TextKind", "format_id", "parse_id"),
    "p2pcomments.core.thread_state": ("CommentView", "EditView", "ReactionView", "ThreadView"),
    "p2pcomments.errors": (
        "AuthorizationError",
        "ConflictError",
        "DecodeError",
        "IdentityFileError",
        "IdentityMissing",
        "InvalidOperation",
        "NotFound",
        "P2PCommentsError",
        "PassphraseError",
        "StoreError",
        "TextFormError",
    ),
    "p2pcomments.node": (
        "AppliedBatch",
        "ChangeStream",
        "Node",
        "NodeStatistics",
        "ThreadChange",
        "ThreadSummary",
        "open_node",
    ),
}
_HOME_OF: Final = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'p2pcomments' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME_OF))
