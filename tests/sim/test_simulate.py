"""scripts/simulate.py: the simulated network converges, on the real core, in every mode. Only
correctness here (every node ends with every operation and the one view they make); the timings
and bytes are the script's to print."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from p2pcomments.core.replica import Replica

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "simulate.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("simulate", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulate"] = module
    spec.loader.exec_module(module)
    return module


simulate = load()


@pytest.fixture(scope="module")
def world() -> object:
    return simulate.World(seed=3)


@pytest.mark.parametrize("mode", simulate.MODES)
def test_ten_nodes_converge_through_churn_partition_and_empty_nodes(
    world: object, mode: str
) -> None:
    scenario = simulate.Scenario(nodes=10, comments=5, seed=3)
    sim = simulate.Simulation(scenario, mode, world)
    outcome = sim.run()
    assert outcome.converged, outcome
    assert sim.comments_made == 5
    # Every node holds the union: the history and the five comments made during the disturbances.
    union = sim.all_ids
    assert len(union) == simulate.HISTORY + 5
    for node in sim.nodes:
        assert node.online
        assert {item_id for _, item_id in node.items} == union
        assert not node.replica.pending
    # ... and shows the view a fresh replica makes of the same operations, whatever the order.
    fresh = Replica()
    ops = [world.codec.decode(sim.nodes[0].encoded[i]) for i in union]  # type: ignore[attr-defined]
    for op in sorted(ops, key=lambda op: op.id):
        fresh.apply(op)
    assert outcome.digests == {fresh.view(world.thread.id).digest()}  # type: ignore[attr-defined]
    # The scenario did disturb: someone started out nearly empty and sync moved operations.
    assert outcome.real_sessions > 0
    if mode == "sync alone":
        assert outcome.push_bytes == 0
    else:
        assert outcome.push_bytes > 0


def test_the_run_is_deterministic(world: object) -> None:
    scenario = simulate.Scenario(nodes=10, comments=3, seed=5)
    first = simulate.Simulation(scenario, "gossip+sync", world).run()
    second = simulate.Simulation(scenario, "gossip+sync", world).run()
    assert (first.converge_seconds, first.push_bytes, first.sync_bytes) == (
        second.converge_seconds,
        second.push_bytes,
        second.sync_bytes,
    )
