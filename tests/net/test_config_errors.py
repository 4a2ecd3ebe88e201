"""A configuration mistake in net is a `ConfigError` (HTTP 400, also a ValueError), whichever
part of the network it configures; nothing here opens a socket."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from p2pcomments.net.config import NetworkConfig
from p2pcomments.net.errors import ConfigError
from p2pcomments.net.gossip import GossipConfig
from p2pcomments.net.host import HostConfig
from p2pcomments.net.peer_accounting import PeerRateLimiter, StrikeCounter, TokenBucket
from p2pcomments.net.remembered_peers import RememberedPeers


@pytest.mark.parametrize(
    "configure",
    [
        lambda _: NetworkConfig(sync_interval=-1),
        lambda _: NetworkConfig(verified_cache_size=0),
        lambda path: HostConfig(data_dir=path, listen_addrs=()),
        lambda path: HostConfig(data_dir=path, max_invalid_strikes=0),
        lambda _: GossipConfig(max_batch_ops=0),
        lambda _: GossipConfig(coalesce_window=-1),
        lambda _: TokenBucket(rate=0, burst=1),
        lambda _: PeerRateLimiter(rate=1, burst=0),
        lambda _: StrikeCounter(max_strikes=0, window=1),
        lambda path: RememberedPeers(path / "peers.json", capacity=-1),
    ],
    ids=[
        "network-interval",
        "network-cache",
        "host-listen",
        "host-strikes",
        "gossip-batch",
        "gossip-window",
        "bucket",
        "rate-limiter",
        "strikes",
        "remembered",
    ],
)
def test_a_bad_setting_is_a_config_error(
    configure: Callable[[Path], object], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as raised:
        configure(tmp_path)
    assert raised.value.http_status == 400
    assert raised.value.reason == "bad-config"
    assert isinstance(raised.value, ValueError)
