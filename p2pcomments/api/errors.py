"""Errors of the HTTP edge, leaves of the package's one exception tree.

They name what is wrong with a *request* (its token, size or shape); what is wrong with the
operation it asks for is the Node's to say, with the core's errors.
"""

from __future__ import annotations

from p2pcomments.errors import P2PCommentsError

__all__ = [
    "BadRequest",
    "CannotListen",
    "PayloadTooLarge",
    "Unauthorized",
    "UnprocessableRequest",
    "UnsupportedMediaType",
]


class BadRequest(P2PCommentsError, ValueError):
    """The request body is not JSON, or not a JSON object."""

    http_status = 400
    default_reason = "bad-request"


class Unauthorized(P2PCommentsError, PermissionError):
    """A write without the daemon's API token (``Authorization: Bearer <token>``)."""

    http_status = 401
    default_reason = "unauthorized"


class PayloadTooLarge(P2PCommentsError, ValueError):
    """A request body over the endpoint's size limit."""

    http_status = 413
    default_reason = "too-large"


class UnsupportedMediaType(P2PCommentsError, ValueError):
    """A request body whose ``Content-Type`` the endpoint does not take."""

    http_status = 415
    default_reason = "unsupported-media-type"


class UnprocessableRequest(P2PCommentsError, ValueError):
    """A well-formed JSON body with unknown, missing or mistyped fields."""

    http_status = 422
    default_reason = "bad-field"


class CannotListen(P2PCommentsError, OSError):
    """The daemon can't listen where ``--api`` says (no such local address, no permission...).
    A port already in use is a `ConflictError` (reason ``address-in-use``) instead."""

    http_status = 400
    default_reason = "cannot-listen"
