"""The author key: the Ed25519 key this node signs operations with, kept in the data dir.

Rules:

1. The key file is ``<data_dir>/author.key``, mode 0600, written atomically (temporary file,
   fsync, rename), never left half-written.
2. Its format is the 16-byte magic ``p2pcomments-key\\x00``, a version byte, then one msgpack map.
   Version 1 maps hold ``public`` (32 bytes) and either ``seed`` (32 bytes, in clear) or, when a
   passphrase protects it: ``kdf`` ("argon2id"), ``salt``, ``opslimit``, ``memlimit`` and ``box``
   (the seed sealed with `nacl.secret.SecretBox` under the Argon2id key of the passphrase).
3. The public key is stored in clear, so it can be read without the passphrase; loading checks that
   the seed yields it, so a damaged or tampered file is refused rather than signing as someone else.
4. Passphrases are text, normalised to Unicode NFC before use, so the same words typed on two
   systems open the same file.
5. An export is the key file itself in ASCII armour (base64 between BEGIN/END lines, with the public
   key in a header line). An encrypted key stays encrypted in its export. Importing over a
   *different* existing key is refused unless forced; importing the same key again changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import msgpack
import platformdirs
from nacl.exceptions import CryptoError
from nacl.pwhash import argon2id
from nacl.secret import SecretBox
from nacl.signing import SigningKey
from nacl.utils import random as random_bytes

from p2pcomments.atomic_file import write_atomically
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.errors import (
    ConflictError,
    IdentityFileError,
    IdentityMissing,
    PassphraseError,
    StoreError,
)

__all__ = [
    "KEY_FILE_NAME",
    "AuthorIdentity",
    "KdfStrength",
    "change_passphrase",
    "create_identity",
    "default_data_dir",
    "export_identity",
    "has_identity",
    "import_identity",
    "key_file",
    "load_identity",
    "read_public_key",
    "resolve_data_dir",
]

KEY_FILE_NAME: Final = "author.key"
HOME_ENVIRONMENT_VARIABLE: Final = "P2PC_HOME"

_MAGIC: Final = b"p2pcomments-key\x00"
_VERSION: Final = 1
_ARMOUR_BEGIN: Final = "-----BEGIN P2PCOMMENTS AUTHOR KEY-----"
_ARMOUR_END: Final = "-----END P2PCOMMENTS AUTHOR KEY-----"
_ARMOUR_WIDTH: Final = 64
_MAX_KEY_FILE_BYTES: Final = 4096

_T = TypeVar("_T")


class KdfStrength(enum.Enum):
    """How hard Argon2id works to turn a passphrase into a key (libsodium's levels).

    INTERACTIVE (64 MiB, ~0.1 s here) is the default so that CLI commands stay quick; MODERATE
    (256 MiB, ~1 s) suits a key file that may be copied off a shared machine.
    """

    INTERACTIVE = (argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE)
    MODERATE = (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE)
    SENSITIVE = (argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorIdentity:
    """An unlocked author key."""

    signing_key: SigningKey = field(repr=False)
    public_key: bytes
    encrypted: bool  # whether its file is protected by a passphrase

    def __str__(self) -> str:
        return format_id(TextKind.KEY, self.public_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class _KeyFile:
    """A parsed key file (rule 2); the seed is present only when not encrypted."""

    public_key: bytes
    seed: bytes | None = field(default=None, repr=False)
    salt: bytes = b""
    opslimit: int = 0
    memlimit: int = 0
    box: bytes = field(default=b"", repr=False)

    @property
    def encrypted(self) -> bool:
        return self.seed is None


# -- the data dir ------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """``$P2PC_HOME`` when set, else the platform's per-user data dir for p2pcomments."""
    configured = os.environ.get(HOME_ENVIRONMENT_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("p2pcomments"))


def resolve_data_dir(data_dir: Path | str | None) -> Path:
    return default_data_dir() if data_dir is None else Path(data_dir).expanduser()


def key_file(data_dir: Path) -> Path:
    return data_dir / KEY_FILE_NAME


def has_identity(data_dir: Path) -> bool:
    return key_file(data_dir).exists()


# -- creating and loading ----------------------------------------------------------------------


def create_identity(
    data_dir: Path,
    *,
    passphrase: str | None = None,
    strength: KdfStrength = KdfStrength.INTERACTIVE,
) -> AuthorIdentity:
    """Generate a new author key and write it (rule 1), encrypted when ``passphrase`` is given.

    Raises `ConflictError` if the data dir already has a key: a key is never silently replaced.
    """
    if has_identity(data_dir):
        raise ConflictError(
            f"{key_file(data_dir)} already holds an author key", reason="identity-exists"
        )
    signing_key = SigningKey.generate()
    _write_key_file(data_dir, _seal(signing_key, passphrase, strength), replace=False)
    return AuthorIdentity(
        signing_key=signing_key,
        public_key=bytes(signing_key.verify_key),
        encrypted=passphrase is not None,
    )


def load_identity(data_dir: Path, *, passphrase: str | None = None) -> AuthorIdentity:
    """Read and unlock the author key.

    Raises `IdentityMissing` when there is none, `PassphraseError` when it is encrypted and the
    passphrase is missing (reason ``passphrase-required``) or wrong, `IdentityFileError` when the
    file is damaged. A passphrase given for an unencrypted key is ignored.
    """
    path = key_file(data_dir)
    parsed = _parse_key_file(_read_key_file(path), str(path))
    return _unlock(parsed, passphrase, str(path))


def read_public_key(data_dir: Path) -> bytes:
    """The author's public key, readable without the passphrase (rule 3)."""
    path = key_file(data_dir)
    return _parse_key_file(_read_key_file(path), str(path)).public_key


def change_passphrase(
    data_dir: Path,
    *,
    old: str | None,
    new: str | None,
    strength: KdfStrength = KdfStrength.INTERACTIVE,
) -> None:
    """Re-seal the key under ``new`` (None removes the protection). ``old`` must unlock it."""
    identity = load_identity(data_dir, passphrase=old)
    _write_key_file(data_dir, _seal(identity.signing_key, new, strength), replace=True)


# -- export and import -------------------------------------------------------------------------


def export_identity(data_dir: Path) -> str:
    """The key file as ASCII armour (rule 5), for backups and moving to another machine.

    Treat it like the key itself: unless the key is passphrase-protected, whoever holds the text
    can sign as this author.
    """
    path = key_file(data_dir)
    raw = _read_key_file(path)
    parsed = _parse_key_file(raw, str(path))
    encoded = base64.b64encode(raw).decode("ascii")
    lines = [
        _ARMOUR_BEGIN,
        f"Key: {format_id(TextKind.KEY, parsed.public_key)}",
        f"Encrypted: {'yes' if parsed.encrypted else 'no'}",
        "",
        *(encoded[i : i + _ARMOUR_WIDTH] for i in range(0, len(encoded), _ARMOUR_WIDTH)),
        _ARMOUR_END,
    ]
    return "\n".join(lines) + "\n"


def import_identity(data_dir: Path, armoured: str, *, force: bool = False) -> bytes:
    """Install an exported key in ``data_dir``; returns its public key.

    Refuses (`ConflictError`, reason ``identity-exists``) to replace a different key already there
    unless ``force``; importing the key that is already there is a no-op. Raises
    `IdentityFileError` when the text is not an intact export.
    """
    raw = _dearmour(armoured)
    parsed = _parse_key_file(raw, "the imported key")
    if has_identity(data_dir) and not force:  # forced: even over a damaged key file
        current = read_public_key(data_dir)
        if current == parsed.public_key:
            return current
        raise ConflictError(
            f"{key_file(data_dir)} holds a different author key"
            f" ({format_id(TextKind.KEY, current)}); importing would replace it",
            reason="identity-exists",
        )
    _write_key_file(data_dir, raw, replace=force)
    return parsed.public_key


def _dearmour(armoured: str) -> bytes:
    lines = [line.strip() for line in armoured.strip().splitlines()]
    try:
        begin = lines.index(_ARMOUR_BEGIN)
        end = lines.index(_ARMOUR_END, begin)
    except ValueError:
        raise IdentityFileError(
            f"not an exported author key: expected a block between {_ARMOUR_BEGIN!r} and"
            f" {_ARMOUR_END!r}"
        ) from None
    body = lines[begin + 1 : end]
    # Header lines ("Name: value") run up to the first blank line; the base64 follows.
    if "" in body:
        body = body[body.index("") + 1 :]
    try:
        return base64.b64decode("".join(body), validate=True)
    except (binascii.Error, ValueError):
        raise IdentityFileError("the exported author key is damaged (bad base64)") from None


# -- the file format ---------------------------------------------------------------------------


def _seal(signing_key: SigningKey, passphrase: str | None, strength: KdfStrength) -> bytes:
    public_key = bytes(signing_key.verify_key)
    seed = bytes(signing_key)
    if passphrase is None:
        body: dict[str, Any] = {"public": public_key, "seed": seed}
    else:
        opslimit, memlimit = strength.value
        salt = random_bytes(argon2id.SALTBYTES)
        box = SecretBox(_derive(passphrase, salt, opslimit, memlimit)).encrypt(seed)
        body = {
            "public": public_key,
            "kdf": "argon2id",
            "salt": salt,
            "opslimit": opslimit,
            "memlimit": memlimit,
            "box": bytes(box),
        }
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return _MAGIC + bytes([_VERSION]) + packed


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return bytes(
        argon2id.kdf(SecretBox.KEY_SIZE, secret, salt, opslimit=opslimit, memlimit=memlimit)
    )


def _parse_key_file(raw: bytes, where: str) -> _KeyFile:
    if not raw.startswith(_MAGIC):
        raise IdentityFileError(f"{where} is not a p2pcomments author key file")
    version = raw[len(_MAGIC) : len(_MAGIC) + 1]
    if version != bytes([_VERSION]):
        shown = version[0] if version else "missing"
        raise IdentityFileError(
            f"{where} has key file version {shown}; this p2pcomments reads version {_VERSION}",
            reason="bad-key-file-version",
        )
    try:
        body = msgpack.unpackb(raw[len(_MAGIC) + 1 :], raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException):
        raise IdentityFileError(f"{where} is damaged (its body does not parse)") from None
    if not isinstance(body, dict):
        raise IdentityFileError(f"{where} is damaged (its body is not a map)")
    public_key = _field(body, "public", bytes, where)
    if len(public_key) != 32:
        raise IdentityFileError(f"{where} is damaged (the public key is not 32 bytes)")
    if "seed" in body:
        seed = _field(body, "seed", bytes, where)
        if len(seed) != 32:
            raise IdentityFileError(f"{where} is damaged (the seed is not 32 bytes)")
        return _KeyFile(public_key=public_key, seed=seed)
    if body.get("kdf") != "argon2id":
        raise IdentityFileError(f"{where} uses an unknown key derivation {body.get('kdf')!r}")
    return _KeyFile(
        public_key=public_key,
        salt=_field(body, "salt", bytes, where),
        opslimit=_field(body, "opslimit", int, where),
        memlimit=_field(body, "memlimit", int, where),
        box=_field(body, "box", bytes, where),
    )


def _field(body: dict[str, Any], name: str, kind: type[_T], where: str) -> _T:
    value = body.get(name)
    if type(value) is not kind:
        raise IdentityFileError(f"{where} is damaged (field {name!r} is missing or mistyped)")
    return value


def _unlock(parsed: _KeyFile, passphrase: str | None, where: str) -> AuthorIdentity:
    seed = parsed.seed
    if seed is None:
        if passphrase is None:
            raise PassphraseError(
                f"the author key in {where} is protected by a passphrase; give it to unlock",
                reason="passphrase-required",
            )
        try:
            key = _derive(passphrase, parsed.salt, parsed.opslimit, parsed.memlimit)
            seed = SecretBox(key).decrypt(parsed.box)
        except CryptoError:
            # libsodium can't tell a wrong passphrase from a damaged box; rule 3 catches the
            # rare damaged file that still decrypts.
            raise PassphraseError(
                f"wrong passphrase for the author key in {where}", reason="wrong-passphrase"
            ) from None
        except (ValueError, TypeError):
            raise IdentityFileError(f"{where} has unusable key derivation parameters") from None
    signing_key = SigningKey(seed)
    if bytes(signing_key.verify_key) != parsed.public_key:
        raise IdentityFileError(f"{where} is damaged (its secret does not match its public key)")
    return AuthorIdentity(
        signing_key=signing_key, public_key=parsed.public_key, encrypted=parsed.encrypted
    )


def _read_key_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise IdentityMissing(
            f"no author key in {path.parent}: run `p2pc init` to create one"
        ) from None
    except OSError as error:
        raise StoreError(f"cannot read {path}: {error}") from None
    if len(raw) > _MAX_KEY_FILE_BYTES:
        raise IdentityFileError(f"{path} is too large to be an author key file")
    return raw


def _write_key_file(data_dir: Path, raw: bytes, *, replace: bool) -> None:
    """Rule 1: the new file appears whole, with mode 0600 from its first byte, or not at all.

    Without ``replace``, an existing key file is never overwritten, even by a concurrent
    creator: the file is hard-linked into place, which fails if the name is taken.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = key_file(data_dir)
    try:
        write_atomically(final, raw, replace=replace, sync_directory=True)
    except FileExistsError:
        raise ConflictError(
            f"{final} already holds an author key", reason="identity-exists"
        ) from None
    except OSError as error:
        raise StoreError(f"cannot write {final}: {error}") from None
