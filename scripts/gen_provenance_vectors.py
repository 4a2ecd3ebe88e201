#!/usr/bin/env python3
"""Generate protocol/vectors/provenance.json: comments that carry provenance (SPEC §2).

    scripts/gen_provenance_vectors.py           write the file
    scripts/gen_provenance_vectors.py --check   regenerate in memory and compare (exit 1 if not)

What it holds:

- ``valid``: comment operations whose payload is ``[body, provenance]`` (an imported WordPress
  comment, a pingback, a trackback, a Disqus comment with no author URL, an empty original
  author name), each with its bytes, id and signature as in operations.json, and the provenance
  fields decoded.
- ``invalid``: comment payloads with a provenance a decoder must refuse, each with its reason.
- ``history``: a page thread, its retitle, imported comments and a reply written here afterwards,
  in the shape of thread_views.json's histories: the view, digest included. Provenance is not in
  the digest (SPEC §6.4): the digest rows are those of any comment.

Every expectation is first checked against our implementation.
"""

from __future__ import annotations

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

from p2pcomments.core.ops import (  # noqa: E402
    CommentPayload,
    EntryKind,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    Provenance,
    decode_operation,
    make_operation,
    page_thread,
)
from p2pcomments.core.replica import Applied, Replica  # noqa: E402

VECTORS = ROOT / "protocol" / "vectors"
OWNER = base.OWNER
URL = "https://blog.example/2012/01/24/hello"
T_POST = 1_327_363_200_000  # 2012-01-24T00:00:00Z
T_COMMENT = 1_327_406_400_000  # 2012-01-24T12:00:00Z


def provenance_json(provenance: Provenance) -> dict[str, Any]:
    return {
        "source": provenance.source,
        "original_id": provenance.original_id,
        "author_name": provenance.author_name,
        "author_url": provenance.author_url,
        "original_timestamp_ms": provenance.original_timestamp_ms,
        "entry_kind": int(provenance.entry_kind),
        "entry_kind_name": provenance.entry_kind.name.lower(),
    }


def operation_json(op: Operation) -> dict[str, Any]:
    vector = base.operation_json(op)
    payload = op.payload
    assert isinstance(payload, CommentPayload)
    if payload.provenance is not None:
        vector["unsigned"]["payload"]["provenance"] = provenance_json(payload.provenance)
    assert decode_operation(op.encoded) == op
    return vector


THREAD = page_thread(OWNER.public, URL)


def imported(
    original_id: str,
    body: str,
    *,
    name: str = "Zoé Martin",
    url: str | None = "https://zoe.example/",
    kind: EntryKind = EntryKind.COMMENT,
    source: str = "wordpress",
    at: int = T_COMMENT,
    parent: bytes | None = None,
) -> Operation:
    provenance = Provenance(
        source=source,
        original_id=original_id,
        author_name=name,
        author_url=url,
        original_timestamp_ms=at,
        entry_kind=kind,
    )
    return make_operation(
        OWNER.key,
        CommentPayload(body=body, provenance=provenance),
        timestamp_ms=at,
        thread=THREAD.id,
        refs=(parent or THREAD.id,),
    )


FIRST = imported("17", "« Bonjour » : c\u2019est l\u2019été… 🎉")
REPLY = imported(
    "18", "A reply, imported.", name="", url=None, at=T_COMMENT + 60_000, parent=FIRST.id
)
PINGBACK = imported(
    "19", "[…] a pingback […]", name="Another blog", kind=EntryKind.PINGBACK, at=T_COMMENT + 1
)
TRACKBACK = imported(
    "20", "[…] a trackback […]", name="A third blog", kind=EntryKind.TRACKBACK, at=T_COMMENT + 2
)
DISQUS = imported("299619020", "From Disqus.", source="disqus", url=None, at=T_COMMENT + 3)


def valid() -> list[dict[str, Any]]:
    cases = [
        ("a WordPress comment with author URL", FIRST),
        ("a reply with an empty original author and no URL", REPLY),
        ("a pingback", PINGBACK),
        ("a trackback", TRACKBACK),
        ("a Disqus comment", DISQUS),
    ]
    return [{"label": label, "operation": operation_json(op)} for label, op in cases]


def _with_provenance(provenance: object) -> bytes:
    fields = base._fields(base.ALICE, payload=("hello", provenance), timestamp_ms=T_COMMENT)
    return base.sign_fields(base.ALICE, fields)


GOOD = ("wordpress", "17", "Zoé", "https://zoe.example/", T_COMMENT, 1)


def _changed(index: int, value: object) -> tuple[object, ...]:
    return tuple(value if i == index else v for i, v in enumerate(GOOD))


INVALID: list[tuple[str, str, object]] = [
    ("provenance not an array", "bad-field", "wordpress"),
    ("provenance with 5 fields", "bad-field", GOOD[:5]),
    ("provenance with 7 fields", "bad-field", (*GOOD, 0)),
    ("empty source", "bad-field", _changed(0, "")),
    ("source over 32 bytes", "oversize", _changed(0, "s" * 33)),
    ("empty original id", "bad-field", _changed(1, "")),
    ("original id over 256 bytes", "oversize", _changed(1, "9" * 257)),
    ("original author over 256 bytes", "oversize", _changed(2, "é" * 129)),
    ("original author with a newline", "bad-text", _changed(2, "Zo\né")),
    ("original author not NFC", "bad-text", _changed(2, "Zoe\u0301")),
    ("empty author URL (nil means none)", "bad-field", _changed(3, "")),
    ("author URL over 2048 bytes", "oversize", _changed(3, "h" * 2049)),
    ("original timestamp not an integer", "bad-field", _changed(4, "2012")),
    ("entry kind 0", "bad-field", _changed(5, 0)),
    ("entry kind 4", "bad-field", _changed(5, 4)),
    ("author URL as bytes", "bad-field", _changed(3, b"https://zoe.example/")),
]


def invalid() -> list[dict[str, Any]]:
    cases = []
    for label, reason, provenance in INVALID:
        encoded = _with_provenance(provenance)
        got = base.decode_reason(encoded)
        assert got == reason, (label, got, reason)
        cases.append({"label": label, "reason": reason, "encoded": encoded.hex()})
    return cases


def history() -> dict[str, Any]:
    retitle = make_operation(
        OWNER.key,
        ModeratePayload(action=ModAction.RETITLE, reason="Hello, 2012"),
        timestamp_ms=T_POST,
        thread=THREAD.id,
        refs=(THREAD.id,),
    )
    answer = make_operation(
        base.ALICE.key,
        CommentPayload(body="Written here, years later."),
        timestamp_ms=base.T0,
        thread=THREAD.id,
        refs=(FIRST.id,),
        deps=(REPLY.id, PINGBACK.id, TRACKBACK.id, DISQUS.id, retitle.id),
    )
    ops = [THREAD, retitle, FIRST, REPLY, PINGBACK, TRACKBACK, DISQUS, answer]
    replica = Replica()
    for op in ops:
        assert isinstance(replica.apply(op).outcome, Applied)
    view = replica.view(THREAD.id)
    kinds = {op.id: op.kind for op in ops}
    assert all(kinds[c.id] is Kind.COMMENT for c in view.comments)
    return {
        "description": "A page thread with imported comments (provenance) and a reply written"
        " here; the digest has the rows of §6.4, provenance not among them.",
        "operations": [op.encoded.hex() for op in ops],
        "view": base.view_json(view),
        "view_digest_preimage": base.digest_preimage(view).hex(),
        "view_digest": view.digest().hex(),
        "provenance": {
            c.id.hex(): provenance_json(c.provenance) for c in view.comments if c.provenance
        },
    }


def render() -> str:
    document = {
        "description": "Comments with provenance (SPEC §2): payload [body, provenance], "
        "provenance = [source, original_id, author_name, author_url or nil, "
        "original_timestamp_ms, entry_kind (1 comment, 2 pingback, 3 trackback)].",
        "owner": OWNER.describe(),
        "signers": [OWNER.describe(), base.ALICE.describe()],
        "valid": valid(),
        "invalid": invalid(),
        "history": history(),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.exit(
        write_or_check(
            VECTORS / "provenance.json", render, description="comment provenance vectors"
        )
    )
