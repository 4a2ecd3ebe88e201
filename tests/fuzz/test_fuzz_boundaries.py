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
    "event-streams": 300,
    "feeds-inbox": 300,
    "public-gateway": 400,
    "import-file": 200,
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


@pytest.mark.parametrize(
    "media_type", ["application/vnd.p2pcomments.ops", "Application/Vnd.P2PComments.Ops"]
)
def test_the_gateway_charges_a_batch_in_any_spelling_of_its_type(media_type: str) -> None:
    """Found by the public-gateway boundary: the app reads the media type in any case, the
    gateway counted only the lower-case one as a batch, so a batch in capitals cost one
    operation of the client's budget, whatever its size."""
    import trio

    from p2pcomments.api.app import build_app
    from p2pcomments.api.gateway import GatewayLimits
    from p2pcomments.core.ops import CommentPayload, make_operation
    from p2pcomments.net.gossip_payload import encode_batch

    from .boundaries import KEYS, T0
    from .web_boundaries import TOKEN, call_app, fuzz_node

    async def submit_twice() -> list[int]:
        async with fuzz_node("p2pc-test-gateway-") as node:
            limits = GatewayLimits(ops_burst=4, ops_per_minute=1)
            app = build_app(node, token=TOKEN, closing=trio.Event(), gateway=limits)
            statuses = []
            for round_ in range(2):
                thread = node.fuzz_own
                ops = [
                    make_operation(
                        KEYS[1],
                        CommentPayload(body=f"batch {round_} comment {n}"),
                        timestamp_ms=T0 + 10 * round_ + n,
                        thread=thread.id,
                        refs=(thread.id,),
                    ).encoded
                    for n in range(4)
                ]
                answer = await call_app(
                    app,
                    "POST",
                    "/api/ops",
                    headers=[(b"content-type", media_type.encode())],
                    body=encode_batch(ops),
                    client=("192.0.2.9", 4000),
                )
                assert answer is not None
                statuses.append(answer.status)
            return statuses

    assert trio.run(submit_twice) == [201, 429]  # the first batch spent the whole budget
