"""A second implementation of validity in context and of the thread view, written from
protocol/SPEC.md §5.3 and §6 alone: no incremental state, every rule computed from scratch over
the whole set of operations, as the text says it. It shares only the decoded `Operation` with
the reference (`core.replica`, `core.thread_state`); tests/core/test_rule_vectors.py checks that
the two agree on the vectors and on random histories, so that the SPEC's text says what the code
does.
"""

from __future__ import annotations

from typing import Any

from p2pcomments.core.ops import Kind, ModAction, Operation

CONTROL = {3, 4, 5, 6}  # §5.3 rule 5: the control operations
SUPPRESSIBLE = {Kind.COMMENT, Kind.EDIT, Kind.REACT}  # §6 rule 8


def _action(op: Operation) -> int | None:
    return int(op.payload.action) if op.kind is Kind.MODERATE else None  # type: ignore[union-attr]


def decide(ops: list[Operation]) -> dict[bytes, tuple[str, str | None]]:
    """Each operation's status once all of ``ops`` arrived: ("valid", None), ("pending", None)
    or ("rejected", reason), by §5.3."""
    by_id = {op.id: op for op in ops}
    ops = list(by_id.values())  # a set of operations: the same one twice is one
    status: dict[bytes, tuple[str, str | None]] = {}
    for op in ops:
        if op.kind in (Kind.THREAD, Kind.PROFILE):
            status[op.id] = ("valid", None)
    past: dict[bytes, set[bytes]] = {}

    def causal_past(op_id: bytes) -> set[bytes]:
        if op_id not in past:
            result: set[bytes] = set()
            for parent in by_id[op_id].parents:
                result |= {parent} | causal_past(parent)
            past[op_id] = result
        return past[op_id]

    def thread_of(op: Operation) -> bytes | None:
        return op.id if op.kind is Kind.THREAD else op.thread

    changed = True
    while changed:
        changed = False
        for op in ops:
            if op.id in status:
                continue
            needed = [op.thread, *op.refs, *op.deps]
            if any(n not in by_id or n not in status for n in needed):
                continue  # pending, for now or for ever
            verdict = _judge(op, needed, by_id, status, causal_past, thread_of)
            status[op.id] = verdict
            changed = True
    for op in ops:
        status.setdefault(op.id, ("pending", None))
    return status


def _judge(
    op: Operation,
    needed: list[Any],
    by_id: dict[bytes, Operation],
    status: dict[bytes, tuple[str, str | None]],
    causal_past: Any,
    thread_of: Any,
) -> tuple[str, str | None]:
    for n in needed:  # rule 1: the first rejected or profile, by position
        if status[n][0] == "rejected":
            return ("rejected", "bad-reference")
        if by_id[n].kind is Kind.PROFILE:
            return ("rejected", "wrong-thread")
    thread = by_id[op.thread]  # type: ignore[index]
    if thread.kind is not Kind.THREAD:  # rule 2
        return ("rejected", "wrong-thread")
    if any(thread_of(by_id[p]) != thread.id for p in op.parents):
        return ("rejected", "wrong-thread")
    target = by_id[op.refs[0]]
    action = _action(op)
    if op.kind is Kind.COMMENT:  # rule 3
        if target.kind not in (Kind.COMMENT, Kind.THREAD):
            return ("rejected", "bad-reference")
        return ("valid", None)
    targets_a_comment = op.kind in (Kind.EDIT, Kind.RETRACT, Kind.REACT) or action in (1, 2)
    if targets_a_comment and target.kind is not Kind.COMMENT:
        return ("rejected", "bad-reference")
    if op.kind in (Kind.EDIT, Kind.RETRACT):  # rule 4
        return ("valid", None) if target.author == op.author else ("rejected", "not-author")
    if op.kind is Kind.REACT:
        return ("valid", None)
    owner = thread.author
    if action == 18:  # §2, claims: anyone's, on a comment that carries provenance
        imported = target.kind is Kind.COMMENT and target.payload.provenance is not None  # type: ignore[union-attr]
        return ("valid", None) if imported else ("rejected", "bad-reference")
    if action == 19:  # an accept claim: on a claim, by the owner, naming the claimant
        if _action(target) != 18:
            return ("rejected", "bad-reference")
        if op.author != owner:
            return ("rejected", "not-owner")
        if op.payload.subject != target.author:  # type: ignore[union-attr]
            return ("rejected", "bad-field")
        return ("valid", None)
    if action in (3, 4):
        if op.author != owner:
            return ("rejected", "not-owner")
        if action == 4 and op.payload.subject == owner:  # type: ignore[union-attr]
            return ("rejected", "bad-field")
        return ("valid", None)
    if op.author == owner:  # rule 5
        return ("valid", None)
    controls = {
        p
        for p in causal_past(op.id)
        if _action(by_id[p]) in CONTROL and status.get(p, ("",))[0] == "valid"
    }
    if is_moderator(op.author, controls, by_id, causal_past):
        return ("valid", None)
    return ("rejected", "not-moderator")


def is_moderator(
    key: bytes, controls: set[bytes], by_id: dict[bytes, Operation], causal_past: Any
) -> bool:
    """§5.3 rule 5 over a set of control operations."""

    def subject(op_id: bytes) -> bytes | None:
        return by_id[op_id].payload.subject  # type: ignore[union-attr,no-any-return]

    adds = [c for c in controls if _action(by_id[c]) == 3 and subject(c) == key]
    removes = [c for c in controls if _action(by_id[c]) == 4 and subject(c) == key]
    return any(all(add not in causal_past(r) for r in removes) for add in adds)


def view_json(ops: list[Operation], thread_id: bytes) -> dict[str, Any]:
    """The view of one thread as the vectors give it (§6, §6.5), from scratch."""
    status = decide(ops)
    valid = [op for op in {op.id: op for op in ops}.values() if status[op.id][0] == "valid"]
    by_id = {op.id: op for op in valid}
    mine = [op for op in valid if (op.id if op.kind is Kind.THREAD else op.thread) == thread_id]
    thread = by_id[thread_id]
    names: dict[bytes, tuple[int, bytes, str]] = {}
    for op in valid:  # rule 10
        if op.kind is Kind.PROFILE:
            key = (op.timestamp_ms, op.id, op.payload.name)  # type: ignore[union-attr]
            if op.author not in names or key[:2] > names[op.author][:2]:
                names[op.author] = key

    def name(author: bytes) -> str | None:
        return names[author][2] if author in names else None

    past: dict[bytes, set[bytes]] = {}

    def causal_past(op_id: bytes) -> set[bytes]:
        if op_id not in past:
            result: set[bytes] = set()
            for parent in by_id[op_id].parents:
                result |= {parent} | causal_past(parent)
            past[op_id] = result
        return past[op_id]

    height: dict[bytes, int] = {}

    def height_of(op_id: bytes) -> int:  # rule 1
        if op_id not in height:
            parents = by_id[op_id].parents
            height[op_id] = 1 + max(map(height_of, parents)) if parents else 0
        return height[op_id]

    closes = [op for op in mine if _action(op) == 5]
    reopens = [op for op in mine if _action(op) == 6]

    def suppressed(op: Operation) -> bool:  # rule 8
        if op.kind not in SUPPRESSIBLE:
            return False
        return any(
            op.id not in causal_past(c.id)
            and not any(
                c.id in causal_past(r.id)
                and (op.id in causal_past(r.id) or r.id in causal_past(op.id))
                for r in reopens
            )
            for c in closes
        )

    closed = any(not any(c.id in causal_past(r.id) for r in reopens) for c in closes)
    controls = {op.id for op in mine if _action(op) in CONTROL}
    adds = {op.payload.subject for op in mine if _action(op) == 3}  # type: ignore[union-attr]
    moderators = sorted(k for k in adds if is_moderator(k, controls, by_id, causal_past))  # rule 7

    def lww(op: Operation) -> tuple[int, bytes]:
        return (op.timestamp_ms, op.id)

    retitles = [op for op in mine if _action(op) == 7]
    title = max(retitles, key=lww).payload.reason if retitles else thread.payload.title  # type: ignore[union-attr]
    comments = [op for op in mine if op.kind is Kind.COMMENT]

    def edits_of(comment: Operation) -> list[Operation]:  # rule 3
        found = [op for op in mine if op.kind is Kind.EDIT and op.target == comment.id]
        return sorted((e for e in found if not suppressed(e)), key=lww)

    def row(comment: Operation, depth: int) -> dict[str, Any]:
        edits = edits_of(comment)
        retracted = any(op.kind is Kind.RETRACT and op.target == comment.id for op in mine)
        winner = edits[-1] if edits else None
        hides = [op for op in mine if _action(op) in (1, 2) and op.target == comment.id]
        hide = max(hides, key=lww) if hides else None
        hidden = hide is not None and _action(hide) == 1
        latest: dict[bytes, Operation] = {}  # rule 5
        for op in mine:
            if op.kind is not Kind.REACT or op.target != comment.id or suppressed(op):
                continue
            if op.author not in latest or lww(op) > lww(latest[op.author]):
                latest[op.author] = op
        chosen: dict[str, list[bytes]] = {}
        for author, op in latest.items():
            reaction = op.payload.reaction  # type: ignore[union-attr]
            if reaction:
                chosen.setdefault(reaction, []).append(author)
        parent = by_id[comment.target]
        flagged = False  # rule 9
        if parent.kind is Kind.COMMENT:
            parent_edits = edits_of(parent)
            if parent_edits:
                flagged = parent_edits[-1].id not in causal_past(comment.id)
        body = comment.payload.body if winner is None else winner.payload.body  # type: ignore[union-attr]
        accepts = [  # §6 rule 12
            op for op in mine if _action(op) == 19 and by_id[op.target].target == comment.id
        ]
        claim: dict[str, Any] = {}
        if accepts:
            claimant = max(accepts, key=lww).payload.subject  # type: ignore[union-attr]
            claim = {"claimed_by": claimant.hex(), "claimed_by_name": name(claimant)}
        return {
            "id": comment.id.hex(),
            "author": comment.author.hex(),
            "author_name": name(comment.author),
            "parent": comment.target.hex(),
            "depth": depth,
            "timestamp_ms": comment.timestamp_ms,
            "body": None if retracted else body,
            "edits": []
            if retracted
            else [
                {"id": e.id.hex(), "timestamp_ms": e.timestamp_ms, "body": e.payload.body}  # type: ignore[union-attr]
                for e in edits
            ],
            "retracted": retracted,
            "hidden": hidden,
            "hidden_by": hide.author.hex() if hidden and hide is not None else None,
            "reactions": [
                {"reaction": r, "authors": sorted(a.hex() for a in chosen[r])}
                for r in sorted(chosen, key=lambda r: r.encode("utf-8"))
            ],
            "parent_edited_after": flagged,
            "after_close": suppressed(comment),
            "reply_count": sum(1 for c in comments if c.target == comment.id),
            **claim,
        }

    rows: list[dict[str, Any]] = []

    def walk(parent_id: bytes, depth: int) -> None:  # rule 2
        children = [c for c in comments if c.target == parent_id]
        for child in sorted(children, key=lambda c: (height_of(c.id), c.timestamp_ms, c.id)):
            rows.append(row(child, depth))
            walk(child.id, depth + 1)

    walk(thread_id, 0)
    payload = thread.payload
    return {
        "id": thread_id.hex(),
        "owner": thread.author.hex(),
        "owner_name": name(thread.author),
        "title": title,
        "url": payload.url,  # type: ignore[union-attr]
        "site": payload.site,  # type: ignore[union-attr]
        "timestamp_ms": thread.timestamp_ms,
        "closed": closed,
        "moderators": [m.hex() for m in moderators],
        "operation_count": len(mine),
        "comments": rows,
    }


_ = ModAction  # the actions above are their wire integers (§2)
