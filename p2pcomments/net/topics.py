"""Which gossip topics the node joins: those of the threads and sites it follows.

Rules:

1. The node joins the topic of every thread and site it follows (`p2pcomments.follows`);
   writing in a thread follows it (threads this author wrote in while the network was off
   included). A followed thread's topic is its site's when it has one.
2. A profile goes to every joined topic: names show in every thread we take part in.
3. The follow list is saved on every change; a failure to save is logged, not fatal (the topics
   are joined all the same).
4. The node also joins its author's inbox topic (`core.inbox.inbox_topic`, SPEC §8.2), whatever
   it follows; an operation is published on the inbox topics of its recipients too
   (`core.inbox.inbox_recipients`), at most `MAX_INBOX_TOPICS` of them, so its target's author
   hears of it even from a thread that author's node does not follow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import trio

from p2pcomments.core.inbox import inbox_recipients, inbox_topic
from p2pcomments.core.ops import Kind, Operation
from p2pcomments.follows import FollowList, site_topic, thread_topic
from p2pcomments.net.gossip import Gossip

if TYPE_CHECKING:
    from p2pcomments.node import Node

__all__ = ["MAX_INBOX_TOPICS", "Topics"]

MAX_INBOX_TOPICS: Final = (
    16  # per operation; beyond (an edit under a crowded comment), sync delivers
)

logger = logging.getLogger(__name__)


class Topics:
    """Rules 1-3, over the node's `FollowList` and the `Gossip` subscriptions."""

    def __init__(self, node: Node, follows: FollowList, gossip: Gossip) -> None:
        self.node = node
        self.follows = follows
        self._gossip = gossip
        self._lock = trio.Lock()

    def follow_authored_threads(self) -> None:
        """Threads this author wrote in while the network was off are followed too."""
        author = self.node.author
        try:
            for state in self.node.replica.threads_with_author(author):
                if any(op.author == author for op in state.ops.values()):
                    self.follows.follow_automatically(state.id, state.payload.site)
        except OSError as error:
            logger.warning("can't save %s: %s", self.follows.path, error)

    def _thread_topic(self, thread_id: bytes) -> str:
        state = self.node.replica.threads.get(thread_id)
        site = state.payload.site if state is not None else None
        return site_topic(site) if site is not None else thread_topic(thread_id)

    def _wanted_topics(self) -> set[str]:
        follows = self.follows.follows
        topics = {site_topic(site) for site in follows.sites}
        topics.update(self._thread_topic(thread_id) for thread_id in follows.threads)
        topics.add(inbox_topic(self.node.author))  # rule 4
        return topics

    async def refresh(self) -> None:
        async with self._lock:
            wanted = self._wanted_topics()
            joined = set(self._gossip.subscriptions())
            for topic in sorted(wanted - joined):
                await self._gossip.subscribe(topic)
            for topic in sorted(joined - wanted):
                await self._gossip.unsubscribe(topic)

    def note_follows(self, ops: Iterable[Operation], *, local: bool) -> bool:
        """Follow what we write in (rule 1); True if the topics to join may have changed."""
        changed = False
        followed_threads = self.follows.follows.threads
        for op in ops:
            if op.kind is Kind.THREAD and op.id in followed_threads:
                changed = True  # a followed thread arrived: its site decides its topic
            if not local:
                continue
            thread_id = op.thread_id
            if thread_id is not None:
                state = self.node.replica.threads.get(thread_id)
                site = state.payload.site if state is not None else None
                try:
                    changed |= self.follows.follow_automatically(thread_id, site)
                except OSError as error:
                    logger.warning("can't save %s: %s", self.follows.path, error)
        return changed

    def topics_of(self, op: Operation) -> list[str]:
        thread_id = op.thread_id
        if thread_id is None:  # rule 2
            return self._gossip.subscriptions()
        topics = [self._thread_topic(thread_id)]
        state = self.node.replica.threads.get(thread_id)
        if state is not None and op.kind is not Kind.THREAD:  # rule 4
            inboxes = sorted({inbox_topic(key) for key in inbox_recipients(state, op)})
            topics.extend(inboxes[:MAX_INBOX_TOPICS])
        return topics
