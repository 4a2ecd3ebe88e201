"""Rules travel with the thread (SPEC §11): the owner's node sets a difficulty and a ban, goes
offline; a relay passes the rules on; a node that never talked to the owner refuses an unpaid
comment (neither stored nor forwarded), takes a paid one, withholds the banned author's, and its
CLI's queue and rules say so. The same for the modes (pre-moderated, members only, read-only)
and who may reply (approved authors, nobody new): withheld on a stranger's node, with the reason,
until the owner, back online behind the relay, approves. Real daemons, one process each, on
127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import CommentPayload, make_operation
from p2pcomments.core.pow import mine
from p2pcomments.core.rules import leading_zero_bits
from p2pcomments.core.textform import TextKind, format_id, parse_id

from .harness import Cluster, Daemon, cluster, wait_until

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


# -- modes and reply gates, on a node that never talked to the owner ------------------------------


@dataclass(frozen=True)
class Gated:
    """The daemons and threads of the modes-and-replies scenario (one set for the module)."""

    group: Cluster
    owner: Daemon
    relay: Daemon
    stranger: Daemon
    member: SigningKey  # an author the owner approved in every thread but the pre-moderated one
    newcomer: SigningKey  # approved by nobody, yet
    threads: dict[str, str]  # pre-moderated, members-only, read-only, replies-approved, -closed
    roots: dict[str, str]  # the owner's comment in each replies thread


@pytest.fixture(scope="module")
def gated(networking: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gated]:
    """The owner sets a mode or a reply gate on each of five threads, a relay takes them, the
    owner goes offline, and a stranger (bootstrapped from the relay alone) syncs them."""
    with cluster(tmp_path_factory.mktemp("gated"), name="gated") as group:
        owner = group.start("owner")
        relay = group.start("relay", bootstrap=[owner])
        group.wait_connected(relay, [owner])
        member, newcomer = SigningKey.generate(), SigningKey.generate()
        member_key = format_id(TextKind.KEY, bytes(member.verify_key))
        threads = {name: owner.api.create_thread(name) for name in _SETTINGS}
        roots = {
            name: owner.api.comment(threads[name], f"the owner opens {name}")
            for name in ("replies-approved", "replies-closed")
        }
        for name, (path, body) in _SETTINGS.items():
            owner.api.post(path, {"thread": threads[name], **body})
            if name != "pre-moderated":
                owner.api.post("/api/rules/approved", {"thread": threads[name], "key": member_key})
        group.wait_converged([owner, relay], timeout=60)
        owner.stop()  # offline until the pre-moderation test brings it back

        stranger = group.start("stranger", bootstrap=[relay])
        group.wait_connected(stranger, [relay])
        group.wait_converged([relay, stranger], timeout=60)
        for name, (_, body) in _SETTINGS.items():
            rules = stranger.api.get(f"/api/threads/{threads[name]}/rules")["thread"]
            field, value = next(iter(body.items()))
            assert rules["mode" if field == "mode" else "replies"] == value, (name, rules)
            assert rules["approved_authors"] == ([] if name == "pre-moderated" else [member_key])
        yield Gated(group, owner, relay, stranger, member, newcomer, threads, roots)


_SETTINGS: dict[str, tuple[str, dict[str, str]]] = {
    "pre-moderated": ("/api/rules/mode", {"mode": "pre-moderated"}),
    "members-only": ("/api/rules/mode", {"mode": "members-only"}),
    "read-only": ("/api/rules/mode", {"mode": "read-only"}),
    "replies-approved": ("/api/rules/replies", {"who": "approved"}),
    "replies-closed": ("/api/rules/replies", {"who": "nobody-new"}),
}


def _post_as(
    daemon: Daemon, key: SigningKey, thread: str, body: str, *, to: str | None = None
) -> str:
    """A comment (or a reply to comment ``to``) by ``key``, built here and handed to ``daemon``;
    its id."""
    thread_id = parse_id(thread)
    deps = tuple(parse_id(d) for d in daemon.api.thread(thread)["deps"])
    op = make_operation(
        key,
        CommentPayload(body=body),
        timestamp_ms=time.time_ns() // 1_000_000,
        thread=thread_id,
        refs=(parse_id(to) if to is not None else thread_id,),
        deps=deps,
    )
    response = _submit(daemon, op.encoded)
    assert response.status_code == 201, response.text
    return format_id(TextKind.COMMENT, op.id)


def _withheld(daemon: Daemon, thread: str, ids: Iterable[str]) -> dict[str, list[str]]:
    """Each of ``ids``'s withheld reasons in ``daemon``'s thread JSON, once it holds them all."""
    wanted = set(ids)

    def held() -> dict[str, list[str]] | None:
        comments = {c["id"]: c for c in daemon.api.thread(thread)["comments"]}
        if not wanted <= comments.keys():
            return None
        return {i: list(comments[i]["withheld"]) for i in wanted}

    return wait_until(held, timeout=30, message=f"{daemon.name} to hold {sorted(wanted)}")


def test_members_only_and_read_only_hold_on_a_node_that_never_met_the_owner(
    gated: Gated,
) -> None:
    s = gated.stranger
    members, read_only = gated.threads["members-only"], gated.threads["read-only"]
    outsider = s.api.comment(members, "let me in")  # the stranger's own key: not a member
    insider = _post_as(s, gated.member, members, "a member speaks")
    assert _withheld(s, members, [outsider, insider]) == {
        outsider: ["members-only"],
        insider: [],
    }
    # Read-only: only the exempt (owner, moderators) are shown; approval is not enough.
    loud = s.api.comment(read_only, "anyone there?")
    approved = _post_as(s, gated.member, read_only, "approved, still read-only")
    assert _withheld(s, read_only, [loud, approved]) == {
        loud: ["read-only"],
        approved: ["read-only"],
    }
    # The relay, which saw the rules from the owner, agrees.
    assert _withheld(gated.relay, members, [outsider, insider])[outsider] == ["members-only"]
    queue = s.api.get(f"/api/queue?thread={members}")["waiting"]
    assert [(e["id"], e["withheld"]) for e in queue] == [(outsider, ["members-only"])]


def test_who_may_reply_holds_on_a_node_that_never_met_the_owner(gated: Gated) -> None:
    s = gated.stranger
    gate, closed = gated.threads["replies-approved"], gated.threads["replies-closed"]
    # Approved authors only: a newcomer's reply waits, a member's is shown; top-level comments
    # are not replies and pass.
    newcomer = _post_as(s, gated.newcomer, gate, "me too", to=gated.roots["replies-approved"])
    member = _post_as(s, gated.member, gate, "a member replies", to=gated.roots["replies-approved"])
    top = _post_as(s, gated.newcomer, gate, "a comment of my own")
    assert _withheld(s, gate, [newcomer, member, top]) == {
        newcomer: ["replies-approved"],
        member: [],
        top: [],
    }
    # Nobody new: only the exempt may reply, an approved author included.
    stranger = s.api.reply(gated.roots["replies-closed"], "hello?")
    approved = _post_as(s, gated.member, closed, "may I?", to=gated.roots["replies-closed"])
    top = s.api.comment(closed, "a comment, not a reply")
    assert _withheld(s, closed, [stranger, approved, top]) == {
        stranger: ["replies-closed"],
        approved: ["replies-closed"],
        top: [],
    }
    # replies-closed is not waiting for anyone (SPEC §11.3: the queue has replies-approved).
    waiting = {
        e["id"] for t in (gate, closed) for e in s.api.get(f"/api/queue?thread={t}")["waiting"]
    }
    assert waiting == {newcomer}


def test_pre_moderation_holds_until_the_owner_approves(gated: Gated) -> None:
    s, owner, relay = gated.stranger, gated.owner, gated.relay
    thread = gated.threads["pre-moderated"]
    by_stranger = s.api.comment(thread, "first!")
    by_newcomer = _post_as(s, gated.newcomer, thread, "hello from a newcomer")
    assert _withheld(s, thread, [by_stranger, by_newcomer]) == {
        by_stranger: ["pre-moderated"],
        by_newcomer: ["pre-moderated"],
    }
    shown = s.cli("show", thread)
    assert shown.returncode == 0, shown.stderr
    assert "first!" not in shown.stdout
    # The owner comes back (through the relay only), approves one comment and the other author.
    owner.restart(bootstrap=[relay.multiaddr])
    gated.group.wait_connected(owner, [relay])
    _withheld(owner, thread, [by_stranger, by_newcomer])  # the owner holds both
    newcomer_key = format_id(TextKind.KEY, bytes(gated.newcomer.verify_key))
    owner.api.post(f"/api/comments/{by_stranger}/approve", {})
    owner.api.post("/api/rules/approved", {"thread": thread, "key": newcomer_key})
    wait_until(
        lambda: (
            _withheld(s, thread, [by_stranger, by_newcomer]) == {by_stranger: [], by_newcomer: []}
        ),
        timeout=60,
        message="the stranger to show both once the owner approved them",
        describe=lambda: repr(_withheld(s, thread, [by_stranger, by_newcomer])),
    )
    assert owner.peer_id not in s.api.peer_ids()  # the approvals came through the relay
    # The newcomer is approved from now on: a later comment is shown at once.
    later = _post_as(s, gated.newcomer, thread, "approved now")
    assert _withheld(s, thread, [later]) == {later: []}
    shown = s.cli("show", thread)
    assert shown.returncode == 0, shown.stderr
    assert "first!" in shown.stdout
