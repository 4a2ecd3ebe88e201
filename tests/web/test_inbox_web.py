"""Issue 12 in Chromium: the reader UI's unread count (live from GET /api/inbox/events), its
inbox view and mark-read; the widget's "replies to you", computed from the page JSON for the
browser's key, with "new" remembered in localStorage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.processes import foreign_comment_bundle

from .conftest import WAIT_MS, artifact
from .widget_site import Site, open_widget, post, reply, shows, widget_site

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with widget_site(Path(tmp_path_factory.mktemp("inbox-web"))) as running:
        yield running


def test_reader_ui_unread_count_inbox_and_mark_read(browser: Any, site: Site) -> None:
    api = httpx.Client(base_url=site.daemon.url, headers=site.daemon.auth, timeout=30)
    thread = api.post("/api/threads", json={"title": "Inbox notes"}).json()["id"]
    api.post(f"/api/threads/{thread}/comments", json={"body": "My own words."}).raise_for_status()
    api.post("/api/inbox/read", json={"all": "true"}).raise_for_status()
    context = browser.new_context(viewport={"width": 360, "height": 800}, locale="en-US")
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{site.daemon.url}/")
        link = page.locator(".p2pc-inbox-link")
        link.filter(has_text="(0 unread)").wait_for()

        # Someone else comments in the node's thread: the count goes up without a reload.
        page.evaluate("window.__sameDocument = true")
        for body in ("A visitor writes.", "A second visitor."):
            bundle = foreign_comment_bundle(thread, body)
            imported = api.post(
                "/api/import", content=bundle, headers={"Content-Type": "application/x-ndjson"}
            )
            assert imported.is_success, imported.text
        link.filter(has_text="(2 unread)").wait_for()
        assert page.evaluate("window.__sameDocument") is True

        link.click()
        entries = page.locator(".p2pc-inbox li")
        entries.filter(has_text="A visitor writes.").wait_for()
        assert entries.count() == 2
        assert page.locator(".p2pc-inbox li.p2pc-unread").count() == 2
        first = entries.filter(has_text="A visitor writes.")
        assert "commented in" in first.inner_text()
        assert "Inbox notes" in first.inner_text()
        first.get_by_role("button", name="Mark read").click()
        link.filter(has_text="(1 unread)").wait_for()
        page.locator(".p2pc-inbox li.p2pc-read", has_text="A visitor writes.").wait_for()
        assert api.get("/api/inbox", params={"limit": "0"}).json()["unread"] == 1
        page.screenshot(path=str(artifact("inbox-reader-ui.png")), full_page=True)

        page.get_by_role("button", name="Mark all read").click()
        link.filter(has_text="(0 unread)").wait_for()
        assert api.get("/api/inbox", params={"limit": "0"}).json()["unread"] == 0
        assert page.locator(".p2pc-inbox li.p2pc-unread").count() == 0

        # The entry's thread link opens the thread.
        first.get_by_role("link", name="Inbox notes").click()
        page.locator(".p2pc-body", has_text="A visitor writes.").wait_for()
    finally:
        context.close()
        api.close()


def test_widget_shows_the_replies_to_the_readers_comments(browser: Any, site: Site) -> None:
    url = "https://blog.example/2026/inbox-widget"
    address = site.page("inbox-widget", url)
    alice = browser.new_context(locale="en-US")
    bob = browser.new_context(locale="en-US")
    try:
        a = open_widget(alice, address)
        post(a, "Alice asks a question.")
        shows(a, "Alice asks a question.")
        box = a.locator(".p2pc-replies")
        box.filter(has_text="No reply to your comments yet.").wait_for()

        b = open_widget(bob, address)
        shows(b, "Alice asks a question.")
        post(b, "Bob's own comment.")
        shows(b, "Bob's own comment.")
        reply(b, "Alice asks a question.", "Bob answers Alice.")
        shows(b, "Bob answers Alice.")
        # Bob's reply to himself is not his inbox: nobody answered him.
        b.locator(".p2pc-replies", has_text="No reply to your comments yet.").wait_for()

        # Live on Alice's page: the reply, marked new.
        a.evaluate("window.__sameDocument = true")
        box.filter(has_text="Replies to you (1 new)").wait_for()
        item = box.locator("li", has_text="Bob answers Alice.")
        assert "(new)" in item.inner_text()
        assert box.locator("li").count() == 1  # Bob's top-level comment is not a reply to her
        assert a.evaluate("window.__sameDocument") is True
        a.screenshot(path=str(artifact("inbox-widget.png")), full_page=True)
        thread = site.thread(url)
        reply_id = next(c["id"] for c in thread["comments"] if c["body"] == "Bob answers Alice.")
        assert item.get_attribute("data-reply") == reply_id
        assert reply_id in a.evaluate("JSON.parse(localStorage.getItem('p2pc.seen'))")

        # Seen once: after a reload it is listed, no longer new.
        a.reload()
        box.filter(has_text="Replies to you (1)").wait_for()
        assert "(new)" not in box.locator("li", has_text="Bob answers Alice.").inner_text()
        item.get_by_role("button").click()
        expect(a.locator(f"#c-{reply_id}")).to_be_in_viewport()
        assert a.evaluate("location.hash") == ""  # scrolled to, not navigated
    finally:
        alice.close()
        bob.close()
