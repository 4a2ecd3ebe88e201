"""Short ids: the shortest prefix of a text form that no other id shares, and typed prefixes.

People read and type ids; 60 characters are too many for either. As git does with object
names, what is shown is the shortest prefix that is unique among the ids it is shown with, and
what is typed may be any prefix that names exactly one id held here.

Rules:

1. A shown prefix keeps the kind (``cmt_``) and at least `MIN_SHOWN` characters after it, more
   where another id of the set shares those: one more than the longest prefix it shares with any
   other (uniqueness is among the characters after the kind, whatever kind the others have).
2. A typed prefix is ``<kind>_`` and `MIN_TYPED` to 55 characters of the id alphabet (a-z, 2-7;
   upper case is read as lower). A whole text form is not a prefix: `textform.parse_id` reads it.
3. The ids a typed prefix can name are those whose text form of that kind starts with it; an
   ``op_`` prefix names any operation. `IdPrefix.bounds` gives them as a range of raw ids, so a
   sorted index finds them without formatting every id.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.errors import TextFormError

__all__ = [
    "MIN_SHOWN",
    "MIN_TYPED",
    "IdPrefix",
    "read_prefix",
    "shortest_unique_prefixes",
]

MIN_SHOWN: Final = 8  # 40 bits: a collision among a thread's ids is rare, and then one more
MIN_TYPED: Final = 4  # as git: fewer names too many ids to be worth a lookup
_ID_CHARS: Final = 51  # whole base32 characters of the 32-byte id (51 * 5 = 255 bits)
_BODY_CHARS: Final = 56  # a whole text form's characters after the kind
_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"
_VALUES: Final = {char: value for value, char in enumerate(_ALPHABET)}


def _common_length(a: str, b: str) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def shortest_unique_prefixes(texts: Collection[str], *, minimum: int = MIN_SHOWN) -> dict[str, str]:
    """Each text form of ``texts`` → its shortest unique prefix (rule 1).

    A text form without a kind (no ``_``) is taken whole as the characters to shorten. Equal
    texts are one id. A prefix is never longer than its text.
    """
    bodies: dict[str, tuple[str, str]] = {}
    for text in texts:
        kind, sep, body = text.partition("_")
        bodies[text] = (kind + sep, body) if sep else ("", text)
    ordered = sorted({body for _, body in bodies.values()})
    needed: dict[str, int] = {}
    for index, body in enumerate(ordered):
        shared = 0
        if index > 0:
            shared = _common_length(body, ordered[index - 1])
        if index + 1 < len(ordered):
            shared = max(shared, _common_length(body, ordered[index + 1]))
        needed[body] = min(len(body), max(minimum, shared + 1))
    return {text: head + body[: needed[body]] for text, (head, body) in bodies.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class IdPrefix:
    """A typed prefix of an id of ``kind`` (rule 2): ``chars`` are the characters after it."""

    kind: TextKind
    chars: str

    @property
    def text(self) -> str:
        return f"{self.kind.value}_{self.chars}"

    def bounds(self) -> tuple[bytes, bytes | None]:
        """The raw ids whose text form may start with this prefix: ``low <= id < high`` (high
        None: no bound). Exact for up to 51 characters; longer ones need `matches` as well."""
        chars = self.chars[:_ID_CHARS]
        bits = 5 * len(chars)
        value = 0
        for char in chars:
            value = value << 5 | _VALUES[char]
        shift = 256 - bits
        low = value << shift
        high = (value + 1) << shift
        return low.to_bytes(32, "big"), None if high >= 1 << 256 else high.to_bytes(32, "big")

    def matches(self, raw: bytes) -> bool:
        """Whether the text form of ``raw`` (of this kind) starts with this prefix."""
        if len(self.chars) <= _ID_CHARS:
            low, high = self.bounds()
            return low <= raw and (high is None or raw < high)
        return format_id(self.kind, raw).startswith(self.text)


def read_prefix(text: str) -> IdPrefix | None:
    """The prefix ``text`` types (rule 2), or None when it is not one: a whole text form, or
    something `textform.parse_id` will explain. A prefix too short is refused here, with why."""
    cleaned = text.strip()
    kind_text, sep, chars = cleaned.partition("_")
    try:
        kind = TextKind(kind_text.lower())
    except ValueError:
        return None
    if not sep or not chars.isascii():
        return None
    chars = chars.lower()
    if len(chars) >= _BODY_CHARS or any(char not in _VALUES for char in chars):
        return None
    if len(chars) < MIN_TYPED:
        raise TextFormError(
            f"{text.strip()!r} is too short to look up: give at least {MIN_TYPED} characters"
            f" after '{kind.value}_'",
            reason="prefix-too-short",
        )
    return IdPrefix(kind=kind, chars=chars)
