"""One full sync session per peer pair: a joiner's catch-up moves each operation once.

A source holding ten thousand operations syncs every half second; a fresh daemon bootstraps to
it (and syncs as often). The joiner's first session, the source's periodic rounds and the
joiner's own would otherwise overlap and send the same operations two or three times over
(SPEC §9.4: at most one session per pair in flight, a tie-break by peer id).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .harness import DaemonApi, cluster, encode_bundle, foreign_operations, wait_until

pytestmark = [pytest.mark.network]

SITE = "once.example"
OPERATIONS = 10_000
SLACK = 0.02  # of the operations: a session cut short may resend a frame's worth at most
SYNC_INTERVAL = 0.5  # several periodic rounds each way during the catch-up (~1.5 s)
ROUNDS_AFTER = 3  # rounds each side starts after the catch-up, before the counts are checked


def _network(api: DaemonApi) -> dict[str, int]:
    network = api.statistics()["network"]
    return {k: v for k, v in network.items() if isinstance(v, int) and not isinstance(v, bool)}


@pytest.mark.slow
def test_a_joiner_receives_each_operation_once(networking: None, tmp_path: Path) -> None:
    with cluster(tmp_path, name="once") as group:
        source = group.start("S", sync_interval=SYNC_INTERVAL)
        source.api.follow(site=SITE)
        thread = source.api.create_thread("catch me up", site=SITE)
        ops = foreign_operations(thread, OPERATIONS, seed=5)
        for start in range(0, len(ops), 1_000):
            result = source.api.import_bundle(encode_bundle(ops[start : start + 1_000]))
            assert result["rejected"] == 0, result
        held = source.api.operation_count()
        assert held == OPERATIONS + 1

        started = time.monotonic()
        joiner = group.start("J", bootstrap=[source], sync_interval=SYNC_INTERVAL)
        wait_until(
            lambda: joiner.api.operation_count() >= held,
            timeout=90,
            interval=0.1,
            message=f"the joiner to hold {held} operations",
            describe=lambda: f"joiner: {_network(joiner.api)}",
        )
        elapsed = time.monotonic() - started
        # A few more periodic rounds each way (counted, not slept for): they must move nothing.
        rounds = {node: _network(node.api)["sync_initiated"] for node in (source, joiner)}
        wait_until(
            lambda: all(
                _network(node.api)["sync_initiated"] >= count + ROUNDS_AFTER
                for node, count in rounds.items()
            ),
            timeout=30,
            interval=0.1,
            message=f"{ROUNDS_AFTER} more sync rounds from each side",
        )
        snapshot = group.wait_converged([source, joiner], operations=held, timeout=30)
        assert snapshot.pending == 0
        received = _network(joiner.api)
        sent = _network(source.api)
        print(
            f"[e2e] joiner caught up on {held} ops in {elapsed:.1f} s; joiner received "
            f"{received['sync_ops_received']} by sync, the source sent {sent['sync_ops_sent']}; "
            f"sessions declined as busy: by the joiner {received.get('sync_refused')}, "
            f"by the source {sent.get('sync_refused')}"
        )
        limit = held * (1 + SLACK)
        assert received["sync_ops_received"] <= limit, str(received)
        assert sent["sync_ops_sent"] <= limit, str(sent)
