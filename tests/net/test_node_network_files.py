"""The network service's files and settings, without libp2p: follows.json (p2pcomments.follows),
config.json, network.json and the peer id derived from the data dir (p2pcomments.net.interface)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.errors import TextFormError
from p2pcomments.follows import (
    FOLLOWS_FILE,
    FollowList,
    parse_follow_target,
    site_topic,
    thread_topic,
)
from p2pcomments.net.interface import (
    NETWORK_FILE,
    ConfigError,
    NetworkConfig,
    peer_id_of_data_dir,
    read_bootstrap_config,
    read_network_file,
    remove_network_file,
    write_network_file,
)

THREAD = bytes(range(32))


def test_topics() -> None:
    assert site_topic("blog.example") == "p2pc/1/site/blog.example"
    assert thread_topic(THREAD) == "p2pc/1/thread/" + format_id(TextKind.THREAD, THREAD)


def test_follow_targets() -> None:
    text = format_id(TextKind.THREAD, THREAD)
    assert parse_follow_target(text) == (THREAD, None)
    assert parse_follow_target(THREAD.hex()) == (THREAD, None)
    assert parse_follow_target("  blog.example ") == (None, "blog.example")
    with pytest.raises(TextFormError):
        parse_follow_target(format_id(TextKind.COMMENT, THREAD))
    with pytest.raises(ValueError):
        parse_follow_target("two words")
    with pytest.raises(ValueError):
        parse_follow_target("")


def test_follow_list_round_trip(tmp_path: Path) -> None:
    follows = FollowList.load(tmp_path)
    assert follows.follows.threads == frozenset()
    assert not (tmp_path / FOLLOWS_FILE).exists()
    assert follows.follow(site="blog.example")
    assert not follows.follow(site="blog.example")
    assert follows.follow(thread=THREAD)
    path = tmp_path / FOLLOWS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = FollowList.load(tmp_path)
    assert again.follows == follows.follows
    document = json.loads(path.read_text())
    assert document["sites"] == ["blog.example"]
    assert document["threads"] == [format_id(TextKind.THREAD, THREAD)]


def test_unfollowing_stops_automatic_follows(tmp_path: Path) -> None:
    follows = FollowList.load(tmp_path)
    assert follows.follow_automatically(THREAD, None)
    assert follows.unfollow(thread=THREAD)
    assert not follows.follow_automatically(THREAD, None)
    assert follows.follows.threads == frozenset()
    assert follows.follow(thread=THREAD)  # explicit follow clears the unfollow
    assert follows.follows.unfollowed_threads == frozenset()
    # A thread with a site is followed by its site.
    assert follows.follow_automatically(b"\x01" * 32, "news.example")
    assert follows.follows.sites == {"news.example"}
    assert follows.unfollow(site="news.example")
    assert not follows.follow_automatically(b"\x02" * 32, "news.example")


def test_a_damaged_follows_file_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / FOLLOWS_FILE).write_text('{"version": 1, "threads": ["thr_nope"]}')
    follows = FollowList.load(tmp_path)
    assert follows.follows.threads == frozenset()
    assert (tmp_path / (FOLLOWS_FILE + ".bad")).exists()


def test_bootstrap_config(tmp_path: Path) -> None:
    assert read_bootstrap_config(tmp_path) == ()
    address = "/ip4/127.0.0.1/tcp/4737/p2p/12D3KooWQ3wmx5WaqDF2JtnyZ8JnkymHcyHDAMxGGThakKCJmFMe"
    (tmp_path / "config.json").write_text(json.dumps({"bootstrap": [address, " "]}))
    assert read_bootstrap_config(tmp_path) == (address,)
    (tmp_path / "config.json").write_text(json.dumps({"bootstrap": address}))
    with pytest.raises(ConfigError):
        read_bootstrap_config(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ConfigError):
        read_bootstrap_config(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"bootstrap": ["\xa2"]}', "not UTF-8"),  # found by scripts/fuzz_boundaries.py
        (b'{"bootstrap": ' * 50_000, "nested too deeply"),  # idem (a RecursionError before)
    ],
)
def test_bootstrap_config_that_is_not_json_text(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        read_bootstrap_config(tmp_path)


def test_network_config_checks() -> None:
    assert NetworkConfig().listen_addrs == ()  # the default: 4737, or a free port
    with pytest.raises(ConfigError):
        NetworkConfig(sync_interval=-1)
    with pytest.raises(ConfigError):
        NetworkConfig(max_sync_streams_per_peer=0)


def test_network_file(tmp_path: Path) -> None:
    write_network_file(tmp_path, peer_id="12D3", multiaddrs=["/ip4/127.0.0.1/tcp/1/p2p/12D3"])
    path = tmp_path / NETWORK_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_network_file(tmp_path) == {
        "peer_id": "12D3",
        "multiaddrs": ["/ip4/127.0.0.1/tcp/1/p2p/12D3"],
        "pid": os.getpid(),
    }
    remove_network_file(tmp_path)
    assert not path.exists()
    # Another process's file is left alone.
    path.write_text(json.dumps({"peer_id": "x", "multiaddrs": [], "pid": os.getpid() + 1}))
    remove_network_file(tmp_path)
    assert path.exists()


def test_peer_id_without_libp2p_matches_libp2p(tmp_path: Path) -> None:
    assert peer_id_of_data_dir(tmp_path) is None
    code = (
        "import sys; from pathlib import Path\n"
        "from libp2p.peer.id import ID\n"
        "from p2pcomments.net.host import load_or_create_identity\n"
        "print(ID.from_pubkey(load_or_create_identity(Path(sys.argv[1])).public_key).to_base58())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert peer_id_of_data_dir(tmp_path) == result.stdout.strip()


def test_a_peer_key_that_is_a_directory_is_a_store_error(tmp_path: Path) -> None:
    """Found extending the data-dir boundary of scripts/fuzz_boundaries.py to the peer key:
    IsADirectoryError came out of the daemon's start instead of a StoreError."""
    from p2pcomments.errors import StoreError
    from p2pcomments.net.host import load_or_create_identity

    (tmp_path / "libp2p-identity.key").mkdir()
    with pytest.raises(StoreError, match="can't read") as raised:
        load_or_create_identity(tmp_path)
    assert raised.value.reason == "bad-identity"
