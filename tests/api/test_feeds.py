"""`api.feeds` alone: what a hostile thread can put in a feed, and what it can't."""

from __future__ import annotations

from collections.abc import Callable

import feedparser
from core.story import ALICE, BOB, Story
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from p2pcomments.api.feeds import inbox_feed, site_feed, thread_feed
from p2pcomments.core.inbox import author_inbox
from p2pcomments.core.ops import ThreadPayload, make_operation
from p2pcomments.core.replica import Replica
from p2pcomments.core.thread_state import ThreadView


def _activity(story: Story) -> int:
    return story.replica.thread(story.thread.id).last_activity_ms


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
        site_feed(
            "blog.example",
            [(_activity(story), story.view)],
            base_url="http://h",
            self_url="http://h/s",
        )
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


@settings(max_examples=100, deadline=None)
@given(
    threads=st.lists(
        st.lists(st.tuples(st.integers(0, 40), st.none() | st.integers(0, 40)), max_size=6),
        min_size=1,
        max_size=8,
    ),
    limit=st.integers(1, 8),
)
def test_a_site_feed_reads_only_the_threads_that_may_hold_its_newest_comments(
    threads: list[list[tuple[int, int | None]]], limit: int
) -> None:
    """Threads handed newest activity first, each read only while it may hold one of the
    newest ``limit`` comments: the feed is the one made from reading every thread."""
    stories = []
    for n, comments in enumerate(threads):
        story = Story(title=f"post {n}", start=n)
        for at, edited_at in comments:
            comment = story.comment(ALICE, f"c{at}", ts=at)
            if edited_at is not None:
                story.edit(ALICE, comment, f"e{edited_at}", ts=max(at, edited_at) + 1)
        stories.append(story)
    stories.sort(key=lambda s: (_activity(s), s.thread.id), reverse=True)
    read: list[int] = []

    def reader(index: int) -> Callable[[], ThreadView]:
        def read_view() -> ThreadView:
            read.append(index)
            return stories[index].view()

        return read_view

    def feed(given: list[tuple[int, Callable[[], ThreadView]]]) -> list[tuple[str, str]]:
        body = site_feed("b.ex", given, base_url="http://h", self_url="http://h/s", limit=limit)
        return [(e.id, e.updated) for e in _parsed(body).entries]

    every = [(2**62, s.view) for s in stories]  # claims activity no comment is after: read all
    assert feed([(_activity(s), reader(i)) for i, s in enumerate(stories)]) == feed(every)
    assert read == list(range(len(read)))  # in the order given, then none


def test_a_site_feed_of_many_threads_reads_the_recent_ones() -> None:
    stories = []
    for n in range(20):
        story = Story(title=f"post {n}", start=1_000 * n)
        story.comment(ALICE, f"comment {n}", ts=1_000 * n + 500)
        stories.append(story)
    read: list[int] = []

    def reader(index: int) -> Callable[[], ThreadView]:
        return lambda: (read.append(index), stories[index].view())[1]

    newest_first = sorted(range(20), key=lambda i: _activity(stories[i]), reverse=True)
    body = site_feed(
        "b.ex",
        [(_activity(stories[i]), reader(i)) for i in newest_first],
        base_url="http://h",
        self_url="http://h/s",
        limit=3,
    )
    assert [e.content[0].value for e in _parsed(body).entries] == [
        "comment 19",
        "comment 18",
        "comment 17",
    ]
    assert read == [19, 18, 17]  # the fourth is last active before the third newest comment
