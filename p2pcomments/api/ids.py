"""Ids as the API and the CLI take them: a whole text form, or a unique prefix of one.

Rules:

1. A whole text form (or 64 hex digits) is read by `core.textform.parse_id`, whose errors say
   what is wrong (kind, length, alphabet, checksum). It need not be held here.
2. A prefix (`core.id_prefix` rule 2) is looked up among the ids held here of the kind it names:
   one match is that id; none is `NotFound`; more than one is `TextFormError` (400, reason
   ``ambiguous-id``) listing the candidates by a prefix that tells them apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from p2pcomments.core.id_prefix import MIN_SHOWN, read_prefix, shortest_unique_prefixes
from p2pcomments.core.textform import TextKind, format_id, parse_id
from p2pcomments.errors import NotFound, TextFormError

if TYPE_CHECKING:
    from p2pcomments.node import Node

__all__ = ["MAX_CANDIDATES", "read_id"]

MAX_CANDIDATES: Final = 10  # listed in an ambiguity error

_NOUNS: Final = {TextKind.THREAD: "thread", TextKind.COMMENT: "comment"}


async def read_id(node: Node, text: str, kind: TextKind) -> bytes:
    """The id of ``kind`` that ``text`` names (rules 1-2)."""
    prefix = read_prefix(text)
    if prefix is None:
        return parse_id(text, expect=frozenset({kind}))
    if prefix.kind is not kind:
        parse_id(text, expect=frozenset({kind}))  # raises: it names the wrong kind
    found = await node.ids_with_prefix(prefix, limit=MAX_CANDIDATES)
    noun = _NOUNS.get(kind, "operation")
    if not found:
        raise NotFound(f"no {noun} whose id starts with {prefix.text} here")
    if len(found) == 1:
        return found[0]
    shown = shortest_unique_prefixes(
        [format_id(kind, op_id) for op_id in found],
        minimum=max(MIN_SHOWN, len(prefix.chars) + 1),
    )
    count = f"at least {len(found)}" if len(found) == MAX_CANDIDATES else str(len(found))
    raise TextFormError(
        f"{prefix.text} is ambiguous: it starts the ids of {count} {noun}s here:"
        f" {', '.join(shown.values())} (give more of it)",
        reason="ambiguous-id",
    )
