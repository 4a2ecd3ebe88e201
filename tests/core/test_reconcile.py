"""Range-based set reconciliation: both sides learn exactly the set differences, whatever the sets,
split policies and message size bound; a peer's bytes yield progress or ReconcileError only."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypedDict, Unpack

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcomments.core.reconcile import (
    ID_SIZE,
    INFINITY,
    MIN_BOUND,
    Bound,
    Item,
    Mode,
    ReconcileError,
    ReconcileSession,
    SortedItems,
    fingerprint,
    minimal_bound,
)


class Settings(TypedDict, total=False):
    branching: int
    id_list_threshold: int
    max_message_bytes: int


SMALL: Settings = {"branching": 3, "id_list_threshold": 4, "max_message_bytes": 1024}


def make_id(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(8, "big")).digest()


def make_items(numbers: Iterable[int], *, timestamps: int = 1_000_000) -> list[Item]:
    """Items with distinct ids; a small ``timestamps`` makes many share a timestamp."""
    return [(n * 7919 % timestamps, make_id(n)) for n in numbers]


def exchange(
    a: SortedItems,
    b: SortedItems,
    *,
    responder_settings: Settings | None = None,
    **settings: Unpack[Settings],
) -> tuple[ReconcileSession, ReconcileSession, list[bytes]]:
    """Run an initiator on ``a`` and a responder on ``b`` to completion; return all messages."""
    initiator = ReconcileSession(a, initiator=True, **settings)
    responder = ReconcileSession(b, initiator=False, **(responder_settings or settings))
    messages: list[bytes] = []
    sender, receiver = initiator, responder
    while (message := sender.next_message()) is not None:
        messages.append(message)
        assert len(messages) < 500, "reconciliation does not terminate"
        receiver.receive(message)
        sender, receiver = receiver, sender
    assert initiator.done
    assert responder.done
    return initiator, responder, messages


def check_differences(
    a_items: list[Item],
    b_items: list[Item],
    *,
    responder_settings: Settings | None = None,
    **settings: Unpack[Settings],
) -> tuple[ReconcileSession, ReconcileSession, list[bytes]]:
    initiator, responder, messages = exchange(
        SortedItems(a_items),
        SortedItems(b_items),
        responder_settings=responder_settings,
        **settings,
    )
    a_ids, b_ids = {i for _, i in a_items}, {i for _, i in b_items}
    assert initiator.have_ids == a_ids - b_ids
    assert initiator.need_ids == b_ids - a_ids
    assert responder.have_ids == b_ids - a_ids
    assert responder.need_ids == a_ids - b_ids
    return initiator, responder, messages


@pytest.mark.parametrize("size", [0, 3, 1000])
def test_equal_sets_settle_in_one_round_trip(size: int) -> None:
    items = make_items(range(size))
    initiator, responder, messages = check_differences(items, items)
    assert len(messages) == 2
    assert initiator.have_ids == initiator.need_ids == responder.have_ids == frozenset()
    assert len(messages[0]) < 40
    assert messages[1] == msgpack.packb([1, []])


def test_disjoint_sets() -> None:
    check_differences(make_items(range(300)), make_items(range(300, 700)))


@pytest.mark.parametrize(("a_size", "b_size"), [(0, 500), (500, 0), (0, 0), (1, 0), (0, 1)])
def test_one_side_empty(a_size: int, b_size: int) -> None:
    check_differences(make_items(range(a_size)), make_items(range(1000, 1000 + b_size)))


def test_one_side_empty_with_a_small_message_bound() -> None:
    # Far more ids than one message holds: the answer must be spread over several rounds.
    _, _, messages = check_differences(make_items(range(1000)), [], **SMALL)
    assert max(map(len, messages)) <= 1024


def test_duplicate_timestamps_and_shared_id_prefixes() -> None:
    # Every item shares a timestamp, and ids share their first 7 bytes, so bounds need long id
    # prefixes (short ids, the first 8 bytes, stay distinct).
    ids = [bytes(7) + bytes([n]) + make_id(n)[:24] for n in range(256)]
    a_items = [(5, i) for i in ids[:200]]
    b_items = [(5, i) for i in ids[40:]] + [(4, make_id(1)), (6, make_id(2))]
    _, _, messages = check_differences(a_items, b_items, **SMALL)
    ranges = [entry for message in messages for entry in msgpack.unpackb(message)[1]]
    assert max(len(entry[1]) for entry in ranges) == 8


def test_messages_respect_the_size_bound() -> None:
    limit = 2048
    _, _, messages = check_differences(
        make_items(range(0, 4000)),
        make_items(range(1000, 6000)),
        branching=4,
        id_list_threshold=8,
        max_message_bytes=limit,
    )
    assert max(map(len, messages)) <= limit
    assert len(messages) > 10


@settings(max_examples=80, deadline=None)
@given(
    common=st.sets(st.integers(0, 10_000), max_size=120),
    only_a=st.sets(st.integers(10_001, 20_000), max_size=40),
    only_b=st.sets(st.integers(20_001, 30_000), max_size=40),
    timestamps=st.sampled_from([1, 3, 50, 10**12]),
    branching=st.integers(2, 6),
    threshold=st.integers(1, 6),
    max_message_bytes=st.sampled_from([900, 1500, 262_144]),
)
def test_random_sets_learn_exactly_the_differences(
    common: set[int],
    only_a: set[int],
    only_b: set[int],
    timestamps: int,
    branching: int,
    threshold: int,
    max_message_bytes: int,
) -> None:
    a_items = make_items(common | only_a, timestamps=timestamps)
    b_items = make_items(common | only_b, timestamps=timestamps)
    _, _, messages = check_differences(
        a_items,
        b_items,
        branching=branching,
        id_list_threshold=threshold,
        max_message_bytes=max_message_bytes,
    )
    assert max(map(len, messages)) <= max_message_bytes


@settings(max_examples=40, deadline=None)
@given(
    common=st.sets(st.integers(0, 10_000), max_size=150),
    only_a=st.sets(st.integers(10_001, 20_000), max_size=60),
    only_b=st.sets(st.integers(20_001, 30_000), max_size=60),
    policies=st.lists(st.tuples(st.integers(2, 16), st.integers(1, 20)), min_size=2, max_size=2),
)
def test_peers_with_different_split_policies_agree(
    common: set[int], only_a: set[int], only_b: set[int], policies: list[tuple[int, int]]
) -> None:
    # How a range is split is local policy (rule 7); only max_message_bytes must match.
    (a_branching, a_threshold), (b_branching, b_threshold) = policies
    check_differences(
        make_items(common | only_a, timestamps=100),
        make_items(common | only_b, timestamps=100),
        responder_settings={
            "branching": b_branching,
            "id_list_threshold": b_threshold,
            "max_message_bytes": 2048,
        },
        branching=a_branching,
        id_list_threshold=a_threshold,
        max_message_bytes=2048,
    )


def test_difference_costs_far_less_than_sending_every_id() -> None:
    a_items = make_items(range(20_000))
    b_items = make_items(range(20, 20_020))
    _, _, messages = check_differences(a_items, b_items)
    assert sum(map(len, messages)) < 20_000 * ID_SIZE / 20


def test_minimal_bound_separates_neighbours() -> None:
    below, above = (7, bytes([1, 2, 3]) + bytes(29)), (7, bytes([1, 2, 4]) + bytes(29))
    bound = minimal_bound(below, above)
    assert bound == Bound(timestamp=7, id_prefix=bytes([1, 2, 4]))
    assert below < bound.key <= above
    assert minimal_bound((6, above[1]), above) == Bound(timestamp=7)


def test_sorted_items_fingerprint_and_insert() -> None:
    items = SortedItems(make_items(range(50)))
    ids = [i for _, i in items]
    total = sum(int.from_bytes(i, "little") for i in ids)
    assert items.fingerprint(MIN_BOUND, INFINITY) == fingerprint(total, 50)
    assert items.count(MIN_BOUND, INFINITY) == 50
    new = (123, make_id(999))
    assert items.insert(new)
    assert not items.insert(new)
    assert items.fingerprint(MIN_BOUND, INFINITY) == fingerprint(
        total + int.from_bytes(new[1], "little"), 51
    )
    assert items.count(INFINITY, MIN_BOUND) == 0
    with pytest.raises(ValueError, match="32 bytes"):
        SortedItems([(1, b"short")])


# --- a peer's bytes -------------------------------------------------------------------------------


def replay(messages: list[bytes], upto: int, a: SortedItems, b: SortedItems) -> ReconcileSession:
    """The session that is about to receive ``messages[upto]``, in the state it had then."""
    initiator = ReconcileSession(a, initiator=True, **SMALL)
    responder = ReconcileSession(b, initiator=False, **SMALL)
    sender, receiver = initiator, responder
    for message in messages[:upto]:
        assert sender.next_message() == message
        receiver.receive(message)
        sender, receiver = receiver, sender
    assert sender.next_message() == messages[upto]
    return receiver


A_SET = SortedItems(make_items(range(0, 90), timestamps=40))
B_SET = SortedItems(make_items(range(30, 140), timestamps=40))
_, _, VALID_EXCHANGE = exchange(A_SET, B_SET, **SMALL)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_yield_progress_or_reconcile_error(data: bytes) -> None:
    for session in (
        ReconcileSession(B_SET, initiator=False, **SMALL),
        replay(VALID_EXCHANGE, 1, A_SET, B_SET),
    ):
        error = None
        try:
            session.receive(data)
        except ReconcileError as caught:
            error = caught
        assert error is None or (isinstance(error.reason, str) and error.reason)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[int, bytes]:
    index = draw(st.integers(0, len(VALID_EXCHANGE) - 1))
    message = bytearray(VALID_EXCHANGE[index])
    position = draw(st.integers(0, len(message) - 1))
    kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
    if kind == "flip":
        message[position] ^= 1 << draw(st.integers(0, 7))
    elif kind == "set":
        message[position] = draw(st.integers(0, 255))
    elif kind == "insert":
        message.insert(position, draw(st.integers(0, 255)))
    elif kind == "delete":
        del message[position]
    else:
        del message[position:]
    return index, bytes(message)


@settings(max_examples=150, deadline=None)
@given(mutation=mutations())
def test_mutated_messages_yield_progress_or_an_atomic_reconcile_error(
    mutation: tuple[int, bytes],
) -> None:
    index, mutated = mutation
    session = replay(VALID_EXCHANGE, index, A_SET, B_SET)
    try:
        session.receive(mutated)
    except ReconcileError:
        # Nothing changed: the genuine message still applies.
        session.receive(VALID_EXCHANGE[index])


def pack(*ranges: list[object], version: object = 1) -> bytes:
    encoded: bytes = msgpack.packb([version, list(ranges)], use_bin_type=True)
    return encoded


FP = bytes(16)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"", "malformed"),
        (b"\xc1", "malformed"),
        (pack(version=2), "unsupported-version"),
        (pack(version="1"), "unsupported-version"),
        (b"\x92\x01\xdc\x00\x00", "non-canonical"),  # [1, []] with a 16-bit array length
        (pack([5, b"", 0, None]), "non-canonical"),  # trailing SKIP
        (pack([5, b"", 0, None], [5, b"", 0, None], [0, b"", 1, FP]), "non-canonical"),
        (pack([0, b"", 1, FP], [5, b"", 1, FP]), "bad-bound"),  # a range after INFINITY
        (pack([5, b"", 1, FP], [1, b"", 1, FP]), "bad-bound"),  # not increasing
        (pack([5, b"\x01\x00", 1, FP]), "bad-bound"),  # prefix ends in a zero byte
        (pack([0, b"\x01", 1, FP]), "bad-bound"),
        (pack([2**63 + 1, b"", 1, FP]), "bad-bound"),
        (pack([5, b"", 1, FP[:8]]), "bad-payload"),
        (pack([5, b"", 7, None]), "bad-payload"),
        (pack([5, b"", Mode.ID_LIST, bytes(7)]), "bad-payload"),
        (pack([5, b"", Mode.IDS, b""]), "bad-payload"),
        (pack([5, b"", Mode.ID_LIST_REPLY, [b"", b""]]), "unexpected-reply"),
        (pack([5, b"", Mode.IDS, make_id(1)]), "unsolicited-ids"),
        (pack([5, "", 1, FP]), "bad-bound"),
        (msgpack.packb([1, [[5, b"", 1, FP]]], use_bin_type=False), "bad-bound"),
        (msgpack.packb({"a": 1}), "malformed"),
        (pack([5, b"", 1, 1.5]), "bad-payload"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(message: bytes, reason: str) -> None:
    session = ReconcileSession(B_SET, initiator=False, **SMALL)
    with pytest.raises(ReconcileError) as caught:
        session.receive(message)
    assert caught.value.reason == reason


def test_oversized_and_unexpected_messages_are_rejected() -> None:
    session = ReconcileSession(B_SET, initiator=False, **SMALL)
    with pytest.raises(ReconcileError) as caught:
        session.receive(bytes(1024 + 1))
    assert caught.value.reason == "message-too-large"
    with pytest.raises(ReconcileError) as caught:
        ReconcileSession(A_SET, initiator=True).receive(pack())
    assert caught.value.reason == "unexpected-message"
    initiator, _, messages = exchange(A_SET, B_SET, **SMALL)
    with pytest.raises(ReconcileError) as caught:
        initiator.receive(messages[-1])
    assert caught.value.reason == "unexpected-message"


def test_a_peer_that_withholds_flagged_ids_is_at_fault() -> None:
    initiator = ReconcileSession(SortedItems(make_items(range(3))), initiator=True)
    responder = ReconcileSession(SortedItems(make_items(range(1))), initiator=False)
    responder.receive(initiator.next_message() or b"")
    initiator.receive(responder.next_message() or b"")  # flags two ids the initiator must send
    with pytest.raises(ReconcileError) as caught:
        responder.receive(pack())  # ...but this reply, which ends the session, holds none
    assert caught.value.reason == "ids-withheld"


def test_caller_mistakes_raise_value_error() -> None:
    with pytest.raises(ValueError, match="branching"):
        ReconcileSession(A_SET, initiator=True, branching=1)
    with pytest.raises(ValueError, match="max_message_bytes"):
        ReconcileSession(A_SET, initiator=True, max_message_bytes=100)


VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "sync_reconcile.json"


@pytest.mark.parametrize(
    "vector", json.loads(VECTORS.read_text())["vectors"], ids=lambda vector: vector["name"]
)
def test_vectors_replay_byte_for_byte(vector: dict[str, Any]) -> None:
    def item_set(side: str) -> SortedItems:
        return SortedItems((ts, bytes.fromhex(i)) for ts, i in vector[f"{side}_items"])

    initiator, responder, messages = exchange(
        item_set("initiator"), item_set("responder"), **vector["policy"]
    )
    assert [m.hex() for m in messages] == [m["hex"] for m in vector["messages"]]
    for session, side in ((initiator, "initiator"), (responder, "responder")):
        assert sorted(i.hex() for i in session.have_ids) == vector[f"{side}_have"]
        assert sorted(i.hex() for i in session.need_ids) == vector[f"{side}_need"]
