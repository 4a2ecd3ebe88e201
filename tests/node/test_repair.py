"""``repair_data_dir``: every kind of damage found, explained with a count, and fixed where it can
be (node/maintenance.py rules 2-5). The data dirs are damaged with sqlite3 directly, the way a
disk damages them, since no p2pcomments API can store a bad row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio
from nacl.signing import SigningKey

from p2pcomments.api.bundle import decode_bundle
from p2pcomments.core.ops import EditPayload, decode_operation, make_operation
from p2pcomments.node import open_node
from p2pcomments.node.maintenance import RepairReport, repair_data_dir
from p2pcomments.store.data_dir import database_path
from p2pcomments.store.views import ACTIVITY_OF_OPS


async def _fill(data_dir: Path) -> list[bytes]:
    """A thread with two comments and a reply; their ids in the order they were stored."""
    async with open_node(data_dir, create_identity=True) as node:
        thread = await node.create_thread("Repair me", url="https://blog.example/r")
        first = await node.comment(thread.id, "first")
        await node.comment(thread.id, "second")
        await node.reply(first.id, "a reply")
        return [bytes(op) for op in node.export_operations()]


async def _served(data_dir: Path) -> list[bytes]:
    async with open_node(data_dir) as node:
        return list(node.export_operations())


def _rows(data_dir: Path) -> list[tuple[int, bytes, bytes, int]]:
    connection = sqlite3.connect(database_path(data_dir))
    try:
        return connection.execute("SELECT seq, id, raw, state FROM ops ORDER BY seq").fetchall()
    finally:
        connection.close()  # the last connection gone, SQLite removes the log


def _update(data_dir: Path, sql: str, *params: object) -> None:
    connection = sqlite3.connect(database_path(data_dir))
    with connection:
        connection.execute(sql, params)
    connection.close()


def _finding(report: RepairReport, kind: str) -> str:
    lines = [f.line() for f in report.findings if f.kind == kind]
    assert len(lines) == 1, report.findings
    return lines[0]


def test_a_sound_data_dir_has_nothing_to_report(data_dir: Path) -> None:
    trio.run(_fill, data_dir)
    report = repair_data_dir(data_dir)
    assert report.rows_checked == 4
    assert report.findings == ()
    assert report.problems == report.problems_after == ()
    assert report.quarantine is None


def test_a_damaged_signature_is_found_saved_and_removed(data_dir: Path) -> None:
    """A flipped bit inside the 64 signature bytes, which the id does not cover: loading its
    thread checks the signature and leaves the row out (`core.replica` rule 7); repair finds
    it, saves it and takes it out of the store."""
    trio.run(_fill, data_dir)
    seq, op_id, raw, _ = _rows(data_dir)[3]  # the reply: nothing references it
    damaged = raw[:-1] + bytes([raw[-1] ^ 0x01])
    _update(data_dir, "UPDATE ops SET raw = ? WHERE seq = ?", damaged, seq)
    served = trio.run(_served, data_dir)
    assert damaged not in served  # its thread loaded without it, so it is not served
    assert len(served) == 3

    dry = repair_data_dir(data_dir, dry_run=True)
    assert dry.bad_signatures == 1
    assert dry.quarantine is None
    assert "would be saved" in _finding(dry, "bad-signature")
    assert len(_rows(data_dir)) == 4  # a dry run changes nothing

    report = repair_data_dir(data_dir)
    line = _finding(report, "bad-signature")
    assert line.startswith("1 stored operation(s) have a signature that no longer verifies")
    assert "removed" in line
    assert report.problems
    assert report.problems_after == ()
    assert report.rebuilt_views
    assert report.quarantine is not None
    assert decode_bundle(report.quarantine.read_bytes()) == [damaged]  # rule 3: saved first
    assert op_id not in {row[1] for row in _rows(data_dir)}
    served = trio.run(_served, data_dir)
    assert len(served) == 3
    for data in served:
        decode_operation(data)  # every signature verifies
    assert repair_data_dir(data_dir).findings == ()


def test_rows_that_no_longer_decode_are_removed_and_their_replies_wait(data_dir: Path) -> None:
    trio.run(_fill, data_dir)
    rows = _rows(data_dir)
    seq, _, raw, _ = rows[1]  # the first comment, which the reply references
    _update(data_dir, "UPDATE ops SET raw = ? WHERE seq = ?", raw[:40] + b"\x00" + raw[41:], seq)
    _update(data_dir, "UPDATE ops SET raw = ? WHERE seq = ?", b"junk", rows[2][0])
    report = repair_data_dir(data_dir)
    line = _finding(report, "undecodable")
    assert line.startswith("2 stored row(s) no longer decode (")
    assert "(2 with bytes that no longer hash to their id)" in line
    assert "the reply" not in line
    waiting = _finding(report, "waiting")
    assert waiting.startswith("1 operation(s) reference operations this store no longer holds")
    assert report.problems_after == ()
    assert len(_rows(data_dir)) == 2


def test_pending_rows_that_now_apply_are_marked_applied(data_dir: Path) -> None:
    """A stop between an operation's commit and the commit releasing its dependants."""
    trio.run(_fill, data_dir)
    reply_seq = _rows(data_dir)[3][0]
    _update(data_dir, "UPDATE ops SET state = 1 WHERE seq = ?", reply_seq)
    _update(data_dir, "DELETE FROM thread_activity")  # a pending row is not counted in it
    _update(
        data_dir,
        "INSERT INTO thread_activity" + ACTIVITY_OF_OPS,
    )
    report = repair_data_dir(data_dir)
    assert _finding(report, "released-pending").startswith(
        "1 operation(s) stored as pending have everything they reference"
    )
    assert report.problems == ()  # worth knowing, not damage
    assert _rows(data_dir)[3][3] == 0


def test_rejected_rows_are_removed_and_valid_ones_kept(data_dir: Path) -> None:
    """A row that decodes and verifies but that the rules refuse (an edit of someone else's
    comment, as a bug or a hand-edited file could store), beside comments that only wait (their
    thread's row was lost): the first is removed, the others kept."""
    trio.run(_fill, data_dir)
    rows = _rows(data_dir)
    thread, first = decode_operation(rows[0][2]), decode_operation(rows[1][2])
    forged = make_operation(
        SigningKey(b"\x07" * 32),
        EditPayload(body="not yours"),
        timestamp_ms=first.timestamp_ms + 5,
        thread=thread.id,
        refs=(first.id,),
    )
    _update(
        data_dir,
        "INSERT INTO ops (id, raw, thread, kind, author, timestamp_ms, state)"
        " VALUES (?, ?, ?, ?, ?, ?, 0)",
        forged.id,
        forged.encoded,
        thread.id,
        int(forged.kind),
        forged.author,
        forged.timestamp_ms,
    )
    report = repair_data_dir(data_dir)
    line = _finding(report, "rejected")
    assert line.startswith("1 stored operation(s) are now rejected (1 ")
    assert report.quarantine is not None
    assert decode_bundle(report.quarantine.read_bytes()) == [forged.encoded]
    assert [row[1] for row in _rows(data_dir)] == [row[1] for row in rows]


def test_a_damaged_author_key_is_reported_and_left(data_dir: Path) -> None:
    trio.run(_fill, data_dir)
    (data_dir / "author.key").write_bytes(b"{garbled")
    report = repair_data_dir(data_dir)
    line = _finding(report, "author-key")
    assert line.startswith("the author key is damaged")
    assert "p2pc key import" in line
    assert report.problems_after  # repair can't make a key: it stays a problem


def test_a_left_over_log_is_folded_and_a_garbled_one_explained(data_dir: Path) -> None:
    trio.run(_fill, data_dir)
    wal = Path(f"{database_path(data_dir)}-wal")
    wal.write_bytes(b"\x37\x7f\x06\x82" + b"\xaa" * 4092)
    report = repair_data_dir(data_dir)
    line = _finding(report, "wal")
    assert line.startswith("a write-ahead log of 4,096 bytes was left behind, 4,096 bytes of it")
    assert "0 valid frame(s) folded" in line
    assert report.problems == ()
    assert report.rows_checked == 4  # nothing that was committed is lost


def test_a_view_that_disagrees_is_rebuilt(data_dir: Path) -> None:
    trio.run(_fill, data_dir)
    _update(data_dir, "UPDATE thread_activity SET operations = 99")
    dry = repair_data_dir(data_dir, dry_run=True)
    assert _finding(dry, "views").endswith(": would be rebuilt")
    assert dry.problems_after
    report = repair_data_dir(data_dir)
    assert _finding(report, "views") == (
        "view thread_activity disagrees with the operations on 1 row(s): rebuilt from the"
        " operations"
    )
    assert report.rebuilt_views
    assert report.problems_after == ()
    assert repair_data_dir(data_dir).findings == ()


def test_a_damaged_database_file_is_rebuilt_from_what_reads(data_dir: Path) -> None:
    """SQLite's own check fails (here the reconciliation index's page is garbage; the table
    still reads): a new file gets every operation, the damaged one is kept beside it."""
    stored = trio.run(_fill, data_dir)
    path = database_path(data_dir)
    connection = sqlite3.connect(path)
    (root,) = connection.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = 'ops_applied_by_time'"
    ).fetchone()
    (page,) = connection.execute("PRAGMA page_size").fetchone()
    connection.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * page + 8 : root * page] = b"\x5a" * (page - 8)
    path.write_bytes(bytes(data))

    report = repair_data_dir(data_dir)
    line = _finding(report, "database-file")
    assert line.startswith("the database file is damaged (")
    assert "rebuilt from the 4 operations that read and verify" in line
    assert report.damaged_file is not None
    assert report.damaged_file.read_bytes() == bytes(data)  # kept as it was found
    assert report.problems_after == ()
    assert sorted(trio.run(_served, data_dir)) == sorted(stored)
    assert repair_data_dir(data_dir).findings == ()
