"""Rules (SPEC §11): the vectors of rules.json, proof of work, and order-independence of every
rule as a property (hypothesis)."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    CommentPayload,
    ModAction,
    ModeratePayload,
    Operation,
    ReplyGate,
    ThreadMode,
    ThreadPayload,
    decode_operation,
    is_site_thread,
    load_stored_operation,
    make_operation,
    page_thread,
    site_thread,
)
from p2pcomments.core.pow import MiningExhausted, find_nonce, mine, unsigned_prefix
from p2pcomments.core.replica import Applied, Rejected, Replica
from p2pcomments.core.rules import judge_thread, leading_zero_bits
from p2pcomments.errors import InvalidOperation, PageUrlError

ROOT = Path(__file__).resolve().parents[2]
KEYS = [SigningKey(bytes([n]) * 32) for n in range(1, 6)]
OWNER, ALICE, BOB, CAROL, MALLORY = KEYS


@cache
def vectors() -> dict[str, Any]:
    return json.loads((ROOT / "protocol" / "vectors" / "rules.json").read_text(encoding="utf-8"))


def test_the_generator_agrees_with_the_file() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_abuse_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("vector", vectors()["operations"], ids=lambda v: v["name"])
def test_rule_operations_decode(vector: dict[str, Any]) -> None:
    encoded = bytes.fromhex(vector["operation"]["encoded"])
    op = decode_operation(encoded)
    assert op.id.hex() == vector["operation"]["id"]
    assert load_stored_operation(encoded).payload == op.payload
    assert leading_zero_bits(op.id) == vector["operation"]["leading_zero_bits"]
    if isinstance(op.payload, ModeratePayload):
        assert op.payload.value == vector["operation"]["unsigned"]["payload"]["value"]


@pytest.mark.parametrize("vector", vectors()["invalid"], ids=lambda v: v["name"])
def test_invalid_rule_encodings_are_refused(vector: dict[str, Any]) -> None:
    with pytest.raises(InvalidOperation) as caught:
        decode_operation(bytes.fromhex(vector["encoded"]))
    assert caught.value.reason == vector["reason"]


@pytest.mark.parametrize("vector", vectors()["proof_of_work"], ids=lambda v: str(v["difficulty"]))
def test_proof_of_work_vectors(vector: dict[str, Any]) -> None:
    prefix = bytes.fromhex(vector["prefix_hex"])
    assert prefix.endswith(b"\xc4\x08")
    nonce = find_nonce(prefix, vector["difficulty"])
    assert nonce.hex() == vector["nonce_hex"]
    op = decode_operation(bytes.fromhex(vector["operation"]["encoded"]))
    assert op.id.hex() == vector["id"]
    assert leading_zero_bits(op.id) >= vector["difficulty"]
    assert bytes.fromhex(vector["unsigned_hex"]) == prefix + nonce


@pytest.mark.parametrize("history", vectors()["histories"], ids=lambda h: h["name"])
def test_histories_show_the_same_whatever_the_order(history: dict[str, Any]) -> None:
    ops = [decode_operation(bytes.fromhex(o["encoded"])) for o in history["operations"]]
    for order in (ops, ops[::-1], ops[1::2] + ops[::2]):
        assert _shown(order) == history["shown"]
    replica = _replay(ops)
    verdicts = _withheld(replica, ops)
    assert verdicts == history["withheld"]


def _replay(order: list[Operation]) -> Replica:
    replica = Replica()
    for _ in range(3):  # refused unpaid ones are offered again, as peers would by sync
        for op in order:
            replica.apply(op)
    return replica


def _withheld(replica: Replica, ops: list[Operation]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for op in ops:
        if op.id in replica.threads:
            state = replica.threads[op.id]
            for comment_id, verdict in judge_thread(state, replica.rules(op.id)).items():
                out[comment_id.hex()] = list(verdict.withheld)
    return dict(sorted(out.items()))


def _shown(order: list[Operation]) -> list[str]:
    verdicts = _withheld(_replay(order), order)
    return sorted(k for k, v in verdicts.items() if not v)


# -- proof of work ----------------------------------------------------------------------------


def test_leading_zero_bits() -> None:
    assert leading_zero_bits(bytes(32)) == 256
    assert leading_zero_bits(b"\x00\x00\x7f" + bytes(29)) == 17
    assert leading_zero_bits(b"\x80" + bytes(31)) == 0


def test_mining_reports_progress_and_gives_up_when_told() -> None:
    thread = make_operation(OWNER, ThreadPayload(title="t"), timestamp_ms=1)
    prefix = unsigned_prefix(
        ALICE.verify_key.encode(),
        CommentPayload(body="x"),
        timestamp_ms=2,
        thread=thread.id,
        refs=(thread.id,),
        deps=(),
    )
    seen: list[int] = []
    with pytest.raises(MiningExhausted):
        find_nonce(prefix, 64, max_attempts=70_000, progress=seen.append)
    assert seen == [65_536, 70_000]
    op = mine(
        ALICE,
        CommentPayload(body="x"),
        difficulty=6,
        timestamp_ms=2,
        thread=thread.id,
        refs=(thread.id,),
    )
    assert leading_zero_bits(op.id) >= 6
    with pytest.raises(InvalidOperation):
        find_nonce(prefix, 65)


def test_site_threads() -> None:
    site = site_thread(OWNER.verify_key.encode(), "blog.example.org")
    assert is_site_thread(site)
    assert decode_operation(site.encoded).id == site.id
    assert not is_site_thread(page_thread(OWNER.verify_key.encode(), "https://blog.example.org/"))
    with pytest.raises(PageUrlError):
        site_thread(OWNER.verify_key.encode(), "Blog.Example.org")
    with pytest.raises(InvalidOperation):  # a site thread is never signed
        make_operation(OWNER, ThreadPayload(title="", site="blog.example.org"), timestamp_ms=0)


# -- order-independence (hypothesis) ---------------------------------------------------------

_ACTIONS = [
    (ModAction.BAN, "key", "until"),
    (ModAction.UNBAN, "key", None),
    (ModAction.APPROVE_AUTHOR, "key", None),
    (ModAction.REVOKE_AUTHOR, "key", None),
    (ModAction.APPROVE_COMMENT, "comment", None),
    (ModAction.SET_MODE, None, "mode"),
    (ModAction.SET_REPLIES, None, "gate"),
    (ModAction.SET_DIFFICULTY, None, "difficulty"),
    (ModAction.REPORT, "comment", None),
    (ModAction.RECOMMEND_LIST, "list", "recommend"),
]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Operation], list[int]]:
    """A thread (a page thread under a site thread, half the time), comments and replies by
    several authors, rule operations by the owner (and reports by anyone) at random places in
    the causal order, and a random arrival order with repeats."""
    owner = OWNER.verify_key.encode()
    with_site = draw(st.booleans())
    ops: list[Operation] = []
    if with_site:
        site = site_thread(owner, "blog.example.org")
        thread = page_thread(owner, "https://blog.example.org/post")
        ops += [site, thread]
    else:
        site = None
        thread = make_operation(OWNER, ThreadPayload(title="t"), timestamp_ms=1)
        ops.append(thread)
    comments: list[Operation] = []
    in_thread: list[Operation] = [thread]
    in_site: list[Operation] = [site] if site is not None else []
    rules_here: list[Operation] = [thread]
    ts = 10
    for _ in range(draw(st.integers(min_value=2, max_value=9))):
        ts += draw(st.integers(min_value=0, max_value=3))
        if draw(st.integers(0, 2)) == 0:
            action, subject_kind, value_kind = draw(st.sampled_from(_ACTIONS))
            scope_site = site is not None and draw(st.booleans())
            scope = site if scope_site and site is not None else thread
            subject: bytes | None = None
            if subject_kind == "key":
                subject = draw(st.sampled_from(KEYS[1:])).verify_key.encode()
            elif subject_kind == "comment":
                if not comments:
                    continue
                subject = draw(st.sampled_from(comments)).id
            elif subject_kind == "list":
                subject = draw(st.sampled_from([bytes([n]) * 32 for n in (1, 2)]))
            value = {
                None: None,
                "until": draw(st.sampled_from([0, ts, ts + 5])),
                "mode": draw(st.sampled_from(list(ThreadMode))),
                "gate": draw(st.sampled_from(list(ReplyGate))),
                "difficulty": draw(st.sampled_from([0, 1, 2])),
                "recommend": draw(st.sampled_from([0, 1])),
            }[value_kind]
            author = draw(st.sampled_from(KEYS)) if action is ModAction.REPORT else OWNER
            # A moderator's rule depends on rules (and the thread): one that depended on an unpaid
            # comment would wait forever where that comment was refused (SPEC §11.6).
            pool = in_site if scope is site else rules_here
            if action is ModAction.REPORT and scope is thread:
                pool = in_thread
            deps = draw(st.lists(st.sampled_from(pool), max_size=2, unique_by=lambda o: o.id))
            op = make_operation(
                author,
                ModeratePayload(action=action, subject=subject, reason="r", value=value),
                timestamp_ms=ts,
                thread=scope.id,
                refs=(scope.id,),
                deps=frozenset(d.id for d in deps if d.id != scope.id),
            )
            pool.append(op)
            if scope is thread:
                in_thread.append(op)
                if action is not ModAction.REPORT:
                    rules_here.append(op)
        else:
            author = draw(st.sampled_from(KEYS))
            parent = draw(st.sampled_from([thread, *comments]))
            deps = draw(st.lists(st.sampled_from(in_thread), max_size=2, unique_by=lambda o: o.id))
            op = make_operation(
                author,
                CommentPayload(body=f"c{ts}"),
                timestamp_ms=ts,
                thread=thread.id,
                refs=(parent.id,),
                deps=frozenset(d.id for d in deps if d.id != parent.id),
            )
            comments.append(op)
            in_thread.append(op)
        ops.append(op)
    order = draw(st.lists(st.integers(0, len(ops) - 1), min_size=len(ops), max_size=2 * len(ops)))
    return ops, order


@settings(max_examples=150, deadline=None)
@given(histories())
def test_every_rule_is_order_independent(history: tuple[list[Operation], list[int]]) -> None:
    ops, picks = history
    reference = _replay(ops)
    # another node: the operations in a random order with repeats, then all again (sync)
    other = Replica()
    for index in picks:
        other.apply(ops[index])
    for _ in range(3):
        for op in reversed(ops):
            other.apply(op)
    thread_ids = [op.id for op in ops if op.id in reference.threads]
    for thread_id in thread_ids:
        if thread_id not in other.threads:
            continue
        mine_verdicts = judge_thread(reference.threads[thread_id], reference.rules(thread_id))
        theirs = judge_thread(other.threads[thread_id], other.rules(thread_id))
        shown = {k for k, v in mine_verdicts.items() if not v.withheld}
        assert shown == {k for k, v in theirs.items() if not v.withheld}
        for comment_id in set(mine_verdicts) & set(theirs):
            assert mine_verdicts[comment_id] == theirs[comment_id]
        # What the rule operations say (bans, approvals, settings, lists) is the same too.
        ours, others = reference.rules(thread_id), other.rules(thread_id)
        for mine_scope, their_scope in zip(ours.scopes, others.scopes, strict=True):
            assert mine_scope.bans == their_scope.bans
            assert mine_scope.approved_authors == their_scope.approved_authors
            assert mine_scope.approved_comments == their_scope.approved_comments
            assert mine_scope.recommended_lists == their_scope.recommended_lists
            for setting in ("mode", "replies", "difficulty"):
                assert getattr(mine_scope, setting) == getattr(their_scope, setting)


def test_an_unpaid_comment_is_refused_where_the_difficulty_is_known() -> None:
    thread = make_operation(OWNER, ThreadPayload(title="t"), timestamp_ms=1)
    rule = make_operation(
        OWNER,
        ModeratePayload(action=ModAction.SET_DIFFICULTY, value=12),
        timestamp_ms=2,
        thread=thread.id,
        refs=(thread.id,),
    )
    unpaid = make_operation(
        MALLORY,
        CommentPayload(body="spam"),
        timestamp_ms=3,
        thread=thread.id,
        refs=(thread.id,),
    )
    knows = Replica()
    knows.merge([thread, rule])
    assert knows.verdict(unpaid) == "unpaid"
    outcome = knows.apply(unpaid).outcome
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "unpaid"
    assert knows.get(unpaid.id) is None
    early = Replica()  # held before the rule: kept, and withheld by the view
    early.merge([thread, unpaid])
    assert isinstance(early.apply(rule).outcome, Applied)
    verdicts = judge_thread(early.threads[thread.id], early.rules(thread.id))
    assert verdicts[unpaid.id].withheld == ("unpaid",)


# -- the SPEC-text decoder (tests/core/spec_decoder.py) reads §11 too ---------------------------


@pytest.mark.parametrize(
    "vector",
    [v["operation"] for v in vectors()["operations"]]
    + [p["operation"] for p in vectors()["proof_of_work"]]
    + [{"encoded": o["encoded"]} for h in vectors()["histories"] for o in h["operations"]],
    ids=lambda v: v.get("id", "history-op")[:12],
)
def test_the_spec_text_decoder_accepts_the_rule_operations(vector: dict[str, Any]) -> None:
    from tests.core import spec_decoder

    spec_decoder.decode(bytes.fromhex(vector["encoded"]))


@pytest.mark.parametrize("vector", vectors()["invalid"], ids=lambda v: v["name"])
def test_the_spec_text_decoder_refuses_what_the_reference_refuses(vector: dict[str, Any]) -> None:
    from tests.core import spec_decoder

    with pytest.raises(spec_decoder.Refused) as caught:
        spec_decoder.decode(bytes.fromhex(vector["encoded"]))
    assert caught.value.reason == vector["reason"]
