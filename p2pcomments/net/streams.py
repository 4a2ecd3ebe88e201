"""Length-prefixed frames over a libp2p stream, for request/response protocols such as sync.

The reconciliation logic is not here (it is a sans-IO session in ``core``); this is the transport
it plugs into: `FramedStream` reads and writes whole frames with timeouts, `serve_framed` registers
a handler for incoming streams, `open_framed_stream` opens one to a peer.

Rules:

1. A frame is an unsigned LEB128 varint length (minimal encoding, at most 4 bytes) followed by that
   many bytes. Zero-length frames are allowed. This is the ``uvarint``-prefixed framing of libp2p
   (js ``it-length-prefixed``, go ``msgio/protoio``).
2. A frame longer than ``max_frame_size`` is refused before it is read: the stream is reset and
   `FrameTooLarge` raised. Writing one is a caller's mistake (ValueError).
3. Every read and write has a deadline (``frame_timeout`` seconds for the whole frame): a silent
   peer costs at most that long; on expiry the stream is reset and `FrameTimeout` raised.
4. End of stream between frames raises `StreamClosedError` (the normal end of a session); inside a
   frame it is a `StreamProtocolError` and the stream is reset.
5. `serve_framed` allows ``max_streams_per_peer`` concurrent streams per peer for a protocol; more
   are reset at once. A handler's `NetError` (the peer's fault) is logged at debug level; any other
   exception is logged as a bug. Either way the stream is reset and nothing reaches libp2p.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Final, Self

import trio
from libp2p.abc import INetStream
from libp2p.network.stream.exceptions import StreamEOF, StreamError

from p2pcomments.core.sync_protocol import PROTOCOL_ID
from p2pcomments.net.errors import (
    ConfigError,
    FrameTimeout,
    FrameTooLarge,
    NetError,
    StreamClosedError,
    StreamProtocolError,
)
from p2pcomments.net.host import P2PHost

__all__ = [
    "DEFAULT_FRAME_TIMEOUT",
    "DEFAULT_MAX_FRAME_SIZE",
    "SYNC_PROTOCOL",
    "FramedHandler",
    "FramedStream",
    "encode_frame",
    "open_framed_stream",
    "serve_framed",
]

logger = logging.getLogger(__name__)

SYNC_PROTOCOL: Final = PROTOCOL_ID
DEFAULT_MAX_FRAME_SIZE: Final = 1024 * 1024
DEFAULT_FRAME_TIMEOUT: Final = 30.0
_MAX_VARINT_BYTES: Final = 4  # 2**28 - 1 bytes: far above any frame limit we accept
_READ_CHUNK: Final = 64 * 1024


def encode_frame(payload: bytes) -> bytes:
    """The bytes of one frame (rule 1)."""
    length = len(payload)
    header = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            header.append(byte | 0x80)
        else:
            header.append(byte)
            break
    if len(header) > _MAX_VARINT_BYTES:
        raise ValueError("frame too large to encode")
    return bytes(header) + payload


class FramedStream:
    """Whole frames over one libp2p stream (rules 1-4). Not safe for concurrent readers."""

    def __init__(
        self,
        stream: INetStream,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        frame_timeout: float = DEFAULT_FRAME_TIMEOUT,
    ) -> None:
        if not 0 < max_frame_size < 2 ** (7 * _MAX_VARINT_BYTES):
            raise ConfigError("max_frame_size out of range")
        if frame_timeout <= 0:
            raise ConfigError("frame_timeout must be positive")
        self._stream = stream
        self.max_frame_size = max_frame_size
        self.frame_timeout = frame_timeout
        self._buffer = bytearray()
        self._eof = False
        self._reset = False
        self.peer_id: str = stream.muxed_conn.peer_id.to_base58()
        self.protocol: str = str(stream.get_protocol() or "")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.close()
        else:
            await self.reset()

    # -- reading ----------------------------------------------------------------------------

    async def read_frame(self) -> bytes:
        """The next frame's payload. Raises FrameTooLarge, FrameTimeout, StreamClosedError or
        StreamProtocolError (rules 2-4)."""
        with trio.move_on_after(self.frame_timeout) as scope:
            length = await self._read_length()
            if length > self.max_frame_size:
                await self.reset()
                raise FrameTooLarge(
                    f"{self.peer_id} sent a {length}-byte frame; the limit is {self.max_frame_size}"
                )
            if not await self._fill(length):
                await self.reset()
                raise StreamProtocolError(f"{self.peer_id} ended the stream inside a frame")
            payload = bytes(self._buffer[:length])
            del self._buffer[:length]
            return payload
        assert scope.cancelled_caught
        await self.reset()
        raise FrameTimeout(f"no frame from {self.peer_id} within the deadline")

    async def _read_length(self) -> int:
        value = 0
        for index in range(_MAX_VARINT_BYTES):
            if not await self._fill(index + 1):
                if index == 0:
                    raise StreamClosedError(f"{self.peer_id} closed the stream")
                await self.reset()
                raise StreamProtocolError(f"{self.peer_id} ended the stream inside a frame")
            byte = self._buffer[index]
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                if byte == 0 and index > 0:
                    await self.reset()
                    raise StreamProtocolError(f"{self.peer_id} sent a non-minimal length")
                del self._buffer[: index + 1]
                return value
        await self.reset()
        raise StreamProtocolError(f"{self.peer_id} sent a length prefix over 4 bytes")

    async def _fill(self, size: int) -> bool:
        """Read until ``size`` bytes are buffered; False at end of stream."""
        while len(self._buffer) < size:
            if self._eof:
                return False
            if self._reset:
                raise StreamClosedError("the stream was reset")
            want = max(size - len(self._buffer), _READ_CHUNK)
            try:
                chunk = await self._stream.read(want)
            except StreamEOF:
                self._eof = True
                continue
            except StreamError as error:
                self._reset = True
                raise StreamClosedError(f"stream with {self.peer_id} failed: {error!r}") from error
            if not chunk:
                self._eof = True
                continue
            self._buffer += chunk
        return True

    # -- writing ----------------------------------------------------------------------------

    async def write_frame(self, payload: bytes) -> None:
        """Send one frame. ValueError when larger than ``max_frame_size``; FrameTimeout or
        StreamClosedError when it can't be sent."""
        if len(payload) > self.max_frame_size:
            raise ValueError(f"a {len(payload)}-byte frame exceeds {self.max_frame_size}")
        if self._reset:
            raise StreamClosedError("the stream was reset")
        data = encode_frame(payload)
        with trio.move_on_after(self.frame_timeout) as scope:
            try:
                await self._stream.write(data)
            except StreamError as error:
                self._reset = True
                raise StreamClosedError(f"can't write to {self.peer_id}: {error!r}") from error
            return
        assert scope.cancelled_caught
        await self.reset()
        raise FrameTimeout(f"{self.peer_id} did not take our frame within the deadline")

    # -- ending -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Half-close: we send no more frames; the peer may still send its remaining ones."""
        if self._reset:
            return
        with trio.move_on_after(self.frame_timeout):
            try:
                await self._stream.close()
            except Exception:
                logger.debug("closing the stream with %s failed", self.peer_id, exc_info=True)
                await self.reset()

    async def reset(self) -> None:
        """Abort the stream in both directions. Idempotent, never raises."""
        if self._reset:
            return
        self._reset = True
        with trio.move_on_after(self.frame_timeout):
            try:
                await self._stream.reset()
            except Exception:
                logger.debug("resetting the stream with %s failed", self.peer_id, exc_info=True)


FramedHandler = Callable[[FramedStream], Awaitable[None]]


def serve_framed(
    host: P2PHost,
    protocol: str,
    handler: FramedHandler,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    frame_timeout: float = DEFAULT_FRAME_TIMEOUT,
    max_streams_per_peer: int = 4,
) -> None:
    """Serve ``protocol`` on ``host``: each incoming stream is handed to ``handler`` (rule 5).

    When ``handler`` returns, our side of the stream is closed.
    """
    if max_streams_per_peer < 1:
        raise ConfigError("max_streams_per_peer must be >= 1")
    active: Counter[str] = Counter()

    async def on_stream(stream: INetStream) -> None:
        framed = FramedStream(stream, max_frame_size=max_frame_size, frame_timeout=frame_timeout)
        peer_id = framed.peer_id
        if active[peer_id] >= max_streams_per_peer:
            logger.info("%s opened too many %s streams; resetting one", peer_id, protocol)
            await framed.reset()
            return
        active[peer_id] += 1
        try:
            await handler(framed)
        except NetError as error:
            logger.debug("%s session with %s ended: %r", protocol, peer_id, error)
            await framed.reset()
        except Exception:
            logger.exception("%s handler failed for %s", protocol, peer_id)
            await framed.reset()
        else:
            await framed.close()
        finally:
            active[peer_id] -= 1
            if active[peer_id] <= 0:
                del active[peer_id]

    host.set_stream_handler(protocol, on_stream)


@asynccontextmanager
async def open_framed_stream(
    host: P2PHost,
    peer_id: str,
    protocol: str = SYNC_PROTOCOL,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    frame_timeout: float = DEFAULT_FRAME_TIMEOUT,
) -> AsyncIterator[FramedStream]:
    """Open ``protocol`` to ``peer_id``; closed on exit, reset if the body raised.

    Raises PeerBanned or DialError when the stream can't be opened.
    """
    stream = await host.new_stream(peer_id, [protocol])
    framed = FramedStream(stream, max_frame_size=max_frame_size, frame_timeout=frame_timeout)
    async with framed:
        yield framed
