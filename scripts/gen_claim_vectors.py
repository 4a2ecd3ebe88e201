#!/usr/bin/env python3
"""Generate protocol/vectors/claims.json: claims on imported comments (SPEC §2, claims).

    scripts/gen_claim_vectors.py           write the file
    scripts/gen_claim_vectors.py --check   regenerate in memory and compare (exit 1 if not)

What it holds:

- ``valid``: a claim (moderate action 18, targeting an imported comment, nil subject, a note as
  reason) and its acceptance (action 19, targeting the claim, the claimant's key as subject),
  each with its bytes, id and signature as in operations.json.
- ``invalid``: encodings a decoder must refuse, each with its reason.
- ``rejected``: operations that decode but that a thread refuses (§5.3), each with the
  operations before it and the reason.
- ``history``: the imported thread of provenance.json, a claim by Alice on its first comment,
  a claim by Bob on it too, the owner's acceptance of Alice's claim, and Alice's profile: the
  view, with ``claimed_by`` and ``claimed_by_name``, and the digest (§6.4: the two are appended
  to a row only when the comment is claimed).

Every expectation is first checked against our implementation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, str(path))

import gen_provenance_vectors as prov  # noqa: E402
import gen_vectors as base  # noqa: E402
from vector_file import write_or_check  # noqa: E402

from p2pcomments.core.ops import (  # noqa: E402
    CommentPayload,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    ProfilePayload,
    decode_operation,
    make_operation,
)
from p2pcomments.core.replica import Applied, Rejected, Replica  # noqa: E402
from p2pcomments.core.thread_state import ThreadView  # noqa: E402

VECTORS = ROOT / "protocol" / "vectors"
OWNER, ALICE, BOB = base.OWNER, base.ALICE, base.BOB
THREAD, FIRST, REPLY = prov.THREAD, prov.FIRST, prov.REPLY
T = base.T0


def claim(signer: base.Signer, target: Operation, at: int, note: str = "") -> Operation:
    return make_operation(
        signer.key,
        ModeratePayload(action=ModAction.CLAIM, reason=note),
        timestamp_ms=at,
        thread=THREAD.id,
        refs=(target.id,),
    )


def accept(
    signer: base.Signer, claim_op: Operation, at: int, subject: bytes | None = None
) -> Operation:
    return make_operation(
        signer.key,
        ModeratePayload(
            action=ModAction.ACCEPT_CLAIM,
            subject=claim_op.author if subject is None else subject,
        ),
        timestamp_ms=at,
        thread=THREAD.id,
        refs=(claim_op.id,),
    )


ALICE_CLAIM = claim(ALICE, FIRST, T, "I am Zoé; this was my blog comment.")
BOB_CLAIM = claim(BOB, FIRST, T + 1)
ACCEPT = accept(OWNER, ALICE_CLAIM, T + 2)
ALICE_PROFILE = make_operation(ALICE.key, ProfilePayload(name="Zoé Martin"), timestamp_ms=T)


def operation_json(op: Operation) -> dict[str, Any]:
    assert decode_operation(op.encoded) == op
    return base.operation_json(op)


def valid() -> list[dict[str, Any]]:
    cases = [
        ("a claim on an imported comment, with a note", ALICE_CLAIM),
        ("its acceptance", ACCEPT),
    ]
    return [{"label": label, "operation": operation_json(op)} for label, op in cases]


def _moderate(payload: tuple[object, ...], refs: tuple[bytes, ...] = (base.COMMENT_ID,)) -> bytes:
    fields = base._fields(
        base.ALICE, kind=int(Kind.MODERATE), thread=base.THREAD_ID, refs=refs, payload=payload
    )
    return base.sign_fields(base.ALICE, fields)


INVALID: list[tuple[str, str, bytes]] = [
    ("a claim with a subject", "bad-field", _moderate((18, ALICE.public, ""))),
    ("a claim targeting the thread", "bad-reference", _moderate((18, None, ""), (base.THREAD_ID,))),
    ("a claim with a value", "bad-field", _moderate((18, None, "", 1))),
    ("an acceptance without a subject", "bad-field", _moderate((19, None, ""))),
    ("an acceptance with a 31-byte subject", "bad-field", _moderate((19, ALICE.public[:31], ""))),
    (
        "an acceptance targeting the thread",
        "bad-reference",
        _moderate((19, ALICE.public, ""), (base.THREAD_ID,)),
    ),
    ("a claim whose note is over 512 bytes", "oversize", _moderate((18, None, "n" * 513))),
]


def invalid() -> list[dict[str, Any]]:
    cases = []
    for label, reason, encoded in INVALID:
        got = base.decode_reason(encoded)
        assert got == reason, (label, got, reason)
        cases.append({"label": label, "reason": reason, "encoded": encoded.hex()})
    return cases


def _written_here() -> Operation:
    return make_operation(
        ALICE.key,
        CommentPayload(body="Not imported."),
        timestamp_ms=T,
        thread=THREAD.id,
        refs=(THREAD.id,),
    )


def rejected() -> list[dict[str, Any]]:
    plain = _written_here()
    cases: list[tuple[str, str, list[Operation], Operation]] = [
        (
            "a claim on a comment written here",
            "bad-reference",
            [THREAD, plain],
            claim(BOB, plain, T + 1),
        ),
        (
            "a claim on a claim",
            "bad-reference",
            [THREAD, FIRST, ALICE_CLAIM],
            claim(BOB, ALICE_CLAIM, T + 1),
        ),
        (
            "an acceptance by someone other than the owner",
            "not-owner",
            [THREAD, FIRST, ALICE_CLAIM],
            accept(BOB, ALICE_CLAIM, T + 2),
        ),
        (
            "an acceptance naming another key than the claimant's",
            "bad-field",
            [THREAD, FIRST, ALICE_CLAIM],
            accept(OWNER, ALICE_CLAIM, T + 2, subject=BOB.public),
        ),
        (
            "an acceptance targeting the comment, not a claim",
            "bad-reference",
            [THREAD, FIRST],
            make_operation(
                OWNER.key,
                ModeratePayload(action=ModAction.ACCEPT_CLAIM, subject=ALICE.public),
                timestamp_ms=T + 2,
                thread=THREAD.id,
                refs=(FIRST.id,),
            ),
        ),
    ]
    out = []
    for label, reason, before, op in cases:
        replica = Replica()
        for prior in before:
            assert isinstance(replica.apply(prior).outcome, Applied), label
        outcome = replica.apply(op).outcome
        assert isinstance(outcome, Rejected), (label, outcome)
        assert outcome.reason == reason, (label, outcome)
        out.append(
            {
                "label": label,
                "reason": reason,
                "before": [prior.encoded.hex() for prior in before],
                "operation": op.encoded.hex(),
            }
        )
    return out


def view_json(view: ThreadView) -> dict[str, Any]:
    document = base.view_json(view)
    for row, comment in zip(document["comments"], view.comments, strict=True):
        if comment.claimed_by is not None:
            row["claimed_by"] = comment.claimed_by.hex()
            row["claimed_by_name"] = comment.claimed_by_name
    return document


def history() -> dict[str, Any]:
    ops = [THREAD, FIRST, REPLY, ALICE_CLAIM, BOB_CLAIM, ACCEPT]
    replica = Replica()
    for op in ops:
        assert isinstance(replica.apply(op).outcome, Applied)
    assert isinstance(replica.apply(ALICE_PROFILE).outcome, Applied)
    view = replica.view(THREAD.id)
    claimed = [c for c in view.comments if c.claimed_by is not None]
    assert [c.id for c in claimed] == [FIRST.id]
    assert claimed[0].claimed_by == ALICE.public
    assert claimed[0].claimed_by_name == "Zoé Martin"
    return {
        "description": "An imported thread; Alice and Bob both claim its first comment, the owner"
        " accepts Alice's claim; Alice's profile names her. The first comment's row ends with"
        " claimed_by and claimed_by_name; the others are as in provenance.json.",
        "operations": [op.encoded.hex() for op in ops],
        "profiles": [ALICE_PROFILE.encoded.hex()],
        "view": view_json(view),
        "view_digest_preimage": base.digest_preimage(view).hex(),
        "view_digest": view.digest().hex(),
    }


def render() -> str:
    document = {
        "description": "Claims on imported comments (SPEC §2): moderate action 18 (claim) by"
        " anyone, targeting a comment with provenance, nil subject, reason a note; action 19"
        " (accept_claim) by the thread's owner, targeting the claim, subject the claimant's key."
        " The accept with the greatest (timestamp, id) among a comment's gives its claimed_by.",
        "owner": OWNER.describe(),
        "signers": [OWNER.describe(), ALICE.describe(), BOB.describe()],
        "valid": valid(),
        "invalid": invalid(),
        "rejected": rejected(),
        "history": history(),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.exit(write_or_check(VECTORS / "claims.json", render, description="claim vectors"))
