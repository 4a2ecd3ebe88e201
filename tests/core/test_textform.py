"""core.textform: text forms round-trip and every typo a person makes is caught."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcomments.core.textform import TextKind, format_id, parse_id
from p2pcomments.errors import P2PCommentsError, TextFormError

from .strategies import ids

RAW = bytes(range(32))
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def test_format_has_prefix_and_56_base32_characters() -> None:
    text = format_id(TextKind.COMMENT, RAW)
    prefix, _, body = text.partition("_")
    assert prefix == "cmt"
    assert len(body) == 56
    assert set(body) <= set(ALPHABET)


@pytest.mark.parametrize("kind", list(TextKind))
def test_round_trip_for_each_kind(kind: TextKind) -> None:
    text = format_id(kind, RAW)
    assert text.startswith(f"{kind.value}_")
    assert parse_id(text) == RAW
    assert parse_id(text, expect=frozenset({kind})) == RAW


@given(raw=ids, kind=st.sampled_from(list(TextKind)))
def test_round_trip_property(raw: bytes, kind: TextKind) -> None:
    assert parse_id(format_id(kind, raw)) == raw


def test_prefix_is_not_covered_by_checksum() -> None:
    """An id is the same whatever it is called."""
    body = format_id(TextKind.OPERATION, RAW).partition("_")[2]
    assert parse_id(f"cmt_{body}") == parse_id(f"thr_{body}") == RAW


def test_surrounding_spaces_and_upper_case_are_forgiven() -> None:
    text = format_id(TextKind.KEY, RAW)
    assert parse_id(f"  {text.upper()}\n") == RAW


@pytest.mark.parametrize("hex_text", [RAW.hex(), RAW.hex().upper(), f" {RAW.hex()} "])
def test_hex_is_accepted(hex_text: str) -> None:
    assert parse_id(hex_text) == RAW


@pytest.mark.parametrize("length", [0, 31, 33])
def test_format_refuses_wrong_length(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        format_id(TextKind.KEY, bytes(length))


def _replace(text: str, index: int, char: str) -> str:
    return text[:index] + char + text[index + 1 :]


def test_wrong_character_fails_checksum() -> None:
    text = format_id(TextKind.COMMENT, RAW)
    index = 10
    wrong = "a" if text[index] != "a" else "b"
    with pytest.raises(TextFormError, match="checksum"):
        parse_id(_replace(text, index, wrong))


def test_missing_character_is_named() -> None:
    text = format_id(TextKind.COMMENT, RAW)
    with pytest.raises(TextFormError, match="missing"):
        parse_id(text[:-1])


def test_extra_character_is_named() -> None:
    text = format_id(TextKind.COMMENT, RAW)
    with pytest.raises(TextFormError, match="extra"):
        parse_id(text + "a")


@pytest.mark.parametrize("char", ["0", "1", "8", "9", "!", "é"])
def test_characters_outside_the_alphabet_are_named(char: str) -> None:
    text = _replace(format_id(TextKind.COMMENT, RAW), 12, char)
    with pytest.raises(TextFormError, match="only a-z and 2-7"):
        parse_id(text)


def test_unknown_prefix() -> None:
    body = format_id(TextKind.COMMENT, RAW).partition("_")[2]
    with pytest.raises(TextFormError, match="unknown prefix 'cmd_'"):
        parse_id(f"cmd_{body}")


def test_wrong_kind_of_prefix_for_the_place() -> None:
    text = format_id(TextKind.KEY, RAW)
    with pytest.raises(TextFormError, match="names a key, expected 'cmt_'"):
        parse_id(text, expect=frozenset({TextKind.COMMENT}))


@pytest.mark.parametrize("text", ["", "cmt", "hello world", RAW.hex()[:-1], RAW.hex() + "0"])
def test_no_prefix(text: str) -> None:
    with pytest.raises(TextFormError):
        parse_id(text)


@given(raw=ids, index=st.integers(0, 55), char=st.sampled_from(ALPHABET))
def test_any_single_substitution_is_caught(raw: bytes, index: int, char: str) -> None:
    """A 3-byte checksum misses one substitution in 2^24; hypothesis will not find one."""
    text = format_id(TextKind.THREAD, raw)
    position = 4 + index
    mistyped = _replace(text, position, char)
    if mistyped == text:
        assert parse_id(mistyped) == raw
        return
    with pytest.raises(TextFormError):
        parse_id(mistyped)


@given(raw=ids, index=st.integers(0, 54))
def test_any_adjacent_swap_is_caught(raw: bytes, index: int) -> None:
    text = format_id(TextKind.THREAD, raw)
    body = list(text[4:])
    body[index], body[index + 1] = body[index + 1], body[index]
    swapped = "thr_" + "".join(body)
    if swapped == text:
        return
    with pytest.raises(TextFormError):
        parse_id(swapped)


@given(text=st.text(max_size=80))
def test_any_text_parses_or_raises_text_form_error(text: str) -> None:
    try:
        raw = parse_id(text)
    except TextFormError as error:
        failure: P2PCommentsError = error
    else:
        assert len(raw) == 32
        return
    assert isinstance(failure, ValueError)
    assert failure.reason == "bad-text-form"
    assert failure.http_status == 400
