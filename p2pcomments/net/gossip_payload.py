"""The gossip payload: a batch of opaque operations in one GossipSub message (SPEC.md §8.4).

Pure functions, no I/O and no libp2p, so the format can be tested and reused on its own.

Rules (a decoder rejects anything else):

1. The payload is one msgpack array of ``1..MAX_OPS_PER_BATCH`` elements, each a msgpack ``bin``
   (bin 8/16/32) holding one operation's bytes; nothing follows the array.
2. Canonical: every header uses the smallest msgpack form for its length (fixarray/array16/array32,
   bin8/bin16/bin32). Re-encoding the decoded list must give the payload back byte for byte.
3. Sizes: the whole payload is at most ``MAX_PAYLOAD_BYTES`` (512 KiB); no element is empty.
   Senders split larger batches into several payloads (`encode_batches`), keeping order.
4. Message id (SPEC §8.3, `message_id`): SHA-256 of the data; on an inbox topic (SPEC §8.2)
   SHA-256 of the topic (UTF-8), a zero byte and the data, so the copy of a batch sent to an
   author's inbox is not taken for the same batch seen on a site or thread topic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Final

import msgpack

from p2pcomments.core.inbox import INBOX_TOPIC_PREFIX
from p2pcomments.net.errors import GossipPayloadError

__all__ = [
    "MAX_OPS_PER_BATCH",
    "MAX_PAYLOAD_BYTES",
    "batch_op_count",
    "decode_batch",
    "encode_batch",
    "encode_batches",
    "message_id",
]

MAX_PAYLOAD_BYTES: Final = 512 * 1024
MAX_OPS_PER_BATCH: Final = 10_000


def _array_header_size(count: int) -> int:
    if count <= 15:
        return 1
    if count <= 0xFFFF:
        return 3
    return 5


def _bin_size(length: int) -> int:
    if length <= 0xFF:
        return 2 + length
    if length <= 0xFFFF:
        return 3 + length
    return 5 + length


def encode_batch(ops: Sequence[bytes]) -> bytes:
    """Encode ``ops`` as one payload; raises ValueError when it breaks rule 1 or 3."""
    if not ops:
        raise ValueError("a batch holds at least one operation")
    if len(ops) > MAX_OPS_PER_BATCH:
        raise ValueError(f"a batch holds at most {MAX_OPS_PER_BATCH} operations")
    if any(not isinstance(op, bytes) or not op for op in ops):
        raise ValueError("operations must be non-empty bytes")
    payload: bytes = msgpack.packb(list(ops), use_bin_type=True)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"batch payload is {len(payload)} bytes, over {MAX_PAYLOAD_BYTES}")
    return payload


def encode_batches(
    ops: Sequence[bytes],
    *,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    max_ops: int = MAX_OPS_PER_BATCH,
) -> Iterator[bytes]:
    """Split ``ops`` in order into as few payloads as fit ``max_payload_bytes`` and ``max_ops``.

    Raises ValueError for an operation that can't fit a payload on its own (a caller's mistake:
    operation size limits are far below the payload limit).
    """
    if not 0 < max_payload_bytes <= MAX_PAYLOAD_BYTES:
        raise ValueError(f"max_payload_bytes must be in 1..{MAX_PAYLOAD_BYTES}")
    if not 0 < max_ops <= MAX_OPS_PER_BATCH:
        raise ValueError(f"max_ops must be in 1..{MAX_OPS_PER_BATCH}")
    chunk: list[bytes] = []
    body = 0  # encoded size of the elements in `chunk`
    for op in ops:
        if not isinstance(op, bytes) or not op:
            raise ValueError("operations must be non-empty bytes")
        size = _bin_size(len(op))
        if _array_header_size(1) + size > max_payload_bytes:
            raise ValueError(f"an operation of {len(op)} bytes can't fit one gossip payload")
        full = len(chunk) >= max_ops
        if chunk and (full or _array_header_size(len(chunk) + 1) + body + size > max_payload_bytes):
            yield encode_batch(chunk)
            chunk, body = [], 0
        chunk.append(op)
        body += size
    if chunk:
        yield encode_batch(chunk)


def batch_op_count(payload: bytes) -> int | None:
    """Read only the array header: the number of operations a payload claims, or None.

    Cheap enough for a rate-limit gate that runs before full validation.
    """
    if not payload:
        return None
    first = payload[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F
    if first == 0xDC and len(payload) >= 3:
        return int.from_bytes(payload[1:3], "big")
    if first == 0xDD and len(payload) >= 5:
        return int.from_bytes(payload[1:5], "big")
    return None


def decode_batch(payload: bytes) -> list[bytes]:
    """Decode one payload into its operations; raises GossipPayloadError for any rule broken."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise GossipPayloadError(f"payload is {len(payload)} bytes, over {MAX_PAYLOAD_BYTES}")
    count = batch_op_count(payload)
    if count is None or not 1 <= count <= MAX_OPS_PER_BATCH:
        raise GossipPayloadError("payload is not an array of 1..10000 elements")
    try:
        ops = msgpack.unpackb(
            payload,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=MAX_PAYLOAD_BYTES,
            max_str_len=0,
            max_array_len=MAX_OPS_PER_BATCH,
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as error:
        raise GossipPayloadError(f"payload is not msgpack: {error}") from None
    if not isinstance(ops, list) or not all(isinstance(op, bytes) and op for op in ops):
        raise GossipPayloadError("payload is not an array of non-empty bin elements")
    if msgpack.packb(ops, use_bin_type=True) != payload:
        raise GossipPayloadError("payload is not in canonical msgpack form")
    return ops


def message_id(topics: Sequence[str], data: bytes) -> bytes:
    """The GossipSub message id of ``data`` published on ``topics`` (rule 4; a message of ours
    has one topic)."""
    if len(topics) == 1 and topics[0].startswith(INBOX_TOPIC_PREFIX):
        return hashlib.sha256(topics[0].encode("utf-8") + b"\x00" + data).digest()
    return hashlib.sha256(data).digest()
