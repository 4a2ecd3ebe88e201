"""Bundles: signed operations in a file, to move threads between nodes without a network.

The format (``p2pc export`` writes it, ``p2pc import`` and ``POST /api/import`` read it):

1. UTF-8 text in JSON Lines: one operation per line, each line a JSON string holding the lowercase
   hexadecimal of the operation's canonical signed bytes, e.g. ``"9801c4…"``. Blank lines are
   ignored; nothing else may appear.
2. Export writes operations in a causal order (each after the operations it references), so a
   reader can apply them in one pass; import accepts any order, since operations whose references
   have not arrived yet wait (pending) until they do.
3. A bundle carries raw operations only: importing verifies every signature and validity rule
   again, exactly as for operations from the network. A bundle can't make a node accept anything a
   peer couldn't send it.

JSON Lines of hex rather than msgpack: a bundle can be read, split, concatenated (``cat a b``) and
diffed with text tools, and sent as an HTTP body without a second encoding; at twice the binary
size it is still small (a 1,000-comment thread is about 0.5 MB).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Final

from p2pcomments.errors import DecodeError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "MAX_BUNDLE_BYTES",
    "decode_bundle",
    "encode_bundle",
    "stream_bundle",
]

BUNDLE_MEDIA_TYPE: Final = "application/x-ndjson"
MAX_BUNDLE_BYTES: Final = 64 * 1024 * 1024


def encode_bundle(operations: Iterable[bytes]) -> bytes:
    """The bundle holding ``operations`` in the order given."""
    return b"".join(b'"' + op.hex().encode("ascii") + b'"\n' for op in operations)


async def stream_bundle(pieces: AsyncIterable[list[bytes]]) -> AsyncIterator[bytes]:
    """`encode_bundle` of the operations of ``pieces``, a piece at a time (an export larger
    than memory; the bundle is their concatenation)."""
    async for piece in pieces:
        if piece:
            yield encode_bundle(piece)


def decode_bundle(data: bytes) -> list[bytes]:
    """The operations' bytes, in file order; `DecodeError` naming the first line that is wrong.

    Only the bundle's own syntax is checked here; each operation is checked when it is ingested.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("a bundle is UTF-8 text", reason="bad-bundle") from None
    operations: list[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if not isinstance(value, str):
            raise DecodeError(
                f"bundle line {number} is not a JSON string of hex digits", reason="bad-bundle"
            )
        try:
            operations.append(bytes.fromhex(value))
        except ValueError:
            raise DecodeError(
                f"bundle line {number} holds characters that are not hex digits",
                reason="bad-bundle",
            ) from None
    return operations
