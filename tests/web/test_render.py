"""Comment bodies render as a safe Markdown subset in Chromium: the subset works, and hostile
bodies (script tags, javascript: links, event attributes, broken markup, 10,000-deep nesting,
right-to-left overrides) render as inert text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import PAGES, WAIT_MS, artifact, static_server
from .test_vectors import check

HOSTILE = [
    "<script>window.__pwned = 'script'</script>",
    '<img src="x" onerror="window.__pwned = \'img\'">',
    "<svg onload=\"window.__pwned='svg'\"><a href='javascript:window.__pwned=1'>x</a></svg>",
    "[click me](javascript:window.__pwned='md-link')",
    "[data](data:text/html,<script>window.__pwned=1</script>)",
    "javascript:window.__pwned='bare'",
    '<a href="https://ok.example" onclick="window.__pwned=\'a\'">x</a>',
    "<iframe src=\"javascript:parent.__pwned='iframe'\"></iframe>",
    "<style>body{display:none}</style><b>unclosed <i>tags <div",
    "**[x](javascript:alert(1))** `<script>` ```\n<script>window.__pwned=1</script>\n```",
    ">" * 10_000 + " deep quote",
    "*" * 10_000,
    "**a" * 3_000,
    "[" * 10_000 + "x" + "](http://a)" * 100,
    "<div>" * 10_000,
    "`" * 9_999,
    "\u202egnp.exe  \u202dRTL override\u202c <- isolated",
    "\u05e9\u05dc\u05d5\u05dd \u202b embedded",
]


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    with static_server(PAGES) as server:
        context = browser.new_context(viewport={"width": 360, "height": 800})
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server.url}/blank.html")
        yield page
        context.close()


def test_hostile_bodies_render_as_inert_text(page: Any) -> None:
    out = check(page, "renderHostile", {"bodies": HOSTILE, "depth": 2_000})
    page.screenshot(path=str(artifact("hostile-bodies.png")))
    assert out["pwned"] is None
    assert out["onAttributes"] == []
    assert out["badHrefs"] == []
    assert set(out["rels"]) <= {"nofollow ugc noopener"}
    allowed = {
        "a",
        "article",
        "bdi",
        "blockquote",
        "br",
        "button",
        "code",
        "div",
        "em",
        "form",
        "h2",
        "label",
        "li",
        "ol",
        "p",
        "pre",
        "span",
        "strong",
        "textarea",
        "time",
    }
    assert set(out["tags"]) <= allowed, set(out["tags"]) - allowed
    texts = out["texts"]
    assert "<script>window.__pwned = 'script'</script>" in texts[0]
    assert texts[1] == HOSTILE[1]
    assert "javascript:window.__pwned='md-link'" in texts[3]
    assert "\u202egnp.exe" in texts[16]
    assert all(d == "auto isolate" for d in out["bodyDirs"])
    assert out["authorsIsolated"]
    assert out["maxNesting"] <= 9  # replies 2,000 deep are drawn at a capped depth


def test_markdown_subset(page: Any) -> None:
    text = (
        "Hello **bold** and *em* and `co*de*`.\nSecond line, see https://blog.example/a.\n\n"
        "> quoted\n> > twice\n\n```\nfn x() { **no** }\n```\n"
        "[mail](mailto:a@b.example) [site](https://b.example/x?y=1)"
    )
    out = check(page, "markdown", text)
    assert out == (
        "<p>Hello <strong>bold</strong> and <em>em</em> and <code>co*de*</code>.<br>"
        "Second line, see "
        '<a href="https://blog.example/a" rel="nofollow ugc noopener">https://blog.example/a</a>.</p>'
        "<blockquote><p>quoted</p><blockquote><p>twice</p></blockquote></blockquote>"
        "<pre><code>fn x() { **no** }</code></pre>"
        '<p><a href="mailto:a@b.example" rel="nofollow ugc noopener">mail</a> '
        '<a href="https://b.example/x?y=1" rel="nofollow ugc noopener">site</a></p>'
    )


def test_languages_and_counts(page: Any) -> None:
    out = check(page, "languages")
    assert out["closed"] == "Les commentaires sont fermés."
    assert (out["one"], out["many"]) == ("1 commentaire", "3 commentaires")
    assert (out["enOne"], out["enMany"]) == ("1 comment", "2 comments")
    assert out["fromPage"] == "fr"
    assert out["explicit"] == "en"
    assert out["unknown"] in ("en", "fr")  # then navigator.language decides
