"""The node's libp2p peer key file, and the peer id it gives, read without importing libp2p.

Rules:

1. ``<data_dir>/libp2p-identity.key`` holds the peer key's 32-byte Ed25519 seed
   (`p2pcomments.net.host` creates it on the network's first start); it is distinct from the
   author key.
2. The peer id is derived as libp2p derives it (base58 of the identity multihash of the
   protobuf-encoded public key), so `p2pc id` needs neither libp2p nor a running daemon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from nacl.signing import SigningKey

__all__ = ["IDENTITY_FILE", "peer_id_of_data_dir"]

IDENTITY_FILE: Final = "libp2p-identity.key"
"""The libp2p peer key's 32-byte Ed25519 seed (rule 1)."""
_BASE58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_BASE58[digit])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(digits))


def peer_id_of_data_dir(data_dir: Path) -> str | None:
    """The libp2p peer id of the data dir's network identity, or None before the network first
    ran (no key yet). Computed without libp2p: base58 of the identity multihash of the
    protobuf-encoded Ed25519 public key, as libp2p derives it for keys of 42 bytes or less."""
    try:
        seed = (data_dir / IDENTITY_FILE).read_bytes()
    except OSError:
        return None
    if len(seed) != 32:
        return None
    public = bytes(SigningKey(seed).verify_key)
    key_protobuf = b"\x08\x01\x12\x20" + public  # KeyType Ed25519 (1), Data (32 bytes)
    return _base58(b"\x00" + bytes([len(key_protobuf)]) + key_protobuf)
