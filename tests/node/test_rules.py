"""The Node's rules (SPEC §11): bans, approvals, modes, reply gates, proof of work, reports,
site rules, the queue and a reader's mutes, against a real store."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pcomments.core import authoring
from p2pcomments.core.ops import (
    CommentPayload,
    ModAction,
    ModeratePayload,
    ReplyGate,
    ThreadMode,
    decode_operation,
    make_operation,
    page_thread,
)
from p2pcomments.core.pow import mine
from p2pcomments.core.replica import Applied, Rejected
from p2pcomments.core.rules import leading_zero_bits
from p2pcomments.errors import AuthorizationError
from p2pcomments.node import Node, open_node

from .conftest import FakeClock, count_loads


def _comment(node: Node, key: SigningKey, target: bytes, body: str, now_ms: int) -> bytes:
    """A comment by ``key`` in the thread of ``target``, as another node would make it."""
    thread = node.replica.thread_of(target) or target
    state = node.replica.thread(thread)
    op = authoring.in_thread_operation(
        key, state, CommentPayload(body=body), target=target, now_ms=now_ms
    )
    return op.encoded


def _unpaid(node: Node, key: SigningKey, target: bytes, bits: int, now_ms: int) -> bytes:
    """A comment whose id has fewer than ``bits`` leading zero bits (not paid by chance)."""
    for n in range(1000):
        data = _comment(node, key, target, f"unpaid {n}", now_ms)
        if leading_zero_bits(decode_operation(data).id) < bits:
            return data
    raise AssertionError("unreachable: 1000 lucky ids in a row")


@pytest.mark.trio
async def test_a_ban_withholds_the_authors_comments_until_its_end(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = await node.create_thread("t")
    clock.advance(10)
    [early] = await node.ingest([_comment(node, stranger, thread.id, "early", clock.now)])
    assert isinstance(early, Applied)
    await node.ban(thread.id, bytes(stranger.verify_key), reason="spam", until_ms=clock.now + 50)
    [later] = await node.ingest([_comment(node, stranger, thread.id, "after", clock.now + 100)])
    verdicts = node.comment_rules(thread.id)
    assert verdicts[early.op_id].withheld == ("banned",)  # earlier ones included
    assert isinstance(later, Applied)
    assert verdicts[later.op_id].withheld == ()  # its own timestamp is past the ban's end
    await node.unban(thread.id, bytes(stranger.verify_key))
    assert node.comment_rules(thread.id)[early.op_id].withheld == ()


@pytest.mark.trio
async def test_pre_moderation_queues_until_the_author_or_comment_is_approved(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = await node.create_thread("t")
    mine_before = await node.comment(thread.id, "before the queue")
    await node.set_mode(thread.id, ThreadMode.PRE_MODERATED)
    clock.advance(5)
    [held] = await node.ingest([_comment(node, stranger, thread.id, "please", clock.now)])
    assert isinstance(held, Applied)
    assert node.comment_rules(thread.id)[held.op_id].withheld == ("pre-moderated",)
    assert [e.comment.id for e in await node.moderation_queue()] == [held.op_id]
    assert node.comment_rules(thread.id)[mine_before.id].withheld == ()
    await node.approve_comment(held.op_id)
    assert (await node.moderation_queue()) == []
    clock.advance(5)
    [second] = await node.ingest([_comment(node, stranger, thread.id, "again", clock.now)])
    assert node.comment_rules(thread.id)[second.op_id].withheld == ("pre-moderated",)
    await node.approve_author(thread.id, bytes(stranger.verify_key))
    assert node.comment_rules(thread.id)[second.op_id].withheld == ()


@pytest.mark.trio
async def test_modes_and_reply_gates(node: Node, stranger: SigningKey, clock: FakeClock) -> None:
    thread = await node.create_thread("t")
    top = await node.comment(thread.id, "owner's")
    await node.set_replies(thread.id, ReplyGate.NOBODY_NEW)
    clock.advance(5)
    [reply] = await node.ingest([_comment(node, stranger, top.id, "a reply", clock.now)])
    [other] = await node.ingest([_comment(node, stranger, thread.id, "top level", clock.now)])
    verdicts = node.comment_rules(thread.id)
    assert verdicts[reply.op_id].withheld == ("replies-closed",)
    assert verdicts[other.op_id].withheld == ()
    await node.set_mode(thread.id, ThreadMode.READ_ONLY)
    clock.advance(5)
    [late] = await node.ingest([_comment(node, stranger, thread.id, "late", clock.now)])
    mine_late = await node.comment(thread.id, "the owner still writes")
    verdicts = node.comment_rules(thread.id)
    assert verdicts[late.op_id].withheld == ("read-only",)
    assert verdicts[other.op_id].withheld == ()  # in the setting's causal past
    assert verdicts[mine_late.id].withheld == ()
    await node.set_mode(thread.id, ThreadMode.MEMBERS_ONLY)
    clock.advance(5)
    [member] = await node.ingest([_comment(node, stranger, thread.id, "member?", clock.now)])
    verdicts = node.comment_rules(thread.id)
    assert verdicts[late.op_id].withheld == ()  # the moderator had seen it: left as it was
    assert verdicts[member.op_id].withheld == ("members-only",)


@pytest.mark.trio
async def test_proof_of_work_is_required_mined_and_refused_unpaid(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = await node.create_thread("t")
    await node.set_difficulty(thread.id, 8)
    clock.advance(5)
    unpaid = _unpaid(node, stranger, thread.id, 8, clock.now)
    state = node.replica.thread(thread.id)
    paid = mine(
        stranger,
        CommentPayload(body="paid"),
        difficulty=8,
        timestamp_ms=clock.now,
        thread=thread.id,
        refs=(thread.id,),
        deps=state.causal_deps(),
    )
    outcomes = await node.ingest([unpaid, paid.encoded])
    assert isinstance(outcomes[0], Rejected)
    assert outcomes[0].reason == "unpaid"
    assert isinstance(outcomes[1], Applied)
    assert node.get_operation(outcomes[0].op_id) is None  # neither stored
    assert node.required_difficulty(thread.id) == 0  # the owner pays nothing
    assert node.required_difficulty(thread.id, bytes(stranger.verify_key)) == 8
    await node.approve_author(thread.id, bytes(stranger.verify_key))
    assert node.required_difficulty(thread.id, bytes(stranger.verify_key)) == 0
    [now_free] = await node.ingest([unpaid])
    assert isinstance(now_free, Applied)  # the refusal was not remembered


@pytest.mark.trio
async def test_a_nodes_own_comment_is_mined_when_its_author_must_pay(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with (
        open_node(tmp_path / "owner", create_identity=True, clock=clock) as owner,
        open_node(tmp_path / "reader", create_identity=True, clock=clock) as reader,
    ):
        thread = await owner.create_thread("t")
        rule = await owner.set_difficulty(thread.id, 10)
        await reader.ingest([thread.encoded, rule.encoded])
        progress: list[tuple[int, int]] = []
        reader.mining_progress = lambda attempts, bits: progress.append((attempts, bits))
        comment = await reader.comment(thread.id, "I paid")
        assert leading_zero_bits(comment.id) >= 10
        assert progress
        assert progress[-1][1] == 10
        [outcome] = await owner.ingest([comment.encoded])
        assert isinstance(outcome, Applied)


@pytest.mark.trio
async def test_site_rules_hold_for_every_page_thread_of_the_site(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    site = await node.ensure_site_thread("blog.example.org")
    page = page_thread(node.author, "https://blog.example.org/2026/a-post")
    await node.ingest([page.encoded])
    await node.ban(site.id, bytes(stranger.verify_key), reason="site-wide")
    [spam] = await node.ingest([_comment(node, stranger, page.id, "spam", clock.now)])
    assert node.comment_rules(page.id)[spam.op_id].withheld == ("banned",)
    await node.set_difficulty(site.id, 12)
    clock.advance(10)
    [unpaid] = await node.ingest(
        [_comment(node, SigningKey(b"\x09" * 32), page.id, "x", clock.now)]
    )
    assert isinstance(unpaid, Rejected)
    assert unpaid.reason == "unpaid"


@pytest.mark.trio
async def test_reports_reach_the_moderators(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = await node.create_thread("t")
    comment = await node.comment(thread.id, "is this spam?")
    state = node.replica.thread(thread.id)
    report = authoring.in_thread_operation(
        stranger,
        state,
        ModeratePayload(action=ModAction.REPORT, subject=comment.id, reason="spam"),
        target=thread.id,
        now_ms=clock.now,
    )
    [outcome] = await node.ingest([report.encoded])
    assert isinstance(outcome, Applied)
    [entry] = await node.reports()
    assert (entry.thread, entry.comment) == (thread.id, comment)
    assert [(r.reporter, r.reason) for r in entry.verdict.reports] == [
        (bytes(stranger.verify_key), "spam")
    ]


@pytest.mark.trio
async def test_mutes_are_local_and_lists_mute_what_their_owner_bans(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = await node.create_thread("t")
    [c] = await node.ingest([_comment(node, stranger, thread.id, "noise", clock.now)])
    assert node.mute(bytes(stranger.verify_key))
    assert not node.mute(bytes(stranger.verify_key))
    assert node.comment_rules(thread.id)[c.op_id].muted
    assert node.comment_rules(thread.id)[c.op_id].withheld == ()
    assert node.unmute(bytes(stranger.verify_key))
    assert not node.comment_rules(thread.id)[c.op_id].muted
    mute_list = await node.create_thread("my mute list")
    await node.ban(mute_list.id, bytes(stranger.verify_key), reason="noise")
    assert node.subscribe_list(mute_list.id)
    assert node.comment_rules(thread.id)[c.op_id].muted
    assert node.mutes().lists == frozenset({mute_list.id})


@pytest.mark.trio
async def test_rules_need_a_moderator(node: Node, stranger: SigningKey, clock: FakeClock) -> None:
    thread = await node.create_thread("t")
    state = node.replica.thread(thread.id)
    forged = make_operation(
        stranger,
        ModeratePayload(action=ModAction.SET_DIFFICULTY, value=30),
        timestamp_ms=clock.now + 1,
        thread=thread.id,
        refs=(thread.id,),
        deps=state.causal_deps(),
    )
    [outcome] = await node.ingest([forged.encoded])
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "not-moderator"


@pytest.mark.trio
async def test_a_stranger_cannot_write_rules(tmp_path: Path, clock: FakeClock) -> None:
    async with (
        open_node(tmp_path / "owner", create_identity=True, clock=clock) as owner,
        open_node(tmp_path / "reader", create_identity=True, clock=clock) as reader,
    ):
        thread = await owner.create_thread("t")
        comment = await owner.comment(thread.id, "x")
        await reader.ingest([thread.encoded, comment.encoded])
        with pytest.raises(AuthorizationError) as caught:
            await reader.ban(thread.id, owner.author)
        assert caught.value.reason == "not-moderator"
        report = await reader.report(comment.id, "off topic")  # anyone may report
        [outcome] = await owner.ingest([report.encoded])
        assert isinstance(outcome, Applied)
        assert [e.verdict.reports[0].reason for e in await owner.reports()] == ["off topic"]


@pytest.mark.trio
async def test_a_new_comment_does_not_depend_on_an_unpaid_head(
    tmp_path: Path, clock: FakeClock, stranger: SigningKey
) -> None:
    """The reader's node held a spam comment before it learnt the difficulty (set without it in
    its past): the spam is withheld as unpaid, and the reader's own comment, mined, does not
    depend on it (or it would be withheld too, and wait for ever where the spam was refused)."""
    async with (
        open_node(tmp_path / "owner", create_identity=True, clock=clock) as owner,
        open_node(tmp_path / "reader", create_identity=True, clock=clock) as reader,
    ):
        thread = await owner.create_thread("t")
        rule = await owner.set_difficulty(thread.id, 6)  # the owner never saw the spam
        await reader.ingest([thread.encoded])
        spam_bytes = next(  # one that does not pay 6 bits by chance (1 in 64 would)
            data
            for n in range(100)
            if leading_zero_bits(
                decode_operation(
                    data := _comment(reader, stranger, thread.id, f"spam {n}", clock.now)
                ).id
            )
            < 6
        )
        [spam] = await reader.ingest([spam_bytes])
        assert isinstance(spam, Applied)
        await reader.ingest([rule.encoded])
        assert reader.comment_rules(thread.id)[spam.op_id].withheld == ("unpaid",)
        clock.advance(5)
        mine_op = await reader.comment(thread.id, "an honest comment")
        assert spam.op_id not in mine_op.deps
        assert reader.comment_rules(thread.id)[mine_op.id].withheld == ()
        [outcome] = await owner.ingest([mine_op.encoded])  # the owner never held the spam
        assert isinstance(outcome, Applied)


@pytest.mark.trio
async def test_what_was_held_before_a_difficulty_is_still_held_after_a_restart(
    tmp_path: Path, clock: FakeClock, stranger: SigningKey
) -> None:
    async with open_node(tmp_path / "owner", create_identity=True, clock=clock) as owner:
        thread = await owner.create_thread("t")
        rule = await owner.set_difficulty(thread.id, 8)
    async with open_node(tmp_path / "reader", create_identity=True, clock=clock) as reader:
        await reader.ingest([thread.encoded])
        [early] = await reader.ingest([_unpaid(reader, stranger, thread.id, 8, clock.now)])
        await reader.ingest([rule.encoded])
        assert reader.comment_rules(thread.id)[early.op_id].withheld == ("unpaid",)
    async with open_node(tmp_path / "reader", clock=clock) as reopened:
        assert reopened.get_operation(early.op_id) is not None  # loaded, not refused again
        assert reopened.comment_rules(thread.id)[early.op_id].withheld == ("unpaid",)


@pytest.mark.trio
async def test_the_queue_and_reports_of_every_thread_load_only_threads_with_rules(
    data_dir: Path, stranger: SigningKey, clock: FakeClock
) -> None:
    """`node.listings` rule 4: over a store larger than memory, the queue and the reports of
    every thread come from the threads whose own or whose site's rules hold a rule operation;
    the others are not loaded, and what is found is what a look at every thread finds."""
    async with open_node(data_dir, create_identity=True, clock=clock, cache_operations=1) as node:
        queued = await node.create_thread("pre-moderated")
        await node.set_mode(queued.id, ThreadMode.PRE_MODERATED)
        site = await node.ensure_site_thread("blog.example.org")
        await node.set_mode(site.id, ThreadMode.PRE_MODERATED)
        page = page_thread(node.author, "https://blog.example.org/2026/a-post")
        await node.ingest([page.encoded])
        reported = await node.create_thread("reported")
        plain = [await node.create_thread(f"plain {n}") for n in range(4)]
        # Rules, but no comment: nothing to moderate there (a quiet page of the site, a new
        # thread already pre-moderated).
        quiet_page = page_thread(node.author, "https://blog.example.org/2026/quiet")
        await node.ingest([quiet_page.encoded])
        quiet = await node.create_thread("quiet")
        await node.set_mode(quiet.id, ThreadMode.PRE_MODERATED)
        clock.advance(5)
        ingested = [_comment(node, stranger, t.id, "hello", clock.now) for t in [queued, page]]
        ingested += [_comment(node, stranger, t.id, "hi", clock.now) for t in plain]
        await node.ingest(ingested)
        target = await node.comment(reported.id, "is this spam?")
        report = authoring.in_thread_operation(
            stranger,
            node.replica.thread(reported.id),
            ModeratePayload(action=ModAction.REPORT, subject=target.id, reason="spam"),
            target=reported.id,
            now_ms=clock.now,
        )
        await node.ingest([report.encoded])
    async with open_node(data_dir, clock=clock, cache_operations=1) as node:
        loads = count_loads(node)
        waiting = await node.moderation_queue()
        assert sorted(e.thread for e in waiting) == sorted([queued.id, page.id])
        assert {e.comment.payload.body for e in waiting} == {"hello"}  # type: ignore[union-attr]
        [entry] = await node.reports()
        assert (entry.thread, entry.comment) == (reported.id, target)
        assert not {t.id for t in [*plain, quiet_page, quiet]} & set(loads)
        assert set(loads) <= {queued.id, page.id, site.id, reported.id}
        # Module rule 5: the threads with work are read off the loop (only a site thread, whose
        # rules every page consults, may load on it).
        loop = threading.get_ident()
        on_loop = {t for t, reader in zip(loads, loads.readers, strict=True) if reader == loop}
        assert on_loop <= {site.id}
        assert {queued.id, page.id, reported.id} <= set(loads)
