"""Gossip out: what this node applied from its own writes or an import, batched per topic.

Rules:

1. Operations this node applied from its own writes or an import (it learned them first) are
   gossiped, batched per topic (`topics`); operations learned by gossip are forwarded by
   GossipSub itself and those learned by sync are not gossiped (sync brought them, sync spreads
   them). An applied-operations subscription that lagged loses some of them for gossip only:
   sync repairs that.
2. Batching adapts: an operation after a quiet spell leaves at once, while under load what
   arrives within `_PUBLISH_INTERVAL` of the last publish (`_BULK_INTERVAL` after a bulk one)
   waits and leaves with it, so a burst becomes few large messages per topic.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Final

import trio

from p2pcomments.net.gossip import Gossip
from p2pcomments.net.network_statistics import Tally
from p2pcomments.net.topics import Topics

if TYPE_CHECKING:
    from trio_typing import TaskStatus

    from p2pcomments.node import AppliedBatch, Node

__all__ = ["MAX_MESSAGE_OPS", "Publisher"]

logger = logging.getLogger(__name__)

# Sources of applied batches that are not gossiped by us (rule 1).
_NOT_PUBLISHED: Final = frozenset({"gossip", "sync"})
# At most one publish per this many seconds while busy, or per the bulk interval after a
# publish of at least _BULK_OPS operations (an import: every pubsub message and every ingest
# call it makes costs each node a fixed share of CPU, so bulk traffic goes in fewer, larger
# messages); at most this many operations per publish call, and per message (a receiver's
# validator checks a whole message at once, ~60 us per operation, on its event loop).
_PUBLISH_INTERVAL: Final = 0.025
_BULK_OPS: Final = 100
_BULK_INTERVAL: Final = 0.15
_MAX_PUBLISH_BATCH: Final = 2_000
MAX_MESSAGE_OPS: Final = 1_000


class Publisher:
    """Rules 1-2; `run` is its task."""

    def __init__(self, node: Node, gossip: Gossip, topics: Topics, tally: Tally) -> None:
        self.node = node
        self._gossip = gossip
        self._topics = topics
        self._tally = tally

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Rules 1-2, until the node closes."""
        with self.node.subscribe_applied() as batches:
            task_status.started()
            last_publish = -math.inf
            hold = _PUBLISH_INTERVAL
            while True:
                try:
                    first = await batches.receive()
                except trio.EndOfChannel:
                    return  # the node is closing
                received = [first]
                count = len(first.ops)
                with trio.move_on_at(last_publish + hold):
                    while count < _MAX_PUBLISH_BATCH:
                        batch = await batches.receive()
                        received.append(batch)
                        count += len(batch.ops)
                while count < _MAX_PUBLISH_BATCH:  # and whatever else is ready now
                    try:
                        batch = batches.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    received.append(batch)
                    count += len(batch.ops)
                if await self._publish(received):
                    last_publish = trio.current_time()
                    hold = _BULK_INTERVAL if count >= _BULK_OPS else _PUBLISH_INTERVAL

    async def _publish(self, batches: list[AppliedBatch]) -> bool:
        """Publish what ``batches`` hold for gossip, grouped by topic; whether anything went."""
        by_topic: dict[str, list[bytes]] = {}
        for batch in batches:
            if batch.lagged:
                self._tally.published_lagged += 1
                logger.info("gossip fell behind the node; sync will spread what it missed")
            if self._topics.note_follows(batch.ops, local=batch.source == "local"):
                await self._topics.refresh()
            if batch.source in _NOT_PUBLISHED:
                continue
            for op in batch.ops:
                for topic in self._topics.topics_of(op):
                    by_topic.setdefault(topic, []).append(op.encoded)
        for topic, encoded in by_topic.items():
            await self._gossip.publish(topic, encoded)
            self._tally.published_ops += len(encoded)
        return bool(by_topic)
