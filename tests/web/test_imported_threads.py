"""An imported WordPress thread shows in the widget on its post's URL (Chromium, a real daemon).

The blog owner's node imports the Isso WordPress fixture; the sample post, pointed at that post's
URL and the owner's key, shows the old comments nested, with their original authors and where they
come from, in English and in French.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Cluster, Daemon, wait_until

from .conftest import ROOT, WAIT_MS, artifact, static_server

pytestmark = [pytest.mark.network, pytest.mark.slow]

SAMPLE = ROOT / "examples" / "blog" / "billet.html"
SAMPLE_URL = "https://www.exemple.fr/2024/03/l-été-où-tout-a-changé-…/"
FIXTURE = ROOT.parent / "shared" / "fixtures" / "imports" / "isso" / "wordpress.xml"
POST_URL = "http://example.tld/2014/test/"  # the fixture's first post (normalised without "/")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def blog() -> Iterator[tuple[Daemon, str]]:
    with Cluster(name="imported") as cluster:
        port = _free_port()
        daemon = cluster.start("A", extra_args=["--public", f"127.0.0.1:{port}"])
        gateway = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: httpx.get(f"{gateway}/embed.js", timeout=5).is_success,
            timeout=30,
            message="the public listener",
        )
        report = daemon.cli_json("import", "wordpress", str(FIXTURE))
        assert report["imported"] == {"comments": 8}
        # The owner claims "Zweiter." (SPEC §2, claims: anyone may) and accepts the claim.
        daemon.cli_json("profile", "set", "--name", "Ohai Zwei")
        owner = daemon.api.get("/api/id")["author"]
        thread = daemon.cli_json("thread", "for-url", POST_URL, "--owner", owner)
        second = next(c for c in thread["comments"] if c["body"].startswith("Zweiter"))
        claim = daemon.cli_json("claim", second["id"])
        daemon.cli_json("claim", "accept", claim["id"])
        yield daemon, gateway


def _post_page(owner: str, gateway: str, lang: str) -> str:
    template = SAMPLE.read_text(encoding="utf-8")
    page = template.replace(
        'data-p2pc-owner="key_OWNER"',
        f'data-p2pc-owner="{owner}" data-p2pc-gateways="{gateway}" data-p2pc-lang="{lang}"',
    )
    page = page.replace(f'data-p2pc-url="{SAMPLE_URL}"', f'data-p2pc-url="{POST_URL}"')
    assert POST_URL in page
    return page.replace("https://NODE", gateway)


@pytest.mark.parametrize(
    ("lang", "label", "count"),
    [
        ("en", "imported from WordPress", "7 comments"),
        ("fr", "importé de WordPress", "7 commentaires"),
    ],
)
def test_imported_comments_show_in_the_widget(
    browser: Any, blog: tuple[Daemon, str], lang: str, label: str, count: str
) -> None:
    daemon, gateway = blog
    owner = daemon.api.get("/api/id")["author"]
    with tempfile.TemporaryDirectory(prefix="p2pc-imported-") as directory:
        (Path(directory) / "post.html").write_text(_post_page(owner, gateway, lang), "utf-8")
        with static_server(Path(directory)) as server:
            context = browser.new_context(viewport={"width": 800, "height": 1200})
            try:
                page = context.new_page()
                page.set_default_timeout(WAIT_MS)
                page.goto(f"{server.url}/post.html")
                page.locator(".p2pc-body", has_text="Erster!1").wait_for()
                assert page.locator(".p2pc-count").inner_text() == count
                first = page.locator("article", has_text="Erster!1")
                assert first.locator(".p2pc-author").inner_text() == "Ohai"
                assert first.locator("a[href='http://example.tld/']").count() == 1
                assert label in first.locator(".p2pc-provenance").inner_text()
                assert "2014" in first.locator(".p2pc-provenance").inner_text()
                assert "Ohai Zwei" not in first.locator(".p2pc-provenance").inner_text()
                second = page.locator("article", has_text="Zweiter.").first
                claimed = {"en": "claimed by Ohai Zwei", "fr": "revendiqué par Ohai Zwei"}[lang]
                assert claimed in second.locator(".p2pc-provenance").first.inner_text()
                # 7 answers 6, and 8 answers 7: nested two levels under "Zweiter."
                nested = page.locator("article", has_text="Yet another reply.")
                assert nested.locator("xpath=ancestor::ol").count() >= 3
                page.screenshot(path=str(artifact(f"imported-{lang}.png")), full_page=True)
            finally:
                context.close()
