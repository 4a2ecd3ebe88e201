"""The operation store on real SQLite files: writes, group commit, reads, views, integrity."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pcomments.core.ops import CommentPayload, Operation, ThreadPayload, make_operation
from p2pcomments.core.thread_state import ThreadListing
from p2pcomments.errors import DiskFull, StoreError
from p2pcomments.store import op_store
from p2pcomments.store.op_store import OpState, OpStore, ThreadActivity, WriteBatch

from .conftest import AUTHOR, thread_with_comments


def _applied(ops: list[Operation]) -> WriteBatch:
    return WriteBatch(insert=[(op, OpState.APPLIED) for op in ops])


def test_written_operations_are_read_back_after_reopen(
    open_store: Callable[[], OpStore],
) -> None:
    ops = thread_with_comments(5)
    store = open_store()
    store.write_blocking(_applied(ops[:4]))
    store.write_blocking(WriteBatch(insert=[(ops[5], OpState.PENDING)]))
    store.close()

    store = open_store()
    assert list(store.iter_operations()) == [
        *((op.encoded, OpState.APPLIED) for op in ops[:4]),
        (ops[5].encoded, OpState.PENDING),
    ]
    assert store.count() == 5
    assert store.count(OpState.APPLIED) == 4
    assert store.count(OpState.PENDING) == 1
    assert store.fetch_raw([ops[5].id, ops[4].id, ops[0].id]) == {
        ops[5].id: ops[5].encoded,
        ops[0].id: ops[0].encoded,
    }
    assert store.integrity_check() == []


def test_promote_and_discard_pending_rows_and_keep_the_view_exact(
    open_store: Callable[[], OpStore],
) -> None:
    ops = thread_with_comments(3)
    thread = ops[0]
    store = open_store()
    store.write_blocking(
        WriteBatch(
            insert=[
                (ops[0], OpState.APPLIED),
                (ops[2], OpState.PENDING),
                (ops[3], OpState.PENDING),
            ]
        )
    )
    assert store.thread_activity() == [
        ThreadActivity(thread=thread.id, operations=1, last_activity_ms=thread.timestamp_ms)
    ]
    store.write_blocking(
        WriteBatch(insert=[(ops[1], OpState.APPLIED)], promote=[ops[2]], discard=[ops[3].id])
    )
    assert store.count(OpState.APPLIED) == 3
    assert store.count(OpState.PENDING) == 0
    assert store.thread_activity() == [
        ThreadActivity(thread=thread.id, operations=3, last_activity_ms=ops[2].timestamp_ms)
    ]
    # The same operation written again (two identical local writes) is stored and counted once.
    store.write_blocking(_applied([ops[1], ops[2]]))
    assert store.count() == 3
    assert store.thread_activity()[0].operations == 3
    assert store.integrity_check() == []


def test_views_are_checked_and_rebuilt_from_the_operations(
    db_path: Path, open_store: Callable[[], OpStore]
) -> None:
    store = open_store()
    store.write_blocking(_applied(thread_with_comments(4, title="a")))
    store.write_blocking(_applied(thread_with_comments(2, start_ms=5_000, title="b")))
    expected = store.thread_activity()
    assert [row.operations for row in expected] == [3, 5]  # most recently active first

    vandal = sqlite3.connect(db_path)
    vandal.execute("UPDATE thread_activity SET operations = 99")
    vandal.execute("INSERT INTO thread_activity VALUES (x'00', 1, 1)")
    vandal.commit()
    vandal.close()
    problems = store.integrity_check()
    assert len(problems) == 1
    assert "rebuild the views" in problems[0]

    store.rebuild_views()
    assert store.thread_activity() == expected
    assert store.integrity_check() == []


def test_reconciliation_keys_are_sorted_bounded_and_paged(
    open_store: Callable[[], OpStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(op_store, "_KEY_PAGE", 3)
    first = thread_with_comments(6, start_ms=100, title="a")
    second = thread_with_comments(6, start_ms=103, title="b")  # timestamps interleave and tie
    pending = thread_with_comments(1, start_ms=50, title="c")
    store = open_store()
    store.write_blocking(_applied(first + second))
    store.write_blocking(WriteBatch(insert=[(pending[0], OpState.PENDING)]))
    everything = sorted((op.timestamp_ms, op.id) for op in first + second)
    assert list(store.iter_applied_keys()) == everything  # pending ones excluded
    start, stop = everything[2], everything[9]
    assert list(store.iter_applied_keys(start=start)) == everything[2:]
    assert list(store.iter_applied_keys(stop=stop)) == everything[:9]
    assert list(store.iter_applied_keys(start=start, stop=stop)) == everything[2:9]
    assert list(store.iter_applied_keys(start=stop, stop=start)) == []


def test_fetch_raw_handles_more_ids_than_one_query_takes(
    open_store: Callable[[], OpStore],
) -> None:
    ops = thread_with_comments(1200)
    store = open_store()
    store.write_blocking(_applied(ops))
    wanted = [op.id for op in ops] + [b"\x01" * 32]
    found = store.fetch_raw(wanted)
    assert found == {op.id: op.encoded for op in ops}


def test_ids_between_finds_a_range_of_ids_through_the_index(
    open_store: Callable[[], OpStore],
) -> None:
    ops = thread_with_comments(200)
    store = open_store()
    store.write_blocking(_applied(ops[:-1]))
    store.write_blocking(WriteBatch(insert=[(ops[-1], OpState.PENDING)]))
    by_id = sorted(ops, key=lambda op: op.id)
    low, high = by_id[10].id, by_id[20].id
    found = store.ids_between(low, high, limit=100)
    assert [op_id for op_id, _, _ in found] == [op.id for op in by_id[10:20]]
    assert all(kind == int(op.kind) for (_, kind, _), op in zip(found, by_id[10:20], strict=True))
    assert len(store.ids_between(low, high, limit=3)) == 3
    everything = store.ids_between(bytes(32), None, limit=1000)
    assert len(everything) == len(ops)
    assert {op_id: state for op_id, _, state in everything}[ops[-1].id] is OpState.PENDING
    assert store.ids_between(b"\xff" * 32, None, limit=10) == []


@pytest.mark.trio
async def test_concurrent_writers_share_commits_and_each_is_acknowledged(
    open_store: Callable[[], OpStore],
) -> None:
    ops = thread_with_comments(199)
    store = open_store()
    await store.write(_applied(ops[:1]))
    async with trio.open_nursery() as nursery:
        for op in ops[1:]:
            nursery.start_soon(store.write, _applied([op]))
    statistics = store.statistics()
    assert statistics.jobs == 200
    assert statistics.commits < 100  # group commit: far fewer transactions than writers
    assert store.count(OpState.APPLIED) == 200


@pytest.mark.trio
async def test_a_stream_of_jobs_shares_one_transaction_until_its_last_part(
    open_store: Callable[[], OpStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(op_store, "FOLLOW_SECONDS", 30.0)  # the wait must not decide the test
    ops = thread_with_comments(5)
    store = open_store()
    tickets = [store.enqueue(_applied(ops[:2]), more_follows=True)]
    await trio.sleep(0.05)  # the writer holds the open transaction for the next part
    assert not tickets[0].committed
    assert store.count() == 0  # nothing is visible (or acknowledged) before the commit
    tickets.append(store.enqueue(_applied(ops[2:4]), more_follows=True))
    tickets.append(store.enqueue(_applied(ops[4:])))  # the last part: commit now
    with trio.fail_after(10):
        for ticket in tickets:
            await ticket.wait()
    assert store.statistics().commits == 1
    assert store.statistics().jobs == 3
    assert store.count(OpState.APPLIED) == 6
    assert store.integrity_check() == []


@pytest.mark.trio
async def test_a_job_of_another_caller_commits_an_open_stream_at_once(
    open_store: Callable[[], OpStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(op_store, "FOLLOW_SECONDS", 30.0)
    ops = thread_with_comments(2)
    store = open_store()
    stream = store.enqueue(_applied(ops[:2]), more_follows=True)
    with trio.fail_after(10):  # not the 30 s a stream waits for its next part
        await store.write(_applied(ops[2:]))
        await stream.wait()
    assert store.statistics().commits == 1
    assert store.count(OpState.APPLIED) == 3


@pytest.mark.trio
async def test_a_stream_whose_next_part_never_comes_is_committed_after_the_wait(
    open_store: Callable[[], OpStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(op_store, "FOLLOW_SECONDS", 0.05)
    ops = thread_with_comments(1)
    store = open_store()
    with trio.fail_after(10):
        await store.enqueue(_applied(ops), more_follows=True).wait()
    assert store.count(OpState.APPLIED) == 2


@pytest.mark.trio
async def test_a_stream_is_committed_in_parts_of_at_most_max_rows(
    open_store: Callable[[], OpStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(op_store, "FOLLOW_SECONDS", 30.0)
    monkeypatch.setattr(op_store, "MAX_ROWS_PER_COMMIT", 4)
    ops = thread_with_comments(11)
    store = open_store()
    parts = [ops[offset : offset + 2] for offset in range(0, len(ops), 2)]
    tickets = [
        store.enqueue(_applied(part), more_follows=index + 1 < len(parts))
        for index, part in enumerate(parts)
    ]
    with trio.fail_after(10):
        for ticket in tickets:
            await ticket.wait()
    assert store.statistics().commits == 3  # 4 + 4 + 4 rows
    assert store.count(OpState.APPLIED) == 12


def test_close_commits_an_open_stream_and_stops(
    open_store: Callable[[], OpStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(op_store, "FOLLOW_SECONDS", 30.0)
    ops = thread_with_comments(1)
    store = open_store()
    results: list[BaseException | None] = []
    store._submit_job(
        op_store._Job(
            lambda c: op_store._apply_batch(c, _applied(ops)), results.append, 2, more_follows=True
        )
    )
    store.close()  # the stop sentinel ends the wait for the stream's next part
    assert results == [None]
    assert open_store().count() == 2


def test_a_failing_job_does_not_undo_the_others_in_its_commit(
    open_store: Callable[[], OpStore],
) -> None:
    ops = thread_with_comments(2)
    store = open_store()
    gate = threading.Event()
    results: dict[str, BaseException | None] = {}

    def hold(connection: sqlite3.Connection) -> None:
        gate.wait(5)

    def fail(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO ops (id) VALUES (NULL)")  # violates NOT NULL

    def record(name: str) -> Callable[[BaseException | None], None]:
        return lambda error: results.__setitem__(name, error)

    store._submit(hold, record("hold"))  # keeps the writer busy while the others queue up
    store._submit(lambda c: op_store._apply_batch(c, _applied(ops[:1])), record("before"))
    store._submit(fail, record("fail"))
    store._submit(lambda c: op_store._apply_batch(c, _applied(ops[1:])), record("after"))
    gate.set()
    store.close()  # commits what is queued first
    assert results["before"] is None
    assert results["after"] is None
    assert isinstance(results["fail"], StoreError)
    assert str(store.path) in str(results["fail"])
    assert open_store().count() == 3


def test_keys_a_rolled_back_job_added_are_not_used_by_the_next(
    open_store: Callable[[], OpStore],
) -> None:
    # The writer keeps the keys of thread and author ids; one a failed job added is gone with
    # its savepoint, so a later job with that thread or author must add it again.
    ops = thread_with_comments(2)
    store = open_store()
    results: list[BaseException | None] = []

    def add_then_fail(connection: sqlite3.Connection) -> None:
        op_store._apply_batch(connection, _applied(ops[:1]), store._key_cache)
        raise sqlite3.OperationalError("failed after its keys were added")

    store._submit(add_then_fail, results.append)
    store.close()
    store = open_store()
    store._submit(add_then_fail, results.append)  # in a transaction of its own, then the next
    store.write_blocking(_applied(ops))
    assert [type(result) for result in results] == [StoreError, StoreError]
    assert store.thread_raw(ops[0].id) == [op.encoded for op in ops]
    assert store.threads_with_author(ops[1].author) == [ops[0].id]
    assert store.integrity_check() == []


def test_many_new_authors_in_one_job_each_get_their_own_key(
    open_store: Callable[[], OpStore],
) -> None:
    # A sync from a blog of many commenters: most operations of a job bring an author the
    # store has not met; their keys are added in parts (more of them than one part holds,
    # `op_store._FETCH_CHUNK`), beside authors it holds already and, after a reopen, authors it
    # holds but has not cached.
    threads = [
        make_operation(AUTHOR, ThreadPayload(title=f"T{index}"), timestamp_ms=1_000 + index)
        for index in range(2)
    ]
    authors = [SigningKey(index.to_bytes(4, "big") * 8) for index in range(1, 1_202)]

    def comment(author: SigningKey, thread: Operation) -> Operation:
        return make_operation(
            author,
            CommentPayload(body="hi"),
            timestamp_ms=2_000,
            thread=thread.id,
            refs=(thread.id,),
        )

    store = open_store()
    store.write_blocking(_applied([*threads, *(comment(key, threads[0]) for key in authors)]))
    store.close()
    store = open_store()
    store.write_blocking(_applied([comment(key, threads[1]) for key in authors[::3]]))
    for index, key in enumerate(authors):
        wanted = {threads[0].id, threads[1].id} if index % 3 == 0 else {threads[0].id}
        assert set(store.threads_with_author(bytes(key.verify_key))) == wanted
    assert store.integrity_check() == []


def test_reads_do_not_block_writes(db_path: Path, open_store: Callable[[], OpStore]) -> None:
    ops = thread_with_comments(3)
    store = open_store()
    store.write_blocking(_applied(ops[:1]))
    reader = sqlite3.connect(db_path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM ops").fetchone()[0] == 1
        store.write_blocking(_applied(ops[1:]))  # commits while the snapshot is open
        assert reader.execute("SELECT count(*) FROM ops").fetchone()[0] == 1  # its snapshot
        assert store.count() == 4
        reader.execute("COMMIT")
    finally:
        reader.close()


def test_a_closed_store_refuses_work(open_store: Callable[[], OpStore]) -> None:
    store = open_store()
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.write_blocking(_applied(thread_with_comments(0)))
    with pytest.raises(StoreError, match="closed"):
        store.count()


# -- damage on disk (found by scripts/fuzz_boundaries.py, the data-dir boundary) ----------------


def test_rows_damaged_on_disk_are_skipped_not_served(
    db_path: Path, open_store: Callable[[], OpStore]
) -> None:
    """SQLite has no checksums: a row whose bytes no longer hash to its id, or whose state is
    no state, is not what was verified and stored. Loading skips it (before: the flipped bytes
    were loaded and served, and a bad state raised ValueError out of `open_node`)."""
    ops = thread_with_comments(3)
    store = open_store()
    store.write_blocking(_applied(ops))
    store.close()
    flipped = bytearray(ops[1].encoded)
    flipped[20] ^= 0x01
    with sqlite3.connect(db_path) as connection:
        connection.execute("UPDATE ops SET raw = ? WHERE id = ?", (bytes(flipped), ops[1].id))
        connection.execute("PRAGMA ignore_check_constraints = ON")
        connection.execute("UPDATE ops SET state = 7 WHERE id = ?", (ops[2].id,))
    store = open_store()
    assert list(store.iter_operations()) == [
        (ops[0].encoded, OpState.APPLIED),
        (ops[3].encoded, OpState.APPLIED),
    ]
    store.close()


def test_a_schema_damaged_into_invalid_utf8_is_a_store_error(
    db_path: Path, open_store: Callable[[], OpStore]
) -> None:
    """SQLite's error message names the damaged schema entry; when its bytes are not UTF-8,
    Python's sqlite3 raised UnicodeDecodeError instead of the error (before the fix)."""
    open_store().close()
    with sqlite3.connect(db_path) as connection:
        connection.execute("PRAGMA writable_schema = ON")
        connection.execute(
            "UPDATE sqlite_master SET name = CAST(X'69F728' AS TEXT),"
            " sql = CAST(X'435245415445204944582069F728' AS TEXT) WHERE type = 'index'"
        )
    with pytest.raises(StoreError, match="not a usable p2pcomments database"):
        open_store()


@pytest.mark.parametrize(("offset", "value"), [(8181, 130), (35195, 185), (32785, 81)])
def test_a_damaged_table_is_read_to_an_end_or_refused(
    db_path: Path, open_store: Callable[[], OpStore], offset: int, value: int
) -> None:
    """Found by the fuzzing campaign: one damaged byte (these, for this SQLite and these
    operations) makes the table return rows out of order, and loading asked for the same page
    again forever (opening the node hung). Now it ends, or says the table is damaged."""
    ops = thread_with_comments(40)
    store = open_store()
    store.write_blocking(_applied(ops))
    store.close()
    data = bytearray(db_path.read_bytes())
    data[offset] = value
    db_path.write_bytes(bytes(data))
    try:
        store = open_store()
    except StoreError:
        return
    read = 0
    try:
        for _ in store.iter_operations():
            read += 1
            assert read <= len(ops), "the same rows again: loading would never end"
    except StoreError as error:
        reason = error.reason
    else:
        reason = "read to the end"
    finally:
        store.close()
    assert reason in ("corrupt-database", "store", "read to the end")


def test_a_full_database_is_disk_full_and_stores_nothing_of_the_batch(
    open_store: Callable[[], OpStore],
) -> None:
    """SQLITE_FULL (here from ``max_page_count``, the same error a full disk gives) reaches the
    caller as `DiskFull` (HTTP 507), the whole batch is rolled back, and writing works again once
    there is room (the fault campaign's full tmpfs, in miniature)."""
    ops = thread_with_comments(300)
    store = open_store()
    store.write_blocking(_applied(ops[:1]))
    pages = store._writer.execute("PRAGMA page_count").fetchone()[0]  # the writer's own pragma
    store._writer.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(DiskFull, match="the disk is full") as raised:
        store.write_blocking(_applied(ops[1:]))
    assert raised.value.http_status == 507
    assert raised.value.reason == "disk-full"
    assert store.count() == 1
    store._writer.execute("PRAGMA max_page_count = 1073741823")
    store.write_blocking(_applied(ops[1:]))
    assert store.count() == 301
    assert store.integrity_check() == []


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=40, deadline=None)
@given(
    title=_TEXT,
    url=st.none() | _TEXT,
    site=st.none() | _TEXT,
    comments=st.integers(0, 2**40),
    closed=st.booleans(),
    has_rules=st.booleans(),
    last_ms=st.integers(0, 2**62),
)
def test_a_listing_is_read_back_as_written_while_it_is_current(
    tmp_path_factory: pytest.TempPathFactory,
    title: str,
    url: str | None,
    site: str | None,
    comments: int,
    closed: bool,
    has_rules: bool,
    last_ms: int,
) -> None:
    """`store.views` rule 3: a ``thread_listings`` row comes back field for field while
    ``thread_activity`` counts as many operations as it was made from, and not otherwise."""
    ops = thread_with_comments(2)
    listing = ThreadListing(
        id=ops[0].id,
        title=title,
        url=url,
        site=site,
        owner=ops[0].author,
        comment_count=comments,
        last_activity_ms=last_ms,
        closed=closed,
        has_rules=has_rules,
        timestamp_ms=ops[0].timestamp_ms,
        operations=2,
    )
    with OpStore.open(tmp_path_factory.mktemp("listing") / "ops.sqlite3") as store:
        store.write_blocking(
            WriteBatch(insert=[(op, OpState.APPLIED) for op in ops[:2]], listings=[listing])
        )
        assert store.thread_listings() == {ops[0].id: listing}
        assert store.threads_without_listing() == []
        store.write_blocking(_applied(ops[2:]))  # a third operation, the row made from two
        assert store.thread_listings() == {}
        assert store.threads_without_listing() == [ops[0].id]
        made_again = dataclasses.replace(listing, operations=3)
        store.write_blocking(WriteBatch(listings=[made_again]))
        assert store.thread_listings() == {ops[0].id: made_again}
        store.rebuild_views()
        assert store.thread_listings() == {}
        assert store.integrity_check() == []


def test_rows_are_sealed_as_written_and_seal_stamps_only_the_bytes_checked(
    db_path: Path, open_store: Callable[[], OpStore]
) -> None:
    """Rule 6: a written row holds the CRC-32 of its bytes and reads as sealed; a row whose
    checksum is gone (stored before schema 4) or no longer matches reads as unsealed until
    `seal` stamps it, and `seal` stamps nothing where the row holds other bytes."""
    ops = thread_with_comments(3)
    store = open_store()
    store.write_blocking(_applied(ops))
    rows = store.thread_rows(ops[0].id)
    assert [(row.id, row.raw, row.sealed) for row in rows] == [
        (op.id, op.encoded, True) for op in ops
    ]
    with sqlite3.connect(db_path) as connection:
        stored = connection.execute("SELECT raw, checksum FROM ops ORDER BY seq").fetchall()
        assert [checksum for _, checksum in stored] == [
            op_store.raw_checksum(raw) for raw, _ in stored
        ]
        connection.execute("UPDATE ops SET checksum = NULL WHERE id = ?", (ops[1].id,))
        connection.execute("UPDATE ops SET checksum = checksum + 1 WHERE id = ?", (ops[2].id,))
    assert [row.sealed for row in store.thread_rows(ops[0].id)] == [True, False, False, True]
    other = bytearray(ops[2].encoded)
    other[-5] ^= 0x01  # not the bytes stored: nothing is stamped
    store.seal([(ops[1].id, ops[1].encoded), (ops[2].id, bytes(other))])
    store.write_blocking(WriteBatch())  # a barrier: the seal is committed before it
    assert [row.sealed for row in store.thread_rows(ops[0].id)] == [True, True, False, True]
    store.close()
    store.seal([(ops[2].id, ops[2].encoded)])  # closed: best effort, no error
