"""HTML of old comments to the safe Markdown subset (the one p2pcomments/web/markdown.js shows)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pcomments.importers.markup import html_to_markdown


@pytest.mark.parametrize(
    ("html", "markdown"),
    [
        ("Erster!1", "Erster!1"),
        ("two lines:\nWordPress keeps them", "two lines:\nWordPress keeps them"),
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("a<br>b<br />c", "a\nb\nc"),
        ("<em>it</em> <i>it</i> <strong>b</strong> <b>b</b>", "*it* *it* **b** **b**"),
        (
            '<a href="https://example.org/x?a=1&amp;b=2" rel="nofollow" class="x">site</a>',
            "[site](https://example.org/x?a=1&b=2)",
        ),
        ('<a href="javascript:alert(1)">click</a>', "click"),
        ('<a href="mailto:me@example.org">mail</a>', "mail"),
        ("<blockquote>quoted<br>twice</blockquote>after", "> quoted\n> twice\n\nafter"),
        ("<blockquote><p>a</p><blockquote>b</blockquote></blockquote>", "> a\n\n> > b"),
        ("<script>alert('x')</script>kept<style>p{}</style>", "kept"),
        ('<p onclick="evil()" style="color:red">text</p>', "text"),
        ("<iframe src='http://x'>inside</iframe>after", "after"),
        (
            "&laquo;&nbsp;Bonjour&nbsp;&raquo; c&#8217;est l&rsquo;été&hellip; 👍🏽",
            "«\u00a0Bonjour\u00a0» c\u2019est l\u2019été… 👍🏽",
        ),
        ("« déjà » — \u2019 … 🎉", "« déjà » — \u2019 … 🎉"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
        ("<ol><li>one</li><li>two</li></ol>", "1. one\n2. two"),
        ("<h2>Title</h2>text", "**Title**\n\ntext"),
        ("<code>x = 1</code>", "`x = 1`"),
        ("<pre>line 1\n  line 2\n```</pre>", "```\nline 1\n  line 2\n ```\n```"),
        ('<img src="x.png" alt="a cat"> <img src="y.png">', "a cat"),
        ("\n                    indented by a pretty-printer\n", "indented by a pretty-printer"),
        ("<em></em>nothing to emphasise", "nothing to emphasise"),
        ("a &lt;b&gt; tag as text", "a <b> tag as text"),
        ("", ""),
    ],
)
def test_conversion(html: str, markdown: str) -> None:
    assert html_to_markdown(html) == markdown


@given(st.text())
def test_any_input_gives_text_the_wire_takes(html: str) -> None:
    out = html_to_markdown(html)
    assert "\r" not in out
    assert not any(ord(c) < 0x20 and c != "\n" for c in out)
    assert not any(0x7F <= ord(c) <= 0x9F for c in out)
    assert "<script" not in out.lower() or "<script" in html.lower().replace("&lt;", "<")
