"""Page threads (SPEC §10.2) and retitles (SPEC §10.3): the vectors, the one authenticity rule on
every decoding path, and the view."""

from __future__ import annotations

import hashlib
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    PAGE_THREAD_SIGNATURE,
    CommentPayload,
    Kind,
    ModAction,
    ModeratePayload,
    ThreadPayload,
    decode_operation,
    decode_operations,
    is_page_thread,
    load_stored_operation,
    make_operation,
    page_thread,
    page_thread_id,
    verify_operation,
)
from p2pcomments.core.page_url import normalise_page_url
from p2pcomments.core.replica import Applied, Rejected, Replica
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.errors import DecodeError, InvalidOperation, PageUrlError

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors"
OWNER = SigningKey(bytes(range(32)))
ALICE = SigningKey(bytes(range(1, 33)))
MALLORY = SigningKey(bytes(range(2, 34)))
POST = "https://www.exemple.fr/2024/03/l-été-où-tout-a-changé-%e2%80%a6/?utm_source=x#commentaires"
T0 = 1_767_225_600_000


@cache
def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _key(signing_key: SigningKey) -> bytes:
    return bytes(signing_key.verify_key)


# -- the vectors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vector", load("page_threads.json")["page_threads"], ids=lambda v: str(v["name"])
)
def test_page_thread_vector(vector: dict[str, Any]) -> None:
    owner = bytes.fromhex(vector["owner"]["public_key"])
    op = page_thread(owner, vector["input_url"])
    assert op.encoded.hex() == vector["encoded"]
    assert op.id.hex() == vector["id"]
    assert format_id(TextKind.THREAD, op.id) == vector["id_text"]
    assert hashlib.sha256(bytes.fromhex(vector["unsigned_hex"])).hexdigest() == vector["id"]
    assert op.signature == PAGE_THREAD_SIGNATURE
    # The layout, spelled out: [1, 1, owner, nil, [], [], 0, ["", url, site], 64 zero bytes].
    url = normalise_page_url(vector["input_url"])
    site = url.split("/")[2].split(":")[0]
    expected = msgpack.packb(
        [1, 1, owner, None, [], [], 0, ["", url, site], bytes(64)], use_bin_type=True
    )
    assert op.encoded == expected
    decoded = decode_operation(bytes.fromhex(vector["encoded"]))
    assert decoded == op
    assert is_page_thread(decoded)
    verify_operation(decoded)
    assert page_thread_id(owner, vector["input_url"]) == op.id


def test_the_french_post_has_one_thread_per_owner() -> None:
    vectors = {v["name"]: v for v in load("page_threads.json")["page_threads"]}
    encoded = vectors["the French blog post"]
    raw = vectors["the French blog post, raw …: the same thread"]
    other = vectors["the French blog post, another owner: another thread"]
    assert encoded["id"] == raw["id"] != other["id"]


@pytest.mark.parametrize(
    "vector", load("page_threads.json")["not_page_threads"], ids=lambda v: str(v["name"])
)
def test_zero_signature_outside_the_page_form_is_a_bad_signature(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["encoded"])
    with pytest.raises(InvalidOperation) as caught:
        decode_operation(data)
    assert caught.value.reason == vector["reason"] == "bad-signature"
    assert not isinstance(caught.value, DecodeError)  # an operation, of a known id
    [result] = decode_operations([data])
    assert isinstance(result, InvalidOperation)
    assert result.reason == "bad-signature"
    unverified = decode_operation(data, verify=False)
    with pytest.raises(InvalidOperation, match="signature"):
        verify_operation(unverified)


def test_the_history_vector_replays() -> None:
    history = load("page_threads.json")["history"]
    ops = [decode_operation(bytes.fromhex(h)) for h in history["operations"]]
    replica = Replica()
    for op, expected in zip(ops, history["outcomes"], strict=True):
        outcome = replica.apply(op).outcome
        if expected["outcome"] == "applied":
            assert isinstance(outcome, Applied), expected["label"]
        else:
            assert isinstance(outcome, Rejected), expected["label"]
            assert outcome.reason == expected["reason"]
    view = replica.view(ops[0].id)
    assert view.digest().hex() == history["view_digest"]
    assert view.title == history["view"]["title"] == "L'été où tout a changé… (2024)"
    assert view.closed


def test_retitle_vectors_are_moderate_action_7_at_the_thread() -> None:
    retitles = load("page_threads.json")["retitle_operations"]
    assert len(retitles) == 4
    for entry in retitles:
        op = decode_operation(bytes.fromhex(entry["operation"]["encoded"]))
        assert op.kind is Kind.MODERATE
        assert op.payload == ModeratePayload(
            action=ModAction.RETITLE, reason=entry["operation"]["unsigned"]["payload"]["reason"]
        )
        assert op.target == op.thread


# -- building and decoding ---------------------------------------------------------------------


def test_make_operation_refuses_to_sign_a_page_form() -> None:
    url = normalise_page_url(POST)
    with pytest.raises(InvalidOperation, match="page_thread") as caught:
        make_operation(
            OWNER, ThreadPayload(title="", url=url, site="www.exemple.fr"), timestamp_ms=0
        )
    assert caught.value.reason == "bad-field"
    # The same payload at another time, or with a title, is an ordinary signed thread.
    op = make_operation(
        OWNER, ThreadPayload(title="", url=url, site="www.exemple.fr"), timestamp_ms=1
    )
    assert not is_page_thread(op)
    assert decode_operation(op.encoded) == op


def test_page_thread_refuses_bad_input() -> None:
    with pytest.raises(PageUrlError) as caught:
        page_thread(_key(OWNER), "mailto:someone@exemple.fr")
    assert caught.value.reason == "unsupported-scheme"
    with pytest.raises(InvalidOperation) as bad_owner:
        page_thread(b"\x01" * 31, POST)
    assert bad_owner.value.reason == "bad-field"


def test_a_page_thread_loads_from_the_store_as_it_was() -> None:
    op = page_thread(_key(OWNER), POST)
    assert load_stored_operation(op.encoded) == op


def test_decode_operations_mixes_page_threads_and_signed_operations() -> None:
    page = page_thread(_key(OWNER), POST)
    comment = make_operation(
        ALICE, CommentPayload(body="Bonjour"), timestamp_ms=T0, thread=page.id, refs=(page.id,)
    )
    forged = bytearray(comment.encoded)
    forged[-64:] = bytes(64)
    results = decode_operations([page.encoded, comment.encoded, bytes(forged)])
    assert results[0] == page
    assert results[1] == comment
    assert isinstance(results[2], InvalidOperation)
    assert results[2].reason == "bad-signature"


@given(st.binary(min_size=32, max_size=32), st.sampled_from(["http", "https"]), st.data())
def test_anyone_computes_the_same_page_thread(
    owner: bytes, scheme: str, data: st.DataObject
) -> None:
    slug = data.draw(st.text("abcdéèêàùç-…0123456789", min_size=1, max_size=20))
    url = f"{scheme}://blog.example/{slug}"
    variant = f"{scheme.upper()}://Blog.Example/{slug}/?utm_source=feed#comments"
    assert page_thread(owner, url).encoded == page_thread(owner, variant).encoded
    assert decode_operation(page_thread(owner, url).encoded).id == page_thread_id(owner, variant)


# -- retitles in the view (SPEC §10.3) ---------------------------------------------------------


def _retitle(key: SigningKey, thread: bytes, title: str, ts: int, deps: tuple[bytes, ...]) -> Any:
    return make_operation(
        key,
        ModeratePayload(action=ModAction.RETITLE, reason=title),
        timestamp_ms=ts,
        thread=thread,
        refs=(thread,),
        deps=deps,
    )


def test_retitle_is_last_writer_wins_by_the_owner_or_a_moderator() -> None:
    page = page_thread(_key(OWNER), POST)
    first = _retitle(OWNER, page.id, "Premier titre", T0 + 2, (page.id,))
    second = _retitle(OWNER, page.id, "Second titre", T0 + 1, (page.id,))  # older, concurrent
    intruder = _retitle(MALLORY, page.id, "Pwned", T0 + 9, (first.id,))
    ops = [page, first, second, intruder]
    digests = set()
    for seed in range(6):
        order = ops[1:]
        random.Random(seed).shuffle(order)
        replica = Replica()
        outcomes = []
        for op in [page, *order]:
            result = replica.apply(op)
            outcomes += [result.outcome, *(outcome for _, outcome in result.released)]
        view = replica.view(page.id)
        assert view.title == "Premier titre"
        digests.add(view.digest())
        rejected = [o for o in outcomes if isinstance(o, Rejected)]
        assert [o.reason for o in rejected] == ["not-moderator"]
    assert len(digests) == 1


def test_a_page_thread_without_retitle_has_an_empty_title() -> None:
    page = page_thread(_key(OWNER), POST)
    replica = Replica()
    replica.apply(page)
    view = replica.view(page.id)
    assert view.title == ""
    assert view.url == normalise_page_url(POST)
    assert view.site == "www.exemple.fr"
    assert view.owner == _key(OWNER)


@pytest.mark.parametrize(
    ("title", "reason"),
    [("deux\nlignes", "bad-text"), ("t" * 513, "oversize"), ("e\u0301", "bad-text")],
)
def test_a_retitle_is_one_line_of_at_most_512_bytes(title: str, reason: str) -> None:
    page = page_thread(_key(OWNER), POST)
    fields = (1, 6, _key(OWNER), page.id, (page.id,), (), T0, (7, None, title))
    unsigned = msgpack.packb(fields, use_bin_type=True)
    signature = OWNER.sign(b"p2pcomments/op/v1\x00" + hashlib.sha256(unsigned).digest()).signature
    with pytest.raises(InvalidOperation) as caught:
        decode_operation(msgpack.packb((*fields, signature), use_bin_type=True))
    assert caught.value.reason == reason


def test_a_retitle_targets_the_thread() -> None:
    page = page_thread(_key(OWNER), POST)
    comment = make_operation(
        ALICE, CommentPayload(body="Bonjour"), timestamp_ms=T0, thread=page.id, refs=(page.id,)
    )
    with pytest.raises(InvalidOperation) as caught:
        make_operation(
            OWNER,
            ModeratePayload(action=ModAction.RETITLE, reason="x"),
            timestamp_ms=T0,
            thread=page.id,
            refs=(comment.id,),
        )
    assert caught.value.reason == "bad-reference"
