"""The one exception tree of p2pcomments.

Every error the package raises on purpose derives from `P2PCommentsError`. Leaves also subclass the
builtin they resemble (so `except ValueError` keeps working for callers who don't know us), carry a
stable machine-readable `reason` code, and an HTTP status the API layer uses as-is.

A peer's fault is data, not an exception: code that handles network input turns these errors into
`Rejected` outcomes and penalties. They are raised at the caller only for the caller's own mistakes.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuthorizationError",
    "ConflictError",
    "DecodeError",
    "DiskFull",
    "IdentityFileError",
    "IdentityMissing",
    "InvalidOperation",
    "NotFound",
    "OperationRefused",
    "OperationRefusedNotAuthorized",
    "P2PCommentsError",
    "PageUrlError",
    "PassphraseError",
    "StoreError",
    "TextFormError",
]


class P2PCommentsError(Exception):
    """Root of every error p2pcomments raises on purpose."""

    http_status: ClassVar[int] = 500
    default_reason: ClassVar[str] = "internal"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason

    def to_dict(self) -> dict[str, str]:
        """The JSON error body the API and `--json` CLI output use."""
        return {"code": self.reason, "message": self.message}


class InvalidOperation(P2PCommentsError, ValueError):
    """An operation breaks a validity rule (the spec's reason code says which)."""

    http_status = 422
    default_reason = "invalid"


class DecodeError(InvalidOperation):
    """Bytes that are not one canonical, well-formed, size-bounded operation."""

    default_reason = "malformed"


class AuthorizationError(InvalidOperation):
    """A well-formed operation whose author may not do what it asks (edit another's comment...)."""

    http_status = 403
    default_reason = "not-authorized"


class OperationRefused(InvalidOperation):
    """A submitted operation (`Node.submit_operations`) refused as gossip would refuse it:
    ``reason`` is the spec's reason code, ``index`` its place in what was submitted."""

    def __init__(self, message: str, *, reason: str, index: int) -> None:
        super().__init__(message, reason=reason)
        self.index = index

    def to_dict(self) -> dict[str, str | int]:  # type: ignore[override]
        return {"code": self.reason, "message": self.message, "index": self.index}


class OperationRefusedNotAuthorized(OperationRefused, AuthorizationError):
    """`OperationRefused` for ``not-author``, ``not-owner`` or ``not-moderator``."""

    http_status = 403


class TextFormError(P2PCommentsError, ValueError):
    """A key or id typed by a person that does not parse (typo, wrong kind, bad checksum)."""

    http_status = 400
    default_reason = "bad-text-form"


class PageUrlError(P2PCommentsError, ValueError):
    """A URL that can't name a web page's thread (protocol/SPEC.md §10.1).

    ``reason`` is ``not-a-url``, ``unsupported-scheme``, ``no-host``, ``bad-host``, ``bad-port``,
    ``bad-character`` or ``too-long``.
    """

    http_status = 400
    default_reason = "not-a-url"


class NotFound(P2PCommentsError, LookupError):
    """The thread, comment or operation asked for is not known here."""

    http_status = 404
    default_reason = "not-found"


class ConflictError(P2PCommentsError, RuntimeError):
    """The request cannot proceed in the current state (another daemon owns the data dir...)."""

    http_status = 409
    default_reason = "conflict"


class StoreError(P2PCommentsError, OSError):
    """The data dir or its database cannot be used (corrupt, foreign, newer schema, locked)."""

    http_status = 500
    default_reason = "store"


class DiskFull(StoreError):
    """The disk holding the data dir is full: the write was not stored, nothing of it is half
    there (SQLite rolls the transaction back); it can succeed once there is space again."""

    http_status = 507
    default_reason = "disk-full"


class IdentityMissing(P2PCommentsError, FileNotFoundError):
    """The data dir has no author key yet (`p2pc init` creates one)."""

    http_status = 409
    default_reason = "no-identity"


class PassphraseError(P2PCommentsError, PermissionError):
    """The author key is encrypted and no passphrase, or the wrong one, was given.

    ``reason`` is ``passphrase-required`` or ``wrong-passphrase``.
    """

    http_status = 401
    default_reason = "wrong-passphrase"


class IdentityFileError(P2PCommentsError, ValueError):
    """An author key file or exported key blob that is damaged or not one of ours."""

    http_status = 422
    default_reason = "bad-key-file"
