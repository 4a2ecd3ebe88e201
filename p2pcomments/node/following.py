"""What the Node follows: the threads and sites whose gossip topics its network joins.

Rules:

1. The Node decides where follow state lives: while its network runs, in the network's
   `FollowList` (which joins and leaves topics as it changes); otherwise in ``follows.json``,
   which the network reads when it next starts. Callers (the API, the CLI) only ask.
2. A malformed site is a `ValueError`; a follow list that can't be saved, an `OSError`.
"""

from __future__ import annotations

from p2pcomments.follows import FollowList, Follows
from p2pcomments.node.node_state import NodeState

__all__ = ["Following"]


class Following(NodeState):
    """The follow methods of `Node` (rules 1-2)."""

    def follows(self) -> Follows:
        """The threads and sites followed now."""
        network = self.network
        return (network.follows if network is not None else FollowList.load(self.data_dir)).follows

    async def follow(self, *, thread: bytes | None = None, site: str | None = None) -> bool:
        """Follow a thread or a site; whether anything changed."""
        if self.network is not None:
            return await self.network.follow(thread=thread, site=site)
        return FollowList.load(self.data_dir).follow(thread=thread, site=site)

    async def unfollow(self, *, thread: bytes | None = None, site: str | None = None) -> bool:
        """Stop following a thread or a site; whether anything changed."""
        if self.network is not None:
            return await self.network.unfollow(thread=thread, site=site)
        return FollowList.load(self.data_dir).unfollow(thread=thread, site=site)
