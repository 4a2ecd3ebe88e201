"""Local writes through the Node: every kind, persisted, and every caller mistake typed and
storing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import CommentPayload, Kind, ModAction, make_operation
from p2pcomments.core.replica import Applied
from p2pcomments.errors import (
    AuthorizationError,
    ConflictError,
    InvalidOperation,
    NotFound,
)
from p2pcomments.node import Node, open_node
from p2pcomments.store.op_store import OpState

from .conftest import FakeClock


@pytest.mark.trio
async def test_every_kind_is_written_and_survives_reopen(data_dir: Path, clock: FakeClock) -> None:
    moderator = SigningKey(b"\x05" * 32).verify_key.encode()
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        thread = await node.create_thread("Hello", url="https://blog.example/hello", site="blog")
        first = await node.comment(thread.id, "First!")
        reply = await node.reply(first.id, "A reply")
        edit = await node.edit(first.id, "First, edited")
        react = await node.react(first.id, "+1")
        hide = await node.hide(reply.id, reason="off topic")
        unhide = await node.unhide(reply.id)
        added = await node.add_moderator(thread.id, moderator)
        removed = await node.remove_moderator(thread.id, moderator)
        retract = await node.retract(reply.id)
        close = await node.close(thread.id, reason="done")
        reopen = await node.reopen(thread.id)
        profile = await node.set_profile("Ada")
        written = [
            thread,
            first,
            reply,
            edit,
            react,
            hide,
            unhide,
            added,
            removed,
            retract,
            close,
            reopen,
            profile,
        ]
        assert {op.kind for op in written} == set(Kind)
        before = node.thread_view(thread.id)
        assert node.store.count() == len(written)

    async with open_node(data_dir, clock=clock) as node:
        view = node.thread_view(thread.id)
        assert view.digest() == before.digest()
        assert view.owner_name == "Ada"
        assert not view.closed
        shown = {c.id: c for c in view.comments}
        assert shown[first.id].body == "First, edited"
        assert shown[first.id].reactions[0].reaction == "+1"
        assert shown[reply.id].retracted
        assert shown[reply.id].body is None
        for op in written:
            assert node.get_operation(op.id) == op
        assert node.store.count(OpState.APPLIED) == len(written)
        assert node.store.integrity_check() == []


@pytest.mark.trio
async def test_a_child_never_predates_its_parent(node: Node, clock: FakeClock) -> None:
    thread = await node.create_thread("Clock")
    clock.now -= 60_000  # the wall clock jumps back a minute
    comment = await node.comment(thread.id, "still after the thread")
    reply = await node.reply(comment.id, "still after the comment")
    assert thread.timestamp_ms < comment.timestamp_ms < reply.timestamp_ms
    assert comment.deps == (thread.id,)
    assert reply.deps == (comment.id,)


@pytest.mark.trio
async def test_profiles_always_win_over_the_previous_one(node: Node, clock: FakeClock) -> None:
    await node.set_profile("Old")
    clock.now -= 10_000
    await node.set_profile("New")
    assert node.replica.names()[node.author] == "New"


@pytest.mark.trio
async def test_writes_answer_threads_and_resolve(node: Node, clock: FakeClock) -> None:
    older = await node.create_thread("Older")
    clock.advance(10)
    newer = await node.create_thread("Newer")
    clock.advance(10)
    comment = await node.comment(older.id, "bump")
    await node.comment(older.id, "again")
    await node.retract(comment.id)
    summaries = node.threads()
    assert [s.id for s in summaries] == [older.id, newer.id]  # newest activity first
    assert summaries[0].comment_count == 1  # the retracted one is not counted
    assert summaries[0].owner == node.author
    assert node.resolve(comment.id) == (older.id, Kind.COMMENT)
    assert node.resolve(older.id) == (older.id, Kind.THREAD)
    profile = await node.set_profile("Me")
    with pytest.raises(NotFound):
        node.resolve(profile.id)
    with pytest.raises(NotFound):
        node.resolve(b"\x00" * 32)


async def _assert_refused(
    node: Node, error: type[Exception], call: object, *, reason: str | None = None
) -> None:
    """``call`` (a coroutine) raises ``error`` and leaves memory and disk as they were."""
    stored = node.store.count()
    held = node.replica.operation_count()
    with pytest.raises(error) as caught:
        await call  # type: ignore[misc]
    if reason is not None:
        assert getattr(caught.value, "reason", None) == reason
    assert node.store.count() == stored
    assert node.replica.operation_count() == held


@pytest.mark.trio
async def test_caller_mistakes_raise_typed_errors_and_store_nothing(
    node: Node, stranger: SigningKey, clock: FakeClock
) -> None:
    thread = await node.create_thread("Mistakes")
    mine = await node.comment(thread.id, "mine")
    theirs = make_operation(
        stranger,
        CommentPayload(body="theirs"),
        timestamp_ms=clock() + 1,
        thread=thread.id,
        refs=(thread.id,),
        deps=(mine.id,),
    )
    assert isinstance((await node.ingest([theirs.encoded]))[0], Applied)
    unknown = b"\x42" * 32

    await _assert_refused(node, InvalidOperation, node.comment(thread.id, ""))
    await _assert_refused(node, InvalidOperation, node.comment(thread.id, "   \n "))
    await _assert_refused(node, InvalidOperation, node.comment(thread.id, "x" * 40_000))
    await _assert_refused(node, InvalidOperation, node.comment(thread.id, "bell\x07"))
    await _assert_refused(node, InvalidOperation, node.create_thread(""))
    await _assert_refused(node, InvalidOperation, node.react(mine.id, " +1 "))
    await _assert_refused(node, InvalidOperation, node.add_moderator(thread.id, b"short"))
    await _assert_refused(node, InvalidOperation, node.set_profile(""))
    await _assert_refused(node, NotFound, node.comment(unknown, "to nowhere"))
    await _assert_refused(node, NotFound, node.reply(unknown, "to nowhere"))
    await _assert_refused(node, NotFound, node.edit(unknown, "nothing"))
    await _assert_refused(node, NotFound, node.close(unknown))
    await _assert_refused(node, NotFound, node.reply(thread.id, "a thread is not a comment"))
    await _assert_refused(
        node, AuthorizationError, node.edit(theirs.id, "not mine"), reason="not-author"
    )
    await _assert_refused(node, AuthorizationError, node.retract(theirs.id), reason="not-author")
    await node.close(thread.id)
    await _assert_refused(
        node, ConflictError, node.comment(thread.id, "late"), reason="thread-closed"
    )
    await node.reopen(thread.id)
    await node.retract(mine.id)
    await _assert_refused(node, ConflictError, node.edit(mine.id, "gone"), reason="retracted")
    # AuthorizationError is an InvalidOperation, so `except InvalidOperation` catches it too.
    assert issubclass(AuthorizationError, InvalidOperation)


@pytest.mark.trio
async def test_moderation_needs_the_owner_or_a_moderator(
    data_dir: Path, tmp_path: Path, clock: FakeClock
) -> None:
    async with open_node(data_dir, create_identity=True, clock=clock) as owner_node:
        thread = await owner_node.create_thread("Owned")
        comment = await owner_node.comment(thread.id, "hello")
        exported = owner_node.export_operations(thread.id)
        owner_key = owner_node.author

    async with open_node(tmp_path / "guest", create_identity=True, clock=clock) as guest:
        outcomes = await guest.ingest(exported)
        assert all(isinstance(o, Applied) for o in outcomes)
        held = guest.store.count()
        for call, reason in [
            (guest.hide(comment.id), "not-moderator"),
            (guest.close(thread.id), "not-moderator"),
            (guest.add_moderator(thread.id, guest.author), "not-owner"),
            (guest.remove_moderator(thread.id, owner_key), "not-owner"),
        ]:
            with pytest.raises(AuthorizationError) as caught:
                await call
            assert caught.value.reason == reason
            assert caught.value.http_status == 403
        assert guest.store.count() == held
        # Once appointed (an operation from the owner), the guest may moderate.
        guest_key = guest.author

    async with open_node(data_dir, clock=clock) as owner_node:
        appointment = await owner_node.add_moderator(thread.id, guest_key)
    async with open_node(tmp_path / "guest", clock=clock) as guest:
        await guest.ingest([appointment.encoded])
        hidden = await guest.hide(comment.id, reason="spam")
        assert hidden.payload.action is ModAction.HIDE  # type: ignore[union-attr]
        assert guest.thread_view(thread.id).comments[0].hidden


@pytest.mark.trio
async def test_typed_text_is_normalised_to_nfc_and_lf(node: Node) -> None:
    decomposed = "Cafe\u0301 au lait\r\nsecond line"
    thread = await node.create_thread("Re\u0301sume\u0301")
    comment = await node.comment(thread.id, decomposed)
    await node.set_profile("Zoe\u0308")
    view = node.thread_view(thread.id)
    assert view.title == "R\u00e9sum\u00e9"
    assert view.comments[0].body == "Caf\u00e9 au lait\nsecond line"
    assert comment.payload.body == view.comments[0].body  # type: ignore[union-attr]
    assert node.replica.names()[node.author] == "Zo\u00eb"
