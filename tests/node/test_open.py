"""Opening a data dir: the lock, the identity, an unusable database."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import CommentPayload, ThreadPayload, make_operation
from p2pcomments.errors import (
    ConflictError,
    IdentityMissing,
    PassphraseError,
    StoreError,
)
from p2pcomments.identity import KdfStrength, create_identity
from p2pcomments.node import open_node
from p2pcomments.store.data_dir import database_path
from p2pcomments.store.op_store import OpState, OpStore, WriteBatch


@pytest.mark.trio
async def test_a_second_opener_is_told_who_holds_the_data_dir(data_dir: Path) -> None:
    async with open_node(data_dir, create_identity=True):
        with pytest.raises(ConflictError) as caught:
            async with open_node(data_dir):
                pass
        message = str(caught.value)
        assert f"pid {os.getpid()}" in message
        assert str(data_dir) in message
        assert caught.value.http_status == 409
    async with open_node(data_dir) as node:  # released on close
        assert node.data_dir == data_dir


@pytest.mark.trio
async def test_no_identity_means_identity_missing_and_nothing_created(data_dir: Path) -> None:
    with pytest.raises(IdentityMissing) as caught:
        async with open_node(data_dir):
            pass
    assert "p2pc init" in str(caught.value)
    assert caught.value.reason == "no-identity"
    assert not database_path(data_dir).exists()
    with pytest.raises(IdentityMissing):  # not ConflictError: the lock was released
        async with open_node(data_dir):
            pass


@pytest.mark.trio
async def test_data_dir_defaults_to_p2pc_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PC_HOME", str(tmp_path / "home"))
    async with open_node(create_identity=True) as node:
        assert node.data_dir == tmp_path / "home"
        assert (tmp_path / "home" / "author.key").exists()


@pytest.mark.trio
async def test_an_encrypted_identity_needs_its_passphrase(data_dir: Path) -> None:
    created = create_identity(
        data_dir, passphrase="correct horse", strength=KdfStrength.INTERACTIVE
    )
    with pytest.raises(PassphraseError) as caught:
        async with open_node(data_dir):
            pass
    assert caught.value.reason == "passphrase-required"
    with pytest.raises(PassphraseError) as caught:
        async with open_node(data_dir, passphrase="wrong horse"):
            pass
    assert caught.value.reason == "wrong-passphrase"
    async with open_node(data_dir, passphrase="correct horse") as node:
        assert node.author == created.public_key


@pytest.mark.trio
@pytest.mark.parametrize("content", ["random", "foreign"])
async def test_an_unusable_database_is_a_store_error_naming_the_file(
    data_dir: Path, content: str
) -> None:
    create_identity(data_dir)
    path = database_path(data_dir)
    if content == "random":
        path.write_bytes(os.urandom(8192))
    else:
        with sqlite3.connect(path) as other_app:
            other_app.execute("CREATE TABLE invoices (number INTEGER, total REAL)")
        other_app.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as caught:
        async with open_node(data_dir):
            pass
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before  # left exactly as it was
    with pytest.raises(StoreError):  # not ConflictError: the lock was released
        async with open_node(data_dir):
            pass


@pytest.mark.trio
async def test_rows_left_pending_by_a_crash_are_marked_applied_on_open(data_dir: Path) -> None:
    key = SigningKey(b"\x01" * 32)
    thread = make_operation(key, ThreadPayload(title="t"), timestamp_ms=1)
    comment = make_operation(
        key,
        CommentPayload(body="c"),
        timestamp_ms=2,
        thread=thread.id,
        refs=(thread.id,),
        deps=(thread.id,),
    )
    create_identity(data_dir)
    # As if the process died after the comment (pending) and its thread were committed, but
    # before the commit that marks the comment applied.
    with OpStore.open(database_path(data_dir)) as store:
        store.write_blocking(
            WriteBatch(insert=[(comment, OpState.PENDING), (thread, OpState.APPLIED)])
        )
    async with open_node(data_dir) as node:
        assert node.statistics().pending == 0
        assert node.store.count(OpState.PENDING) == 0
        assert [key for _, key in node.store.iter_applied_keys()] == [thread.id, comment.id]
        assert node.store.integrity_check() == []


@pytest.mark.trio
async def test_a_data_dir_that_is_a_file_is_the_callers_mistake(tmp_path: Path) -> None:
    """Found by scripts/fuzz_boundaries.py (``p2pc --data-dir FILE``): a StoreError, so the CLI
    said "internal error" (exit 5) for a path the user gave."""
    path = tmp_path / "a-file"
    path.write_text("not a data dir")
    with pytest.raises(ConflictError, match="is a file, not a directory") as caught:
        async with open_node(path, create_identity=True):
            pass
    assert caught.value.reason == "not-a-directory"
    assert path.read_text() == "not a data dir"
