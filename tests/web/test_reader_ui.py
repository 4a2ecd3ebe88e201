"""The reader UI at / of a daemon's local API, in Chromium: the threads held, a thread as a tree,
writing as the node's identity through the token-protected API (compose, reply, edit with its
history, delete to a tombstone, react), the owner's moderation (hide, close, reopen, appoint a
moderator), live updates, a 360 px screen and the keyboard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.processes import (
    DaemonProcess,
    foreign_comment_bundle,
    ok,
    old_threads_bundle,
    running_daemon,
)

from .conftest import WAIT_MS, artifact

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    data_dir = tmp_path_factory.mktemp("reader-ui")
    ok(data_dir, "init")
    with running_daemon(data_dir, data_dir / "logs") as running:
        yield running


@pytest.fixture(scope="module")
def api(daemon: DaemonProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=daemon.url, headers=daemon.auth, timeout=30) as client:
        yield client


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 360, "height": 800}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete this comment?"
    yield page
    context.close()


def _article(page: Any, text: str) -> Any:
    return page.locator("article", has_text=text).last


def _open_new_thread(page: Any, daemon: DaemonProcess, api: httpx.Client, title: str) -> str:
    """A new thread titled ``title``, opened in ``page`` (shown empty); its text id."""
    thread: str = api.post("/api/threads", json={"title": title}).json()["id"]
    page.goto(f"{daemon.url}/#/t/{thread}")
    page.locator(".p2pc-count", has_text="0 comments").wait_for()
    return thread


def _comment_from_elsewhere(api: httpx.Client, thread: str, body: str) -> None:
    """A comment by another author on ``thread``, arriving as an import (a live change)."""
    bundle = foreign_comment_bundle(thread, body)
    imported = api.post(
        "/api/import", content=bundle, headers={"Content-Type": "application/x-ndjson"}
    )
    assert imported.is_success, imported.text


def test_threads_and_writing(page: Any, daemon: DaemonProcess, api: httpx.Client) -> None:
    thread = api.post("/api/threads", json={"title": "Gardening notes"}).json()["id"]
    page.goto(f"{daemon.url}/")
    page.get_by_role("link", name="Gardening notes").click()
    page.locator(".p2pc-count", has_text="0 comments").wait_for()

    # Keyboard only: the labelled text area, Tab to the button, Enter.
    page.get_by_label("Write a comment").focus()
    page.keyboard.type("Tomatoes **love** sun.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    first = _article(page, "Tomatoes")
    first.locator("strong", has_text="love").wait_for()

    first.get_by_role("button", name="Reply").click()
    page.get_by_label("Reply").fill("Mine too.")
    page.locator(".p2pc-form-reply button[type=submit]").click()
    reply = _article(page, "Mine too.")
    reply.wait_for()
    assert reply.locator("xpath=ancestor::ol").count() == 2

    first.get_by_role("button", name="Edit").click()
    page.locator(".p2pc-form-edit textarea").fill("Tomatoes love sun and water.")
    page.locator(".p2pc-form-edit button[type=submit]").click()
    _article(page, "sun and water").locator("text=edited").first.wait_for()
    history = _article(page, "sun and water").locator("details")
    history.locator("summary").click()
    history.locator(".p2pc-body", has_text="Tomatoes love sun.").wait_for()  # the original

    first.get_by_role("button", name="👍").click()
    page.locator("article button[aria-pressed=true]", has_text="👍 1").wait_for()

    _article(page, "sun and water").get_by_role("button", name="Delete").first.click()
    page.locator("article", has_text="[deleted]").first.wait_for()
    _article(page, "Mine too.").wait_for()  # the reply stays under the tombstone

    # Live: a comment by someone else arrives without a reload, with no edit/delete for us.
    page.evaluate("window.__sameDocument = true")
    _comment_from_elsewhere(api, thread, "A visitor's comment.")
    visitor = _article(page, "A visitor's comment.")
    visitor.wait_for()
    assert page.evaluate("window.__sameDocument") is True
    assert visitor.get_by_role("button", name="Edit").count() == 0
    assert visitor.get_by_role("button", name="Delete").count() == 0

    # The owner moderates.
    visitor.get_by_role("button", name="Hide", exact=True).click()
    page.locator("article", has_text="Hidden by a moderator.").wait_for()
    page.locator("article", has_text="Hidden by a moderator.").get_by_role(
        "button", name="Unhide", exact=True
    ).click()
    _article(page, "A visitor's comment.").get_by_role("button", name="Hide", exact=True).wait_for()
    page.get_by_role("button", name="Close the thread").click()
    page.locator(".p2pc-closed", has_text="Comments are closed.").wait_for()
    assert page.locator(".p2pc-form-comment").count() == 0
    page.screenshot(path=str(artifact("reader-ui-closed-360px.png")), full_page=True)
    page.get_by_role("button", name="Reopen the thread").click()
    page.locator(".p2pc-form-comment").wait_for()

    visitor_key = api.get(f"/api/threads/{thread}").json()["comments"][-1]["author"]
    page.get_by_label("Moderator's key (key_…)").fill(visitor_key)
    page.get_by_role("button", name="Add a moderator").click()
    page.locator(".p2pc-meta", has_text=f"moderator: {visitor_key[:12]}").wait_for()

    # Unfollowing and following the thread, then naming the node, from the list.
    # (the node wrote in it, so it follows it already)
    page.get_by_role("button", name="Unfollow", exact=True).click()
    page.get_by_role("button", name="Follow", exact=True).wait_for()
    assert thread in api.get("/api/follows").json()["unfollowed"]["threads"]
    page.get_by_role("button", name="Follow", exact=True).click()
    page.get_by_role("button", name="Unfollow", exact=True).wait_for()
    page.get_by_role("link", name="All threads").click()
    page.locator("li", has_text="Gardening notes").locator("text=followed").wait_for()
    page.get_by_label("This node's name").fill("Garden node")
    page.get_by_role("button", name="Set name").click()
    page.locator("li", has_text="Gardening notes").locator("text=Garden node").wait_for()
    page.get_by_role("link", name="Gardening notes").click()
    page.locator(".p2pc-count").wait_for()

    # Readable on a 360 px screen: nothing wider than the viewport.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_the_list_and_a_read_only_ui_without_the_token(
    page: Any, daemon: DaemonProcess, api: httpx.Client, tmp_path: Path
) -> None:
    api.post("/api/threads", json={"title": "Second thread", "url": "https://blog.example/x"})
    page.goto(f"{daemon.url}/")
    item = page.locator("li", has_text="Second thread")
    item.wait_for()
    assert "0 comments" in item.inner_text()
    # The daemon's own pages carry its token only on its 127.0.0.1 listener, behind the Host
    # check: a page reached under another name is refused before any content.
    refused = httpx.get(f"{daemon.url}/", headers={"Host": "evil.example"}, timeout=10)
    assert refused.status_code == 403
    assert daemon.token not in refused.text


def test_a_live_update_keeps_the_keyboard_on_the_send_button(
    page: Any, daemon: DaemonProcess, api: httpx.Client
) -> None:
    # A change arriving while a keyboard user is on Send re-renders the thread (and the stream's
    # opening does too, 100 ms after it connects): Enter must still send what was typed.
    thread = _open_new_thread(page, daemon, api, "Live while typing")
    page.get_by_label("Write a comment").focus()
    page.keyboard.type("Typed before the update.")
    page.keyboard.press("Tab")
    _comment_from_elsewhere(api, thread, "Arrives meanwhile.")
    _article(page, "Arrives meanwhile.").wait_for()  # the thread was rendered again
    focused = (
        "document.activeElement.closest('form')?.className + ':' + document.activeElement.type"
    )
    assert page.evaluate(focused) == "p2pc-form-comment:submit"
    page.keyboard.press("Enter")
    _article(page, "Typed before the update.").wait_for()


def test_a_live_update_keeps_the_selection_in_the_comment_box(
    page: Any, daemon: DaemonProcess, api: httpx.Client
) -> None:
    # Text selected in the comment box when a change re-renders the thread stays selected: what
    # is typed next replaces it (as a paste or Playwright's fill would), nothing is appended.
    thread = _open_new_thread(page, daemon, api, "Selected while live")
    box = page.get_by_label("Write a comment")
    box.fill("A first draft.")
    # On the focused element in one step: a handle resolved before the stream's opening render
    # would be one that render took out of the page.
    page.evaluate("document.activeElement.setSelectionRange(2, 7)")  # "first"
    _comment_from_elsewhere(api, thread, "Arrives while selected.")
    _article(page, "Arrives while selected.").wait_for()  # the box was rendered again
    page.keyboard.type("second")
    assert page.get_by_label("Write a comment").input_value() == "A second draft."


def test_the_list_shows_a_page_at_a_time(
    page: Any, daemon: DaemonProcess, api: httpx.Client
) -> None:
    # 130 old threads (listed last): the list shows the newest 100, "More threads" the rest, with
    # the keyboard on the first thread added, and a live update keeps what is shown.
    bundle, _ = old_threads_bundle("Old thread {:03}", 130, first_ms=1_600_000_000_000)
    imported = api.post("/api/import", content=bundle)
    assert imported.json()["applied"] == 130
    total = len(api.get("/api/threads").json()["threads"])
    page.goto(f"{daemon.url}/")
    items = page.locator(".p2pc-threads > li")
    items.nth(99).wait_for()
    assert items.count() == 100
    page.get_by_role("button", name="More threads").click()
    items.nth(total - 1).wait_for()
    assert items.count() == total
    assert page.get_by_role("button", name="More threads").count() == 0
    first_added = "document.querySelectorAll('.p2pc-threads > li')[100]"
    assert page.evaluate(f"document.activeElement.closest('li') === {first_added}") is True
    on = page.evaluate("document.activeElement.textContent")
    api.post("/api/threads", json={"title": "Arrives while the list is long"})
    page.locator("li", has_text="Arrives while the list is long").wait_for()
    assert items.count() == total + 1
    assert page.evaluate("document.activeElement.textContent") == on  # the keyboard stays there
    titles = items.locator("a").all_inner_texts()
    assert titles[-1] == "Old thread 000"
    assert len(set(titles)) == len(titles)
