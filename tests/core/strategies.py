"""Hypothesis strategies for the protocol core: keys, text, payloads, operations and histories.

A *history* is made the way real ones are: a few nodes (each a `Replica`) write operations from
what they have seen (deps = the heads of their own view) and now and then learn what another node
has, so operations are concurrent, stale, or out of date in every way a network produces. Writers
are honest most of the time; sometimes they edit what isn't theirs, hide without being a moderator,
forge an early timestamp, depend on old operations only, or reply across threads.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    MAX_DEPS,
    CommentPayload,
    EditPayload,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    Payload,
    ProfilePayload,
    ReactPayload,
    RetractPayload,
    ThreadPayload,
    decode_operation,
    make_operation,
)
from p2pcomments.core.replica import Outcome, Rejected, Replica
from p2pcomments.errors import InvalidOperation

T = TypeVar("T")
Draw = Callable[[st.SearchStrategy[Any]], Any]


def budget(fraction: float, *, least: int = 5) -> int:
    """A share of the loaded profile's ``max_examples``, for tests that are costly per example."""
    return max(least, int(settings().max_examples * fraction))


# -- keys --------------------------------------------------------------------------------------

KEYS: tuple[SigningKey, ...] = tuple(
    SigningKey(hashlib.sha256(f"p2pcomments test key {i}".encode()).digest()) for i in range(5)
)
KEY_BY_PUBLIC: dict[bytes, SigningKey] = {bytes(k.verify_key): k for k in KEYS}
keys = st.sampled_from(KEYS)
ids = st.binary(min_size=32, max_size=32)

# -- text --------------------------------------------------------------------------------------

# Everything but C0/C1 controls and surrogates (which the protocol refuses); newline and tab are
# added back where text may span lines.
_LINE_CHARS = st.characters(exclude_categories=("Cs", "Cc"))
_BODY_CHARS = st.one_of(_LINE_CHARS, st.sampled_from("\n\t"))


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _fits(limit: int) -> Callable[[str], bool]:
    return lambda text: len(text.encode("utf-8")) <= limit


def texts(
    *, multiline: bool, max_size: int, max_bytes: int, empty: bool = False
) -> st.SearchStrategy[str]:
    """NFC text the protocol accepts: non-blank unless ``empty``, within ``max_bytes``."""
    chars = _BODY_CHARS if multiline else _LINE_CHARS
    base = st.text(chars, min_size=0 if empty else 1, max_size=max_size).map(_nfc)
    base = base.filter(_fits(max_bytes))
    return base if empty else base.filter(lambda text: bool(text.strip()))


bodies = st.one_of(
    st.sampled_from(
        ["hello", "Nice post!", "line one\nline two", "café ☕", "中文评论", "👍🏽 ok"]
    ),
    texts(multiline=True, max_size=60, max_bytes=32 * 1024),
)
titles = texts(multiline=False, max_size=30, max_bytes=512)
names = texts(multiline=False, max_size=16, max_bytes=64)
reactions = st.one_of(
    st.sampled_from(["+1", "❤️", "🎉", "👀", "ok", ""]),
    texts(multiline=False, max_size=4, max_bytes=32).filter(lambda r: r == r.strip()),
)
reasons = st.one_of(st.just(""), texts(multiline=True, max_size=20, max_bytes=512))
urls = st.one_of(
    st.none(), st.sampled_from(["https://blog.example/post/1", "https://例え.jp/記事?id=2"])
)
sites = st.one_of(st.none(), st.sampled_from(["blog.example", "例え.jp"]))

# -- payloads and free-standing operations -----------------------------------------------------

thread_payloads = st.builds(ThreadPayload, title=titles, url=urls, site=sites)
comment_payloads = st.builds(CommentPayload, body=bodies)
edit_payloads = st.builds(EditPayload, body=bodies)
react_payloads = st.builds(ReactPayload, reaction=reactions)
profile_payloads = st.builds(ProfilePayload, name=names)
_subject_actions = st.sampled_from([ModAction.ADD_MODERATOR, ModAction.REMOVE_MODERATOR])
_plain_actions = st.sampled_from(
    [ModAction.HIDE, ModAction.UNHIDE, ModAction.CLOSE, ModAction.REOPEN]
)
moderate_payloads = st.one_of(
    st.builds(ModeratePayload, action=_subject_actions, subject=ids, reason=reasons),
    st.builds(ModeratePayload, action=_plain_actions, subject=st.none(), reason=reasons),
)
payloads: st.SearchStrategy[Payload] = st.one_of(
    thread_payloads,
    comment_payloads,
    edit_payloads,
    st.just(RetractPayload()),
    react_payloads,
    moderate_payloads,
    profile_payloads,
)
timestamps = st.one_of(st.integers(0, 2**63 - 1), st.integers(1_600_000_000_000, 1_800_000_000_000))


@st.composite
def operations(draw: Draw, payload: st.SearchStrategy[Payload] = payloads) -> Operation:
    """One structurally valid, signed operation of any kind (its references are random ids)."""
    chosen: Payload = draw(payload)
    key: SigningKey = draw(keys)
    ts: int = draw(timestamps)
    if isinstance(chosen, ThreadPayload | ProfilePayload):
        return make_operation(key, chosen, timestamp_ms=ts)
    thread: bytes = draw(ids)
    deps = draw(st.frozensets(ids, max_size=MAX_DEPS))
    if isinstance(chosen, CommentPayload) and draw(st.booleans()):
        ref = thread  # a reply to the thread itself
    elif isinstance(chosen, ModeratePayload) and chosen.action in (
        ModAction.ADD_MODERATOR,
        ModAction.REMOVE_MODERATOR,
        ModAction.CLOSE,
        ModAction.REOPEN,
    ):
        ref = thread
    else:
        ref = draw(ids.filter(lambda i: i != thread))
    return make_operation(key, chosen, timestamp_ms=ts, thread=thread, refs=(ref,), deps=deps)


# -- writing nodes and histories ---------------------------------------------------------------


@dataclass(slots=True)
class Clock:
    """Wall time across all writers: mostly advancing; sometimes a writer's clock is far behind."""

    now: int = 1_700_000_000_000

    def stamp(self, draw: Draw) -> int:
        self.now += draw(st.integers(0, 2_000))
        if draw(st.integers(0, 9)) == 0:
            return int(draw(st.integers(self.now - 1_000_000, self.now)))
        return self.now


@dataclass(eq=False, slots=True)
class Node:
    """A replica that writes: it makes operations from its own view and keeps what it received."""

    replica: Replica = field(default_factory=Replica)
    received: dict[bytes, Operation] = field(default_factory=dict)  # in arrival order

    def receive(self, op: Operation) -> Outcome | None:
        """Apply ``op`` unless already received; the outcome, or None for a repeat."""
        if op.id in self.received:
            self.replica.apply(op)  # the replica must say Duplicate or Rejected: harmless
            return None
        self.received[op.id] = op
        return self.replica.apply(op).outcome

    def receive_bytes(self, data: bytes) -> Outcome | None:
        """Decode and apply wire bytes; None if they are not a valid operation (or a repeat)."""
        try:
            op = decode_operation(data)
        except InvalidOperation:
            return None
        return self.receive(op)

    def learn_from(self, other: Node) -> None:
        for op in list(other.received.values()):
            self.receive(op)


# Writers' text is drawn from short lists: the text rules have their own tests, and drawing
# arbitrary unicode dominates the cost of a history.
_writer_bodies = st.sampled_from(["hi", "I agree", "edited ✍", "line\nline", "中文", "+1"])
_writer_titles = st.sampled_from(["A post", "Über"])
_writer_names = st.sampled_from(["Alice", "Bob", "Zoë"])

WRITE_ACTIONS = (
    *["comment"] * 3,
    *["reply"] * 4,
    *["edit"] * 4,
    *["react"] * 3,
    *["hide", "unhide"] * 2,
    "retract",
    "add_moderator",
    "remove_moderator",
    "close",
    "reopen",
    "profile",
    *["thread"] * 2,
    *["cross_thread"] * 2,
)


def _pick(draw: Draw, items: Iterable[bytes]) -> bytes:
    return draw(st.sampled_from(sorted(items)))  # type: ignore[no-any-return]


def _sometimes(draw: Draw, one_in: int) -> bool:
    return draw(st.integers(0, one_in - 1)) == 0  # type: ignore[no-any-return]


def write_operation(
    node: Node,
    draw: Draw,
    clock: Clock,
    *,
    may_open_thread: bool = True,
    action: str | None = None,
) -> Operation:
    """An operation a writer at ``node`` could make now: usually valid, sometimes not.
    A new thread is opened only when ``may_open_thread`` (or when the node knows none);
    ``action`` (one of `WRITE_ACTIONS`) is drawn unless given."""
    replica = node.replica
    if action is None:
        action = draw(st.sampled_from(WRITE_ACTIONS))
    if action == "profile":
        return make_operation(
            draw(keys), ProfilePayload(name=draw(_writer_names)), timestamp_ms=clock.stamp(draw)
        )
    if not replica.threads or (action == "thread" and may_open_thread):
        payload = ThreadPayload(title=draw(_writer_titles), url=draw(urls))
        return make_operation(draw(keys), payload, timestamp_ms=clock.stamp(draw))

    thread_id: bytes = _pick(draw, replica.threads)
    state = replica.threads[thread_id]
    thread = state.thread_op
    comments = sorted(
        (op for op in state.ops.values() if op.kind is Kind.COMMENT), key=lambda op: op.id
    )
    if _sometimes(draw, 6):  # an old, partial view: depend on a few earlier operations only
        earlier = sorted(state.ops)
        deps: tuple[bytes, ...] | frozenset[bytes] = draw(
            st.frozensets(st.sampled_from(earlier), min_size=1, max_size=3)
        )
    else:
        deps = state.causal_deps()
    ts = clock.stamp(draw)

    def make(key: SigningKey, payload: Payload, ref: bytes) -> Operation:
        return make_operation(
            key, payload, timestamp_ms=ts, thread=thread_id, refs=(ref,), deps=deps
        )

    def authority() -> SigningKey:
        """Who moderates: mostly the owner or a moderator, sometimes anybody."""
        choice = draw(st.integers(0, 3))
        if choice <= 1:
            return KEY_BY_PUBLIC[state.owner]
        if choice == 2 and state.moderators:
            return KEY_BY_PUBLIC[_pick(draw, state.moderators)]
        return draw(keys)  # type: ignore[no-any-return]

    if action == "cross_thread":
        others = [
            op
            for other_id, other in replica.threads.items()
            if other_id != thread_id
            for op in other.ops.values()
            if op.kind is Kind.COMMENT
        ]
        if others:  # invalid: a reply whose parent lives in another thread
            parent = _pick(draw, [op.id for op in others])
            return make(draw(keys), CommentPayload(body=draw(_writer_bodies)), parent)
        action = "comment"
    if action in ("add_moderator", "remove_moderator"):
        owner = KEY_BY_PUBLIC[state.owner]
        author = owner if not _sometimes(draw, 5) else draw(keys)
        subject = bytes(draw(keys).verify_key)
        mod_action = (
            ModAction.ADD_MODERATOR if action == "add_moderator" else ModAction.REMOVE_MODERATOR
        )
        return make(author, ModeratePayload(action=mod_action, subject=subject), thread.id)
    if action in ("close", "reopen"):
        mod_action = ModAction.CLOSE if action == "close" else ModAction.REOPEN
        return make(authority(), ModeratePayload(action=mod_action), thread.id)
    if action in ("comment", "thread") or not comments:
        return make(draw(keys), CommentPayload(body=draw(_writer_bodies)), thread_id)
    target: Operation = draw(st.sampled_from(comments))
    if action == "reply":
        return make(draw(keys), CommentPayload(body=draw(_writer_bodies)), target.id)
    if action in ("edit", "retract"):
        author = KEY_BY_PUBLIC[target.author] if not _sometimes(draw, 5) else draw(keys)
        payload: Payload = (
            EditPayload(body=draw(_writer_bodies)) if action == "edit" else RetractPayload()
        )
        return make(author, payload, target.id)
    if action == "react":
        return make(draw(keys), ReactPayload(reaction=draw(reactions)), target.id)
    mod_action = ModAction.HIDE if action == "hide" else ModAction.UNHIDE
    return make(authority(), ModeratePayload(action=mod_action), target.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    """Operations written by several nodes, in the order they were written (a causal order)."""

    ops: tuple[Operation, ...]

    def __repr__(self) -> str:
        kinds = ", ".join(op.kind.name.lower() for op in self.ops)
        return f"History({len(self.ops)} ops: {kinds})"


@st.composite
def histories(draw: Draw, *, max_steps: int = 30, node_count: int = 3) -> History:
    """A random valid-looking history across several authors and one or two threads: one node
    opens a thread that every node learns; after that nodes write and sync at random."""
    nodes = [Node() for _ in range(node_count)]
    clock = Clock()
    first = write_operation(nodes[0], draw, clock, action="thread")
    written: list[Operation] = [first]
    for node in nodes:
        node.receive(first)
    for _ in range(draw(st.integers(0, max_steps))):
        if written and _sometimes(draw, 4):
            source, sink = draw(st.permutations(range(node_count)))[:2]
            nodes[sink].learn_from(nodes[source])
            continue
        node = nodes[draw(st.integers(0, node_count - 1))]
        threads = sum(op.kind is Kind.THREAD for op in written)
        op = write_operation(node, draw, clock, may_open_thread=threads < 2)
        node.receive(op)
        written.append(op)
    return History(ops=tuple(written))


# -- comparing replicas ------------------------------------------------------------------------


def fingerprint(replica: Replica, ops: Iterable[Operation]) -> tuple[object, ...]:
    """Everything two replicas holding ``ops`` must agree on: every thread's view digest, the
    winning profiles, and what became of each operation (applied, pending, or rejected and why).
    """
    pending = replica.pending

    def status(op: Operation) -> str:
        if op.id in replica:
            return "applied"
        if op.id in pending:
            return "pending"
        outcome = replica.apply(op).outcome  # a rejected op is only looked up, never re-judged
        assert isinstance(outcome, Rejected), outcome
        return f"rejected: {outcome.reason}"

    return (
        tuple(sorted((tid, replica.view(tid).digest()) for tid in replica.threads)),
        tuple(sorted((author, op.id) for author, op in replica.profiles.items())),
        tuple(sorted((op.id, status(op)) for op in ops)),
    )


def replica_of(ops: Iterable[Operation]) -> Replica:
    replica = Replica()
    replica.merge(ops)
    return replica
