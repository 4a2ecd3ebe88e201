"""Schema versions and migrations; files that are not ours are refused, untouched."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from p2pcomments.errors import StoreError
from p2pcomments.store.op_store import OpStore
from p2pcomments.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, migrate


def _pragma(path: Path, name: str) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        connection.close()


def test_an_empty_file_is_migrated_to_the_current_version(
    db_path: Path, open_store: Callable[[], OpStore]
) -> None:
    db_path.touch()  # version 0, no tables: what sqlite3 makes of an empty file
    open_store().close()
    assert _pragma(db_path, "user_version") == SCHEMA_VERSION == len(MIGRATIONS)
    assert _pragma(db_path, "application_id") == APPLICATION_ID
    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    finally:
        connection.close()
    assert {"ops", "thread_activity", "ops_applied_by_time"} <= tables
    open_store().close()  # reopening a current file changes nothing
    assert _pragma(db_path, "user_version") == SCHEMA_VERSION


def test_migrations_run_in_order_once_each(tmp_path: Path) -> None:
    path = tmp_path / "steps.sqlite3"
    steps = [
        [
            "CREATE TABLE log (step INTEGER)",
            "INSERT INTO log VALUES (1)",
            f"PRAGMA application_id = {APPLICATION_ID}",
        ],
        ["INSERT INTO log VALUES (2)"],
        ["INSERT INTO log VALUES (3)"],
    ]
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(connection, path, steps[:1]) == 0
        assert migrate(connection, path, steps) == 1
        assert migrate(connection, path, steps) == 3  # nothing left to do
        assert [row[0] for row in connection.execute("SELECT step FROM log")] == [1, 2, 3]
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 3
    finally:
        connection.close()


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite3"
    steps = [
        ["CREATE TABLE a (x)", f"PRAGMA application_id = {APPLICATION_ID}"],
        ["CREATE TABLE b (x)", "THIS IS NOT SQL"],
    ]
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError):
            migrate(connection, path, steps)
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 1
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert names == {"a"}
    finally:
        connection.close()


def test_a_newer_schema_is_refused_with_a_clear_error(
    db_path: Path, open_store: Callable[[], OpStore]
) -> None:
    open_store().close()
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(StoreError) as caught:
        open_store()
    message = str(caught.value)
    assert str(db_path) in message
    assert "newer" in message
    assert "upgrade p2pcomments" in message
    assert caught.value.reason == "schema-too-new"


@pytest.mark.parametrize("version", [-1, -5, -(2**31)])
def test_a_negative_schema_version_is_damage_not_a_migration(
    db_path: Path, open_store: Callable[[], OpStore], version: int
) -> None:
    """Found by scripts/fuzz_boundaries.py: a damaged header read as a negative version, and
    migrating indexed the migrations with it (IndexError, or a migration run again)."""
    open_store().close()
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {version}")
    connection.close()
    with pytest.raises(StoreError, match="damaged") as caught:
        open_store()
    assert caught.value.reason == "corrupt-database"


@pytest.mark.parametrize("kind", ["random-bytes", "other-app-tables", "other-app-id", "text"])
def test_files_that_are_not_ours_are_refused_untouched(
    db_path: Path, open_store: Callable[[], OpStore], kind: str
) -> None:
    if kind == "random-bytes":
        db_path.write_bytes(os.urandom(4096))
    elif kind == "text":
        db_path.write_text("just some notes\n" * 100)
    else:
        connection = sqlite3.connect(db_path)
        connection.execute("CREATE TABLE notes (body TEXT)")
        if kind == "other-app-id":
            connection.execute("PRAGMA application_id = 1234")
            connection.execute("PRAGMA user_version = 1")
        connection.commit()
        connection.close()
    before = db_path.read_bytes()
    with pytest.raises(StoreError) as caught:
        open_store()
    assert str(db_path) in str(caught.value)
    assert db_path.read_bytes() == before
    assert not Path(f"{db_path}-wal").exists()
