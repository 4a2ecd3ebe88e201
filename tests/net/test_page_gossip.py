"""Page threads travel by gossip like any thread: the validator asks core's one authenticity rule
(`verify_operation`), under which a page thread is authentic without a signature."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from nacl.signing import SigningKey
from test_node_network import connect, eventually, open_peers, wait_topic_peer

from p2pcomments.core.ops import CommentPayload, make_operation, page_thread
from p2pcomments.follows import site_topic

POST = "https://www.exemple.fr/2024/03/l-été-où-tout-a-changé-…/"
SITE = "www.exemple.fr"


@pytest.mark.trio
async def test_a_page_thread_and_its_first_comment_travel_by_gossip(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_peers(tmp_path, 2) as (a, b):
            await a.network.follow(site=SITE)
            await b.network.follow(site=SITE)
            await connect(a, b)
            await wait_topic_peer(a, b, site_topic(SITE))
            owner = bytes(SigningKey(b"\x09" * 32).verify_key)  # offline, on neither node
            page = page_thread(owner, POST)
            comment = make_operation(
                SigningKey(b"\x0a" * 32),
                CommentPayload(body="Bonjour"),
                timestamp_ms=1_767_225_600_000,
                thread=page.id,
                refs=(page.id,),
            )
            # What a gateway does with a reader's submission: check, store, publish.
            await a.node.submit_operations([page.encoded, comment.encoded])
            await eventually(lambda: comment.id in b.node.replica)
            assert b.node.get_operation(page.id).encoded == page.encoded  # type: ignore[union-attr]
            assert b.network.counters().gossip_ops_in >= 2
            assert b.network.counters().rejected_from_peers == 0
            assert not b.network.host.is_banned(a.peer_id)


def test_only_core_ops_checks_signatures() -> None:
    """One rule, one place: nothing outside core/ops.py calls the bare signature check, which
    knows nothing of page threads."""
    package = Path(__file__).resolve().parents[2] / "p2pcomments"
    callers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "ops.py" and "verify_signature(" in path.read_text(encoding="utf-8")
    ]
    assert callers == []
