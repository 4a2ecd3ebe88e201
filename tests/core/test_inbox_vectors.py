"""protocol/vectors/inbox_topics.json (SPEC §8.2): kept true by its generator, and read back."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from p2pcomments.core.inbox import inbox_recipients, inbox_topic
from p2pcomments.core.ops import decode_operation
from p2pcomments.core.replica import Replica

ROOT = Path(__file__).resolve().parents[2]
VECTORS: dict[str, Any] = json.loads(
    (ROOT / "protocol" / "vectors" / "inbox_topics.json").read_text(encoding="utf-8")
)


def test_gen_inbox_vectors_check_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_inbox_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_buckets_are_the_first_byte_of_the_domain_separated_hash() -> None:
    assert VECTORS["buckets"][0]["topic"] == "p2pc/1/inbox/b6"  # the zero key, as SPEC §8.2 says
    for vector in VECTORS["buckets"]:
        key = bytes.fromhex(vector["key"])
        digest = hashlib.sha256(VECTORS["domain"].encode() + key).hexdigest()
        assert digest == vector["digest"]
        assert vector["topic"] == f"p2pc/1/inbox/{digest[:2]}" == inbox_topic(key)


def test_recipients_of_each_operation_of_the_story() -> None:
    replica = Replica()
    thread_id = None
    seen = []
    for vector in VECTORS["recipients"]:
        op = decode_operation(bytes.fromhex(vector["encoded"]))
        replica.apply(op)
        thread_id = thread_id or op.id
        expected = [bytes.fromhex(key) for key in vector["recipients"]]
        assert sorted(inbox_recipients(replica.thread(thread_id), op)) == expected
        seen.append(len(expected))
    assert seen.count(0) == 2  # the thread, and a reply to oneself
