"""A small, deterministic sample of the fuzzing campaign (scripts/fuzz_boundaries.py runs
100,000 inputs per boundary): every boundary takes hostile input with typed errors only, stores
and forwards nothing invalid and loses nothing valid. What each boundary checks is in
tests/fuzz/boundaries.py; findings of the campaign are kept as tests in the test file of the
layer they belong to."""

from __future__ import annotations

import random

import pytest

from .boundaries import (
    BOUNDARIES,
    OpDecoderBoundary,
    SyncConversationBoundary,
    corpus,
    independent_problem,
    mutate_bytes,
    run_boundary,
    seed_inputs,
    structured_op_mutation,
)

# Inputs per boundary: a few seconds each on a loaded two-core machine.
SAMPLE = {
    "op-decoder": 3000,
    "gossip-payload": 1500,
    "gossip-intake": 300,
    "sync-message": 3000,
    "sync-conversation": 150,
    "http-api": 600,
    "cli": 150,
    "config-file": 400,
    "data-dir": 120,
}


def test_every_boundary_has_a_sample() -> None:
    assert set(SAMPLE) == set(BOUNDARIES)


@pytest.mark.parametrize("name", sorted(SAMPLE))
def test_boundary_survives_hostile_input(name: str) -> None:
    tally = run_boundary(name, SAMPLE[name], seed=13)
    assert tally.ok, tally.summary()
    assert tally.tried >= SAMPLE[name] * 0.9  # the CLI skips the commands that never return
    # The sample reaches both sides: some inputs accepted, several reasons for refusing.
    assert tally.accepted > 0
    assert len(tally.rejected) >= 3, tally.rejected


def test_the_independent_check_accepts_every_valid_operation() -> None:
    """The oracle the decoder is checked against: it must find nothing wrong with valid
    operations, or a violation could never be told from a false alarm."""
    for op in corpus().ops:
        assert independent_problem(op.encoded) is None


def test_the_independent_check_refuses_what_the_decoder_must_refuse() -> None:
    op = corpus().ops[1]
    flipped = op.encoded[:-1] + bytes([op.encoded[-1] ^ 1])
    assert independent_problem(flipped) == "signature does not verify with PyNaCl"
    wide = b"\xdd\x00\x00\x00\x09" + op.encoded[1:]
    assert independent_problem(wide) == "not canonical for umsgpack"


def test_structured_mutations_reach_the_rules_behind_the_signature() -> None:
    """Re-signed mutations are refused for what they break, not for their signature."""
    boundary = OpDecoderBoundary()
    rng = random.Random(5)
    for _ in range(400):
        boundary.check_bytes(structured_op_mutation(rng, corpus().ops))
    reasons = boundary.tally.rejected
    for reason in ("non-canonical", "bad-field", "unknown-kind", "bad-text", "oversize"):
        assert any(key.endswith(reason) for key in reasons), reasons
    assert boundary.tally.accepted > 0  # some mutants are valid operations (a new timestamp...)
    assert boundary.tally.ok, boundary.tally.summary()


def test_byte_mutations_change_their_input() -> None:
    rng = random.Random(1)
    seed = corpus().ops[0].encoded
    assert sum(mutate_bytes(rng, seed) != seed for _ in range(200)) >= 190


def test_coverage_guided_entry_points_take_any_bytes() -> None:
    """What the coverage-guided fuzzer calls (``check_bytes``), on its seeds and on junk."""
    rng = random.Random(2)
    for name in ("op-decoder", "gossip-payload", "sync-message", "sync-conversation"):
        boundary = BOUNDARIES[name]()
        seeds = seed_inputs(name, 16)
        for data in [*seeds, b"", b"\xc1", rng.randbytes(300)]:
            boundary.check_bytes(data)
        assert boundary.tally.ok, boundary.tally.summary()
    assert isinstance(BOUNDARIES["sync-conversation"](), SyncConversationBoundary)
