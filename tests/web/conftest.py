"""Fixtures for the browser tests: Debian's Chromium driven by Playwright for Python (never a
downloaded browser), one browser per test module, and a static file server on 127.0.0.1 for the
pages the tests load (the package's web assets, the protocol vectors, the sample blog post).

Screenshots go to ``artifacts/web/`` at the top of the tree (git-ignored); the path is printed.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "p2pcomments" / "web"
VECTORS = ROOT / "protocol" / "vectors"
PAGES = ROOT / "tests" / "web" / "pages"
ARTIFACTS = ROOT / "artifacts" / "web"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000  # every wait in the browser is bounded by this


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves /web/ from the package, /vectors/ from protocol/vectors, the rest from ``root``."""

    mounts: dict[str, Path] = {}  # noqa: RUF012 - set per server class below

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, directory in self.mounts.items():
            if clean.startswith(prefix):
                return str(directory / clean[len(prefix) :])
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class StaticServer:
    def __init__(self, root: Path, mounts: dict[str, Path]) -> None:
        handler = type(
            "Handler",
            (_Handler,),
            {
                "mounts": mounts,
                "extensions_map": {
                    **_Handler.extensions_map,
                    ".js": "text/javascript",
                    ".json": "application/json",
                },
            },
        )
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@contextlib.contextmanager
def static_server(root: Path, mounts: dict[str, Path] | None = None) -> Iterator[StaticServer]:
    server = StaticServer(root, {"/web/": WEB, "/vectors/": VECTORS, **(mounts or {})})
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (scripts/test does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    print(f"artifact: {path}")
    return path
