"""Claims (SPEC §2, claims) between two real nodes (SQLite data dirs), in process: the owner
imports a WordPress export, a second identity claims one imported comment, the owner accepts, and
every view (thread JSON, CLI text, the /t/ page) shows it as the claimant's, on both nodes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from api.processes import ok, ok_json, run_p2pc, running_daemon

from p2pcomments.api.pages import thread_page
from p2pcomments.api.representations import thread_json
from p2pcomments.cli.render import render_thread
from p2pcomments.core.ops import ModAction, ModeratePayload
from p2pcomments.core.replica import Applied, Duplicate
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.errors import AuthorizationError, InvalidOperation, NotFound
from p2pcomments.importers import import_export
from p2pcomments.node import Node, open_node
from tests.importers.conftest import fixture


async def _copy(source: Node, target: Node) -> None:
    outcomes = await target.ingest(source.export_operations(), source="import")
    assert all(isinstance(o, Applied | Duplicate) for o in outcomes), outcomes


def _imported_comment(node: Node) -> tuple[bytes, bytes]:
    for summary in node.threads():
        for comment in node.thread_view(summary.id).comments:
            if comment.provenance is not None and comment.provenance.author_name:
                return summary.id, comment.id
    raise AssertionError("no imported comment")


@pytest.mark.trio
async def test_a_writer_claims_an_imported_comment_and_the_owner_accepts(
    tmp_path: Path, node: Node
) -> None:
    await import_export(node, fixture("isso/wordpress.xml"), source="wordpress")
    thread_id, comment_id = _imported_comment(node)
    async with open_node(tmp_path / "zoe", create_identity=True) as zoe:
        await zoe.set_profile("Zoé Martin")
        await _copy(node, zoe)

        claim = await zoe.claim(comment_id, note="my old blog comment")
        assert isinstance(claim.payload, ModeratePayload)
        assert claim.payload.action is ModAction.CLAIM
        assert claim.target == comment_id
        # Not yet accepted: nothing shows it as Zoé's.
        assert all(c.claimed_by is None for c in zoe.thread_view(thread_id).comments)
        # Only the owner accepts; the claimant can't accept their own claim.
        with pytest.raises(AuthorizationError) as refused:
            await zoe.accept_claim(claim.id)
        assert refused.value.reason == "not-owner"

        await _copy(zoe, node)
        # The owner sees the claim in the inbox, under its id.
        claims = [e for e in node.inbox_entries() if e.action is ModAction.CLAIM]
        assert [(e.id, e.text) for e in claims] == [(claim.id, "my old blog comment")]
        accept = await node.accept_claim(claim.id)
        assert accept.target == claim.id
        assert isinstance(accept.payload, ModeratePayload)
        assert accept.payload.subject == zoe.author
        await _copy(node, zoe)

        for holder in (node, zoe):
            view = holder.thread_view(thread_id)
            claimed = [c for c in view.comments if c.claimed_by is not None]
            assert [c.id for c in claimed] == [comment_id]
            assert claimed[0].claimed_by == zoe.author
            assert claimed[0].claimed_by_name == "Zoé Martin"
            assert claimed[0].author == node.author  # the importer stays its author
        view = node.thread_view(thread_id)
        assert view.digest() == zoe.thread_view(thread_id).digest()

        document = thread_json(view)
        row = next(c for c in document["comments"] if c["id"].endswith(comment_id_text(comment_id)))
        assert row["claimed_by"] == format_id(TextKind.KEY, zoe.author)
        assert row["claimed_by_name"] == "Zoé Martin"
        assert all(c["claimed_by"] is None for c in document["comments"] if c is not row)
        text = render_thread(document, now_ms=2_000_000_000_000)
        assert "· claimed by Zoé Martin" in text
        assert "imported from WordPress, " in text
        page = thread_page(view)
        assert "· claimed by Zoé Martin</span>" in page


def comment_id_text(comment_id: bytes) -> str:
    return format_id(TextKind.COMMENT, comment_id).partition("_")[2]


@pytest.mark.trio
async def test_claims_refused_with_readable_errors(tmp_path: Path, node: Node) -> None:
    await import_export(node, fixture("isso/wordpress.xml"), source="wordpress")
    thread_id, comment_id = _imported_comment(node)
    written_here = await node.reply(comment_id, "Written here, not imported.")
    with pytest.raises(InvalidOperation) as not_imported:
        await node.claim(written_here.id)
    assert not_imported.value.reason == "bad-reference"
    assert "imported comment" in str(not_imported.value)
    with pytest.raises(NotFound) as not_a_claim:
        await node.accept_claim(written_here.id)
    assert not_a_claim.value.reason == "not-a-claim"
    with pytest.raises(NotFound):
        await node.accept_claim(bytes(32))
    with pytest.raises(NotFound):
        await node.claim(thread_id)


def _bundle(home: Path, path: Path) -> str:
    ok(home, "export", "--all", "-o", str(path))
    return str(path)


@pytest.mark.network
def test_p2pc_claim_and_claim_accept(tmp_path: Path) -> None:
    """The installed ``p2pc`` in subprocesses, offline: two data dirs swap bundles."""
    owner, zoe = tmp_path / "owner", tmp_path / "zoe"
    ok(owner, "init")
    ok(zoe, "init")
    ok(zoe, "profile", "set", "--name", "Zoé Martin")
    ok(owner, "import", "wordpress", str(fixture("isso/wordpress.xml")))
    threads = ok_json(owner, "threads")["threads"]
    hello = next(t for t in threads if t["url"] == "http://example.tld/2014/test")
    first = ok_json(owner, "show", hello["id"])["comments"][0]
    ok(zoe, "import", _bundle(owner, tmp_path / "a.ndjson"))

    claimed = ok_json(zoe, "claim", first["id"], "--note", "that was me")
    assert claimed["action"] == "claim"
    assert claimed["target"] == first["id"]
    usage = run_p2pc(zoe, "claim", "accept")
    assert usage.returncode != 0
    assert "claim accept OP" in usage.stderr
    refused = run_p2pc(zoe, "claim", "accept", claimed["id"])
    assert refused.returncode != 0
    assert "only the thread's owner accepts a claim" in refused.stderr
    assert "Traceback" not in refused.stderr

    ok(owner, "import", _bundle(zoe, tmp_path / "b.ndjson"))
    entries = ok_json(owner, "inbox")["entries"]
    assert [e["id"] for e in entries if e["action"] == "claim"] == [claimed["id"]]
    assert "that was me" in ok(owner, "inbox")
    accepted = ok(owner, "claim", "accept", claimed["id"][:12])
    assert accepted.startswith("accepted claim")
    shown = ok(owner, "show", hello["id"])
    assert "Ohai · imported from WordPress, 14 Jan 2014 · claimed by Zoé Martin" in shown
    ok(zoe, "import", _bundle(owner, tmp_path / "c.ndjson"))
    row = ok_json(zoe, "show", hello["id"])["comments"][0]
    assert row["claimed_by_name"] == "Zoé Martin"
    assert row["claimed_by"] == ok_json(zoe, "profile", "show")["author"]


def _post(url: str, auth: dict[str, str], body: object) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **auth},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        return json.load(response)


@pytest.mark.network
def test_claim_and_accept_over_http(tmp_path: Path) -> None:
    """A real daemon: the importer claims one of its imports over HTTP and accepts the claim;
    the thread JSON shows it claimed, and a claim on a comment written here is a 4xx."""
    home = tmp_path / "home"
    ok(home, "init")
    ok(home, "profile", "set", "--name", "Owner")
    ok(home, "import", "wordpress", str(fixture("isso/wordpress.xml")))
    with running_daemon(home, tmp_path / "logs") as daemon:
        threads = ok_json(home, "threads")["threads"]
        hello = next(t for t in threads if t["url"] == "http://example.tld/2014/test")
        first = ok_json(home, "show", hello["id"])["comments"][0]
        claim = _post(f"{daemon.url}/api/comments/{first['id']}/claim", daemon.auth, {})
        assert claim["action"] == "claim"
        with pytest.raises(urllib.error.HTTPError) as unauthenticated:
            _post(f"{daemon.url}/api/claims/{claim['id']}/accept", {}, {})
        assert unauthenticated.value.code == 401
        accept = _post(f"{daemon.url}/api/claims/{claim['id']}/accept", daemon.auth, {"note": ""})
        assert accept["action"] == "accept-claim"
        thread_url = f"{daemon.url}/api/threads/{hello['id']}"
        with urllib.request.urlopen(thread_url, timeout=30) as response:
            row = json.load(response)["comments"][0]
        assert row["claimed_by_name"] == "Owner"
        assert row["claimed_by"] == accept["subject"]
        mine = ok_json(home, "reply", first["id"], "--body", "written here")
        with pytest.raises(urllib.error.HTTPError) as refused:
            _post(f"{daemon.url}/api/comments/{mine['id']}/claim", daemon.auth, {})
        assert refused.value.code == 422
        assert "imported comment" in refused.value.read().decode()
