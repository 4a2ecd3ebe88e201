#!/usr/bin/env python3
"""Benchmark checking a chunk's signatures: the key tables (core/_ed25519.c) against libsodium.

    scripts/bench_signatures.py [--chunk 500] [--repeat 5]

A chunk (what a node checks in one call) of operations' signatures, signed by 1, 20, 100 or 500
keys (each signing its share), checked on one thread four ways, best of --repeat passes:

- PyNaCl one by one       VerifyKey(author).verify(message, signature): the reference, the
                          "raw verify" of scripts/bench_store.py
- libsodium in one call   `_signatures.open_all` without tables (crypto_sign_open for each)
- tables, new keys        as ops.authentic_all calls it: a table made for every key signing at
                          least `_TABLE_MIN_USES` of the chunk, then used (keys never seen before)
- tables, keys seen       the same keys again: their tables kept from the call before

Prints microseconds per signature and each way's speed against the reference.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import nacl.signing

from p2pcomments.core import ops

try:
    from p2pcomments.core import _signatures
except ImportError:  # pragma: no cover - where the helper did not build
    sys.exit("p2pcomments/core/_signatures.c is not built: `pip install -e .` builds it")

Chunk = tuple[bytes, bytes, list[tuple[bytes, bytes, bytes]]]


def make_chunk(keys: int, size: int) -> Chunk:
    """``size`` signed messages (as an operation's: the domain and a 32-byte id) by ``keys``
    new keys, interleaved; returns them as open_all takes them and as (key, message, sig)."""
    signers = [nacl.signing.SigningKey.generate() for _ in range(keys)]
    items = []
    for index in range(size):
        signer = signers[index % keys]
        message = ops.OP_SIGNING_DOMAIN + os.urandom(32)
        items.append((bytes(signer.verify_key), message, signer.sign(message).signature))
    signed = b"".join(signature + message for _, message, signature in items)
    return signed, b"".join(key for key, _, _ in items), items


def open_all(chunk: Chunk, min_uses: int) -> bytes:
    signed, keys, _ = chunk
    return _signatures.open_all(
        ops._SIGN_OPEN_ADDRESS, ops._SHA512_ADDRESS, signed, ops._SIGNED_BYTES, keys, min_uses
    )


def pynacl_one_by_one(chunk: Chunk) -> None:
    for key, message, signature in chunk[2]:
        nacl.signing.VerifyKey(key).verify(message, signature)


def best(work: Callable[[], object], repeat: int, per: int) -> float:
    """The fastest of ``repeat`` runs, in microseconds of CPU per item."""
    fastest = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        work()
        fastest = min(fastest, time.process_time() - started)
    return fastest / per * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, default=500, help="signatures per call")
    parser.add_argument("--repeat", type=int, default=5, help="passes; the best counts")
    args = parser.parse_args()
    if not _signatures.tables_ready:
        sys.exit("the key tables failed their self-check: every signature goes to libsodium")
    size, repeat = args.chunk, args.repeat
    min_uses = ops._TABLE_MIN_USES
    print(f"{size} signatures per call, one thread, CPU us per signature (best of {repeat});")
    print(f"tables for keys signing at least {min_uses} of a call (ops._TABLE_MIN_USES)")
    print(
        f"{'keys':>5} {'PyNaCl 1 by 1':>14} {'libsodium 1 call':>17}"
        f" {'tables, new keys':>17} {'tables, keys seen':>18}"
    )
    for keys in (1, 20, 100, size):
        print(row(keys, size, repeat, min_uses), flush=True)


def row(keys: int, size: int, repeat: int, min_uses: int) -> str:
    chunk = make_chunk(keys, size)
    assert open_all(chunk, min_uses) == b"\x01" * size
    reference = best(lambda: pynacl_one_by_one(chunk), repeat, size)
    one_call = best(lambda: open_all(chunk, 0), repeat, size)
    fresh = [make_chunk(keys, size) for _ in range(repeat)]  # keys no table was made for
    new_keys = best(lambda: open_all(fresh.pop(), min_uses), repeat, size)
    open_all(chunk, min_uses)
    seen = best(lambda: open_all(chunk, min_uses), repeat, size)

    def cell(value: float, width: int) -> str:
        return f"{value:.1f} ({reference / value:.2f}x)".rjust(width)

    return (
        f"{keys:>5} {reference:>14.1f} {cell(one_call, 17)} {cell(new_keys, 17)} {cell(seen, 18)}"
    )


if __name__ == "__main__":
    main()
