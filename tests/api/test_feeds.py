"""`api.feeds` alone: what a hostile thread can put in a feed, and what it can't."""

from __future__ import annotations

import feedparser
from core.story import ALICE, BOB, Story
from nacl.signing import SigningKey

from p2pcomments.api.feeds import inbox_feed, site_feed, thread_feed
from p2pcomments.core.inbox import author_inbox
from p2pcomments.core.ops import ThreadPayload, make_operation
from p2pcomments.core.replica import Replica


def _parsed(body: bytes) -> feedparser.FeedParserDict:
    feed = feedparser.parse(body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    return feed


def test_text_xml_cannot_carry_becomes_a_replacement_character() -> None:
    story = Story(title="A \ufffe title \uffff")
    story.comment(ALICE, "body with \ufffe and <tags> & ]]> too")
    body = thread_feed(story.view(), base_url="http://127.0.0.1:1", self_url="http://127.0.0.1:1/f")
    feed = _parsed(body)
    assert feed.feed.title == "A \ufffd title \ufffd"
    assert feed.entries[0].content[0].value == "body with \ufffd and <tags> & ]]> too"
    assert b"<tags>" not in body


def test_only_http_urls_become_links_and_times_are_clamped() -> None:
    owner = SigningKey(b"\x41" * 32)
    thread = make_operation(
        owner,
        ThreadPayload(title="t", url="javascript:alert(1)"),
        timestamp_ms=2**63 - 1,  # an author may claim any time
    )
    replica = Replica()
    replica.apply(thread)
    body = thread_feed(replica.view(thread.id), base_url="http://h", self_url="http://h/self")
    feed = _parsed(body)
    assert b'href="javascript' not in body
    assert all(link.href.startswith("http://h/") for link in feed.feed.links)
    assert feed.feed.updated.startswith("9999-12-31T23:59:59")


def test_site_and_inbox_feeds_name_who_did_what() -> None:
    story = Story()
    story.profile(BOB, "Bob <b>")
    mine = story.comment(ALICE, "question")
    story.comment(BOB, "answer", parent=mine)
    names = story.replica.names()
    site = _parsed(
        site_feed("blog.example", [story.view()], base_url="http://h", self_url="http://h/s")
    )
    newest = site.entries[0].title
    assert newest.startswith("Bob <b> replied to key_")  # no name for Alice: her short key
    assert newest.endswith(" on “A post”")
    entries = author_inbox(story.replica.threads.values(), bytes(ALICE.verify_key), names)
    inbox = _parsed(
        inbox_feed(
            bytes(ALICE.verify_key), None, entries, base_url="http://h", self_url="http://h/i"
        )
    )
    assert [e.title for e in inbox.entries] == ["Bob <b> replied to you on “A post”"]
    assert inbox.entries[0].content[0].value == "answer"
