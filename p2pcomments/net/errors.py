"""Errors of the networking layer, leaves of the package's one exception tree.

A remote peer's misbehaviour reaches callers as one of these only where the caller asked for the
I/O (reading a frame from a stream it owns); in gossip and stream handlers it becomes a log line and
a strike against the peer instead.
"""

from __future__ import annotations

from p2pcomments.errors import P2PCommentsError

__all__ = [
    "ConfigError",
    "DialError",
    "FrameTimeout",
    "FrameTooLarge",
    "GossipPayloadError",
    "NetError",
    "PeerBanned",
    "StreamClosedError",
    "StreamProtocolError",
]


class NetError(P2PCommentsError):
    """Root of the networking errors."""

    http_status = 502
    default_reason = "network"


class ConfigError(P2PCommentsError, ValueError):
    """``config.json`` or a network option is unusable (the caller's mistake, not the network's)."""

    http_status = 400
    default_reason = "bad-config"


class DialError(NetError, ConnectionError):
    """A peer could not be reached (bad address, refused, timed out, handshake failed)."""

    default_reason = "dial-failed"


class PeerBanned(NetError, PermissionError):
    """The peer is on the ban list; it is neither dialled nor accepted until the ban ends."""

    http_status = 403
    default_reason = "peer-banned"


class GossipPayloadError(NetError, ValueError):
    """Bytes that are not one canonical gossip batch payload (protocol/SPEC.md §8.4)."""

    http_status = 400
    default_reason = "bad-gossip-payload"


class StreamProtocolError(NetError, ValueError):
    """A peer broke the framing of a stream (truncated frame, malformed length prefix)."""

    default_reason = "stream-protocol"


class FrameTooLarge(StreamProtocolError):
    """A frame is larger than the stream's limit; the stream has been reset."""

    default_reason = "frame-too-large"


class FrameTimeout(NetError, TimeoutError):
    """A frame did not arrive (or could not be sent) in time; the stream has been reset."""

    http_status = 504
    default_reason = "stream-timeout"


class StreamClosedError(NetError, ConnectionError):
    """The stream ended: the peer closed it cleanly between frames, or it was reset."""

    default_reason = "stream-closed"
