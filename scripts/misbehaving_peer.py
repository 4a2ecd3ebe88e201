#!/usr/bin/env python3
"""A misbehaving p2pcomments peer: joins a gossip topic with py-libp2p and sends what an honest
node must neither store nor forward, for the end-to-end tests (tests/e2e) and by hand.

It runs a `P2PHost` (our host helpers: Noise + Yamux, the libp2p workarounds) on its own data dir,
dials the honest node given with ``--connect`` (once: no redial, nothing remembered), joins
``--topic``, then obeys commands, one JSON object per line on stdin, and reports one JSON object per
line on stdout (``event`` names what happened; ``t`` is ``time.time()``):

  {"cmd": "wait_mesh", "seconds": 20}           -> mesh {"peers": [...]}: the honest node grafted us
  {"cmd": "valid", "thread": "thr_…", "body": "…"}
                                                -> published {"kind": "valid", "ids": ["cmt_…"]}
  {"cmd": "forged", "thread": "thr_…", "count": 2}          bad signatures (bit flipped)
  {"cmd": "impersonate", "thread": "thr_…", "victim": "key_…", "comment": "cmt_…"}
                                                author = victim, signed by us (+ an edit of comment)
  {"cmd": "noncanonical", "thread": "thr_…"}    non-minimal ints and headers, non-NFC text
  {"cmd": "oversized", "thread": "thr_…"}       body over 32 KiB; operation over 40 KiB
  {"cmd": "mixed", "thread": "thr_…"}           one valid and one forged op in one message
  {"cmd": "garbage", "count": 3}                payloads that are not batches
  {"cmd": "sync_garbage"}                       junk on the sync stream protocol
  {"cmd": "unauthorised_edit", "thread": "thr_…", "comment": "cmt_…"}
                                                a signed edit of another author's comment
  {"cmd": "unpaid", "thread": "thr_…", "count": 5, "bits": 16}
                                                comments without the proof of work the thread's
                                                rules require (SPEC §11.6), one message each
  {"cmd": "paid", "thread": "thr_…", "bits": 16, "body": "…"}
                                                a comment that pays `bits` (a control)
  {"cmd": "status"}                             -> status {"connected": [...], "mesh": [...], ...}
  {"cmd": "rotate"}                             drop this identity; a fresh one connects again
  {"cmd": "quit"}                               (end of stdin quits too)

Every ``published`` event lists the text ids (where an id exists) and the marker bodies of the
operations sent, so a test can check that none of them is stored anywhere. Bodies of bad operations
all start with ``evil-``.

Example:
  scripts/misbehaving_peer.py --data-dir /tmp/bad --connect /ip4/127.0.0.1/tcp/4737/p2p/12D3… \\
      --topic p2pc/1/site/example.org <<< '{"cmd": "wait_mesh"}
  {"cmd": "garbage", "count": 6}'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import secrets
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack
import trio
from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    OP_SIGNING_DOMAIN,
    PROTOCOL_VERSION,
    CommentPayload,
    EditPayload,
    Kind,
    Operation,
    make_operation,
)
from p2pcomments.core.pow import mine
from p2pcomments.core.rules import leading_zero_bits
from p2pcomments.core.textform import TextKind, format_id, parse_id
from p2pcomments.net.gossip_payload import encode_batch
from p2pcomments.net.host import HostConfig, P2PHost
from p2pcomments.net.streams import SYNC_PROTOCOL, encode_frame

JSON = dict[str, Any]


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")
    sys.stdout.flush()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- bad operations ------------------------------------------------------------------------------


def _thread_id(text: str) -> bytes:
    return parse_id(text, expect=frozenset({TextKind.THREAD}))


def sign_fields(key: SigningKey, fields: Sequence[Any]) -> bytes:
    """Sign ``fields`` (the 8 unsigned fields, whatever they hold) as an honest author would,
    without any of `make_operation`'s checks: the canonical encoding of fields + signature."""
    unsigned = msgpack.packb(tuple(fields), use_bin_type=True)
    op_id = hashlib.sha256(unsigned).digest()
    signature = key.sign(OP_SIGNING_DOMAIN + op_id).signature
    encoded: bytes = msgpack.packb((*fields, signature), use_bin_type=True)
    return encoded


def comment_fields(author: bytes, thread: bytes, body: str) -> list[Any]:
    return [PROTOCOL_VERSION, int(Kind.COMMENT), author, thread, (thread,), (), now_ms(), (body,)]


def valid_comment(thread: bytes, body: str) -> Operation:
    return make_operation(
        SigningKey.generate(),
        CommentPayload(body=body),
        timestamp_ms=now_ms(),
        thread=thread,
        refs=(thread,),
    )


def forged_comment(thread: bytes, body: str) -> tuple[bytes, bytes]:
    """A well-formed comment whose signature has one bit flipped: (bytes, its id)."""
    op = valid_comment(thread, body)
    encoded = bytearray(op.encoded)
    encoded[-1] ^= 0x01  # the last byte of the 64-byte signature
    return bytes(encoded), op.id


def impersonated_comment(thread: bytes, victim: bytes, body: str) -> tuple[bytes, bytes]:
    """A comment claiming ``victim`` as its author, signed by a key of ours."""
    fields = comment_fields(victim, thread, body)
    encoded = sign_fields(SigningKey.generate(), fields)
    op_id = hashlib.sha256(msgpack.packb(tuple(fields), use_bin_type=True)).digest()
    return encoded, op_id


def impersonated_edit(thread: bytes, comment: bytes, victim: bytes, body: str) -> bytes:
    """An edit of ``comment`` claiming ``victim`` as author, signed by a key of ours."""
    fields = [PROTOCOL_VERSION, int(Kind.EDIT), victim, thread, (comment,), (), now_ms(), (body,)]
    return sign_fields(SigningKey.generate(), fields)


def unauthorised_edit(thread: bytes, comment: bytes, body: str) -> Operation:
    """A correctly signed edit of someone else's comment: valid in itself, invalid in context."""
    return make_operation(
        SigningKey.generate(),
        EditPayload(body=body),
        timestamp_ms=now_ms(),
        thread=thread,
        refs=(comment,),
    )


def noncanonical_comments(thread: bytes, marker: str) -> list[bytes]:
    """Correctly signed comments in byte forms the decoder must refuse."""
    key = SigningKey.generate()
    author = bytes(key.verify_key)
    results = []

    # 1. The version as uint8 (0xcc 0x01) instead of a positive fixint; signed over these bytes.
    fields = comment_fields(author, thread, f"{marker}-wide-int")
    body = b"".join(msgpack.packb(f, use_bin_type=True) for f in fields[1:])
    unsigned = b"\x98" + b"\xcc\x01" + body
    op_id = hashlib.sha256(unsigned).digest()
    signature = key.sign(OP_SIGNING_DOMAIN + op_id).signature
    results.append(b"\x99" + b"\xcc\x01" + body + msgpack.packb(signature, use_bin_type=True))

    # 2. The body as str8 (0xd9 len) although it fits a fixstr.
    text = f"{marker}-str8".encode()
    assert len(text) < 32
    head = b"".join(msgpack.packb(f, use_bin_type=True) for f in fields[:7])
    payload = b"\x91" + b"\xd9" + bytes([len(text)]) + text
    unsigned = b"\x98" + head + payload
    op_id = hashlib.sha256(unsigned).digest()
    signature = key.sign(OP_SIGNING_DOMAIN + op_id).signature
    results.append(b"\x99" + head + payload + msgpack.packb(signature, use_bin_type=True))

    # 3. Text not in Unicode NFC ("e" + combining acute), canonical msgpack otherwise.
    decomposed = unicodedata.normalize("NFD", f"{marker}-nfd-\u00e9")
    results.append(sign_fields(key, comment_fields(author, thread, decomposed)))
    return results


def oversized_comments(thread: bytes, marker: str) -> list[tuple[bytes, bytes]]:
    """Correctly signed comments over the size limits: (bytes, id)."""
    key = SigningKey.generate()
    author = bytes(key.verify_key)
    results = []
    for label, size in (("body", 33 * 1024), ("operation", 41 * 1024)):
        text = f"{marker}-{label}-" + "x" * size
        fields = comment_fields(author, thread, text)
        op_id = hashlib.sha256(msgpack.packb(tuple(fields), use_bin_type=True)).digest()
        results.append((sign_fields(key, fields), op_id))
    return results


def garbage_payloads(count: int) -> list[bytes]:
    """Gossip payloads that are not valid batches."""
    shapes: list[bytes] = [
        secrets.token_bytes(200),  # not msgpack
        b"\x90",  # an empty array
        msgpack.packb({"ops": [b"x"]}, use_bin_type=True),  # a map
        b"\xdc\x00\x01\xc4\x03abc",  # array16 for one element: non-canonical
        msgpack.packb(["a string, not bin"], use_bin_type=True),
        msgpack.packb([b"not an operation"], use_bin_type=True),
        b"\x91\xc4\x05ab",  # truncated
    ]
    return [shapes[i % len(shapes)] for i in range(count)]


def sync_garbage_streams() -> list[tuple[str, bytes]]:
    """What to write on fresh sync streams: (label, bytes)."""
    return [
        ("junk-frame", encode_frame(secrets.token_bytes(300))),
        ("msgpack-junk-frame", encode_frame(msgpack.packb([99, "hello", {}], use_bin_type=True))),
        ("oversized-frame-header", bytes([0x80, 0x80, 0x80, 0x01])),  # claims 2 MiB
        ("overlong-varint", b"\xff\xff\xff\xff\xff\xff"),
        ("raw-bytes", secrets.token_bytes(4096)),
    ]


def text_id(op_id: bytes) -> str:
    return format_id(TextKind.COMMENT, op_id)


# -- the peer ------------------------------------------------------------------------------------


class BadPeer:
    def __init__(self, host: P2PHost, topic: str, target: str) -> None:
        self.host = host
        self.topic = topic
        self.target = target  # the honest node's multiaddr
        self.target_peer = target.rsplit("/p2p/", 1)[-1]
        self.received = 0
        self.published = 0

    async def publish(self, payloads: Sequence[bytes]) -> int:
        """Publish raw payloads on the topic; how many calls succeeded."""
        sent = 0
        for data in payloads:
            try:
                await self.host.pubsub.publish(self.topic, data)
                sent += 1
                self.published += 1
            except Exception as error:  # a dropped connection is an outcome here, not a bug
                emit("publish_failed", error=repr(error))
            await trio.sleep(0.05)
        return sent

    async def drain(self, subscription: Any) -> None:
        while True:
            await subscription.get()
            self.received += 1

    def mesh(self) -> list[str]:
        return sorted(p.to_base58() for p in self.host.router.mesh.get(self.topic, ()))

    async def wait_mesh(self, seconds: float) -> None:
        # Polled: py-libp2p signals no event when its router grafts a peer.
        deadline = trio.current_time() + seconds
        for _ in range(int(seconds * 10) + 1):
            if self.target_peer in self.mesh() or trio.current_time() >= deadline:
                break
            await trio.sleep(0.1)
        emit("mesh", peers=self.mesh(), ok=self.target_peer in self.mesh())

    async def sync_garbage(self) -> None:
        results = []
        for label, data in sync_garbage_streams():
            outcome = "sent"
            try:
                stream = await self.host.new_stream(self.target_peer, [SYNC_PROTOCOL])
            except Exception as error:
                results.append({"label": label, "outcome": f"open failed: {error!r}"[:200]})
                continue
            try:
                await stream.write(data)
                with trio.move_on_after(3) as scope:
                    reply = await stream.read(65536)
                    outcome = f"read {len(reply)} bytes" if reply else "closed by peer"
                if scope.cancelled_caught:
                    outcome = "no answer in 3 s"
            except Exception as error:
                outcome = f"reset/closed: {type(error).__name__}"
            finally:
                try:
                    await stream.reset()
                except Exception:
                    logging.debug("reset failed", exc_info=True)
            results.append({"label": label, "outcome": outcome})
        emit("sync_garbage", results=results)

    async def handle(self, command: JSON) -> bool:
        """Run one command; False to stop."""
        name = command.get("cmd")
        thread_text = command.get("thread")
        thread = _thread_id(thread_text) if isinstance(thread_text, str) else None
        if name == "quit":
            return False
        if name == "status":
            emit(
                "status",
                connected=self.host.peers(),
                mesh=self.mesh(),
                received=self.received,
                published=self.published,
            )
        elif name == "wait_mesh":
            await self.wait_mesh(float(command.get("seconds", 20)))
        elif name == "valid" and thread is not None:
            op = valid_comment(thread, str(command.get("body", "a valid comment")))
            sent = await self.publish([encode_batch([op.encoded])])
            emit("published", kind="valid", ids=[text_id(op.id)], bodies=[], sent=sent)
        elif name == "unpaid" and thread is not None:
            bodies = [f"evil-unpaid-{i}" for i in range(int(command.get("count", 5)))]
            bits = int(command.get("bits", 16))
            unpaid = []
            for body in bodies:  # none pays `bits` by chance
                op = valid_comment(thread, body)
                while leading_zero_bits(op.id) >= bits:
                    op = valid_comment(thread, body)
                unpaid.append(op)
            sent = await self.publish([encode_batch([op.encoded]) for op in unpaid])
            emit(
                "published",
                kind="unpaid",
                ids=[text_id(op.id) for op in unpaid],
                bodies=bodies,
                sent=sent,
            )
        elif name == "paid" and thread is not None:
            op = mine(
                SigningKey.generate(),
                CommentPayload(body=str(command.get("body", "a paid comment"))),
                difficulty=int(command.get("bits", 16)),
                timestamp_ms=now_ms(),
                thread=thread,
                refs=(thread,),
            )
            sent = await self.publish([encode_batch([op.encoded])])
            emit("published", kind="paid", ids=[text_id(op.id)], bodies=[], sent=sent)
        elif name == "forged" and thread is not None:
            ops = [
                forged_comment(thread, f"evil-forged-{i}") for i in range(command.get("count", 2))
            ]
            sent = await self.publish([encode_batch([raw]) for raw, _ in ops])
            emit(
                "published",
                kind="forged",
                ids=[text_id(op_id) for _, op_id in ops],
                bodies=[f"evil-forged-{i}" for i in range(len(ops))],
                sent=sent,
            )
        elif name == "impersonate" and thread is not None:
            victim = parse_id(str(command["victim"]), expect=frozenset({TextKind.KEY}))
            raw, op_id = impersonated_comment(thread, victim, "evil-impersonation")
            payloads = [encode_batch([raw])]
            comment_text = command.get("comment")
            if isinstance(comment_text, str):
                comment = parse_id(comment_text, expect=frozenset({TextKind.COMMENT}))
                payloads.append(
                    encode_batch([impersonated_edit(thread, comment, victim, "evil-edit")])
                )
            sent = await self.publish(payloads)
            emit(
                "published",
                kind="impersonate",
                ids=[text_id(op_id)],
                bodies=["evil-impersonation", "evil-edit"],
                sent=sent,
            )
        elif name == "unauthorised_edit" and thread is not None:
            comment = parse_id(str(command["comment"]), expect=frozenset({TextKind.COMMENT}))
            op = unauthorised_edit(thread, comment, "evil-unauthorised-edit")
            sent = await self.publish([encode_batch([op.encoded])])
            emit(
                "published",
                kind="unauthorised_edit",
                ids=[format_id(TextKind.OPERATION, op.id)],
                bodies=["evil-unauthorised-edit"],
                sent=sent,
            )
        elif name == "noncanonical" and thread is not None:
            raws = noncanonical_comments(thread, "evil-noncanonical")
            sent = await self.publish([encode_batch([raw]) for raw in raws])
            emit(
                "published",
                kind="noncanonical",
                ids=[],
                bodies=["evil-noncanonical-wide-int", "evil-noncanonical-str8"],
                sent=sent,
            )
        elif name == "oversized" and thread is not None:
            ops = oversized_comments(thread, "evil-oversized")
            sent = await self.publish([encode_batch([raw]) for raw, _ in ops])
            emit(
                "published",
                kind="oversized",
                ids=[text_id(op_id) for _, op_id in ops],
                bodies=["evil-oversized-body", "evil-oversized-operation"],
                sent=sent,
            )
        elif name == "mixed" and thread is not None:
            good = valid_comment(thread, "evil-mixed-valid")
            bad, bad_id = forged_comment(thread, "evil-mixed-forged")
            sent = await self.publish([encode_batch([good.encoded, bad])])
            emit(
                "published",
                kind="mixed",
                ids=[text_id(good.id), text_id(bad_id)],
                bodies=["evil-mixed-valid", "evil-mixed-forged"],
                sent=sent,
            )
        elif name == "garbage":
            sent = await self.publish(garbage_payloads(int(command.get("count", 3))))
            emit("published", kind="garbage", ids=[], bodies=[], sent=sent)
        elif name == "sync_garbage":
            await self.sync_garbage()
        else:
            emit("error", message=f"unknown or incomplete command: {command!r}")
        return True


async def read_commands(send: trio.MemorySendChannel[JSON]) -> None:
    """Lines of stdin, parsed in a worker thread; the channel closes at end of input."""
    async with send:
        while True:
            # trio-typing's stale stubs (a libp2p dependency) predate ``abandon_on_cancel``.
            line = await trio.to_thread.run_sync(  # type: ignore[call-arg]
                sys.stdin.readline, abandon_on_cancel=True
            )
            if not line:
                return
            line = line.strip()
            if not line:
                continue
            try:
                command = json.loads(line)
            except ValueError:
                emit("error", message=f"not JSON: {line[:200]}")
                continue
            if isinstance(command, dict):
                await send.send(command)


async def run_identity(
    data_dir: Path, args: argparse.Namespace, commands: trio.MemoryReceiveChannel[JSON]
) -> bool:
    """One libp2p identity: connect, join the topic, obey commands until ``rotate`` (True: go on
    with a fresh identity) or ``quit``/end of input (False)."""
    host = P2PHost(HostConfig(data_dir=data_dir, listen_addrs=(args.listen,), remember_peers=False))
    keep_going = False
    async with trio.open_nursery() as nursery:
        await nursery.start(host.run)
        emit("listening", peer_id=host.peer_id, multiaddrs=host.multiaddrs())
        peer = BadPeer(host, args.topic, args.connect)
        try:
            connected = await host.connect(args.connect, remember=False)
        except Exception as error:
            emit("error", message=f"can't connect: {error!r}"[:500])
        else:
            emit("connected", peer_id=connected)
            subscription = await host.pubsub.subscribe(args.topic)
            nursery.start_soon(peer.drain, subscription)
        async for command in commands:
            if command.get("cmd") == "rotate":
                keep_going = True
                break
            if not await peer.handle(command):
                break
        emit("stopped", peer_id=host.peer_id, published=peer.published, received=peer.received)
        nursery.cancel_scope.cancel()
    return keep_going


async def run(args: argparse.Namespace) -> None:
    send, receive = trio.open_memory_channel[JSON](16)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_commands, send)
        generation = 0
        async with receive:
            while True:
                generation += 1
                data_dir = Path(args.data_dir) / f"identity-{generation}"
                if not await run_identity(data_dir, args, receive):
                    break
        nursery.cancel_scope.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="where the libp2p identity is kept")
    parser.add_argument("--connect", required=True, help="the honest node's full multiaddr")
    parser.add_argument("--topic", required=True, help="e.g. p2pc/1/site/example.org")
    parser.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    trio.run(run, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
