#!/usr/bin/env python3
"""Generate protocol/vectors/inbox_topics.json (SPEC §8.2-§8.3, inbox topics) from fixed inputs.

    scripts/gen_inbox_vectors.py           write the file
    scripts/gen_inbox_vectors.py --check   regenerate in memory and compare; exit 1 on a difference

The file holds:

- ``buckets``: author keys with their bucket and inbox topic;
- ``message_ids``: one batch payload and its message id on a site topic and on an inbox topic;
- ``recipients``: a small thread (the signers of thread_views.json: owner, alice, bob, carol) in
  causal order, each operation's bytes with the keys of its recipients, sorted.

Every value comes from the implementation (`core.inbox`, `net.gossip_payload`), so a vector can
never disagree with the code that generated it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:  # run as a script from anywhere
        sys.path.insert(0, str(path))

import gen_vectors as base  # noqa: E402
from vector_file import write_or_check  # noqa: E402

from p2pcomments.core.inbox import INBOX_TOPIC_DOMAIN, inbox_recipients, inbox_topic  # noqa: E402
from p2pcomments.core.ops import (  # noqa: E402
    CommentPayload,
    EditPayload,
    ModAction,
    ModeratePayload,
    Operation,
    Payload,
    ReactPayload,
    ThreadPayload,
    make_operation,
)
from p2pcomments.core.replica import Replica  # noqa: E402
from p2pcomments.core.textform import TextKind, format_id  # noqa: E402
from p2pcomments.net.gossip_payload import encode_batch, message_id  # noqa: E402

OUTPUT = ROOT / "protocol" / "vectors" / "inbox_topics.json"


def buckets() -> list[dict[str, Any]]:
    keys = [("zero", bytes(32)), ("ones", b"\xff" * 32)]
    keys += [(signer.name, signer.public) for signer in base.SIGNERS]
    return [
        {
            "name": name,
            "key": key.hex(),
            "key_text": format_id(TextKind.KEY, key),
            "digest": hashlib.sha256(INBOX_TOPIC_DOMAIN + key).hexdigest(),
            "topic": inbox_topic(key),
        }
        for name, key in keys
    ]


def _story() -> list[tuple[str, Operation]]:
    replica = Replica()
    made: list[tuple[str, Operation]] = []
    clock = [1_700_000_000_000]

    def add(label: str, signer: base.Signer, payload: Payload, ref: Operation | None) -> Operation:
        clock[0] += 1000
        if ref is None:
            op = make_operation(signer.key, payload, timestamp_ms=clock[0])
        else:
            thread_id = made[0][1].id
            deps = replica.thread(thread_id).causal_deps()
            op = make_operation(
                signer.key,
                payload,
                timestamp_ms=clock[0],
                thread=thread_id,
                refs=(ref.id,),
                deps=deps,
            )
        replica.apply(op)
        made.append((label, op))
        return op

    thread = add("thread", base.OWNER, ThreadPayload(title="Inbox vectors"), None)
    question = add("alice comments", base.ALICE, CommentPayload(body="A question?"), thread)
    answer = add("bob replies to alice", base.BOB, CommentPayload(body="An answer."), question)
    add("carol reacts to alice", base.CAROL, ReactPayload(reaction="👍"), question)
    add("alice edits her comment", base.ALICE, EditPayload(body="A better question?"), question)
    add("bob edits his reply", base.BOB, EditPayload(body="A better answer."), answer)
    add("owner hides bob's reply", base.OWNER, ModeratePayload(action=ModAction.HIDE), answer)
    add("alice replies to herself", base.ALICE, CommentPayload(body="Me again."), question)
    return made


def recipients() -> list[dict[str, Any]]:
    made = _story()
    replica = Replica()
    result = []
    for label, op in made:
        replica.apply(op)
        state = replica.thread(made[0][1].id)
        keys = sorted(inbox_recipients(state, op)) if op.thread is not None else []
        result.append(
            {
                "label": label,
                "encoded": op.encoded.hex(),
                "recipients": [key.hex() for key in keys],
                "topics": sorted({inbox_topic(key) for key in keys}),
            }
        )
    return result


def message_ids() -> list[dict[str, Any]]:
    data = encode_batch([op.encoded for _, op in _story()[:2]])
    topics = ["p2pc/1/site/blog.example", inbox_topic(base.ALICE.public)]
    return [
        {"topic": topic, "data": data.hex(), "id": message_id([topic], data).hex()}
        for topic in topics
    ]


def render() -> str:
    document = {
        "description": "Inbox topics (SPEC §8.2) and gossip message ids (SPEC §8.3).",
        "domain": INBOX_TOPIC_DOMAIN.decode(),
        "signers": [s.describe() for s in base.SIGNERS],
        "buckets": buckets(),
        "message_ids": message_ids(),
        "recipients": recipients(),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.exit(write_or_check(OUTPUT, render, description=__doc__.split("\n\n")[0]))
