"""A public gateway on the network: a comment a reader's browser signed, submitted to gateway A,
reaches daemon B (another process, peered with A); B's own gateway shows it on the page, and a
reply submitted to B comes back to A. Neither gateway can alter what it relays."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey

from p2pcomments.core.ops import CommentPayload, make_operation, page_thread
from p2pcomments.core.textform import TextKind, format_id, parse_id
from p2pcomments.net.gossip_payload import encode_batch

from .harness import cluster, wait_until

pytestmark = [pytest.mark.network]

OPS = "application/vnd.p2pcomments.ops"
POST = "https://www.exemple.fr/2024/03/l-été-où-tout-a-changé-…/"
GATEWAY = ["--public", "127.0.0.1:0"]


def _page(client: httpx.Client, owner: str) -> dict[str, object]:
    response = client.get("/api/page", params={"url": POST, "owner": owner})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _bodies(client: httpx.Client, owner: str) -> list[object]:
    comments = _page(client, owner)["comments"]
    assert isinstance(comments, list)
    return [comment["body"] for comment in comments]


def test_a_comment_submitted_to_gateway_a_reaches_b_and_a_reply_comes_back(
    networking: None, tmp_path: Path
) -> None:
    with cluster(tmp_path, name="gateway") as group:
        a = group.start("A", extra_args=GATEWAY)
        b = group.start("B", bootstrap=[a], extra_args=GATEWAY)
        group.wait_connected(b, [a])
        owner_key = SigningKey.generate()  # the blogger: offline, on neither node
        owner = format_id(TextKind.KEY, bytes(owner_key.verify_key))
        page = page_thread(parse_id(owner), POST)
        reader = SigningKey.generate()
        comment = make_operation(
            reader,
            CommentPayload(body="Écrit dans le navigateur, envoyé à A"),
            timestamp_ms=time.time_ns() // 1_000_000,
            thread=page.id,
            refs=(page.id,),
        )
        with (
            httpx.Client(base_url=a.api_info["public_url"], timeout=15) as gateway_a,
            httpx.Client(base_url=b.api_info["public_url"], timeout=15) as gateway_b,
        ):
            assert _page(gateway_b, owner)["exists"] is False
            sent = gateway_a.post(
                "/api/ops",
                content=encode_batch([page.encoded, comment.encoded]),
                headers={"Content-Type": OPS},
            )
            assert sent.status_code == 201, sent.text
            wait_until(
                lambda: _bodies(gateway_b, owner) == ["Écrit dans le navigateur, envoyé à A"],
                timeout=30,
                message="B's gateway to show the comment submitted to A",
                describe=lambda: f"B shows {_bodies(gateway_b, owner)}",
            )
            # B holds the very bytes the browser signed.
            assert b.api.export(format_id(TextKind.THREAD, page.id)) == [
                page.encoded,
                comment.encoded,
            ]
            on_b = _page(gateway_b, owner)
            assert format_id(TextKind.COMMENT, comment.id) in on_b["deps"]  # type: ignore[operator]
            reply = make_operation(
                SigningKey.generate(),
                CommentPayload(body="Réponse envoyée à B"),
                timestamp_ms=time.time_ns() // 1_000_000,
                thread=page.id,
                refs=(comment.id,),
                deps=(comment.id,),
            )
            answered = gateway_b.post(
                "/api/ops",
                content=reply.encoded,
                headers={"Content-Type": "application/vnd.p2pcomments.op"},
            )
            assert answered.status_code == 201, answered.text
            assert answered.json()["state"] == "valid"
            wait_until(
                lambda: len(_bodies(gateway_a, owner)) == 2,
                timeout=30,
                message="A's gateway to show the reply submitted to B",
                describe=lambda: f"A shows {_bodies(gateway_a, owner)}",
            )
            rows = _page(gateway_a, owner)["comments"]
            assert isinstance(rows, list)
            assert [(row["depth"], row["body"]) for row in rows] == [
                (0, "Écrit dans le navigateur, envoyé à A"),
                (1, "Réponse envoyée à B"),
            ]
