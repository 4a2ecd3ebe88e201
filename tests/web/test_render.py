"""Comment bodies render as a safe Markdown subset in Chromium: the subset works, and hostile
bodies (script tags, javascript: links, event attributes, broken markup, 10,000-deep nesting,
right-to-left overrides) render as inert text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import WAIT_MS, artifact, static_server
from .test_vectors import PAGES

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


RENDER = """async ({bodies, depth}) => {
  const { ThreadView, injectStyle } = await import("/web/thread-ui.js");
  const { translator } = await import("/web/i18n.js");
  injectStyle();
  const key = (n) => "key_" + String(n).padStart(56, "a").slice(0, 56);
  const comments = bodies.map((body, i) => ({
    id: "cmt_" + String(i).padStart(56, "b"), author: key(i), author_name: i % 2 ? body.slice(0, 80) : null,
    parent: "thr_x", depth: 0, timestamp_ms: 1767225600000 + i, body, edited: false, edits: [],
    original: null, retracted: false, hidden: false, reactions: [], parent_edited_after: false, after_close: false,
  }));
  for (let d = 0; d < depth; d++) comments.push({ ...comments[0], id: "cmt_d" + d, depth: d, body: "level " + d });
  const root = document.createElement("div");
  document.body.replaceChildren(root);
  const ui = new ThreadView(root, { me: null, t: translator("en"), lang: "en", write: async () => {}, report: () => {} });
  const started = performance.now();
  ui.render({ id: "thr_x", owner: key(0), moderators: [], closed: false, comments });
  const elapsed = performance.now() - started;
  await new Promise((r) => setTimeout(r, 50));
  const all = [...root.querySelectorAll("*")];
  return {
    pwned: window.__pwned ?? null,
    onAttributes: all.flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name)).map((a) => e.tagName + " " + a.name)),
    badHrefs: [...root.querySelectorAll("[href],[src]")].map((e) => e.getAttribute("href") || e.getAttribute("src")).filter((h) => !/^(https?:|mailto:)/.test(h)),
    rels: [...root.querySelectorAll("a[href]")].map((a) => a.rel),
    tags: [...new Set(all.map((e) => e.tagName.toLowerCase()))].sort(),
    texts: [...root.querySelectorAll(".p2pc-body")].map((b) => b.textContent),
    bodyDirs: [...root.querySelectorAll(".p2pc-body")].map((b) => b.dir + " " + getComputedStyle(b).unicodeBidi),
    authorsIsolated: [...root.querySelectorAll(".p2pc-author")].every((a) => a.tagName === "BDI"),
    maxNesting: Math.max(...all.map((e) => { let n = 0; for (let p = e; p; p = p.parentElement) if (p.tagName === "OL") n++; return n; })),
    elapsed,
  };
}"""


def test_hostile_bodies_render_as_inert_text(page: Any) -> None:
    out = page.evaluate(RENDER, {"bodies": HOSTILE, "depth": 2_000})
    page.screenshot(path=str(artifact("hostile-bodies.png")))
    assert out["pwned"] is None
    assert out["onAttributes"] == []
    assert out["badHrefs"] == []
    assert set(out["rels"]) <= {"nofollow ugc noopener"}
    allowed = {"a", "article", "bdi", "blockquote", "br", "button", "code", "div", "em", "form",
               "h2", "label", "li", "ol", "p", "pre", "span", "strong", "textarea", "time"}
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
    out = page.evaluate(
        """async () => {
          const { renderMarkdown } = await import("/web/markdown.js");
          const div = renderMarkdown("Hello **bold** and *em* and `co*de*`.\\nSecond line, see https://blog.example/a.\\n\\n> quoted\\n> > twice\\n\\n```\\nfn x() { **no** }\\n```\\n[mail](mailto:a@b.example) [site](https://b.example/x?y=1)");
          return div.innerHTML;
        }"""
    )
    assert out == (
        '<p>Hello <strong>bold</strong> and <em>em</em> and <code>co*de*</code>.<br>Second line, see '
        '<a href="https://blog.example/a" rel="nofollow ugc noopener">https://blog.example/a</a>.</p>'
        "<blockquote><p>quoted</p><blockquote><p>twice</p></blockquote></blockquote>"
        "<pre><code>fn x() { **no** }</code></pre>"
        '<p><a href="mailto:a@b.example" rel="nofollow ugc noopener">mail</a> '
        '<a href="https://b.example/x?y=1" rel="nofollow ugc noopener">site</a></p>'
    )


def test_languages_and_counts(page: Any) -> None:
    out = page.evaluate(
        """async () => {
          const { translator, pickLanguage } = await import("/web/i18n.js");
          const fr = translator("fr"), en = translator("en");
          document.documentElement.lang = "fr-FR";
          const fromPage = pickLanguage(undefined);
          document.documentElement.lang = "";
          return { closed: fr("closed"), one: fr("comments", {n: 1}), many: fr("comments", {n: 3}),
                   enOne: en("comments", {n: 1}), enMany: en("comments", {n: 2}), fromPage,
                   explicit: pickLanguage("en-GB"), unknown: pickLanguage("xx") };
        }"""
    )
    assert out["closed"] == "Les commentaires sont fermés."
    assert (out["one"], out["many"]) == ("1 commentaire", "3 commentaires")
    assert (out["enOne"], out["enMany"]) == ("1 comment", "2 comments")
    assert out["fromPage"] == "fr"
    assert out["explicit"] == "en"
    assert out["unknown"] in ("en", "fr")  # then navigator.language decides
