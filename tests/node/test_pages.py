"""Page threads through the Node: computed without set-up, made idempotently, owned by their key
while it is offline, viewed with aliases; operations signed elsewhere submitted as gossip would
bring them, refused with the spec's reason, stored as they are."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    CommentPayload,
    EditPayload,
    ModAction,
    ModeratePayload,
    make_operation,
    page_thread,
)
from p2pcomments.errors import OperationRefused, OperationRefusedNotAuthorized, PageUrlError
from p2pcomments.node import Node, open_node

from .conftest import FakeClock

POST = "https://www.exemple.fr/2024/03/l-été-où-tout-a-changé-%e2%80%a6/?utm_source=x#commentaires"
OLD_SLUG = "https://www.exemple.fr/2024/03/l-ete/"
T0 = 1_767_225_600_000
OWNER = SigningKey(b"\x11" * 32)


def _owner() -> bytes:
    return bytes(OWNER.verify_key)


def _comment(key: SigningKey, thread: bytes, parent: bytes, body: str, ts: int = T0) -> bytes:
    return make_operation(
        key, CommentPayload(body=body), timestamp_ms=ts, thread=thread, refs=(parent,)
    ).encoded


@pytest.mark.trio
async def test_a_page_with_no_thread_yet_has_an_empty_view(node: Node) -> None:
    page = node.page_view(POST, _owner())
    assert not page.canonical.exists
    assert page.canonical.id == node.page_thread_id(POST, _owner())
    assert page.canonical.url.endswith("-%E2%80%A6")
    assert page.comments == ()
    assert not page.closed
    assert page.canonical.view.title == ""
    assert _owner() not in {t.owner for t in node.threads()}


@pytest.mark.trio
async def test_ensure_page_thread_is_idempotent_and_survives_reopen(
    data_dir: Path, clock: FakeClock
) -> None:
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        first = await node.ensure_page_thread(POST, _owner())
        again = await node.ensure_page_thread(POST.replace("%e2%80%a6", "…"), _owner())
        assert first.encoded == again.encoded == page_thread(_owner(), POST).encoded
        assert node.page_view(POST, _owner()).canonical.exists
    async with open_node(data_dir, clock=clock) as node:
        assert node.get_operation(first.id) == first
        assert node.thread_view(first.id).url == first.payload.url  # type: ignore[union-attr]


@pytest.mark.trio
async def test_the_owner_moderates_a_page_thread_made_by_a_reader(
    data_dir: Path, clock: FakeClock
) -> None:
    async with open_node(data_dir, create_identity=True, clock=clock) as node:
        owner = node.author  # this node's author owns the page; a reader's browser made it
        reader = SigningKey(b"\x22" * 32)
        thread = page_thread(owner, POST)
        [made, said] = await node.submit_operations(
            [thread.encoded, _comment(reader, thread.id, thread.id, "Superbe article")]
        )
        assert (made.state, said.state) == ("valid", "valid")
        await node.retitle(thread.id, "L'été où tout a changé…")
        await node.close(thread.id, reason="Les commentaires sont fermés.")
        page = node.page_view(POST, owner)
        assert page.closed
        assert page.canonical.view.title == "L'été où tout a changé…"
        assert [c.comment.body for c in page.comments] == ["Superbe article"]
        assert [s.title for s in node.threads()] == ["L'été où tout a changé…"]


@pytest.mark.trio
async def test_submitted_operations_are_stored_byte_for_byte_and_pending_kept(node: Node) -> None:
    reader = SigningKey(b"\x22" * 32)
    thread = page_thread(_owner(), POST)
    comment = _comment(reader, thread.id, thread.id, "Bonjour")
    # The comment before its page thread: kept pending, then valid once the thread comes.
    [early] = await node.submit_operations([comment])
    assert early.state == "pending"
    assert not early.duplicate
    [made] = await node.submit_operations([thread.encoded])
    assert made.state == "valid"
    assert node.get_operation(early.op.id).encoded == comment  # type: ignore[union-attr]
    [again] = await node.submit_operations([comment])
    assert (again.state, again.duplicate) == ("valid", True)
    assert node.page_view(POST, _owner()).canonical.view.comments[0].body == "Bonjour"


@pytest.mark.trio
async def test_a_refused_submission_names_its_reason_and_index_and_stores_nothing(
    node: Node,
) -> None:
    reader = SigningKey(b"\x22" * 32)
    mallory = SigningKey(b"\x33" * 32)
    thread = page_thread(_owner(), POST)
    await node.submit_operations([thread.encoded])
    good = _comment(reader, thread.id, thread.id, "Bonjour")
    forged = bytearray(_comment(reader, thread.id, thread.id, "Au revoir"))
    forged[-1] ^= 1
    with pytest.raises(OperationRefused) as caught:
        await node.submit_operations([good, bytes(forged)])
    assert caught.value.reason == "bad-signature"
    assert caught.value.index == 1
    assert caught.value.to_dict()["index"] == 1
    assert node.page_view(POST, _owner()).comments == ()  # the good one was not stored either
    # A rule that needs the thread: a close by someone who is neither owner nor moderator.
    close = make_operation(
        mallory,
        ModeratePayload(action=ModAction.CLOSE),
        timestamp_ms=T0,
        thread=thread.id,
        refs=(thread.id,),
    )
    with pytest.raises(OperationRefusedNotAuthorized) as not_moderator:
        await node.submit_operations([close.encoded])
    assert not_moderator.value.reason == "not-moderator"
    assert not_moderator.value.http_status == 403
    # An edit of another's comment, against a comment held here.
    [said] = await node.submit_operations([good])
    edit = make_operation(
        mallory,
        EditPayload(body="pwned"),
        timestamp_ms=T0 + 1,
        thread=thread.id,
        refs=(said.op.id,),
    )
    with pytest.raises(OperationRefused) as not_author:
        await node.submit_operations([edit.encoded])
    assert not_author.value.reason == "not-author"
    with pytest.raises(OperationRefused) as malformed:
        await node.submit_operations([b"\x99garbage"])
    assert malformed.value.reason == "malformed"


@pytest.mark.trio
async def test_a_page_view_merges_its_aliases_comments(node: Node) -> None:
    reader = SigningKey(b"\x22" * 32)
    other = SigningKey(b"\x44" * 32)
    canonical = page_thread(_owner(), POST)
    old = page_thread(_owner(), OLD_SLUG)
    first = _comment(reader, old.id, old.id, "Sous l'ancienne adresse", ts=T0)
    second = _comment(other, canonical.id, canonical.id, "Sous la nouvelle", ts=T0 + 5)
    [_, under_old, _, _] = await node.submit_operations(
        [old.encoded, first, canonical.encoded, second]
    )
    reply = _comment(other, old.id, under_old.op.id, "Réponse dans l'ancien fil", ts=T0 + 9)
    await node.submit_operations([reply])
    page = node.page_view(POST, _owner(), aliases=[OLD_SLUG, POST, OLD_SLUG + "?utm_source=x"])
    assert [a.url for a in page.aliases] == ["https://www.exemple.fr/2024/03/l-ete"]
    rows = [(c.thread_id, c.comment.depth, c.comment.body) for c in page.comments]
    assert rows == [
        (old.id, 0, "Sous l'ancienne adresse"),
        (old.id, 1, "Réponse dans l'ancien fil"),
        (canonical.id, 0, "Sous la nouvelle"),
    ]
    # Without aliases the page is its own thread only.
    assert [c.comment.body for c in node.page_view(POST, _owner()).comments] == ["Sous la nouvelle"]


@pytest.mark.trio
async def test_a_url_that_cannot_name_a_page_is_a_typed_error(node: Node) -> None:
    with pytest.raises(PageUrlError) as caught:
        node.page_view("ftp://exemple.fr/", _owner())
    assert caught.value.reason == "unsupported-scheme"
    with pytest.raises(PageUrlError):
        await node.ensure_page_thread("exemple.fr/billet", _owner())
