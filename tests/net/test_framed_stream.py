"""FramedStream against an in-memory stand-in for a libp2p stream: framing, limits, deadlines."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio
from libp2p.network.stream.exceptions import StreamEOF, StreamReset

from p2pcomments.net.errors import (
    FrameTimeout,
    FrameTooLarge,
    StreamClosedError,
    StreamProtocolError,
)
from p2pcomments.net.streams import FramedStream, encode_frame


@dataclass
class _PeerId:
    def to_base58(self) -> str:
        return "12D3KooWfake"


@dataclass
class _Conn:
    peer_id: _PeerId = field(default_factory=_PeerId)


class FakeStream:
    """Delivers `incoming` in the given chunks, then EOF (or hangs when `hang`)."""

    def __init__(self, chunks: list[bytes], *, hang: bool = False, stall_writes: bool = False):
        self.chunks = list(chunks)
        self.hang = hang
        self.stall_writes = stall_writes
        self.written = bytearray()
        self.closed = False
        self.was_reset = False
        self.muxed_conn = _Conn()

    def get_protocol(self) -> str:
        return "/test/1"

    async def read(self, n: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        if self.was_reset:
            raise StreamReset()
        if not self.chunks:
            if self.hang:
                await trio.sleep_forever()
            raise StreamEOF()
        chunk = self.chunks.pop(0)
        if n is not None and len(chunk) > n:
            chunk, rest = chunk[:n], chunk[n:]
            self.chunks.insert(0, rest)
        return chunk

    async def write(self, data: bytes) -> None:
        if self.stall_writes:
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        self.written += data

    async def close(self) -> None:
        self.closed = True

    async def reset(self) -> None:
        self.was_reset = True


def framed(stream: FakeStream, **options: float) -> FramedStream:
    return FramedStream(stream, **options)  # type: ignore[arg-type]


@pytest.mark.trio
async def test_frames_survive_arbitrary_chunking() -> None:
    payloads = [b"", b"a", b"b" * 127, b"c" * 128, b"d" * 70_000]
    wire = b"".join(encode_frame(p) for p in payloads)
    chunks = [wire[i : i + 3] for i in range(0, 30, 3)] + [wire[30:]]
    stream = framed(FakeStream(chunks))
    assert [await stream.read_frame() for _ in payloads] == payloads
    with pytest.raises(StreamClosedError):
        await stream.read_frame()


@pytest.mark.trio
async def test_write_frame_writes_varint_prefix_and_refuses_oversize() -> None:
    fake = FakeStream([])
    stream = framed(fake, max_frame_size=300)
    await stream.write_frame(b"x" * 300)
    assert bytes(fake.written[:2]) == b"\xac\x02"
    assert len(fake.written) == 302
    with pytest.raises(ValueError):
        await stream.write_frame(b"x" * 301)
    async with stream:
        pass
    assert fake.closed


@pytest.mark.trio
async def test_oversized_frame_resets_before_reading_it() -> None:
    fake = FakeStream([encode_frame(b"x" * 2000)])
    stream = framed(fake, max_frame_size=1000)
    with pytest.raises(FrameTooLarge):
        await stream.read_frame()
    assert fake.was_reset
    assert len(fake.chunks) == 1 or fake.chunks == []  # the body was not consumed as a frame


@pytest.mark.trio
@pytest.mark.parametrize(
    "wire",
    [
        encode_frame(b"abc")[:-1],  # EOF inside the body
        b"\x80",  # EOF inside the length
        b"\x80\x00" + b"x",  # non-minimal length
        b"\xff\xff\xff\xff\x01",  # length prefix over 4 bytes
    ],
)
async def test_broken_framing_is_a_protocol_error_and_resets(wire: bytes) -> None:
    fake = FakeStream([wire])
    with pytest.raises(StreamProtocolError):
        await framed(fake).read_frame()
    assert fake.was_reset


@pytest.mark.trio
async def test_silent_peer_costs_one_deadline() -> None:
    fake = FakeStream([b"\x05ab"], hang=True)
    stream = framed(fake, frame_timeout=0.2)
    start = trio.current_time()
    with pytest.raises(FrameTimeout):
        await stream.read_frame()
    assert trio.current_time() - start < 1.0
    assert fake.was_reset
    with pytest.raises(StreamClosedError):
        await stream.write_frame(b"late")


@pytest.mark.trio
async def test_stalled_write_times_out() -> None:
    fake = FakeStream([], stall_writes=True)
    with pytest.raises(FrameTimeout):
        await framed(fake, frame_timeout=0.2).write_frame(b"x")
    assert fake.was_reset


@pytest.mark.trio
async def test_context_manager_resets_on_error() -> None:
    fake = FakeStream([])
    with pytest.raises(RuntimeError):
        async with framed(fake):
            raise RuntimeError("boom")
    assert fake.was_reset
    assert not fake.closed
