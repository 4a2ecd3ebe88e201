"""core.authoring: the rules for this node's own operations, without trio, a store or a clock."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcomments.core import authoring
from p2pcomments.core.ops import (
    CommentPayload,
    EditPayload,
    ModAction,
    ModeratePayload,
    ReactPayload,
    RetractPayload,
)
from p2pcomments.errors import AuthorizationError, ConflictError

from .story import ALICE, BOB, OWNER, Story


def test_wire_text_turns_crlf_into_lf_and_composes() -> None:
    decomposed = unicodedata.normalize("NFD", "café\r\nnaïve")
    assert authoring.wire_text(decomposed) == "café\nnaïve"
    assert authoring.optional_wire_text(None) is None
    assert authoring.optional_wire_text("a\r\nb") == "a\nb"


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r")))
def test_wire_text_is_nfc_and_keeps_text_without_carriage_returns(text: str) -> None:
    wired = authoring.wire_text(text)
    assert unicodedata.is_normalized("NFC", wired)
    assert wired == unicodedata.normalize("NFC", text)
    assert authoring.wire_text(wired) == wired


def test_a_reply_never_predates_its_parent_whatever_the_clock() -> None:
    story = Story()
    future = story.comment(ALICE, ts=5_000_000)
    state = story.replica.thread(story.thread.id)
    reply = authoring.in_thread_operation(
        BOB, state, CommentPayload(body="late clock"), target=future.id, now_ms=1
    )
    assert reply.timestamp_ms == future.timestamp_ms + 1
    assert reply.refs == (future.id,)
    assert set(reply.deps) == state.heads


def test_the_clock_wins_when_it_is_ahead_of_the_parents() -> None:
    story = Story()
    state = story.replica.thread(story.thread.id)
    op = authoring.in_thread_operation(
        ALICE, state, CommentPayload(body="hi"), target=story.thread.id, now_ms=9_000_000
    )
    assert op.timestamp_ms == 9_000_000


def test_a_profile_is_newer_than_the_one_it_replaces() -> None:
    story = Story()
    current = story.profile(ALICE, "Alice", ts=7_000)
    op = authoring.profile_operation(ALICE, "Alice B", current=current, now_ms=10)
    assert op.timestamp_ms == 7_001
    assert authoring.profile_operation(ALICE, "A", current=None, now_ms=10).timestamp_ms == 10


def test_a_thread_operation_normalises_its_text() -> None:
    op = authoring.thread_operation(
        OWNER,
        unicodedata.normalize("NFD", "Ça va"),
        url=None,
        site=unicodedata.normalize("NFD", "é.example"),
        now_ms=5,
    )
    assert op.payload.title == "Ça va"  # type: ignore[union-attr]
    assert op.payload.site == "é.example"  # type: ignore[union-attr]
    assert op.payload.url is None  # type: ignore[union-attr]
    assert op.timestamp_ms == 5


@pytest.mark.parametrize(
    "payload",
    [CommentPayload(body="x"), EditPayload(body="x"), ReactPayload(reaction="👍")],
    ids=["comment", "edit", "react"],
)
def test_a_closed_thread_refuses_comments_edits_and_reactions(
    payload: CommentPayload | EditPayload | ReactPayload,
) -> None:
    story = Story()
    comment = story.comment(OWNER)
    story.close()
    state = story.replica.thread(story.thread.id)
    target = story.thread.id if isinstance(payload, CommentPayload) else comment.id
    with pytest.raises(ConflictError) as raised:
        authoring.refuse(state, payload, target)
    assert raised.value.reason == "thread-closed"


def test_a_closed_thread_still_takes_moderation_and_retraction() -> None:
    story = Story()
    comment = story.comment(OWNER)
    story.close()
    state = story.replica.thread(story.thread.id)
    authoring.refuse(state, RetractPayload(), comment.id)
    authoring.refuse(state, ModeratePayload(action=ModAction.REOPEN), story.thread.id)


@pytest.mark.parametrize(
    "payload", [EditPayload(body="x"), RetractPayload()], ids=["edit", "retract"]
)
def test_a_retracted_comment_refuses_edits_and_retraction(
    payload: EditPayload | RetractPayload,
) -> None:
    story = Story()
    comment = story.comment(ALICE)
    story.retract(ALICE, comment)
    state = story.replica.thread(story.thread.id)
    with pytest.raises(ConflictError) as raised:
        authoring.refuse(state, payload, comment.id)
    assert raised.value.reason == "retracted"
    authoring.refuse(state, ReactPayload(reaction="👍"), comment.id)  # reactions still may


def test_not_allowed_reaches_the_caller_as_authorization_error() -> None:
    story = Story()
    comment = story.comment(ALICE)
    state = story.replica.thread(story.thread.id)
    with pytest.raises(AuthorizationError) as raised:
        authoring.in_thread_operation(
            BOB, state, EditPayload(body="not mine"), target=comment.id, now_ms=1
        )
    assert raised.value.reason == "not-author"
    with pytest.raises(AuthorizationError) as raised:
        authoring.in_thread_operation(
            BOB, state, ModeratePayload(action=ModAction.CLOSE), target=story.thread.id, now_ms=1
        )
    assert raised.value.reason == "not-moderator"
