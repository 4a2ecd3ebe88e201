"""Issue 11 in Chromium: web/pow.js reproduces rules.json's proof-of-work vectors byte for byte;
the widget mines (with its progress, attempts / 2^d) and posts a paid comment to a daemon whose
owner set a difficulty; what the rules withhold is shown like a hidden comment, "waiting for
moderation" to its author; a reader's report is a browser-signed moderate op the node lists; the
reader UI shows the owner the queue (with Approve) and the reports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from p2pcomments.core.textform import parse_id
from tests.e2e.harness import wait_until

from .conftest import PAGES, VECTORS, WAIT_MS, artifact, static_server
from .widget_site import Site, open_widget, post, shows, widget_site

pytestmark = pytest.mark.network

RECORD_STATUS = """() => {
  window.__status = [];
  const box = document.querySelector(".p2pc-status");
  new MutationObserver(() => window.__status.push(box.textContent)).observe(
    box, { childList: true, characterData: true, subtree: true });
}"""


def test_proof_of_work_vectors_reproduced_byte_for_byte(browser: Any) -> None:
    document = json.loads((VECTORS / "rules.json").read_text(), parse_int=str)
    seeds = {s["public_key"]: s["seed"] for s in document["signers"]}
    vectors = document["proof_of_work"]
    with static_server(PAGES) as server:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{server.url}/blank.html")
            run = "async ([n, a]) => (await import('/pow-checks.js'))[n](a)"
            assert page.evaluate(run, ["sha256Agrees", None]) == []
            out = page.evaluate(run, ["proofOfWork", {"vectors": vectors, "seeds": seeds}])
        finally:
            context.close()
    assert len(out) == len(vectors) >= 5
    assert {v["difficulty"] for v in vectors} >= {"0", "8", "16"}
    for vector, got in zip(vectors, out, strict=True):
        name = f"difficulty {vector['difficulty']}"
        assert got["mined_nonce"] == got["nonce"] == vector["nonce_hex"], name
        assert got["mined_id"] == got["id"] == vector["id"], name
        assert got["attempts"] == int(vector["attempts"]), name
        assert got["progress_last"] == int(vector["attempts"]), name
        assert got["zero_bits"] == int(vector["leading_zero_bits"]), name
        assert got["unsigned_hex"] == vector["unsigned_hex"], name
        operation = vector["operation"]
        for field in ("id_text", "signature", "encoded"):
            assert got[field] == operation[field], (name, field)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with widget_site(Path(tmp_path_factory.mktemp("rules-web"))) as running:
        yield running


@pytest.fixture(scope="module")
def api(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.daemon.url, headers=site.daemon.auth, timeout=30) as client:
        yield client


def _set(api: httpx.Client, path: str, **fields: str) -> None:
    response = api.post(path, json=fields)
    assert response.is_success, response.text


def _leading_zero_bits(raw: bytes) -> int:
    value = int.from_bytes(raw, "big")
    return 256 - value.bit_length()


def test_widget_mines_and_posts_a_paid_comment(browser: Any, site: Site, api: httpx.Client) -> None:
    url = "https://blog.example/2026/paid"
    address = site.page("paid", url)
    context = browser.new_context(locale="en-US")
    try:
        page = open_widget(context, address)
        post(page, "Free while the owner asks nothing.")
        shows(page, "Free while the owner asks nothing.")
        thread = site.thread(url)["id"]
        _set(api, "/api/rules/difficulty", thread=thread, bits="14")
        wait_until(lambda: site.thread(url)["rules"]["difficulty"] == 14, timeout=30)

        page.reload()
        page.wait_for_selector(".p2pc-count")
        page.evaluate(RECORD_STATUS)
        post(page, "Paid for with fourteen bits.")
        shows(page, "Paid for with fourteen bits.")
        progress = [s for s in page.evaluate("window.__status") if "Proof of work" in s]
        assert progress, page.evaluate("window.__status")
        assert "of about 16,384" in progress[-1]
        page.screenshot(path=str(artifact("rules-paid.png")), full_page=True)

        comments = site.thread(url)["comments"]
        paid = next(c for c in comments if c["body"] == "Paid for with fourteen bits.")
        assert paid["withheld"] == []
        assert _leading_zero_bits(parse_id(paid["id"])) >= 14

        # A widget that read the page before the owner asked for proof of work: the gateway
        # refuses its unpaid comment (422 unpaid), and it reads the rules again and pays.
        page.evaluate(
            "async () => { const w = await document.querySelector('[data-p2pc-url]').p2pc;"
            " w.view = { ...w.view, rules: null }; }"
        )
        page.evaluate(RECORD_STATUS)
        post(page, "Sent unpaid first, then paid.")
        shows(page, "Sent unpaid first, then paid.")
        assert any("Proof of work" in s for s in page.evaluate("window.__status"))
        late = next(
            c for c in site.thread(url)["comments"] if c["body"] == "Sent unpaid first, then paid."
        )
        assert _leading_zero_bits(parse_id(late["id"])) >= 14
    finally:
        context.close()


def test_pre_moderation_reports_and_the_queue(browser: Any, site: Site, api: httpx.Client) -> None:
    url = "https://blog.example/2026/held"
    address = site.page("held", url)
    alice = browser.new_context(locale="en-US")
    bob = browser.new_context(locale="en-US")
    owner = browser.new_context(locale="en-US")
    try:
        a = open_widget(alice, address)
        post(a, "Alice was here first.")
        shows(a, "Alice was here first.")
        thread = site.thread(url)["id"]
        _set(api, "/api/rules/mode", thread=thread, mode="pre-moderated")
        wait_until(lambda: "pre-moderated" in json.dumps(site.thread(url)["rules"]), timeout=30)

        b = open_widget(bob, address)
        post(b, "Bob waits for a moderator.")
        mine = b.locator("article", has_text="Bob waits for a moderator.")
        mine.locator(".p2pc-waiting", has_text="Waiting for moderation.").wait_for()

        # Alice sees it withheld, like a hidden comment, and reports it.
        a.reload()
        held = a.locator("article", has_text="Withheld by the thread's rules.").filter(
            has_not_text="Alice"
        )
        held.first.wait_for()
        assert a.locator(".p2pc-body", has_text="Bob waits for a moderator.").count() == 0
        a.once("dialog", lambda dialog: dialog.accept("Looks like spam"))
        held.first.get_by_role("button", name="Report").click()

        def reported() -> list[Any]:
            found: list[Any] = api.get("/api/reports", params={"thread": thread}).json()["reported"]
            return found

        wait_until(lambda: bool(reported()), timeout=30)
        entry = reported()[0]
        assert entry["body"] == "Bob waits for a moderator."
        assert [r["reason"] for r in entry["reports"]] == ["Looks like spam"]

        # The owner's reader UI: the queue with Approve, and the report.
        page = owner.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{site.daemon.url}/#/t/{thread}")
        queue = page.locator(".p2pc-queue li", has_text="Bob waits for a moderator.")
        queue.wait_for()
        page.locator(".p2pc-reports > li", has_text="Looks like spam").wait_for()
        page.screenshot(path=str(artifact("rules-queue.png")), full_page=True)
        queue.get_by_role("button", name="Approve").click()
        page.locator(".p2pc-queue li", has_text="Bob waits for a moderator.").wait_for(
            state="detached"
        )

        # Approved: shown to everyone, live.
        a.locator(".p2pc-body", has_text="Bob waits for a moderator.").wait_for()
        b.locator("article", has_text="Bob waits for a moderator.").locator(
            ".p2pc-waiting"
        ).wait_for(state="detached")
    finally:
        for context in (alice, bob, owner):
            context.close()
