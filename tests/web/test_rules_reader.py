"""Issue 11's owner rules in the reader UI at /, in Chromium at 360 px: the owner sets the thread
pre-moderated, bans an author (with an end) and asks for proof of work, by keyboard and by
click, and the daemon's rules (GET /api/threads/{thread}/rules) say each took effect; a reader
node whose identity is not the owner, holding the same thread, shows none of these controls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.processes import foreign_comment_bundle, foreign_comment_id, ok, running_daemon
from tests.e2e.harness import wait_until

from .conftest import WAIT_MS, artifact
from .widget_site import widget_site

pytestmark = pytest.mark.network
BAN_FIELDS = """() => [...document.querySelectorAll('.p2pc-ban input')]
  .map((i) => [i.name, i.value, i.validationMessage, i.isConnected])"""


def _rules(api: httpx.Client, thread: str) -> dict[str, Any]:
    response = api.get(f"/api/threads/{thread}/rules")
    assert response.is_success, response.text
    own: dict[str, Any] = response.json()["thread"]
    return own


def test_owner_sets_rules_in_the_reader_ui_and_others_see_no_controls(
    browser: Any, tmp_path: Path
) -> None:
    with (
        widget_site(tmp_path) as site,
        httpx.Client(base_url=site.daemon.url, headers=site.daemon.auth, timeout=30) as api,
    ):
        created = api.post("/api/threads", json={"title": "Rules here", "url": "https://b.ex/r"})
        assert created.is_success, created.text
        thread = created.json()["id"]
        bundle = foreign_comment_bundle(thread, "A comment by Mallory.")
        assert api.post("/api/import", content=bundle).is_success
        mallory = api.get(f"/api/comments/{foreign_comment_id(bundle)}")
        assert mallory.is_success, mallory.text
        mallory_key = mallory.json()["author"]

        context = browser.new_context(viewport={"width": 360, "height": 800}, locale="en-US")
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{site.daemon.url}/#/t/{thread}")
            panel = page.locator(".p2pc-rules")
            panel.wait_for()
            # Pre-moderation, chosen with the keyboard: the select's label, arrows, Enter.
            mode = panel.get_by_label("Who is shown commenting")
            assert mode.input_value() == "open"
            mode.select_option("pre-moderated")
            panel.get_by_role("button", name="Save rules").focus()
            # A live update lands while the owner is in the panel (the page reads the thread
            # again): what they chose and where the focus is stay as they were.
            posted = api.post(f"/api/threads/{thread}/comments", json={"body": "Meanwhile."})
            assert posted.is_success, posted.text
            page.get_by_text("Meanwhile.").wait_for()
            page.wait_for_timeout(300)  # past the live view's 100 ms debounce and its reads
            assert page.evaluate("document.activeElement.textContent") == "Save rules"
            page.keyboard.press("Enter")
            wait_until(lambda: _rules(api, thread)["mode"] == "pre-moderated", timeout=30)
            page.get_by_role("status").filter(has_text="Saved.").wait_for()

            # A ban with an end and a reason.
            ban = panel.locator(".p2pc-ban")
            ban.get_by_label("Author's key (key_…)").fill(mallory_key)
            ban.get_by_label("Until (optional)").fill("2099-01-02T03:04")
            ban.get_by_label("Reason (optional)").fill("spam")
            ban.get_by_role("button", name="Ban").click()
            wait_until(
                lambda: bool(_rules(api, thread)["bans"]),
                timeout=30,
                describe=lambda: str(page.evaluate(BAN_FIELDS)),
            )
            (entry,) = _rules(api, thread)["bans"]
            assert entry["key"] == mallory_key
            assert entry["reason"] == "spam"
            assert entry["until_ms"] is not None
            assert entry["until_ms"] > 4_000_000_000_000  # 2099, from the datetime-local field
            listed = page.locator(f'.p2pc-bans li[data-key="{mallory_key}"]')
            listed.wait_for()
            assert "spam" in listed.inner_text()

            # Proof of work; the mode set before stays as it is (only what changed is sent).
            panel = page.locator(".p2pc-rules")
            bits = panel.get_by_label("Proof of work (bits, 0-64)")
            assert panel.get_by_label("Who is shown commenting").input_value() == "pre-moderated"
            bits.fill("12")
            panel.get_by_role("button", name="Save rules").click()
            wait_until(lambda: _rules(api, thread)["difficulty"] == 12, timeout=30)
            assert _rules(api, thread)["mode"] == "pre-moderated"
            assert api.get(f"/api/threads/{thread}/rules").json()["difficulty"] == 12
            page.locator(".p2pc-rules").get_by_label("Proof of work (bits, 0-64)").wait_for()
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"the page scrolls sideways at 360 px: {width}"
            page.screenshot(path=str(artifact("rules-reader-owner.png")), full_page=True)

            # Unban from the list.
            page.locator(f'.p2pc-bans li[data-key="{mallory_key}"]').get_by_role(
                "button", name="Unban"
            ).click()
            wait_until(lambda: not _rules(api, thread)["bans"], timeout=30)
        finally:
            context.close()

        # Another node holding the same thread: its identity is not the owner, no controls.
        exported = api.get(f"/api/threads/{thread}/export")
        assert exported.is_success
        other_dir = tmp_path / "reader"
        other_dir.mkdir()
        ok(other_dir, "init")
        with running_daemon(other_dir, other_dir / "logs") as other:
            imported = httpx.post(
                f"{other.url}/api/import", content=exported.content, headers=other.auth, timeout=30
            )
            assert imported.is_success, imported.text
            with httpx.Client(base_url=other.url, timeout=30) as reader:
                assert _rules(reader, thread)["difficulty"] == 12
            context = browser.new_context(viewport={"width": 360, "height": 800}, locale="en-US")
            try:
                page = context.new_page()
                page.set_default_timeout(WAIT_MS)
                page.goto(f"{other.url}/#/t/{thread}")
                # The title is written after the moderator panel is decided (reader.js reload).
                page.locator("h1", has_text="Rules here").wait_for()
                page.get_by_role("button", name="Follow").wait_for()  # it has the token
                assert page.locator(".p2pc-rules, .p2pc-moderator").count() == 0
                assert page.locator("select").count() == 0
                assert page.get_by_role("button", name="Save rules").count() == 0
                assert page.get_by_role("button", name="Ban").count() == 0
            finally:
                context.close()
