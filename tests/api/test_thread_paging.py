"""Paging the thread list (api.thread_paging): walking the pages of any size gives every thread
once, in the list's order, also when threads are added or move up between two pages; cursors
and limits that are not ones are refused with what is wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcomments.api.errors import BadRequest
from p2pcomments.api.thread_paging import MAX_LIMIT, cursor_of, page_of, read_cursor, read_limit
from p2pcomments.node.values import ThreadSummary


def _summary(thread_id: bytes, last_activity_ms: int) -> ThreadSummary:
    return ThreadSummary(
        id=thread_id,
        title="",
        url=None,
        site=None,
        owner=b"\x01" * 32,
        owner_name=None,
        comment_count=0,
        last_activity_ms=last_activity_ms,
        closed=False,
        timestamp_ms=0,
    )


def _ordered(summaries: list[ThreadSummary]) -> list[ThreadSummary]:
    return sorted(summaries, key=lambda s: (s.last_activity_ms, s.id), reverse=True)


_threads = st.dictionaries(
    st.binary(min_size=32, max_size=32), st.integers(0, 50), max_size=40
).map(lambda found: _ordered([_summary(i, ms) for i, ms in found.items()]))


def _walk(listed: list[ThreadSummary], limit: int) -> list[ThreadSummary]:
    seen: list[ThreadSummary] = []
    after = None
    for _ in range(len(listed) + 2):
        shown, cursor = page_of(listed, limit=limit, after=after)
        assert len(shown) <= limit
        seen += shown
        if cursor is None:
            return seen
        assert cursor == cursor_of(shown[-1])
        after = read_cursor(cursor)
    raise AssertionError("the walk did not end")


@given(_threads, st.integers(1, 12))
def test_the_pages_hold_every_thread_once_in_order(listed: list[ThreadSummary], limit: int) -> None:
    assert _walk(listed, limit) == listed
    assert page_of(listed, limit=None, after=None) == (listed, None)


@given(_threads, st.integers(1, 12), st.data())
def test_threads_changing_between_pages_shift_nothing(
    listed: list[ThreadSummary], limit: int, data: st.DataObject
) -> None:
    # The first page is shown; then new threads arrive and some move up (new activity).
    first, cursor = page_of(listed, limit=limit, after=None)
    if cursor is None:
        return
    moved = set(data.draw(st.sets(st.sampled_from([s.id for s in listed]))))
    added = [_summary(bytes([255]) * 31 + bytes([n]), 100 + n) for n in range(3)]
    now = _ordered(added + [_summary(s.id, 90) if s.id in moved else s for s in listed])
    rest: list[ThreadSummary] = []
    after = read_cursor(cursor)
    while True:
        shown, cursor = page_of(now, limit=limit, after=after)
        rest += shown
        if cursor is None:
            break
        after = read_cursor(cursor)
    # Nothing shown twice; every thread that stayed in place after the first page is seen.
    shown_ids = [s.id for s in first] + [s.id for s in rest]
    assert len(shown_ids) == len(set(shown_ids))
    stayed = [s for s in listed[len(first) :] if s.id not in moved]
    assert stayed == [s for s in rest if s.id not in moved]


def test_a_cursor_and_a_limit_that_are_not_ones_are_refused() -> None:
    thread = _summary(b"\x07" * 32, 1_700_000_000_000)
    assert read_cursor(cursor_of(thread)) == (1_700_000_000_000, b"\x07" * 32)
    assert read_limit("1") == 1
    assert read_limit(str(MAX_LIMIT)) == MAX_LIMIT
    for text in ("", "12", "x.thr_abc", "-1.thr_abc", "12.cmt_" + "a" * 56, "١٢." + "x"):
        with pytest.raises(BadRequest) as refused:
            read_cursor(text)
        assert refused.value.reason == "bad-parameter"
        assert "after" in refused.value.message
    for text in ("0", str(MAX_LIMIT + 1), "ten", "-3", "²", ""):
        with pytest.raises(BadRequest, match="limit must be a whole number from 1 to 1000"):
            read_limit(text)
