"""core.id_prefix: shown prefixes are unique and shortest (as git's), typed ones find their ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcomments.core.id_prefix import (
    MIN_SHOWN,
    MIN_TYPED,
    IdPrefix,
    read_prefix,
    shortest_unique_prefixes,
)
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.errors import TextFormError

from .strategies import ids

kinds = st.sampled_from(list(TextKind))
text_ids = st.builds(format_id, kinds, ids)
# Ids that share long prefixes, so that uniqueness needs more than the minimum.
crowded_ids = st.builds(
    lambda head, tail: (head + tail)[:32],
    st.sampled_from([b"", bytes(4), bytes(5) + b"\x80", b"\xff" * 6]),
    ids,
)


def _after_kind(text: str) -> str:
    return text.partition("_")[2]


@given(st.lists(st.one_of(text_ids, st.builds(format_id, kinds, crowded_ids)), max_size=40))
def test_each_shown_prefix_is_unique_shortest_and_of_its_id(texts: list[str]) -> None:
    shown = shortest_unique_prefixes(texts)
    assert set(shown) == set(texts)
    bodies = {_after_kind(text) for text in texts}
    for text, prefix in shown.items():
        kind, _, chars = prefix.partition("_")
        assert text.startswith(prefix)
        assert kind == text.partition("_")[0]
        assert len(chars) >= MIN_SHOWN
        body = _after_kind(text)
        # unique: no other id (of any kind) starts with these characters
        assert [other for other in bodies if other.startswith(chars)] == [body]
        # shortest: one character less is the minimum, or is shared with another id
        if len(chars) > MIN_SHOWN:
            shorter = chars[:-1]
            assert any(other != body and other.startswith(shorter) for other in bodies)


@given(st.lists(text_ids, min_size=1, max_size=10), st.integers(min_value=1, max_value=60))
def test_the_minimum_is_honoured_and_never_exceeds_the_id(texts: list[str], minimum: int) -> None:
    for text, prefix in shortest_unique_prefixes(texts, minimum=minimum).items():
        assert len(_after_kind(prefix)) >= min(minimum, 56)
        assert text.startswith(prefix)


def test_the_same_id_under_two_kinds_is_one_id() -> None:
    raw = bytes(range(32))
    thread, op = format_id(TextKind.THREAD, raw), format_id(TextKind.OPERATION, raw)
    shown = shortest_unique_prefixes([thread, op])
    assert shown[thread] == thread[: 4 + MIN_SHOWN]
    assert shown[op] == op[: 3 + MIN_SHOWN]


def test_two_ids_sharing_a_long_prefix_are_shown_one_character_past_it() -> None:
    a = format_id(TextKind.COMMENT, bytes(6) + b"\x01" + bytes(25))
    b = format_id(TextKind.COMMENT, bytes(6) + b"\x02" + bytes(25))
    assert _common(a, b) > MIN_SHOWN
    shown = shortest_unique_prefixes([a, b])
    assert len(_after_kind(shown[a])) == len(_after_kind(shown[b])) == _common(a, b) + 1
    assert shown[a] != shown[b]


def _common(a: str, b: str) -> int:
    x, y = _after_kind(a), _after_kind(b)
    return next(i for i, (p, q) in enumerate(zip(x, y, strict=True)) if p != q)


@given(ids, st.integers(min_value=MIN_TYPED, max_value=55), kinds)
def test_a_typed_prefix_of_an_id_matches_it_and_bounds_it(
    raw: bytes, length: int, kind: TextKind
) -> None:
    text = format_id(kind, raw)
    prefix = read_prefix(text[: len(kind.value) + 1 + length].upper())
    assert prefix == IdPrefix(kind=kind, chars=_after_kind(text)[:length])
    assert prefix.matches(raw)
    low, high = prefix.bounds()
    assert low <= raw
    assert high is None or raw < high


@given(ids, ids, st.integers(min_value=MIN_TYPED, max_value=55))
def test_bounds_hold_exactly_the_ids_whose_text_starts_so(
    raw: bytes, other: bytes, length: int
) -> None:
    text = format_id(TextKind.COMMENT, raw)
    prefix = read_prefix(text[: 4 + length])
    assert prefix is not None
    starts = format_id(TextKind.COMMENT, other).startswith(prefix.text)
    assert prefix.matches(other) == starts
    low, high = prefix.bounds()
    within = low <= other and (high is None or other < high)
    if length <= 51:
        assert within == starts
    else:
        assert within or not starts  # the range is a superset; `matches` decides


def test_the_last_prefixes_have_no_upper_bound() -> None:
    prefix = read_prefix("cmt_7777")
    assert prefix is not None
    assert prefix.bounds() == (bytes.fromhex("ffff") + b"\xf0" + bytes(29), None)
    assert prefix.matches(b"\xff" * 32)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "blog.example",
        "xyz_abcd",  # not a kind
        "cmt_abc1",  # 1 is not in the alphabet
        "cmt_" + "a" * 56,  # a whole text form: parse_id's business
        "cmt_abcdé",
    ],
)
def test_what_is_not_a_prefix_is_left_to_parse_id(text: str) -> None:
    assert read_prefix(text) is None


def test_a_prefix_too_short_says_how_long_it_must_be() -> None:
    with pytest.raises(TextFormError, match=f"at least {MIN_TYPED} characters") as raised:
        read_prefix("cmt_ab")
    assert raised.value.reason == "prefix-too-short"
