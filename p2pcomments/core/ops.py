"""Operations, the only thing on the wire: building, canonical encoding, decoding, signing.

Rules this module enforces (protocol/SPEC.md §2-§4 states them for other implementations):

1. An operation is a msgpack array of 9 elements: version, kind, author, thread, refs, deps,
   timestamp_ms, payload, signature. Its *unsigned form* is the array of the first 8.
2. There is exactly one byte form per operation: msgpack with the smallest encoding for every
   integer, string, binary and array header; no maps, floats, extension types or booleans; text is
   UTF-8 in Unicode NFC. The decoder re-encodes what it read and rejects any difference.
3. id = SHA-256(unsigned form). The Ed25519 signature covers ``OP_SIGNING_DOMAIN + id``, so it can't
   be replayed as a signature of anything else.
4. Sizes are bounded at decode time (`MAX_OPERATION_BYTES`, per-field limits below): nothing larger
   is ever parsed further.
5. Structure is checked per kind (which fields are nil, how many references, payload shape); rules
   that need other operations (parent exists, author matches) live in `core.thread_state`.
6. A comment's payload is ``[body]`` or, for a comment imported from another system,
   ``[body, provenance]`` (`Provenance`): who wrote it there, when, under which id. Provenance is
   what the importer states, signed by the importer's key; nothing checks it against the source.
7. A *page thread* (SPEC §10.2) is the one operation that is not signed: a thread whose fields
   all follow from (owner, page URL): timestamp 0, empty title, url in normal form
   (`core.page_url`), site its host, and a signature of 64 zero bytes. An operation is authentic
   (`verify_operation`, the one place this is decided) iff it is in that page form with the zero
   signature, or it is not in page form and its signature verifies.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Final

import msgpack
from nacl._sodium import ffi as _sodium_ffi
from nacl._sodium import lib as _sodium_lib
from nacl.signing import SigningKey

from p2pcomments.core.page_url import normalise_page_url, page_site
from p2pcomments.errors import DecodeError, InvalidOperation, PageUrlError

_open_all: Callable[[int, int, bytes, int, bytes, int], bytes] | None
try:  # the optional C helper (pyproject.toml); without it, signatures are checked one by one
    from p2pcomments.core._signatures import open_all as _open_all
except ImportError:  # pragma: no cover - where it did not build
    _open_all = None

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPS",
    "MAX_OPERATION_BYTES",
    "OP_SIGNING_DOMAIN",
    "PAGE_THREAD_SIGNATURE",
    "PROTOCOL_VERSION",
    "CommentPayload",
    "EditPayload",
    "EntryKind",
    "Kind",
    "ModAction",
    "ModeratePayload",
    "Operation",
    "Payload",
    "ProfilePayload",
    "Provenance",
    "ReactPayload",
    "ReplyGate",
    "RetractPayload",
    "ThreadMode",
    "ThreadPayload",
    "authentic_all",
    "claimed_id",
    "decode_operation",
    "decode_operations",
    "encoded_digest",
    "is_page_thread",
    "is_site_thread",
    "load_stored_operation",
    "make_operation",
    "page_thread",
    "page_thread_id",
    "site_thread",
    "unsigned_fields",
    "verify_operation",
    "verify_signature",
]

PROTOCOL_VERSION: Final = 1
OP_SIGNING_DOMAIN: Final = b"p2pcomments/op/v1\x00"
PAGE_THREAD_SIGNATURE: Final = bytes(64)  # what a page thread carries instead of a signature

MAX_OPERATION_BYTES: Final = 40 * 1024
MAX_BODY_BYTES: Final = 32 * 1024
MAX_TITLE_BYTES: Final = 512
MAX_URL_BYTES: Final = 2048
MAX_SITE_BYTES: Final = 253
MAX_NAME_BYTES: Final = 64
MAX_REACTION_BYTES: Final = 32
MAX_REASON_BYTES: Final = 512
MAX_DEPS: Final = 16
MAX_SOURCE_BYTES: Final = 32
MAX_ORIGINAL_ID_BYTES: Final = 256
MAX_ORIGINAL_AUTHOR_BYTES: Final = 256
MAX_TIMESTAMP_MS: Final = 2**63 - 1

_UNSIGNED_HEADER: Final = b"\x98"  # fixarray of 8
_SIGNED_HEADER: Final = 0x99  # fixarray of 9
_SIGNATURE_TAIL: Final = 2 + 64  # bin8 header (0xc4 0x40) + 64 signature bytes
_MIN_OPERATION_BYTES: Final = 1 + 8 + _SIGNATURE_TAIL  # nine fields, the last the signature

# Bodies may hold newlines and tabs; every other C0/C1 control character, and lone surrogates, is
# refused so that what a reader sees is what was signed.
_BAD_BODY_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_BAD_LINE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The same rules for ASCII text, as byte tables: translating maps every refused byte to 0, and
# finding a 0 in the result is a memchr. A quarter of what the regular expression costs on a
# 300-character body, and most text is ASCII.
_LINE_BYTE_OK = bytes(0 if b < 0x20 or b == 0x7F else 1 for b in range(256))
_BODY_BYTE_OK = bytes(1 if b in (0x09, 0x0A) else ok for b, ok in enumerate(_LINE_BYTE_OK))


class Kind(IntEnum):
    """Operation kinds; the integer is what goes on the wire."""

    THREAD = 1
    COMMENT = 2
    EDIT = 3
    RETRACT = 4
    REACT = 5
    MODERATE = 6
    PROFILE = 7


# The kinds as module constants, for the paths every received operation takes: on Python 3.11
# `Kind.THREAD` is a lookup through the enum's metaclass (~100 ns, against ~15 ns for a global),
# and parsing an operation asked for up to eight of them (scripts/bench_core.py).
_THREAD: Final = Kind.THREAD
_COMMENT: Final = Kind.COMMENT
_EDIT: Final = Kind.EDIT
_RETRACT: Final = Kind.RETRACT
_REACT: Final = Kind.REACT
_MODERATE: Final = Kind.MODERATE
_PROFILE: Final = Kind.PROFILE


class ModAction(IntEnum):
    """What a `moderate` operation does; the integer is what goes on the wire."""

    HIDE = 1
    UNHIDE = 2
    ADD_MODERATOR = 3
    REMOVE_MODERATOR = 4
    CLOSE = 5
    REOPEN = 6
    RETITLE = 7
    # Rules (SPEC §11): all target the thread; the view applies them, REPORT is anyone's.
    BAN = 8  # subject: an author key; value: until_ms (0: no end)
    UNBAN = 9  # subject: an author key
    APPROVE_AUTHOR = 10  # subject: an author key
    REVOKE_AUTHOR = 11  # subject: an author key
    APPROVE_COMMENT = 12  # subject: a comment id (of this thread, or of a page thread of the site)
    SET_MODE = 13  # value: `ThreadMode`
    SET_REPLIES = 14  # value: `ReplyGate`
    SET_DIFFICULTY = 15  # value: required proof-of-work bits, 0-64
    REPORT = 16  # subject: a comment id; reason: why. By anyone
    RECOMMEND_LIST = 17  # subject: a mute list's thread id; value: 1 recommend, 0 withdraw
    # Claims (SPEC §2, §6 rule 12): not rules; they target an operation, not the thread.
    CLAIM = 18  # targets an imported comment; by anyone: "I wrote this"; reason: a note
    ACCEPT_CLAIM = 19  # targets a claim; by the thread's owner; subject: the claimant's key


class ThreadMode(IntEnum):
    """Who may be shown commenting (SET_MODE's value)."""

    OPEN = 0
    PRE_MODERATED = 1  # held until a moderator approves the author or the comment
    MEMBERS_ONLY = 2  # only approved authors (and the owner and moderators)
    READ_ONLY = 3  # only the owner and moderators


class ReplyGate(IntEnum):
    """Who may be shown replying to a comment (SET_REPLIES's value)."""

    EVERYONE = 0
    APPROVED = 1
    NOBODY_NEW = 2


class EntryKind(IntEnum):
    """What an imported entry was in the system it came from; the integer is on the wire."""

    COMMENT = 1
    PINGBACK = 2
    TRACKBACK = 3


THREAD_LEVEL_ACTIONS: Final = frozenset(
    {ModAction.ADD_MODERATOR, ModAction.REMOVE_MODERATOR, ModAction.CLOSE, ModAction.REOPEN}
)
"""The control operations (SPEC §5 rule 5): what decides who moderates and whether it is closed."""
RULE_ACTIONS: Final = frozenset(
    a for a in ModAction if ModAction.BAN <= a <= ModAction.RECOMMEND_LIST
)
"""The rule actions (SPEC §11): view rules, decided from the operation set at view time."""
THREAD_TARGET_ACTIONS: Final = THREAD_LEVEL_ACTIONS | {ModAction.RETITLE} | RULE_ACTIONS
"""The actions whose ``refs[0]`` is the thread itself; the others target a comment."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadPayload:
    title: str
    url: str | None = None
    site: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """Where an imported comment comes from (SPEC §2): the system (``"wordpress"``,
    ``"disqus"``), the comment's id there, its author's name and URL there, its date there and
    what kind of entry it was. The operation's own author is the importer."""

    source: str
    original_id: str
    author_name: str
    author_url: str | None
    original_timestamp_ms: int
    entry_kind: EntryKind = EntryKind.COMMENT


@dataclass(frozen=True, slots=True, kw_only=True)
class CommentPayload:
    body: str
    provenance: Provenance | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EditPayload:
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RetractPayload:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactPayload:
    """One short reaction; the empty string withdraws the author's reaction."""

    reaction: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeratePayload:
    action: ModAction
    subject: bytes | None = None  # a key or an id, for the actions of `SUBJECT_ACTIONS` only
    reason: str = ""
    value: int | None = None  # for the actions of `VALUE_ACTIONS` only (SPEC §11)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfilePayload:
    name: str


Payload = (
    ThreadPayload
    | CommentPayload
    | EditPayload
    | RetractPayload
    | ReactPayload
    | ModeratePayload
    | ProfilePayload
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """A decoded, structurally valid, signature-checked operation. Build with `make_operation` or
    `decode_operation`; `encoded` is its canonical signed byte form and `id` its identity."""

    id: bytes
    kind: Kind
    author: bytes
    thread: bytes | None
    # Every operation this one depends on: its reference (parent or target), then its causal
    # deps; none for a thread or a profile. `refs` and `deps` are views of it: one tuple per
    # operation instead of three is a third fewer objects for the cyclic GC to count and walk.
    parents: tuple[bytes, ...]
    timestamp_ms: int
    payload: Payload
    signature: bytes = field(repr=False)
    encoded: bytes = field(repr=False)
    version: int = PROTOCOL_VERSION

    @property
    def thread_id(self) -> bytes | None:
        """The thread this operation belongs to: its own id for a thread, None for a profile."""
        return self.id if self.kind is _THREAD else self.thread

    @property
    def refs(self) -> tuple[bytes, ...]:
        """The referenced operations, as on the wire: one, or none for a thread or profile."""
        return self.parents[:1] if self.thread is not None else ()

    @property
    def deps(self) -> tuple[bytes, ...]:
        """The causal dependencies, as on the wire: the thread heads its author had seen."""
        return self.parents[1:]

    @property
    def target(self) -> bytes:
        """The one referenced operation (parent or target); only for kinds that have one."""
        return self.parents[0]


def _fail(reason: str, message: str) -> DecodeError:
    return DecodeError(message, reason=reason)


def _check_text(value: object, field: str, limit: int, *, multiline: bool, empty: bool) -> str:
    if type(value) is not str:
        raise _fail("bad-field", f"{field} must be text")
    ascii_only = value.isascii()  # the common case: its size is its length and it is NFC
    size = len(value) if ascii_only else len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise _fail("oversize", f"{field} is {size} bytes, the limit is {limit}")
    if not empty and (not value or value.isspace()):  # what `not value.strip()` means, no copy
        raise _fail("bad-field", f"{field} must not be empty")
    if ascii_only:
        if 0 in value.encode("ascii").translate(_BODY_BYTE_OK if multiline else _LINE_BYTE_OK):
            raise _fail("bad-text", f"{field} contains control characters")
        return value
    if (_BAD_BODY_CHARS if multiline else _BAD_LINE_CHARS).search(value):
        raise _fail("bad-text", f"{field} contains control characters")
    if not unicodedata.is_normalized("NFC", value):
        raise _fail("bad-text", f"{field} is not in Unicode NFC")
    return value


def _check_optional_text(value: object, field: str, limit: int) -> str | None:
    if value is None:
        return None
    return _check_text(value, field, limit, multiline=False, empty=False)


def _check_key(value: object, field: str) -> bytes:
    if type(value) is not bytes or len(value) != 32:
        raise _fail("bad-field", f"{field} must be 32 bytes")
    return value


def _payload_from_wire(kind: Kind, raw: object, timestamp: object = None) -> Payload:
    if type(raw) is not tuple:
        raise _fail("bad-field", "payload must be an array")
    if raw and type(raw[-1]) is bytes:  # a proof-of-work nonce (SPEC §11.6): last, a bin
        if not 1 <= len(raw[-1]) <= MAX_NONCE_BYTES:
            raise _fail("bad-field", f"a nonce is 1-{MAX_NONCE_BYTES} bytes")
        raw = raw[:-1]
    expected = _PAYLOAD_ARITY[kind]
    if kind is _MODERATE and len(raw) == 4:
        expected = 4  # actions with a value; checked below
    if len(raw) != expected:
        if kind is _COMMENT and len(raw) == 2:
            return CommentPayload(body=_check_body(raw[0]), provenance=_provenance(raw[1]))
        raise _fail("bad-field", f"a {kind.name.lower()} payload has {expected} fields")
    if kind is _COMMENT:
        comment = _new_operation(CommentPayload)  # the frozen __init__ costs three times as much
        _SET_COMMENT_BODY(comment, _check_body(raw[0]))
        _SET_COMMENT_PROVENANCE(comment, None)
        return comment
    if kind is _EDIT:
        edit = _new_operation(EditPayload)
        _SET_EDIT_BODY(edit, _check_body(raw[0]))
        return edit
    if kind is _THREAD:
        title = _check_text(raw[0], "title", MAX_TITLE_BYTES, multiline=False, empty=True)
        url = _check_optional_text(raw[1], "url", MAX_URL_BYTES)
        site = _check_optional_text(raw[2], "site", MAX_SITE_BYTES)
        if (
            not title.strip()
            and url is None
            and not (timestamp == 0 and not title and site is not None and _is_site_name(site))
        ):  # the one exception is a site thread (SPEC §11.2)
            raise _fail("bad-field", "a thread needs a title or a URL")
        return ThreadPayload(title=title, url=url, site=site)
    if kind is _RETRACT:
        return RetractPayload()
    if kind is _REACT:
        reaction = _check_text(raw[0], "reaction", MAX_REACTION_BYTES, multiline=False, empty=True)
        if reaction != reaction.strip():
            raise _fail("bad-text", "a reaction has no surrounding spaces")
        return ReactPayload(reaction=reaction)
    if kind is _MODERATE:
        action_raw, subject_raw, reason_raw = raw[:3]
        if type(action_raw) is not int or action_raw not in _MOD_ACTIONS:
            raise _fail("bad-field", f"unknown moderation action {action_raw!r}")
        action = ModAction(action_raw)
        if (len(raw) == 4) != (action in VALUE_ACTIONS):
            arity = 4 if action in VALUE_ACTIONS else 3
            raise _fail("bad-field", f"a {action.name.lower()} payload has {arity} fields")
        needs_subject = action in SUBJECT_ACTIONS
        if needs_subject:
            subject: bytes | None = _check_key(subject_raw, _SUBJECT_NAME.get(action, "key"))
        elif subject_raw is not None:
            raise _fail("bad-field", f"{action.name.lower()} takes no moderator key")
        else:
            subject = None
        if action is ModAction.RETITLE:  # the reason is the new title: one line
            reason = _check_text(reason_raw, "title", MAX_TITLE_BYTES, multiline=False, empty=True)
        else:
            reason = _check_text(reason_raw, "reason", MAX_REASON_BYTES, multiline=True, empty=True)
        if len(raw) == 4:
            return ModeratePayload(
                action=action, subject=subject, reason=reason, value=_rule_value(action, raw[3])
            )
        return ModeratePayload(action=action, subject=subject, reason=reason)
    name = _check_text(raw[0], "name", MAX_NAME_BYTES, multiline=False, empty=False)
    return ProfilePayload(name=name)


def _rule_value(action: ModAction, value: object) -> int:
    limit = _VALUE_LIMIT.get(action, MAX_TIMESTAMP_MS)
    if type(value) is not int or not 0 <= value <= limit:
        raise _fail("bad-field", f"a {action.name.lower()} value is an integer in [0, {limit}]")
    return value


def _check_body(value: object) -> str:
    return _check_text(value, "body", MAX_BODY_BYTES, multiline=True, empty=False)


_ENTRY_KINDS: Final = frozenset(int(k) for k in EntryKind)


def _provenance(raw: object) -> Provenance:
    if type(raw) is not tuple or len(raw) != 6:
        raise _fail("bad-field", "provenance is an array of 6 fields")
    source_raw, original_id_raw, name_raw, url_raw, timestamp, entry_kind = raw
    source = _check_text(source_raw, "source", MAX_SOURCE_BYTES, multiline=False, empty=False)
    original_id = _check_text(
        original_id_raw, "original id", MAX_ORIGINAL_ID_BYTES, multiline=False, empty=False
    )
    name = _check_text(
        name_raw, "original author", MAX_ORIGINAL_AUTHOR_BYTES, multiline=False, empty=True
    )
    url = _check_optional_text(url_raw, "author url", MAX_URL_BYTES)
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP_MS:
        raise _fail("bad-field", "original_timestamp_ms must be an integer in [0, 2^63)")
    if type(entry_kind) is not int or entry_kind not in _ENTRY_KINDS:
        raise _fail("bad-field", f"unknown entry kind {entry_kind!r}")
    return Provenance(
        source=source,
        original_id=original_id,
        author_name=name,
        author_url=url,
        original_timestamp_ms=timestamp,
        entry_kind=EntryKind(entry_kind),
    )


def _provenance_to_wire(provenance: Provenance) -> tuple[Any, ...]:
    return (
        provenance.source,
        provenance.original_id,
        provenance.author_name,
        provenance.author_url,
        provenance.original_timestamp_ms,
        int(provenance.entry_kind),
    )


_PAYLOAD_ARITY: Final = {
    Kind.THREAD: 3,
    Kind.COMMENT: 1,
    Kind.EDIT: 1,
    Kind.RETRACT: 0,
    Kind.REACT: 1,
    Kind.MODERATE: 3,
    Kind.PROFILE: 1,
}
_KINDS: Final = frozenset(int(k) for k in Kind)
MAX_NONCE_BYTES: Final = 32
MAX_DIFFICULTY: Final = 64
SUBJECT_ACTIONS: Final = frozenset(
    {
        ModAction.ADD_MODERATOR,
        ModAction.REMOVE_MODERATOR,
        ModAction.BAN,
        ModAction.UNBAN,
        ModAction.APPROVE_AUTHOR,
        ModAction.REVOKE_AUTHOR,
        ModAction.APPROVE_COMMENT,
        ModAction.REPORT,
        ModAction.RECOMMEND_LIST,
        ModAction.ACCEPT_CLAIM,
    }
)
"""The actions whose ``subject`` is a key or an id; the others' is nil."""
VALUE_ACTIONS: Final = frozenset(
    {
        ModAction.BAN,
        ModAction.SET_MODE,
        ModAction.SET_REPLIES,
        ModAction.SET_DIFFICULTY,
        ModAction.RECOMMEND_LIST,
    }
)
"""The actions whose payload has a fourth element, an unsigned integer (SPEC §11)."""
_VALUE_LIMIT: Final = {
    ModAction.SET_MODE: max(ThreadMode),
    ModAction.SET_REPLIES: max(ReplyGate),
    ModAction.SET_DIFFICULTY: MAX_DIFFICULTY,
    ModAction.RECOMMEND_LIST: 1,
}
_SUBJECT_NAME: Final = {
    ModAction.ADD_MODERATOR: "moderator key",
    ModAction.REMOVE_MODERATOR: "moderator key",
    ModAction.APPROVE_COMMENT: "comment id",
    ModAction.REPORT: "comment id",
    ModAction.RECOMMEND_LIST: "list id",
    ModAction.ACCEPT_CLAIM: "claimant key",
}
_MOD_ACTIONS: Final = frozenset(int(a) for a in ModAction)
_KIND_BY_INT: Final = {int(k): k for k in Kind}


def _payload_to_wire(payload: Payload) -> tuple[Any, ...]:
    match payload:
        case ThreadPayload(title=title, url=url, site=site):
            return (title, url, site)
        case CommentPayload(body=body, provenance=provenance):
            return (body,) if provenance is None else (body, _provenance_to_wire(provenance))
        case EditPayload(body=body):
            return (body,)
        case RetractPayload():
            return ()
        case ReactPayload(reaction=reaction):
            return (reaction,)
        case ModeratePayload(action=action, subject=subject, reason=reason, value=value):
            if value is None:
                return (int(action), subject, reason)
            return (int(action), subject, reason, int(value))
        case ProfilePayload(name=name):
            return (name,)
    raise TypeError(f"not a payload: {payload!r}")  # pragma: no cover


_PAYLOAD_KIND: Final[dict[type, Kind]] = {
    ThreadPayload: Kind.THREAD,
    CommentPayload: Kind.COMMENT,
    EditPayload: Kind.EDIT,
    RetractPayload: Kind.RETRACT,
    ReactPayload: Kind.REACT,
    ModeratePayload: Kind.MODERATE,
    ProfilePayload: Kind.PROFILE,
}


def _check_envelope(fields: tuple[Any, ...]) -> tuple[Kind, Payload]:
    """Structural rules shared by building and decoding; returns the kind and parsed payload."""
    version, kind_raw, author, thread, refs, deps, timestamp, payload_raw = fields[:8]
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise _fail("unknown-version", f"unknown protocol version {version!r}")
    if type(kind_raw) is not int or kind_raw not in _KINDS:
        raise _fail("unknown-kind", f"unknown operation kind {kind_raw!r}")
    kind = _KIND_BY_INT[kind_raw]
    if type(author) is not bytes or len(author) != 32:
        raise _fail("bad-field", "author must be 32 bytes")
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP_MS:
        raise _fail("bad-field", "timestamp_ms must be an integer in [0, 2^63)")
    if type(refs) is not tuple or type(deps) is not tuple:
        raise _fail("bad-field", "refs and deps must be arrays")
    for ref in refs:
        if type(ref) is not bytes or len(ref) != 32:
            raise _fail("bad-field", "reference must be 32 bytes")
    for dep in deps:
        if type(dep) is not bytes or len(dep) != 32:
            raise _fail("bad-field", "dependency must be 32 bytes")
    standalone = kind is _THREAD or kind is _PROFILE
    if standalone:
        if thread is not None or refs or deps:
            raise _fail("bad-field", f"a {kind.name.lower()} has no thread, refs or deps")
    else:
        _check_key(thread, "thread")
        if len(refs) != 1:
            raise _fail("bad-field", f"a {kind.name.lower()} references exactly one operation")
        if len(deps) > MAX_DEPS:
            raise _fail("oversize", f"{len(deps)} causal dependencies, the limit is {MAX_DEPS}")
        # Most operations have one dependency; the pairwise walk is for the rest.
        if len(deps) > 1 and not all(map(bytes.__lt__, deps, deps[1:])):
            raise _fail("bad-field", "deps must be sorted ascending without repeats")
    payload = _payload_from_wire(kind, payload_raw, timestamp)
    if kind is _MODERATE:
        assert isinstance(payload, ModeratePayload)
        at_thread = refs[0] == thread
        if (payload.action in THREAD_TARGET_ACTIONS) != at_thread:
            where = "the thread" if payload.action in THREAD_TARGET_ACTIONS else "a comment"
            raise _fail("bad-reference", f"{payload.action.name.lower()} must target {where}")
    elif kind is not _COMMENT and not standalone and refs[0] == thread:
        raise _fail("bad-reference", f"a {kind.name.lower()} must target a comment")
    return kind, payload


def unsigned_fields(
    author: bytes,
    payload: Payload,
    *,
    timestamp_ms: int,
    thread: bytes | None = None,
    refs: tuple[bytes, ...] = (),
    deps: tuple[bytes, ...] | frozenset[bytes] = (),
    nonce: bytes | None = None,
) -> tuple[Any, ...]:
    """The unsigned form's 8 fields (SPEC §2), as msgpack packs them; unchecked."""
    wire = _payload_to_wire(payload)
    return (
        PROTOCOL_VERSION,
        int(_PAYLOAD_KIND[type(payload)]),
        author,
        thread,
        tuple(refs),
        tuple(sorted(deps)),
        timestamp_ms,
        wire if nonce is None else (*wire, nonce),
    )


def make_operation(
    signing_key: SigningKey,
    payload: Payload,
    *,
    timestamp_ms: int,
    thread: bytes | None = None,
    refs: tuple[bytes, ...] = (),
    deps: tuple[bytes, ...] | frozenset[bytes] = (),
    nonce: bytes | None = None,
) -> Operation:
    """Build and sign an operation. Raises `InvalidOperation` if it breaks a structural rule.

    ``deps`` may be given in any order; they are sorted as the encoding requires. A page thread
    carries no signature: build it with `page_thread`. ``nonce`` is a proof-of-work nonce (SPEC
    §11.6), the payload's last element; `core.pow.mine` finds one.
    """
    kind = _PAYLOAD_KIND[type(payload)]
    author = bytes(signing_key.verify_key)
    fields = (
        PROTOCOL_VERSION,
        int(kind),
        author,
        thread,
        tuple(refs),
        tuple(sorted(deps)),
        timestamp_ms,
        _payload_to_wire(payload) if nonce is None else (*_payload_to_wire(payload), nonce),
    )
    _check_envelope(fields)
    if timestamp_ms == 0 and type(payload) is ThreadPayload and _is_page_form(payload):
        raise InvalidOperation(
            "a thread with timestamp 0, no title and its page's URL and site is a page thread,"
            " which carries no signature: build it with page_thread",
            reason="bad-field",
        )
    unsigned = msgpack.packb(fields, use_bin_type=True)
    op_id = hashlib.sha256(unsigned).digest()
    signature = signing_key.sign(OP_SIGNING_DOMAIN + op_id).signature
    encoded = msgpack.packb((*fields, signature), use_bin_type=True)
    if len(encoded) > MAX_OPERATION_BYTES:
        raise InvalidOperation(
            f"operation is {len(encoded)} bytes, the limit is {MAX_OPERATION_BYTES}",
            reason="oversize",
        )
    return _build(op_id, kind, fields, payload, signature, encoded)


def _build(
    op_id: bytes,
    kind: Kind,
    fields: tuple[Any, ...],
    payload: Payload,
    signature: bytes,
    encoded: bytes,
) -> Operation:
    # Sets the slots directly: the frozen dataclass __init__ costs twice as much, on a path every
    # received operation takes.
    op = _new_operation(Operation)
    _SET_ID(op, op_id)
    _SET_KIND(op, kind)
    _SET_AUTHOR(op, fields[2])
    _SET_THREAD(op, fields[3])
    _SET_PARENTS(op, fields[4] + fields[5])  # refs + () is refs itself
    _SET_TIMESTAMP(op, fields[6])
    _SET_PAYLOAD(op, payload)
    _SET_SIGNATURE(op, signature)
    _SET_ENCODED(op, encoded)
    _SET_VERSION(op, fields[0])
    return op


_new_operation = object.__new__
(
    _SET_ID,
    _SET_KIND,
    _SET_AUTHOR,
    _SET_THREAD,
    _SET_PARENTS,
    _SET_TIMESTAMP,
    _SET_PAYLOAD,
    _SET_SIGNATURE,
    _SET_ENCODED,
    _SET_VERSION,
) = (
    Operation.__dict__[name].__set__
    for name in (
        "id",
        "kind",
        "author",
        "thread",
        "parents",
        "timestamp_ms",
        "payload",
        "signature",
        "encoded",
        "version",
    )
)


_SET_COMMENT_BODY = CommentPayload.__dict__["body"].__set__
_SET_COMMENT_PROVENANCE = CommentPayload.__dict__["provenance"].__set__
_SET_EDIT_BODY = EditPayload.__dict__["body"].__set__


def decode_operation(data: bytes, *, verify: bool = True) -> Operation:
    """Decode one operation from its canonical signed bytes.

    Any input yields an `Operation` or a `DecodeError`/`InvalidOperation` with a reason code; never
    another exception. ``verify=False`` skips only the signature check, for bytes this node already
    verified and stored itself.
    """
    op = _parse(data)
    if verify and not _authentic(op):
        raise InvalidOperation(_BAD_SIGNATURE, reason="bad-signature")
    return op


def decode_operations(
    items: Sequence[bytes], ids: Sequence[bytes | None] | None = None
) -> list[Operation | InvalidOperation]:
    """`decode_operation` for many items: each becomes its `Operation`, or the error that
    `decode_operation` would raise for it. A `DecodeError` means the bytes are not an operation;
    any other `InvalidOperation` (a bad signature) means they are one, of id `claimed_id`.

    Faster per item than `decode_operation` (scripts/bench_core.py): every item is parsed before
    any signature is checked, which keeps libsodium's code and tables in the CPU's caches while it
    verifies. ``ids``, if given, are the items' `claimed_id`s, which the caller has computed
    already (each item's id is then not hashed again)."""
    results: list[Operation | InvalidOperation] = []
    for data, op_id in zip(items, ids if ids is not None else [None] * len(items), strict=True):
        try:
            results.append(_parse(data, op_id))
        except InvalidOperation as error:
            results.append(error)
    parsed = [(index, op) for index, op in enumerate(results) if isinstance(op, Operation)]
    verdicts = authentic_all([op for _, op in parsed])
    for (index, _), authentic in zip(parsed, verdicts, strict=True):
        if not authentic:
            results[index] = InvalidOperation(_BAD_SIGNATURE, reason="bad-signature")
    return results


class _Map:
    """What every msgpack map decodes to here. No field takes one, so a map is `bad-field` where
    a field is expected (`malformed` as the whole operation) whatever its keys: msgpack's own
    dict would make a map with integer keys `malformed` (strict_map_key) and one with a map for a
    key unhashable, a reason no other implementation could guess (SPEC §5.1)."""

    __slots__ = ()


_MAP: Final = _Map()


def _map(pairs: object) -> _Map:
    return _MAP


def _parse(data: bytes, op_id: bytes | None = None) -> Operation:
    """Everything `decode_operation` checks but the signature. ``op_id``: `claimed_id` (data)
    if the caller has it (the same hash of the same bytes, once they parse)."""
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) > MAX_OPERATION_BYTES:
        raise _fail(
            "oversize", f"operation is {len(data)} bytes, the limit is {MAX_OPERATION_BYTES}"
        )
    try:
        fields = msgpack.unpackb(
            data, raw=False, use_list=False, strict_map_key=False, object_pairs_hook=_map
        )
    except (ValueError, TypeError, OverflowError, RecursionError, msgpack.UnpackException) as error:
        raise _fail("malformed", f"not a msgpack operation: {error}") from None
    if type(fields) is not tuple or len(fields) != 9:
        raise _fail("malformed", "an operation is an array of 9 fields")
    signature = fields[8]
    if type(signature) is not bytes or len(signature) != 64:
        raise _fail("bad-field", "signature must be 64 bytes")
    kind, payload = _check_envelope(fields)
    # A packer from the pool: making one (what msgpack.packb does) costs as much as packing. Taking
    # and returning it are single list operations, atomic, so each thread packs with its own.
    try:
        packer = _PACKERS.pop()
    except IndexError:
        packer = msgpack.Packer(use_bin_type=True)
    try:
        canonical = packer.pack(fields)
    except (ValueError, TypeError, OverflowError) as error:  # pragma: no cover - shape was checked
        raise _fail("malformed", f"cannot re-encode: {error}") from None  # the packer is dropped
    _PACKERS.append(packer)
    if canonical != data:
        raise _fail("non-canonical", "operation is not in its canonical msgpack form")
    if op_id is None:
        op_id = hashlib.sha256(_UNSIGNED_HEADER + data[1:-_SIGNATURE_TAIL]).digest()
    return _build(op_id, kind, fields, payload, signature, data)


def load_stored_operation(data: bytes, op_id: bytes | None = None) -> Operation:
    """Rebuild an operation from bytes this node decoded, checked and stored itself.

    Skips what `decode_operation` already did before the bytes were stored (the canonical
    re-encoding, text rules and the signature) so that opening a large store is fast; malformed
    bytes still raise `DecodeError`. Never use it for bytes from anywhere else. ``op_id``: the
    `claimed_id` of ``data`` when the caller has just computed it (not hashed again).
    """
    try:
        fields = msgpack.unpackb(data, raw=False, use_list=False)
        kind = _KIND_BY_INT[fields[1]]
        raw_payload = fields[7]
        if raw_payload and type(raw_payload[-1]) is bytes:  # a proof-of-work nonce
            raw_payload = raw_payload[:-1]
        payload: Payload
        if kind is _COMMENT:
            comment = _new_operation(CommentPayload)  # as in `_payload_from_wire`
            _SET_COMMENT_BODY(comment, raw_payload[0])
            _SET_COMMENT_PROVENANCE(
                comment, _provenance(raw_payload[1]) if len(raw_payload) == 2 else None
            )
            payload = comment
        elif kind is _EDIT:
            payload = EditPayload(body=raw_payload[0])
        elif kind is _REACT:
            payload = ReactPayload(reaction=raw_payload[0])
        elif kind is _THREAD:
            payload = ThreadPayload(title=raw_payload[0], url=raw_payload[1], site=raw_payload[2])
        elif kind is _RETRACT:
            payload = RetractPayload()
        elif kind is _MODERATE:
            action = ModAction(raw_payload[0])
            payload = ModeratePayload(
                action=action,
                subject=raw_payload[1],
                reason=raw_payload[2],
                value=raw_payload[3] if len(raw_payload) == 4 else None,
            )
        else:
            payload = ProfilePayload(name=raw_payload[0])
        signature = fields[8]
    except (ValueError, TypeError, KeyError, IndexError, msgpack.UnpackException) as error:
        raise _fail("malformed", f"stored operation does not decode: {error}") from None
    if op_id is None:
        op_id = hashlib.sha256(_UNSIGNED_HEADER + data[1:-_SIGNATURE_TAIL]).digest()
    return _build(
        op_id, kind, fields, payload, signature, data if type(data) is bytes else bytes(data)
    )


def claimed_id(data: bytes) -> bytes | None:
    """The id ``data`` has if it is an operation, without decoding it (SPEC §4: the unsigned
    form is ``0x98 || signed[1 : len - 66]``), or None when it can't be one (not a 9-element
    array ending in a 64-byte ``bin 8``, or over the size limit).

    Cheap enough to check every received operation against the ids asked for, or held; whether
    the operation is valid is still decided by `decode_operation`, and a forgery that claims an
    id is rejected there."""
    if not _MIN_OPERATION_BYTES <= len(data) <= MAX_OPERATION_BYTES or data[0] != _SIGNED_HEADER:
        return None
    if data[-_SIGNATURE_TAIL : -_SIGNATURE_TAIL + 2] != b"\xc4\x40":
        return None
    return hashlib.sha256(_UNSIGNED_HEADER + data[1:-_SIGNATURE_TAIL]).digest()


def encoded_digest(encoded: Iterable[bytes]) -> bytes:
    """One SHA-256 over a set of operations' bytes, in any order: equal exactly when the bytes
    are (a replica keeps it for a thread it drops from memory, so bytes read back unchanged need
    not have their signatures checked again)."""
    digest = hashlib.sha256()
    for data in sorted(encoded):
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)
    return digest.digest()


def verify_operation(op: Operation) -> None:
    """Raise `InvalidOperation` (reason ``bad-signature``) unless ``op`` is authentic (rule 7):
    what `decode_operation` checks after parsing, for an operation decoded with ``verify=False``."""
    if not _authentic(op):
        raise InvalidOperation(_BAD_SIGNATURE, reason="bad-signature")


def verify_signature(author: bytes, op_id: bytes, signature: bytes) -> None:
    """Raise `InvalidOperation` (reason ``bad-signature``) unless ``signature`` is ``author``'s
    Ed25519 signature of the operation ``op_id``. The bare signature check: whether an operation
    is authentic is `verify_operation`'s to say (a page thread has no signature)."""
    # libsodium's crypto_sign_open, the function PyNaCl's VerifyKey.verify calls, so acceptance
    # rules are libsodium's exactly; called through PyNaCl's own cffi binding with no output
    # buffer (libsodium allows NULL there), which skips two allocations and a copy per operation:
    # 2 µs of the 56 µs a verification takes (scripts/bench_core.py).
    if type(author) is not bytes or len(author) != 32 or len(signature) != 64 or len(op_id) != 32:
        raise InvalidOperation(_BAD_SIGNATURE, reason="bad-signature")
    signed = signature + OP_SIGNING_DOMAIN + op_id
    if _crypto_sign_open(_NULL, _NULL, signed, len(signed), author) != 0:
        raise InvalidOperation(_BAD_SIGNATURE, reason="bad-signature")


def _authentic(op: Operation) -> bool:
    """Rule 7 for a decoded operation, whose field lengths decoding has checked."""
    unsigned = _unsigned_verdict(op)
    if unsigned is not None:
        return unsigned
    signed = op.signature + OP_SIGNING_DOMAIN + op.id
    return bool(_crypto_sign_open(_NULL, _NULL, signed, len(signed), op.author) == 0)


def _unsigned_verdict(op: Operation) -> bool | None:
    """Rule 7 where no signature decides it (page-thread forms), else None: check it."""
    if op.signature == PAGE_THREAD_SIGNATURE:
        return is_page_thread(op)
    if op.timestamp_ms == 0 and op.kind is _THREAD and is_page_thread(op):
        return False  # signed, a page thread would have two byte forms of one id
    return None


def authentic_all(ops: Sequence[Operation]) -> list[bool]:
    """Whether each of ``ops`` is authentic (rule 7; `verify_operation` for many, decoded with
    ``verify=False`` or from storage): the signatures checked in one call that lets go of the
    GIL once (`_signatures.open_all`: libsodium's verdicts, the keys signing at least
    `_TABLE_MIN_USES` of them checked through tables of their multiples first), where that helper
    is built and more than one needs checking; else one by one. Checking one at a time, a worker
    thread takes the GIL back after every check and waits there behind every other thread that
    wants it (scripts/bench_scale.py: loading threads for an export)."""
    verdicts = [_unsigned_verdict(op) for op in ops]
    signed = [index for index, verdict in enumerate(verdicts) if verdict is None]
    if _open_all is None or len(signed) < 2:
        pairs = zip(ops, verdicts, strict=True)
        return [_authentic(op) if verdict is None else verdict for op, verdict in pairs]
    messages = b"".join(
        b"".join((ops[index].signature, OP_SIGNING_DOMAIN, ops[index].id)) for index in signed
    )
    keys = b"".join(ops[index].author for index in signed)
    checked = iter(
        _open_all(
            _SIGN_OPEN_ADDRESS, _SHA512_ADDRESS, messages, _SIGNED_BYTES, keys, _TABLE_MIN_USES
        )
    )
    return [next(checked) == 1 if verdict is None else verdict for verdict in verdicts]


# -- page threads (SPEC §10.2) --------------------------------------------------------------------


def is_page_thread(op: Operation) -> bool:
    """Whether ``op`` has a page thread's form (rule 7), or a site thread's (SPEC §11.2),
    whatever its signature field holds."""
    if op.kind is not _THREAD or op.timestamp_ms != 0:
        return False
    payload = op.payload
    assert isinstance(payload, ThreadPayload)
    # A nonce would give one page many threads: the form is the payload of 3 elements exactly.
    return _is_page_form(payload) and _has_plain_thread_payload(op.encoded)


def _has_plain_thread_payload(encoded: bytes) -> bool:
    fields = msgpack.unpackb(encoded, raw=False, use_list=False)
    return len(fields[7]) == 3


def _is_site_name(site: str) -> bool:
    """Whether ``site`` is a host in the normal form of SPEC §10.1."""
    try:
        return page_site(normalise_page_url(f"https://{site}/")) == site
    except PageUrlError:
        return False


def _is_page_form(payload: ThreadPayload) -> bool:
    url = payload.url
    if payload.title:
        return False
    if url is None:
        return payload.site is not None and _is_site_name(payload.site)
    try:
        normal = normalise_page_url(url)
    except PageUrlError:
        return False
    return normal == url and payload.site == page_site(normal)


def page_thread(owner: bytes, url: str) -> Operation:
    """The page thread of ``url`` owned by ``owner`` (SPEC §10.2): the same operation whoever
    makes it, so anyone may. Raises `PageUrlError` for a URL that can't name a page, and
    `InvalidOperation` for an owner that is not 32 bytes."""
    if type(owner) is not bytes or len(owner) != 32:
        raise InvalidOperation("an owner key is 32 bytes", reason="bad-field")
    normal = normalise_page_url(url)
    payload = ThreadPayload(title="", url=normal, site=page_site(normal))
    fields = (PROTOCOL_VERSION, int(Kind.THREAD), owner, None, (), (), 0, _payload_to_wire(payload))
    _check_envelope(fields)  # the URL's normal form is ASCII within the url and site limits
    unsigned = msgpack.packb(fields, use_bin_type=True)
    encoded = msgpack.packb((*fields, PAGE_THREAD_SIGNATURE), use_bin_type=True)
    op_id = hashlib.sha256(unsigned).digest()
    return _build(op_id, Kind.THREAD, fields, payload, PAGE_THREAD_SIGNATURE, encoded)


def page_thread_id(owner: bytes, url: str) -> bytes:
    """The id of `page_thread` (owner, url): the thread a page's comments go to."""
    return page_thread(owner, url).id


def site_thread(owner: bytes, site: str) -> Operation:
    """The site thread of (``owner``, ``site``) (SPEC §11.2): like a page thread, derived from
    its owner and a host and carrying no signature; its rules hold for every page thread of that
    owner and site. Raises `PageUrlError` for a site not in normal form."""
    if type(owner) is not bytes or len(owner) != 32:
        raise InvalidOperation("an owner key is 32 bytes", reason="bad-field")
    if not _is_site_name(site):
        raise PageUrlError(f"{site!r} is not a host in normal form", reason="bad-host")
    payload = ThreadPayload(title="", url=None, site=site)
    fields = (PROTOCOL_VERSION, int(Kind.THREAD), owner, None, (), (), 0, _payload_to_wire(payload))
    _check_envelope(fields)
    unsigned = msgpack.packb(fields, use_bin_type=True)
    encoded = msgpack.packb((*fields, PAGE_THREAD_SIGNATURE), use_bin_type=True)
    op_id = hashlib.sha256(unsigned).digest()
    return _build(op_id, Kind.THREAD, fields, payload, PAGE_THREAD_SIGNATURE, encoded)


def is_site_thread(op: Operation) -> bool:
    """Whether ``op`` is a site thread (SPEC §11.2)."""
    payload = op.payload
    return (
        op.kind is Kind.THREAD
        and op.signature == PAGE_THREAD_SIGNATURE
        and (isinstance(payload, ThreadPayload) and payload.url is None)
    )


_PACKERS: list[msgpack.Packer] = []  # idle packers; as many as threads ever decoded at once
_crypto_sign_open = _sodium_lib.crypto_sign_open
_NULL = _sodium_ffi.NULL
# The address of that same function, for the C helper that checks a chunk in one call.
_SIGN_OPEN_ADDRESS: Final = int(
    _sodium_ffi.cast("uintptr_t", _sodium_ffi.addressof(_sodium_lib, "crypto_sign_open"))
)
# libsodium's SHA-512, which the helper's key tables hash with (as crypto_sign_open does).
_SHA512_ADDRESS: Final = int(
    _sodium_ffi.cast("uintptr_t", _sodium_ffi.addressof(_sodium_lib, "crypto_hash_sha512"))
)
# A key signing at least this many of a call's operations has them checked against a table of
# its multiples first (_ed25519.c), kept for the next calls: making one costs about one and a
# half signature checks, and each check through it less than half of one
# (scripts/bench_signatures.py).
_TABLE_MIN_USES: Final = 4
_SIGNED_BYTES: Final = 64 + len(OP_SIGNING_DOMAIN) + 32  # signature, domain, operation id
_BAD_SIGNATURE: Final = "signature does not match the author's key"
