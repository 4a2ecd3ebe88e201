"""A daemon with a public listener and a blog page embedding the widget, for the browser tests of
issues 11 and 12 (tests/web/test_inbox_web.py, tests/web/test_rules_web.py)."""

from __future__ import annotations

import contextlib
import html
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.api.processes import DaemonProcess, ok, running_daemon

from .conftest import WAIT_MS, StaticServer, static_server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Site:
    """The daemon (its local API: ``daemon.url``, its public listener: ``public``), its owner
    key, and a static server for the blog pages (``page(url)`` writes one and gives its address)."""

    def __init__(self, daemon: DaemonProcess, public: str, pages: Path, server: StaticServer):
        self.daemon, self.public, self.pages, self.server = daemon, public, pages, server
        self.owner: str = httpx.get(f"{daemon.url}/api/id", timeout=10).json()["author"]

    def page(self, name: str, url: str) -> str:
        text = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>post</title></head>'
            f'<body><h1>A post</h1><div data-p2pc-url="{html.escape(url)}"'
            f' data-p2pc-owner="{self.owner}" data-p2pc-gateways="{self.public}"'
            ' data-p2pc-lang="en"></div>'
            f'<script src="{self.public}/embed.js" async></script></body></html>'
        )
        (self.pages / f"{name}.html").write_text(text, encoding="utf-8")
        return f"{self.server.url}/{name}.html"

    def thread(self, url: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.public}/api/page", params={"url": url, "owner": self.owner}, timeout=10
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@contextlib.contextmanager
def widget_site(directory: Path) -> Iterator[Site]:
    (directory / "node").mkdir()
    ok(directory / "node", "init")
    port = free_port()
    pages = directory / "pages"
    pages.mkdir()
    with (
        running_daemon(
            directory / "node", directory / "logs", "--public", f"127.0.0.1:{port}"
        ) as daemon,
        static_server(pages) as server,
    ):
        public = f"http://127.0.0.1:{port}"
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{public}/embed.js", timeout=5).is_success:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the public listener {public} did not answer")
        yield Site(daemon, public, pages, server)


def open_widget(context: Any, address: str) -> Any:
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(address)
    page.wait_for_selector(".p2pc-count")
    return page


def post(page: Any, text: str) -> None:
    page.fill(".p2pc-form-comment textarea", text)
    page.click(".p2pc-form-comment button[type=submit]")


def reply(page: Any, to_text: str, text: str) -> None:
    page.locator("article", has_text=to_text).get_by_role("button", name="Reply").click()
    page.fill(".p2pc-form-reply textarea", text)
    page.click(".p2pc-form-reply button[type=submit]")


def shows(page: Any, text: str) -> None:
    page.locator(".p2pc-body", has_text=text).first.wait_for()
