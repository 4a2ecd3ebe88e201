"""The author key file: creation, mode, passphrase, export and import."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from p2pcomments.errors import (
    ConflictError,
    IdentityFileError,
    IdentityMissing,
    PassphraseError,
)
from p2pcomments.identity import (
    KdfStrength,
    change_passphrase,
    create_identity,
    default_data_dir,
    export_identity,
    import_identity,
    key_file,
    load_identity,
    read_public_key,
)


def test_a_new_key_is_private_to_its_owner_and_loads_back(tmp_path: Path) -> None:
    created = create_identity(tmp_path / "a")
    assert stat.S_IMODE(key_file(tmp_path / "a").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    loaded = load_identity(tmp_path / "a")
    assert loaded.public_key == created.public_key
    assert bytes(loaded.signing_key) == bytes(created.signing_key)
    assert not loaded.encrypted
    assert str(loaded).startswith("key_")
    assert "signing_key" not in repr(loaded)
    with pytest.raises(ConflictError):
        create_identity(tmp_path / "a")


def test_an_encrypted_key_opens_only_with_its_passphrase(tmp_path: Path) -> None:
    created = create_identity(tmp_path, passphrase="s3cret ✓", strength=KdfStrength.INTERACTIVE)
    raw = key_file(tmp_path).read_bytes()
    assert bytes(created.signing_key) not in raw
    assert read_public_key(tmp_path) == created.public_key  # no passphrase needed for this
    with pytest.raises(PassphraseError, match="wrong passphrase") as caught:
        load_identity(tmp_path, passphrase="s3cret")
    assert caught.value.http_status == 401
    with pytest.raises(PassphraseError) as caught:
        load_identity(tmp_path)
    assert caught.value.reason == "passphrase-required"
    loaded = load_identity(tmp_path, passphrase="s3cret ✓")
    assert loaded.encrypted
    assert loaded.public_key == created.public_key
    change_passphrase(tmp_path, old="s3cret ✓", new=None)
    assert not load_identity(tmp_path).encrypted
    change_passphrase(tmp_path, old=None, new="e\u0301")  # é decomposed
    assert load_identity(tmp_path, passphrase="\u00e9").public_key == created.public_key


def test_export_and_import_move_a_key_and_refuse_to_overwrite_another(tmp_path: Path) -> None:
    original = create_identity(tmp_path / "laptop", passphrase="pw")
    armoured = export_identity(tmp_path / "laptop")
    assert armoured.startswith("-----BEGIN P2PCOMMENTS AUTHOR KEY-----\n")
    assert f"Key: {original}" in armoured
    assert "Encrypted: yes" in armoured

    assert import_identity(tmp_path / "desktop", armoured) == original.public_key
    assert load_identity(tmp_path / "desktop", passphrase="pw").public_key == original.public_key
    assert import_identity(tmp_path / "desktop", armoured) == original.public_key  # same: no-op

    other = create_identity(tmp_path / "phone")
    with pytest.raises(ConflictError, match="different author key"):
        import_identity(tmp_path / "phone", armoured)
    assert read_public_key(tmp_path / "phone") == other.public_key
    import_identity(tmp_path / "phone", armoured, force=True)
    assert read_public_key(tmp_path / "phone") == original.public_key
    assert stat.S_IMODE(key_file(tmp_path / "phone").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "-----BEGIN P2PCOMMENTS AUTHOR KEY-----\n!!!\n-----END P2PCOMMENTS AUTHOR KEY-----",
        "-----BEGIN P2PCOMMENTS AUTHOR KEY-----\naGVsbG8=\n-----END P2PCOMMENTS AUTHOR KEY-----",
    ],
)
def test_damaged_exports_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(IdentityFileError):
        import_identity(tmp_path, text)
    assert not key_file(tmp_path).exists()


def test_damaged_key_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(IdentityMissing):
        load_identity(tmp_path)
    create_identity(tmp_path)
    path = key_file(tmp_path)
    good = path.read_bytes()
    for damaged in [b"", b"not a key", good[:20], good[:-1] + bytes([good[-1] ^ 1])]:
        path.write_bytes(damaged)
        with pytest.raises(IdentityFileError):
            load_identity(tmp_path)


def test_the_default_data_dir_follows_p2pc_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("P2PC_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("P2PC_HOME")
    assert default_data_dir().name == "p2pcomments"
