"""Rules travel with the thread (SPEC §11): the owner's node sets a difficulty and a ban, goes
offline; a relay passes the rules on; a node that never talked to the owner refuses an unpaid
comment (neither stored nor forwarded), takes a paid one, withholds the banned author's, and its
CLI's queue and rules say so. Real daemons, one process each, on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import CommentPayload, make_operation
from p2pcomments.core.pow import mine
from p2pcomments.core.rules import leading_zero_bits
from p2pcomments.core.textform import TextKind, format_id, parse_id

from .harness import Daemon, cluster, wait_until

pytestmark = [pytest.mark.network]

OP = "application/vnd.p2pcomments.op"
DIFFICULTY = 12


def _submit(daemon: Daemon, encoded: bytes) -> httpx.Response:
    return daemon.api.http.post("/api/ops", content=encoded, headers={"Content-Type": OP})


def _rules(daemon: Daemon, thread: str) -> dict[str, Any] | None:
    try:
        return daemon.api.get(f"/api/threads/{thread}/rules")  # type: ignore[no-any-return]
    except httpx.HTTPStatusError:
        return None  # not held here yet


def test_a_node_that_never_met_the_owner_enforces_its_rules(
    networking: None, tmp_path: Path
) -> None:
    with cluster(tmp_path, name="rules") as group:
        owner = group.start("owner")
        relay = group.start("relay", bootstrap=[owner])
        group.wait_connected(relay, [owner])
        thread = owner.api.create_thread("pay to post")
        spammer = SigningKey.generate()
        spammer_key = format_id(TextKind.KEY, bytes(spammer.verify_key))
        owner.api.post(
            "/api/rules/difficulty", {"thread": thread, "bits": str(DIFFICULTY), "reason": "spam"}
        )
        owner.api.post("/api/rules/bans", {"thread": thread, "key": spammer_key})
        wait_until(
            lambda: (
                (_rules(relay, thread) or {}).get("difficulty") == DIFFICULTY
                and (_rules(relay, thread) or {})["thread"]["bans"]
            ),
            timeout=60,
            message="the relay to hold the owner's rules",
        )
        owner.stop()  # the owner goes offline for good

        stranger = group.start("stranger", bootstrap=[relay])
        group.wait_connected(stranger, [relay])
        rules = wait_until(
            lambda: _rules(stranger, thread),
            timeout=60,
            message="the stranger to sync the thread and its rules from the relay",
        )
        assert rules["difficulty"] == DIFFICULTY
        assert [ban["key"] for ban in rules["thread"]["bans"]] == [spammer_key]

        thread_id = parse_id(thread)
        deps = tuple(parse_id(d) for d in stranger.api.thread(thread)["deps"])
        reader = SigningKey.generate()
        now = time.time_ns() // 1_000_000
        unpaid = next(  # one that does not pay by chance (1 in 4,096 would)
            op
            for n in range(1000)
            if leading_zero_bits(
                (
                    op := make_operation(
                        reader,
                        CommentPayload(body=f"free lunch {n}"),
                        timestamp_ms=now,
                        thread=thread_id,
                        refs=(thread_id,),
                        deps=deps,
                    )
                ).id
            )
            < DIFFICULTY
        )
        refused = _submit(stranger, unpaid.encoded)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "unpaid"
        paid = mine(
            reader,
            CommentPayload(body="I paid my 12 bits"),
            difficulty=DIFFICULTY,
            timestamp_ms=now + 1,
            thread=thread_id,
            refs=(thread_id,),
            deps=deps,
        )
        assert _submit(stranger, paid.encoded).status_code == 201
        banned = mine(
            spammer,
            CommentPayload(body="buy my stuff"),
            difficulty=DIFFICULTY,
            timestamp_ms=now + 2,
            thread=thread_id,
            refs=(thread_id,),
            deps=deps,
        )
        assert _submit(stranger, banned.encoded).status_code == 201  # valid, and withheld

        # The relay gets the paid comments by gossip or sync, never the unpaid one.
        paid_text = format_id(TextKind.COMMENT, paid.id)
        banned_text = format_id(TextKind.COMMENT, banned.id)

        def relay_comments() -> dict[str, Any] | None:
            comments = {c["id"]: c for c in relay.api.thread(thread)["comments"]}
            return comments if {paid_text, banned_text} <= comments.keys() else None

        on_relay = wait_until(relay_comments, timeout=60, message="the relay to get both")
        assert on_relay[paid_text]["withheld"] == []
        assert on_relay[banned_text]["withheld"] == ["banned"]
        assert unpaid.encoded not in relay.api.export(thread)
        assert unpaid.encoded not in stranger.api.export(thread)
        # Refused at the relay too, when handed to it directly.
        again = _submit(relay, unpaid.encoded)
        assert again.status_code == 422, again.text

        shown = stranger.cli("show", thread)
        assert shown.returncode == 0, shown.stderr
        assert "I paid my 12 bits" in shown.stdout
        assert "buy my stuff" not in shown.stdout
        assert "withheld by the thread's rules: banned" in shown.stdout
        listed = stranger.cli_json("rules", thread)
        assert listed["difficulty"] == DIFFICULTY


def _counters(daemon: Daemon) -> dict[str, int]:
    network = daemon.api.statistics()["network"]
    return {k: v for k, v in network.items() if isinstance(v, int) and not isinstance(v, bool)}


def test_unpaid_gossip_is_neither_stored_nor_forwarded_and_costs_the_forwarder(
    networking: None, tmp_path: Path
) -> None:
    site = "pow.example"
    with cluster(tmp_path, name="unpaid") as group:
        x = group.start("X")
        y = group.start("Y", bootstrap=[x])  # never connected to the bad peer
        group.wait_connected(y, [x])
        for node in (x, y):
            node.api.follow(site=site)
        thread = x.api.create_thread("pay to post", site=site)
        x.api.post("/api/rules/difficulty", {"thread": thread, "bits": "16"})
        wait_until(
            lambda: (_rules(y, thread) or {}).get("difficulty") == 16,
            timeout=30,
            message="Y to hold the difficulty",
        )
        bad = group.misbehaving_peer(x, f"p2pc/1/site/{site}")
        bad.wait_event("connected", timeout=30)
        mesh = bad.command("wait_mesh", "mesh", timeout=30, seconds=20)
        assert mesh["ok"], mesh
        # A control first: a paid comment goes bad peer -> X -> Y.
        paid = bad.command("paid", "published", timeout=60, thread=thread, bits=16)
        paid_id = str(paid["ids"][0])

        def y_has_paid() -> bool:
            return paid_id in {c["id"] for c in y.api.thread(thread)["comments"]}

        wait_until(y_has_paid, timeout=30, message="the paid comment on Y")
        banned_before = _counters(x)["banned_peers"]
        unpaid = bad.command("unpaid", "published", thread=thread, count=5, bits=16)
        assert unpaid["sent"] == 5

        def banned() -> bool:
            return _counters(x)["banned_peers"] > banned_before

        wait_until(banned, timeout=30, message="X to ban the peer that sent unpaid comments")
        for node in (x, y):
            held = {c["id"] for c in node.api.thread(thread)["comments"]}
            assert not held & set(unpaid["ids"]), f"{node.name} stored an unpaid comment"
        assert _counters(y)["rejected_from_peers"] == 0  # X forwarded none of it
        # Honest traffic still flows between X and Y.
        honest = x.api.comment(thread, "X after the flood")  # the owner pays nothing
        wait_until(
            lambda: honest in {c["id"] for c in y.api.thread(thread)["comments"]},
            timeout=30,
            message="X's comment on Y after the flood",
        )
