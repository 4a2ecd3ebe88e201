"""``p2pc inbox`` as a user runs it: offline on the data dir, and ``--watch`` through a daemon."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import trio
from api.processes import interruptible_p2pc, ok, ok_json, read_line, running_daemon
from nacl.signing import SigningKey

from p2pcomments.api.bundle import encode_bundle
from p2pcomments.core.ops import CommentPayload, Operation, make_operation
from p2pcomments.core.textform import TextKind, format_id, parse_id
from p2pcomments.node import open_node

pytestmark = pytest.mark.network

STRANGER = SigningKey(b"\x31" * 32)


def _reply_to(thread: bytes, parent: bytes, body: str) -> Operation:
    return make_operation(
        STRANGER,
        CommentPayload(body=body),
        timestamp_ms=time.time_ns() // 1_000_000,
        thread=thread,
        refs=(parent,),
        deps=(parent,),
    )


def _prepared(data_dir: Path) -> tuple[str, str]:
    """A data dir whose author commented and got one reply; (comment id, reply id)."""

    async def prepare() -> tuple[bytes, bytes]:
        async with open_node(data_dir, create_identity=True) as node:
            thread = await node.create_thread("Offline")
            mine = await node.comment(thread.id, "Anyone?")
            reply = _reply_to(thread.id, mine.id, "Me.")
            await node.ingest([reply.encoded], source="import")
            return mine.id, reply.id

    mine, reply = trio.run(prepare)
    return format_id(TextKind.COMMENT, mine), format_id(TextKind.COMMENT, reply)


def test_the_inbox_offline_lists_marks_and_says_what_is_left(tmp_path: Path) -> None:
    mine, reply = _prepared(tmp_path)
    text = ok(tmp_path, "inbox")
    assert "replied to your comment “Anyone?”" in text
    assert "Me." in text
    assert reply[:12] in text
    assert text.splitlines()[-1] == "1 unread of 1"
    listed = ok_json(tmp_path, "inbox")
    assert [(e["id"], e["subject"], e["read"]) for e in listed["entries"]] == [(reply, mine, False)]
    assert ok_json(tmp_path, "inbox", "mark-read", "--all")["marked"] == 1
    assert ok(tmp_path, "inbox") == "no unread entries (1 read; --all lists them)"
    assert ok_json(tmp_path, "inbox")["entries"] == []
    everything = ok_json(tmp_path, "inbox", "--all")
    assert [(e["id"], e["read"]) for e in everything["entries"]] == [(reply, True)]


def test_inbox_watch_prints_each_new_entry_through_the_daemon(tmp_path: Path) -> None:
    mine, _ = _prepared(tmp_path / "home")
    home = tmp_path / "home"
    with (
        running_daemon(home, tmp_path / "logs") as daemon,
        interruptible_p2pc(home, "--json", "inbox", "--watch") as watcher,
    ):
        assert watcher.stderr is not None
        assert watcher.stdout is not None
        assert read_line(watcher.stderr).startswith("watching the inbox")
        state = daemon.info
        thread = httpx.get(f"{daemon.url}/api/threads", timeout=15).json()["threads"][0]["id"]
        reply = _reply_to(parse_id(thread), parse_id(mine), "Live reply")
        response = httpx.post(
            f"{daemon.url}/api/import",
            content=encode_bundle([reply.encoded]),
            headers={
                "Authorization": f"Bearer {state['token']}",
                "Content-Type": "application/x-ndjson",
            },
            timeout=15,
        )
        assert response.status_code == 200, response.text
        entry = json.loads(read_line(watcher.stdout))
        assert entry["id"] == format_id(TextKind.COMMENT, reply.id)
        assert (entry["kind"], entry["text"]) == ("reply", "Live reply")
        os.kill(watcher.pid, signal.SIGINT)  # Ctrl-C ends the watch cleanly
        assert watcher.wait(timeout=20) == 0
