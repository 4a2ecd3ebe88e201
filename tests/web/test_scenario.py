"""The issue's scenario in Chromium, against real daemons (separate processes on 127.0.0.1):

a French sample blog post (examples/blog/billet.html), served locally, embeds the widget with
gateway A; a reader posts a comment signed in the browser; daemon B (peered with A) has it; a
page pointed at B shows it and a second reader replies; A's page updates live without a reload;
a hostile body renders as text; the owner hides it from the reader UI on B's local API; daemon A
is SIGKILLed (by PID) and the widget falls back to B; a comment written while its only gateway is
down waits in the browser and is sent once the gateway is back; the owner (B's identity) closes
the thread and the widget says "Les commentaires sont fermés.". The reader's key goes both ways
between the widget and ``p2pc key export|import``.

Screenshots are saved under artifacts/web/ (the paths are printed).
"""

from __future__ import annotations

import contextlib
import re
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
PAGE_URL = "https://www.exemple.fr/2024/03/l-été-où-tout-a-changé-…/"
SYNC_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Gateway:
    """A daemon with a public listener on a port of its own (kept across restarts)."""

    def __init__(self, daemon: Daemon, port: int) -> None:
        self.daemon = daemon
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def gateways() -> Iterator[tuple[Gateway, Gateway]]:
    with Cluster(name="web") as cluster:
        port_a, port_b = _free_port(), _free_port()
        a = cluster.start("A", extra_args=["--public", f"127.0.0.1:{port_a}"])
        b = cluster.start("B", bootstrap=[a], extra_args=["--public", f"127.0.0.1:{port_b}"])
        cluster.wait_connected(b, [a])
        pair = (Gateway(a, port_a), Gateway(b, port_b))
        for gateway in pair:
            wait_until(
                lambda g=gateway: httpx.get(f"{g.url}/embed.js", timeout=5).is_success,
                timeout=30,
                message=f"the public listener of {gateway.daemon.name}",
            )
        yield pair


def _render_post(
    owner: str, gateways: list[Gateway], script: Gateway, *, url: str = PAGE_URL, aliases: str = ""
) -> str:
    """The sample post with the widget's attributes filled in."""
    template = SAMPLE.read_text(encoding="utf-8")
    assert 'data-p2pc-owner="key_OWNER"' in template
    assert '<script src="https://NODE/embed.js" async></script>' in template
    attributes = (
        f'data-p2pc-owner="{owner}" data-p2pc-gateways="{",".join(g.url for g in gateways)}"'
    )
    if aliases:
        attributes += f' data-p2pc-aliases="{aliases}"'
    page = template.replace('data-p2pc-owner="key_OWNER"', attributes)
    page = page.replace(f'data-p2pc-url="{PAGE_URL}"', f'data-p2pc-url="{url}"')
    return page.replace("https://NODE", script.url)


@pytest.fixture(scope="module")
def site(gateways: tuple[Gateway, Gateway]) -> Iterator[Any]:
    """The sample post, once per gateway list: /a.html (A then B), /b.html (B), /only-a.html
    (A alone; its script comes from B, as from a cache, so that it loads while A is down)."""
    a, b = gateways
    owner = b.daemon.api.get("/api/id")["author"]
    with tempfile.TemporaryDirectory(prefix="p2pc-blog-") as directory:
        for name, lists, script in (("a", [a, b], a), ("b", [b], b), ("only-a", [a], b)):
            page = _render_post(owner, lists, script)
            (Path(directory) / f"{name}.html").write_text(page, encoding="utf-8")
        old_url = "http://exemple.fr/2024/03/ancien-titre"
        new_url = "https://www.exemple.fr/2024/03/nouveau-titre"
        pages = {
            "old-slug": _render_post(owner, [b], b, url=old_url),
            "new-slug": _render_post(owner, [b], b, url=new_url, aliases=old_url),
        }
        pages["other"] = _render_post(owner, [b], b, url="https://www.exemple.fr/2024/04/autre")
        for name, page in pages.items():
            (Path(directory) / f"{name}.html").write_text(page, encoding="utf-8")
        with static_server(Path(directory)) as server:
            server.owner = owner  # type: ignore[attr-defined]
            yield server


def _open(context: Any, url: str) -> Any:
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.wait_for_selector(".p2pc-count")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    return page


def _post(page: Any, text: str) -> None:
    page.fill(".p2pc-form-comment textarea", text)
    page.click(".p2pc-form-comment button[type=submit]")


def _reply(page: Any, to_text: str, text: str) -> None:
    page.locator("article", has_text=to_text).get_by_role("button", name="Répondre").click()
    page.fill(".p2pc-form-reply textarea", text)
    page.click(".p2pc-form-reply button[type=submit]")


def _shows(page: Any, text: str) -> None:
    page.locator(".p2pc-body", has_text=text).first.wait_for()


def _thread_on(gateway: Gateway, owner: str) -> dict[str, Any]:
    response = httpx.get(
        f"{gateway.url}/api/page", params={"url": PAGE_URL, "owner": owner}, timeout=10
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _bodies(gateway: Gateway, owner: str) -> list[str]:
    return [c["body"] for c in _thread_on(gateway, owner)["comments"] if c["body"]]


def _inert(page: Any) -> None:
    found = page.evaluate(
        """() => ({
          pwned: window.__pwned ?? null,
          on: [...document.querySelectorAll(".p2pc *")].some((e) =>
                [...e.attributes].some((a) => /^on/i.test(a.name))),
          js: [...document.querySelectorAll(".p2pc [href]")].some((e) =>
                !/^(https?:|mailto:)/.test(e.getAttribute("href"))),
          injected: document.querySelectorAll(".p2pc script, .p2pc img, .p2pc iframe").length,
        })"""
    )
    assert found == {"pwned": None, "on": False, "js": False, "injected": 0}


HOSTILE = (
    "<img src=x onerror=\"window.__pwned='img'\"> [clic](javascript:window.__pwned=1) \u202eRTL"
)


def test_assets_on_the_public_gateway(gateways: tuple[Gateway, Gateway]) -> None:
    a, _ = gateways
    embed = httpx.get(f"{a.url}/embed.js", timeout=10)
    assert embed.headers["access-control-allow-origin"] == "*"
    assert embed.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{a.url}/web/widget.js", timeout=10).is_success
    for path in ("/web/../api.json", "/web/%2e%2e/pyproject.toml", "/web/nothing.js"):
        assert httpx.get(f"{a.url}{path}", timeout=10).status_code == 404, path
    reader = httpx.get(f"{a.url}/", timeout=10)
    assert reader.is_success
    assert "p2pc-token" not in reader.text  # never the token on the public listener
    local = httpx.get(f"{a.daemon.api.url}/", timeout=10)
    assert f'content="{a.daemon.api.token}"' in local.text


def test_the_scenario(browser: Any, gateways: tuple[Gateway, Gateway], site: Any) -> None:
    a, b = gateways
    owner = site.owner
    reader_1 = browser.new_context(viewport={"width": 360, "height": 900}, locale="fr-FR")
    reader_2 = browser.new_context(viewport={"width": 800, "height": 900})
    offline = browser.new_context(viewport={"width": 360, "height": 900})
    moderator = browser.new_context(viewport={"width": 800, "height": 900})
    try:
        page_a = _open(reader_1, f"{site.url}/a.html")
        assert page_a.locator(".p2pc-count").inner_text() == "0 commentaire"

        # 1. A comment signed in the browser, through gateway A; B has it.
        _post(page_a, "Quel beau billet ! Moi aussi, un été sans réseau.")
        _shows(page_a, "Quel beau billet")
        page_a.screenshot(path=str(artifact("1-posted-on-A.png")), full_page=True)
        wait_until(
            lambda: "Quel beau billet ! Moi aussi, un été sans réseau." in _bodies(b, owner),
            timeout=SYNC_TIMEOUT,
            message="B to have the comment posted through A",
        )

        # The reader names themself: a profile operation, signed in the browser too.
        page_a.locator(".p2pc-key summary").click()
        page_a.get_by_label("Votre nom").fill("Camille")
        page_a.get_by_role("button", name="Enregistrer le nom").click()
        page_a.locator(".p2pc-author", has_text="Camille").wait_for()
        page_a.locator(".p2pc-key summary").click()

        # 2. A page pointed at B shows it; a second reader replies there; A's page updates live.
        page_b = _open(reader_2, f"{site.url}/b.html")
        _shows(page_b, "Quel beau billet")
        _reply(page_b, "Quel beau billet", "Merci ! La Loire, c'est la plus belle.")
        _shows(page_b, "La Loire")
        _shows(page_a, "La Loire")
        assert page_a.evaluate("window.__sameDocument") is True
        reply = page_a.locator("article", has_text="La Loire")
        assert reply.locator("xpath=ancestor::ol").count() >= 2  # nested under the comment

        # 3. A hostile body renders as text.
        _post(page_b, HOSTILE)
        _shows(page_a, "onerror")
        _inert(page_a)
        _inert(page_b)
        assert "\u202eRTL" in page_a.locator(".p2pc-body", has_text="onerror").inner_text()
        page_a.screenshot(path=str(artifact("2-reply-and-hostile.png")), full_page=True)

        # 4. The owner hides it from the reader UI of B's local API (its own identity).
        ui = moderator.new_page()
        ui.set_default_timeout(WAIT_MS)
        ui.goto(f"{b.daemon.api.url}/")
        ui.get_by_role("link", name=re.compile("exemple.fr")).click()
        ui.locator("article", has_text="onerror").get_by_role(
            "button", name="Hide", exact=True
        ).click()
        ui.locator("article", has_text="Hidden by a moderator").first.wait_for()
        page_a.locator(".p2pc-note", has_text="Masqué par un modérateur.").wait_for()
        ui.screenshot(path=str(artifact("3-reader-ui-owner.png")), full_page=True)

        # 5. A is killed: the widget falls back to B, for writes and for live updates.
        a.daemon.kill()
        _post(page_a, "Écrit après la panne de A.")
        _shows(page_a, "panne de A")
        assert "Écrit après la panne de A." in _bodies(b, owner)
        _post(page_b, "Vu depuis B pendant la panne.")
        _shows(page_a, "pendant la panne")
        assert page_a.evaluate("window.__sameDocument") is True

        # 6. Every gateway down: the comment waits in the browser, and goes once A is back.
        page_off = _open(offline, f"{site.url}/only-a.html")
        _post(page_off, "Écrit hors ligne, envoyé plus tard.")
        page_off.locator(".p2pc-status", has_text="1 en attente").wait_for()
        page_off.locator(".p2pc-status li", has_text="hors ligne").wait_for()  # shown as kept
        queued = page_off.evaluate("JSON.parse(localStorage.getItem('p2pc.outbox')).length")
        assert queued == 1
        a.daemon.start().wait_ready()
        page_off.wait_for_function(
            "JSON.parse(localStorage.getItem('p2pc.outbox') || '[]').length === 0",
            timeout=60_000,
        )
        _shows(page_off, "hors ligne")
        wait_until(
            lambda: "Écrit hors ligne, envoyé plus tard." in _bodies(b, owner),
            timeout=SYNC_TIMEOUT,
            message="B to have the comment that waited in the browser",
        )

        # 7. The owner closes the thread on its daemon: every widget says so.
        thread = _thread_on(b, owner)["id"]
        b.daemon.api.post(f"/api/threads/{thread}/close", {"reason": ""})
        for page in (page_a, page_b):
            page.locator(".p2pc-closed", has_text="Les commentaires sont fermés.").wait_for()
            assert page.locator(".p2pc-form-comment").count() == 0
        assert page_a.locator(".p2pc-count").inner_text() == "5 commentaires"
        page_a.screenshot(path=str(artifact("4-closed-360px.png")), full_page=True)
        assert page_a.evaluate("document.documentElement.scrollWidth") <= 360  # a phone screen
        page_b.screenshot(path=str(artifact("widget.png")), full_page=True)
    finally:
        for context in (reader_1, reader_2, offline, moderator):
            with contextlib.suppress(Exception):
                context.close()


def test_reader_key_to_and_from_the_cli(
    browser: Any, gateways: tuple[Gateway, Gateway], site: Any, tmp_path: Path
) -> None:
    from p2pcomments.identity import create_identity, export_identity

    _, b = gateways
    context = browser.new_context()
    try:
        page = _open(context, f"{site.url}/b.html")
        page.locator(".p2pc-key summary").click()
        browser_key = page.locator(".p2pc-key code").inner_text()
        page.get_by_role("button", name="Exporter la clé").click()
        exported = page.locator(".p2pc-key textarea").input_value()
        key_file = tmp_path / "browser.key"
        key_file.write_text(exported)
        imported = b.daemon.cli(
            "--data-dir", str(tmp_path / "cli"), "--json", "key", "import", str(key_file)
        )
        assert imported.returncode == 0, imported.stderr
        assert browser_key in imported.stdout

        # The other way: a key exported by p2pc signs in the browser.
        cli_dir = tmp_path / "from-cli"
        created = create_identity(cli_dir)
        page.fill(".p2pc-key textarea", export_identity(cli_dir))
        page.get_by_role("button", name="Importer une clé").click()
        page.locator(".p2pc-key code", has_text=str(created)).wait_for()
        assert page.evaluate("JSON.parse(localStorage.getItem('p2pc.key')).seed") is not None

        # A passphrase-protected export is refused with a message saying why.
        locked = tmp_path / "locked"
        create_identity(locked, passphrase="correct horse")
        page.fill(".p2pc-key textarea", export_identity(locked))
        page.get_by_role("button", name="Importer une clé").click()
        page.locator(".p2pc-status", has_text="phrase secrète").wait_for()
        page.locator(".p2pc-key code", has_text=str(created)).wait_for()  # unchanged
    finally:
        context.close()


def test_aliases_join_one_thread(
    browser: Any, gateways: tuple[Gateway, Gateway], site: Any
) -> None:
    """A comment made under a page's old URL shows under the page that declares it an alias, and
    a reply to it there goes into the old URL's thread."""
    context = browser.new_context()
    try:
        old = _open(context, f"{site.url}/old-slug.html")
        _post(old, "Commentaire sous l'ancienne adresse.")
        _shows(old, "ancienne adresse")
        new = _open(context, f"{site.url}/new-slug.html")
        _shows(new, "ancienne adresse")
        _reply(new, "ancienne adresse", "Réponse depuis la nouvelle adresse.")
        _shows(new, "nouvelle adresse")
        _shows(old, "nouvelle adresse")  # it went into the old URL's thread, live
    finally:
        context.close()


def test_own_comments_edit_react_delete(
    browser: Any, gateways: tuple[Gateway, Gateway], site: Any
) -> None:
    """What a reader does to their own comments, each operation signed in the browser."""
    _, b = gateways
    context = browser.new_context()
    context.on("dialog", lambda dialog: dialog.accept())  # « Supprimer ce commentaire ? »
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    try:
        page = _open(context, f"{site.url}/other.html")
        _post(page, "Premier jet.")
        mine = page.locator("article", has_text="Premier jet.")
        mine.get_by_role("button", name="Modifier").click()
        page.fill(".p2pc-form-edit textarea", "Premier jet, corrigé.")
        page.click(".p2pc-form-edit button[type=submit]")
        edited = page.locator("article", has_text="corrigé")
        edited.locator("text=modifié").first.wait_for()
        edited.get_by_role("button", name="👍").click()
        page.locator("article button[aria-pressed=true]", has_text="👍 1").wait_for()
        _reply(page, "corrigé", "Une réponse à moi-même.")
        _shows(page, "moi-même")
        page.locator("article", has_text="corrigé").get_by_role(
            "button", name="Supprimer"
        ).first.click()
        page.locator(".p2pc-note", has_text="[supprimé]").wait_for()
        _shows(page, "moi-même")  # the reply stays under the tombstone
        thread = httpx.get(
            f"{b.url}/api/page",
            params={"url": "https://www.exemple.fr/2024/04/autre", "owner": site.owner},
            timeout=10,
        ).json()
        first = thread["comments"][0]
        assert first["retracted"] is True
        assert thread["comments"][1]["body"] == "Une réponse à moi-même."
        assert thread["comments"][1]["parent"] == first["id"]
        # WebCrypto did the signing: the fallback was never fetched.
        assert any(url.endswith("/web/widget.js") for url in requested)
        assert not any("noble" in url for url in requested)
    finally:
        context.close()


NO_WEBCRYPTO_ED25519 = """
(() => {
  const subtle = crypto.subtle, importKey = subtle.importKey.bind(subtle);
  subtle.importKey = (format, key, algorithm, ...rest) =>
    (algorithm === "Ed25519" || (algorithm && algorithm.name === "Ed25519"))
      ? Promise.reject(new DOMException("Ed25519 is not supported", "NotSupportedError"))
      : importKey(format, key, algorithm, ...rest);
})();
"""


def test_widget_without_webcrypto_ed25519(
    browser: Any, gateways: tuple[Gateway, Gateway], site: Any
) -> None:
    """Where WebCrypto has no Ed25519, the widget loads the vendored noble-ed25519 and signs
    with it; the node takes the operation as from any other browser."""
    _, b = gateways
    context = browser.new_context()
    context.add_init_script(NO_WEBCRYPTO_ED25519)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    try:
        page = _open(context, f"{site.url}/other.html")
        _post(page, "Signé par noble-ed25519.")
        _shows(page, "noble-ed25519")
        assert any(url.endswith("/web/vendor/noble-ed25519.js") for url in requested)
        wait_until(
            lambda: (
                "Signé par noble-ed25519."
                in [
                    c["body"]
                    for c in httpx.get(
                        f"{b.url}/api/page",
                        params={"url": "https://www.exemple.fr/2024/04/autre", "owner": site.owner},
                        timeout=10,
                    ).json()["comments"]
                ]
            ),
            timeout=SYNC_TIMEOUT,
            message="B to hold the comment signed with the fallback",
        )
    finally:
        context.close()
