"""Pure tests of peers.json (p2pcomments/net/remembered_peers.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from p2pcomments.net.remembered_peers import RememberedPeers, is_dialable_addr


@pytest.mark.parametrize(
    ("addr", "ok"),
    [
        ("/ip4/127.0.0.1/tcp/4001", True),
        ("/ip6/::1/tcp/4001", True),
        ("/dns4/example.org/tcp/4001", True),
        ("/ip4/0.0.0.0/tcp/4001", False),
        ("/ip6/::/tcp/4001", False),
        ("/ip4/127.0.0.1/tcp/0", False),
        ("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWfake", False),
        ("ip4/127.0.0.1/tcp/4001", False),
        ("/unix/tmp/sock", False),
    ],
)
def test_only_dialable_addresses_are_kept(addr: str, ok: bool) -> None:
    assert is_dialable_addr(addr) is ok


def test_save_load_round_trip_private_and_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "peers.json"
    peers = RememberedPeers(path, capacity=2)
    peers.remember("a", ["/ip4/127.0.0.1/tcp/1", "/ip4/0.0.0.0/tcp/1"], now=100)
    peers.remember("b", ["/ip4/127.0.0.1/tcp/2"], now=200)
    peers.remember("c", ["/ip4/127.0.0.1/tcp/3"], now=300)
    peers.remember("nothing-dialable", ["/ip4/0.0.0.0/tcp/4"], now=400)
    assert peers.dirty
    peers.save()
    assert not peers.dirty
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = RememberedPeers(path, capacity=2)
    loaded.load(now=400)
    assert [p.peer_id for p in loaded.peers()] == ["c", "b"]
    assert loaded.get("c") is not None
    assert loaded.get("c").addrs == ("/ip4/127.0.0.1/tcp/3",)  # type: ignore[union-attr]


def test_old_entries_are_forgotten_at_load(tmp_path: Path) -> None:
    path = tmp_path / "peers.json"
    peers = RememberedPeers(path, max_age=50)
    peers.remember("old", ["/ip4/127.0.0.1/tcp/1"], now=0)
    peers.remember("new", ["/ip4/127.0.0.1/tcp/2"], now=90)
    peers.save()
    loaded = RememberedPeers(path, max_age=50)
    loaded.load(now=100)
    assert [p.peer_id for p in loaded.peers()] == ["new"]


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", '{"version": 2, "peers": []}', '{"version": 1, "peers": [{"x": 1}]}'],
)
def test_a_bad_file_is_moved_aside_not_fatal(tmp_path: Path, content: str) -> None:
    path = tmp_path / "peers.json"
    path.write_text(content)
    peers = RememberedPeers(path)
    peers.load(now=0)
    assert len(peers) == 0
    assert not path.exists()
    assert (tmp_path / "peers.json.bad").read_text() == content


def test_forget_and_missing_file(tmp_path: Path) -> None:
    peers = RememberedPeers(tmp_path / "sub" / "peers.json")
    peers.load(now=0)
    peers.remember("a", ["/ip4/127.0.0.1/tcp/1"], now=1)
    peers.save()
    peers.forget("a")
    peers.save()
    document = json.loads((tmp_path / "sub" / "peers.json").read_text())
    assert document == {"peers": [], "version": 1}
