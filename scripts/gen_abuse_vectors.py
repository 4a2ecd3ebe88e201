#!/usr/bin/env python3
# ruff: noqa: E501  (the vector tables read best one case a line)
"""Generate protocol/vectors/rules.json (SPEC §11: rules, site threads, proof of work).

    scripts/gen_abuse_vectors.py           write the file
    scripts/gen_abuse_vectors.py --check   regenerate in memory and compare; exit 1 on a difference

The file holds:

- `operations`: one valid operation per rule action (8-17), a site thread and a comment carrying
  proof of work, in operations.json's shape plus the payload's `value` and `nonce`;
- `invalid`: encodings a decoder MUST refuse, with the reason;
- `proof_of_work`: how a nonce is mined: the unsigned form's bytes up to the nonce, the nonce,
  the id and its leading zero bits, for several difficulties;
- `histories`: sets of operations with, for each comment, why the rules withhold it (empty: it
  is shown) once all are held, the same in every arrival order, and which operations a node
  holding all the others refuses as `unpaid` on arrival.

Every expectation is first checked against our implementation.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, str(path))

import gen_vectors as base  # noqa: E402
from vector_file import write_or_check  # noqa: E402

from p2pcomments.core.ops import (  # noqa: E402
    CommentPayload,
    ModAction,
    ModeratePayload,
    Operation,
    ReplyGate,
    ThreadMode,
    ThreadPayload,
    decode_operation,
    make_operation,
    page_thread,
    site_thread,
    unsigned_fields,
)
from p2pcomments.core.pow import find_nonce, mine, unsigned_prefix  # noqa: E402
from p2pcomments.core.replica import Rejected, Replica  # noqa: E402
from p2pcomments.core.rules import leading_zero_bits  # noqa: E402
from p2pcomments.errors import InvalidOperation  # noqa: E402

VECTORS = ROOT / "protocol" / "vectors"
T0 = base.T0
OWNER, ALICE, BOB, CAROL, MALLORY = base.OWNER, base.ALICE, base.BOB, base.CAROL, base.MALLORY
SITE = "blog.example.org"
POST = "https://blog.example.org/2026/01/first-post"


def op_json(op: Operation) -> dict[str, Any]:
    vector = base.operation_json(op)
    payload = op.payload
    if isinstance(payload, ModeratePayload):
        vector["unsigned"]["payload"]["value"] = payload.value
    fields = decode_operation(op.encoded, verify=False)
    raw = _raw_payload(fields.encoded)
    vector["unsigned"]["payload"]["nonce"] = (
        raw[-1].hex() if raw and type(raw[-1]) is bytes else None
    )
    vector["leading_zero_bits"] = leading_zero_bits(op.id)
    return vector


def _raw_payload(encoded: bytes) -> tuple[Any, ...]:
    import msgpack

    return tuple(msgpack.unpackb(encoded, raw=False, use_list=False)[7])


def _rule(
    signer: base.Signer,
    thread: Operation,
    action: ModAction,
    ts: int,
    *,
    subject: bytes | None = None,
    reason: str = "",
    value: int | None = None,
    deps: tuple[Operation, ...] = (),
) -> Operation:
    payload = ModeratePayload(action=action, subject=subject, reason=reason, value=value)
    return base._make(signer, payload, ts, thread=thread, ref=thread, deps=deps)


def operations() -> list[dict[str, Any]]:
    thread = base._make(OWNER, ThreadPayload(title="rules"), T0)
    comment = base._make(ALICE, CommentPayload(body="hello"), T0 + 1, thread=thread, ref=thread)
    cases: list[tuple[str, str, Operation]] = [
        ("site-thread", "the site thread of (owner, blog.example.org)", site_thread(OWNER.public, SITE)),
        ("ban-forever", "ban mallory, no end", _rule(OWNER, thread, ModAction.BAN, T0 + 2, subject=MALLORY.public, reason="spam", value=0)),
        ("ban-until", "ban mallory until T0 + 1 day", _rule(OWNER, thread, ModAction.BAN, T0 + 3, subject=MALLORY.public, value=T0 + 86_400_000)),
        ("unban", "unban mallory", _rule(OWNER, thread, ModAction.UNBAN, T0 + 4, subject=MALLORY.public)),
        ("approve-author", "approve alice", _rule(OWNER, thread, ModAction.APPROVE_AUTHOR, T0 + 5, subject=ALICE.public)),
        ("revoke-author", "revoke alice's approval", _rule(OWNER, thread, ModAction.REVOKE_AUTHOR, T0 + 6, subject=ALICE.public)),
        ("approve-comment", "approve one comment", _rule(OWNER, thread, ModAction.APPROVE_COMMENT, T0 + 7, subject=comment.id, deps=(comment,))),
        ("set-mode", "pre-moderated", _rule(OWNER, thread, ModAction.SET_MODE, T0 + 8, value=int(ThreadMode.PRE_MODERATED))),
        ("set-replies", "replies by approved authors only", _rule(OWNER, thread, ModAction.SET_REPLIES, T0 + 9, value=int(ReplyGate.APPROVED))),
        ("set-difficulty", "16 bits of proof of work", _rule(OWNER, thread, ModAction.SET_DIFFICULTY, T0 + 10, value=16)),
        ("report", "bob reports alice's comment", _rule(BOB, thread, ModAction.REPORT, T0 + 11, subject=comment.id, reason="off topic", deps=(comment,))),
        ("recommend-list", "recommend a mute list (a thread id)", _rule(OWNER, thread, ModAction.RECOMMEND_LIST, T0 + 12, subject=thread.id, value=1)),
        ("paid-comment", "a comment with 12 bits of proof of work", mine(CAROL.key, CommentPayload(body="paid"), difficulty=12, timestamp_ms=T0 + 13, thread=thread.id, refs=(thread.id,))),
    ]  # fmt: skip
    out = []
    for name, description, op in cases:
        again = decode_operation(op.encoded)
        if again.id != op.id:
            raise AssertionError(name)
        out.append({"name": name, "description": description, "operation": op_json(op)})
    return out


def _signed(signer: base.Signer, fields: tuple[Any, ...]) -> bytes:
    import hashlib

    import msgpack

    unsigned = msgpack.packb(fields, use_bin_type=True)
    op_id = hashlib.sha256(unsigned).digest()
    signature = signer.key.sign(base.OP_SIGNING_DOMAIN + op_id).signature
    return bytes(msgpack.packb((*fields, signature), use_bin_type=True))


def invalid() -> list[dict[str, Any]]:
    thread = base._make(OWNER, ThreadPayload(title="rules"), T0)
    t = thread.id

    def moderate(payload: tuple[Any, ...], ref: bytes = t) -> bytes:
        return _signed(OWNER, (1, 6, OWNER.public, t, (ref,), (), T0 + 1, payload))

    comment_payload = ("hi",)
    cases = [
        ("ban-without-value", "bad-field", "a ban has 4 payload elements", moderate((8, MALLORY.public, ""))),
        ("ban-without-subject", "bad-field", "a ban names a key", moderate((8, None, "", 0))),
        ("unban-with-value", "bad-field", "an unban has 3", moderate((9, MALLORY.public, "", 0))),
        ("mode-out-of-range", "bad-field", "mode 4", moderate((13, None, "", 4))),
        ("replies-out-of-range", "bad-field", "reply gate 3", moderate((14, None, "", 3))),
        ("difficulty-65", "bad-field", "difficulty over 64", moderate((15, None, "", 65))),
        ("value-as-text", "bad-field", "a value as text", moderate((15, None, "", "8"))),
        ("recommend-2", "bad-field", "recommend takes 0 or 1", moderate((17, t, "", 2))),
        ("rule-at-a-comment", "bad-reference", "a ban whose refs[0] is not its thread", moderate((8, MALLORY.public, "", 0), ref=base.COMMENT_ID)),
        ("report-without-subject", "bad-field", "a report names a comment", moderate((16, None, "why"))),
        ("nonce-empty", "bad-field", "a nonce of 0 bytes", _signed(ALICE, (1, 2, ALICE.public, t, (t,), (), T0 + 1, (*comment_payload, b"")))),
        ("nonce-33", "bad-field", "a nonce of 33 bytes", _signed(ALICE, (1, 2, ALICE.public, t, (t,), (), T0 + 1, (*comment_payload, bytes(33))))),
        ("nonce-not-last", "bad-field", "a bin before the body", _signed(ALICE, (1, 2, ALICE.public, t, (t,), (), T0 + 1, (bytes(8), "hi")))),
        ("site-thread-signed", "bad-signature", "the site thread's form, signed", _signed(OWNER, (1, 1, OWNER.public, None, (), (), 0, ("", None, SITE)))),
        ("site-thread-later", "bad-field", "the site form with a timestamp: no title, no url", _signed(OWNER, (1, 1, OWNER.public, None, (), (), 5, ("", None, SITE)))),
        ("site-thread-bad-host", "bad-field", "a site thread of a host not in normal form", _signed(OWNER, (1, 1, OWNER.public, None, (), (), 0, ("", None, "Blog.Example.org")))),
        ("page-thread-with-nonce", "bad-signature", "a page thread with a nonce is no page thread, and unsigned", _page_with_nonce()),
    ]  # fmt: skip
    out = []
    for name, reason, description, data in cases:
        try:
            decode_operation(data)
        except InvalidOperation as error:
            if error.reason != reason:
                raise AssertionError(f"{name}: {error.reason} != {reason}") from None
        else:
            raise AssertionError(f"{name} decodes")
        out.append(
            {
                "name": name,
                "reason": reason,
                "description": description,
                "size": len(data),
                "encoded": data.hex(),
            }
        )
    return out


def _page_with_nonce() -> bytes:
    import msgpack

    page = page_thread(OWNER.public, POST)
    fields = msgpack.unpackb(page.encoded, raw=False, use_list=False)
    payload = (*fields[7], bytes(8))
    return bytes(msgpack.packb((*fields[:7], payload, fields[8]), use_bin_type=True))


def proof_of_work() -> list[dict[str, Any]]:
    thread = base._make(OWNER, ThreadPayload(title="rules"), T0)
    payload = CommentPayload(body="Bonjour, première visite !")
    out = []
    for difficulty in (0, 4, 8, 12, 16):
        prefix = unsigned_prefix(
            ALICE.public,
            payload,
            timestamp_ms=T0 + 100,
            thread=thread.id,
            refs=(thread.id,),
            deps=(thread.id,),
        )
        nonce = find_nonce(prefix, difficulty)
        op = make_operation(
            ALICE.key,
            payload,
            timestamp_ms=T0 + 100,
            thread=thread.id,
            refs=(thread.id,),
            deps=(thread.id,),
            nonce=nonce,
        )
        fields = unsigned_fields(
            ALICE.public,
            payload,
            timestamp_ms=T0 + 100,
            thread=thread.id,
            refs=(thread.id,),
            deps=(thread.id,),
            nonce=nonce,
        )
        if leading_zero_bits(op.id) < difficulty or not fields:
            raise AssertionError(difficulty)
        out.append(
            {
                "difficulty": difficulty,
                "prefix_hex": prefix.hex(),
                "nonce_hex": nonce.hex(),
                "attempts": int.from_bytes(nonce, "big") + 1,
                "unsigned_hex": (prefix + nonce).hex(),
                "id": op.id.hex(),
                "leading_zero_bits": leading_zero_bits(op.id),
                "operation": op_json(op),
            }
        )
    return out


# -- histories ------------------------------------------------------------------------------


def _comment(
    signer: base.Signer, thread: Operation, ts: int, body: str, *, ref: Operation | None = None,
    deps: tuple[Operation, ...] = (), difficulty: int = 0,
) -> Operation:  # fmt: skip
    if difficulty:
        return mine(
            signer.key,
            CommentPayload(body=body),
            difficulty=difficulty,
            timestamp_ms=ts,
            thread=thread.id,
            refs=((ref or thread).id,),
            deps=tuple(sorted(d.id for d in deps)),
        )
    return base._make(
        signer, CommentPayload(body=body), ts, thread=thread, ref=ref or thread, deps=deps
    )


def histories() -> list[tuple[str, str, list[tuple[str, Operation]]]]:
    result = []
    t = base._make(OWNER, ThreadPayload(title="a thread with rules"), T0)
    early = _comment(MALLORY, t, T0 + 1, "early spam")
    a = _comment(ALICE, t, T0 + 2, "a fine comment")
    ban = _rule(
        OWNER,
        t,
        ModAction.BAN,
        T0 + 3,
        subject=MALLORY.public,
        reason="spam",
        value=T0 + 10,
        deps=(early, a),
    )
    late = _comment(MALLORY, t, T0 + 20, "after the ban's end", deps=(ban,))
    premod = _rule(
        OWNER, t, ModAction.SET_MODE, T0 + 4, value=int(ThreadMode.PRE_MODERATED), deps=(ban,)
    )
    waits = _comment(BOB, t, T0 + 5, "waits for approval", deps=(premod,))
    blind = _comment(CAROL, t, T0 + 5, "never saw the setting")
    approve = _rule(OWNER, t, ModAction.APPROVE_COMMENT, T0 + 6, subject=waits.id, deps=(waits,))
    gate = _rule(
        OWNER, t, ModAction.SET_REPLIES, T0 + 7, value=int(ReplyGate.NOBODY_NEW), deps=(approve,)
    )
    reply = _comment(ALICE, t, T0 + 8, "a reply, after nobody new", ref=a, deps=(gate,))
    owner_reply = _comment(OWNER, t, T0 + 8, "the owner may", ref=a, deps=(gate,))
    report = _rule(BOB, t, ModAction.REPORT, T0 + 9, subject=early.id, reason="spam", deps=(early,))
    result.append(
        (
            "moderation",
            "a ban with an end, pre-moderation (an approved comment, one that never saw the "
            "setting), nobody new may reply, a report",
            [
                ("thread", t), ("mallory's early comment", early), ("alice's comment", a),
                ("ban mallory until T0 + 10", ban), ("mallory after the ban's end", late),
                ("pre-moderation", premod), ("bob's comment waits", waits),
                ("carol's, concurrent with the setting", blind), ("bob's approved", approve),
                ("nobody new replies", gate), ("alice's reply", reply),
                ("the owner's reply", owner_reply), ("bob reports the spam", report),
            ],
        )
    )  # fmt: skip
    t2 = base._make(OWNER, ThreadPayload(title="pay to post"), T0)
    old = _comment(ALICE, t2, T0 + 1, "before the difficulty")
    difficulty = _rule(OWNER, t2, ModAction.SET_DIFFICULTY, T0 + 2, value=8, deps=(old,))
    paid = _comment(BOB, t2, T0 + 3, "paid 8 bits", deps=(difficulty,), difficulty=8)
    unpaid = _comment(CAROL, t2, T0 + 3, "did not pay", deps=(difficulty,))
    sneaky = _comment(MALLORY, t2, T0 + 3, "deps on nothing, did not pay")
    approve_carol = _rule(
        OWNER, t2, ModAction.APPROVE_AUTHOR, T0 + 4, subject=CAROL.public, deps=(paid,)
    )
    result.append(
        (
            "proof-of-work",
            "8 bits required: a comment made before, a paid one, an unpaid one (its author "
            "approved later, which frees it), and one that did not see the setting",
            [
                ("thread", t2), ("alice before", old), ("difficulty 8", difficulty),
                ("bob paid", paid), ("carol did not pay", unpaid), ("mallory did not", sneaky),
                ("carol approved", approve_carol),
            ],
        )
    )  # fmt: skip
    site = site_thread(OWNER.public, SITE)
    page = page_thread(OWNER.public, POST)
    site_ban = _rule(
        OWNER, site, ModAction.BAN, T0 + 1, subject=MALLORY.public, reason="site-wide", value=0
    )
    site_mode = _rule(
        OWNER,
        site,
        ModAction.SET_MODE,
        T0 + 5,
        value=int(ThreadMode.MEMBERS_ONLY),
        deps=(site_ban,),
    )
    before = _comment(ALICE, page, T0 + 4, "before the site went members only")
    after = _comment(ALICE, page, T0 + 6, "after")
    spam = _comment(MALLORY, page, T0 + 2, "spam on a page")
    member = _rule(
        OWNER, site, ModAction.APPROVE_AUTHOR, T0 + 7, subject=BOB.public, deps=(site_mode,)
    )
    bobs = _comment(BOB, page, T0 + 8, "a member")
    result.append(
        (
            "site-rules",
            "the site thread's ban and members-only mode hold for a page thread of the site "
            "(site settings bind comments by timestamp: there is no causal link between threads)",
            [
                ("site thread", site), ("page thread", page), ("site ban", site_ban),
                ("site members only", site_mode), ("alice before", before), ("alice after", after),
                ("mallory's spam", spam), ("bob approved on the site", member), ("bob's", bobs),
            ],
        )
    )  # fmt: skip
    return result


def withheld_of(replica: Replica, ops: list[Operation]) -> dict[str, list[str]]:
    from p2pcomments.core.rules import judge_thread

    out: dict[str, list[str]] = {}
    for op in ops:
        if op.kind.name == "THREAD" and op.id in replica.threads:
            state = replica.threads[op.id]
            for comment_id, verdict in judge_thread(state, replica.rules(op.id)).items():
                out[comment_id.hex()] = list(verdict.withheld)
    return dict(sorted(out.items()))


def history_json(name: str, description: str, steps: list[tuple[str, Operation]]) -> dict[str, Any]:
    ops = [op for _, op in steps]
    replica = Replica()
    for _ in range(3):  # what was refused unpaid is offered again (a lowered bar lets it in)
        for op in ops:
            replica.apply(op)
    expected = withheld_of(replica, ops)
    shown = sorted(k for k, v in expected.items() if not v)
    # every order (bounded) shows the same comments (an unpaid one may be refused on arrival
    # in one order and held, withheld, in another); the reversed order always
    orders = [ops[::-1], *itertools.islice(itertools.permutations(ops), 0, 400, 37)]
    for order in orders:
        other = Replica()
        for _ in range(3):  # pending ones wait: feed until nothing changes
            for op in order:
                other.apply(op)
        verdicts = withheld_of(other, ops)
        if sorted(k for k, v in verdicts.items() if not v) != shown:
            raise AssertionError(f"{name}: what is shown depends on the order")
        if any(verdicts[k] != v for k, v in expected.items() if k in verdicts and k in shown):
            raise AssertionError(f"{name}: the verdicts depend on the order")
    refused = []
    for op in ops:
        others = Replica()
        for other_op in ops:
            if other_op is not op:
                others.apply(other_op)
        outcome = others.apply(op).outcome
        if isinstance(outcome, Rejected) and outcome.reason == "unpaid":
            refused.append(op.id.hex())
    return {
        "name": name,
        "description": description,
        "operations": [{"label": label, "encoded": op.encoded.hex(), "id": op.id.hex()} for label, op in steps],
        "withheld": expected,
        "shown": shown,
        "refused_on_arrival": refused,
    }  # fmt: skip


def document() -> dict[str, Any]:
    return {
        "description": (
            "SPEC §11. `operations`: valid rule operations, a site thread and a paid comment. "
            "`invalid`: encodings to refuse with `reason`. `proof_of_work`: `prefix_hex` is the "
            "unsigned form up to the 8-byte nonce; `nonce_hex` the first counter value (from 0, "
            "big-endian) whose SHA-256(prefix || nonce) = `id` has `difficulty` leading zero "
            "bits. `histories`: with every operation applied in the order given, `withheld` maps each "
            "comment id to the reasons the rules withhold it (empty: shown); `shown` is the same "
            "in every arrival order; `refused_on_arrival` are the ids a node holding all the "
            "others refuses as `unpaid` when they arrive."
        ),
        "signers": [s.describe() for s in base.SIGNERS],
        "operations": operations(),
        "invalid": invalid(),
        "proof_of_work": proof_of_work(),
        "histories": [history_json(*h) for h in histories()],
    }


def main() -> int:
    text = json.dumps(document(), indent=2, ensure_ascii=False) + "\n"
    return write_or_check(
        VECTORS / "rules.json", lambda: text, description=__doc__.split("\n\n")[0]
    )


if __name__ == "__main__":
    sys.exit(main())
