"""Issue 12's "done": an author's node that does not follow a thread receives the reply to its
comment posted on another node — promptly by its inbox topic (SPEC §8.2), and, when it was down
at the time, by sync once it is back (SPEC §9.2).

Real daemons, one process each, on 127.0.0.1 (harness.py). Periodic sync is off on the author's
node, so the prompt delivery can only be gossip on the inbox topic; the counters say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2pcomments.core.inbox import inbox_topic
from p2pcomments.core.textform import TextKind, parse_id

from .harness import Daemon, cluster, wait_until

pytestmark = [pytest.mark.network, pytest.mark.slow]

SITE = "inbox.example"


def _inbox_ids(daemon: Daemon) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in daemon.api.get("/api/inbox")["entries"]}


def _find(document: Any, key: str) -> Any:
    """The first value under ``key`` anywhere in a JSON document (the network JSON nests)."""
    if isinstance(document, dict):
        if key in document:
            return document[key]
        for value in document.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


def _sync_counters(daemon: Daemon) -> tuple[int, int]:
    """(sync rounds, operations received by sync) from one snapshot: a session adds to both as
    it ends, so two separate reads could see one without the other."""
    statistics = daemon.api.statistics()
    return int(_find(statistics, "sync_rounds") or 0), int(
        _find(statistics, "sync_ops_received") or 0
    )


def test_a_reply_reaches_an_author_whose_node_does_not_follow_the_thread(
    networking: None, tmp_path: Path
) -> None:
    with cluster(tmp_path, name="inbox") as group:
        blog = group.start("blog", sync_interval=0)
        blog.api.follow(site=SITE)
        thread = blog.api.create_thread("A post", site=SITE)
        author = group.start("author", bootstrap=[blog], sync_interval=0)
        group.wait_connected(author, [blog])
        wait_until(
            lambda: thread in {t["id"] for t in author.api.threads()},
            timeout=60,
            message="the author's node to hold the thread (sync on connect)",
        )
        mine = author.api.comment(thread, "What do you think?")
        author.api.sync()  # on demand: the blog's node now holds the author's comment
        wait_until(
            lambda: any(c["id"] == mine for c in blog.api.thread(thread)["comments"]),
            timeout=60,
            message="the blog's node to hold the author's comment",
        )
        # The author's node stops following the site: no site topic, only its inbox bucket.
        response = author.api.http.request("DELETE", "/api/follows", json={"site": SITE})
        assert response.status_code == 200, response.text
        author_key = parse_id(author.api.get("/api/id")["author"], expect=frozenset({TextKind.KEY}))
        bucket = inbox_topic(author_key)
        wait_until(
            lambda: (
                (topics := _find(author.api.network(), "topics")) is not None
                and f"p2pc/1/site/{SITE}" not in topics
                and bucket in topics
            ),
            timeout=60,
            message=f"the author's node to leave the site topic and be in {bucket}",
            describe=lambda: str(_find(author.api.network(), "topics")),
        )
        rounds_before, synced_before = _sync_counters(author)

        reply = blog.api.reply(mine, "I agree.")
        entries = wait_until(
            lambda: (found := _inbox_ids(author)) and reply in found and found,
            timeout=60,
            message="the reply in the author's inbox",
            describe=lambda: f"author inbox: {_inbox_ids(author)}",
        )
        entry = entries[reply]
        assert entry["kind"] == "reply"
        assert entry["subject"] == mine
        assert entry["text"] == "I agree."
        assert entry["read"] is False
        rounds, synced = _sync_counters(author)
        if rounds == rounds_before:  # no reconnection meanwhile (load)
            assert synced == synced_before  # so it came by gossip, not by sync
        listed = author.cli_json("inbox")
        assert [e["id"] for e in listed["entries"]] == [reply]

        # Offline: the author's node is down when the next reply is posted.
        author.stop()
        later = blog.api.reply(mine, "Also: welcome!")
        blog.restart()  # its gossip cache is gone: only sync can bring the reply now
        author.restart(bootstrap=[blog.multiaddr])
        wait_until(
            lambda: later in _inbox_ids(author),
            timeout=60,
            message="the reply made while the author's node was down, after it came back",
            describe=lambda: f"author inbox: {_inbox_ids(author)}",
        )
        # It came by sync on reconnecting. A session counts what it received when it ends, and it
        # ingests (so the inbox lists the reply) before that: wait for the count, bounded.
        wait_until(
            lambda: _sync_counters(author)[1] > 0,
            timeout=30,
            message="the author's sync session that brought the reply to be counted",
            describe=lambda: str(_find(author.api.statistics(), "sync_ops_received")),
        )
        unread = author.cli_json("inbox")
        assert {e["id"] for e in unread["entries"]} == {reply, later}
        marked = author.cli_json("inbox", "mark-read", "--all")
        assert marked["marked"] == 2
        assert author.cli_json("inbox")["entries"] == []
        assert author.api.get("/api/inbox")["unread"] == 0
