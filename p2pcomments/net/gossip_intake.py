"""Gossip in: the pubsub validator and the delivery of accepted batches to the Node.

Rules:

1. Validation is synchronous and never raises: every operation of a batch must decode
   canonically and carry its author's signature, and core must not already be able to tell it
   invalid (`Replica.verdict`: its thread and parents are all applied here and it breaks a
   thread rule). One that references something not here is *accepted* and held pending (libp2p
   caches a rejection per message for minutes, and the verdict must be the same on every node).
   Anything else rejects the whole message, which counts against the forwarder.
2. Operations already held with the same bytes are not verified again, and verified ones are
   handed to `Node.ingest_verified`, so no signature is checked twice.
3. What delivered operations miss is fetched from their forwarder (`fetcher` rule 1).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from p2pcomments.core.ops import Operation, decode_operation, verify_operation
from p2pcomments.core.replica import Duplicate, Outcome, Rejected
from p2pcomments.errors import InvalidOperation, P2PCommentsError
from p2pcomments.net.config import NetworkConfig
from p2pcomments.net.fetcher import Fetcher
from p2pcomments.net.host import P2PHost
from p2pcomments.net.network_statistics import Tally

if TYPE_CHECKING:
    from p2pcomments.node import Node

__all__ = ["GossipIntake"]

logger = logging.getLogger(__name__)


class GossipIntake:
    """Rules 1-3: `validate_batch` is the `Gossip` validator, `on_batch` its delivery."""

    def __init__(
        self, node: Node, host: P2PHost, config: NetworkConfig, fetcher: Fetcher, tally: Tally
    ) -> None:
        self.node = node
        self.config = config
        self._host = host
        self._fetcher = fetcher
        self._tally = tally
        self._verified: OrderedDict[bytes, tuple[Operation, str]] = OrderedDict()

    def validate_batch(self, forwarder: str, ops: list[bytes]) -> bool:
        """The pubsub validator: synchronous, never raises (Gossip also guards it)."""
        replica = self.node.replica
        accepted: list[tuple[bytes, Operation]] = []
        verified = self._verified
        for data in ops:
            if data in verified:  # another message brought it: checked already
                continue
            try:
                op = decode_operation(data, verify=False)
            except InvalidOperation as error:
                return self._reject_batch(forwarder, error.reason)
            held = replica.get(op.id)
            if held is not None and held.encoded == data:
                continue
            try:
                verify_operation(op)  # core's one rule: a page thread is authentic unsigned
            except InvalidOperation as error:
                return self._reject_batch(forwarder, error.reason)
            reason = replica.verdict(op)  # rule 1: core's verdict
            if reason is not None:
                return self._reject_batch(forwarder, reason)
            accepted.append((data, op))
        for data, op in accepted:
            verified[data] = (op, forwarder)
        while len(verified) > self.config.verified_cache_size:
            verified.popitem(last=False)
        return True

    def _reject_batch(self, forwarder: str, reason: str) -> bool:
        # Gossip gives the forwarder its strike when we return False.
        self._tally.gossip_rejected_batches += 1
        self._tally.rejected_from_peers += 1
        logger.info("rejected a gossip batch from %s: %s", forwarder, reason)
        return False

    async def on_batch(self, topic: str, origin: str, ops: list[bytes]) -> None:
        self._tally.gossip_batches_in += 1
        self._tally.gossip_ops_in += len(ops)
        verified: list[Operation] = []
        unverified: list[bytes] = []
        sender = origin
        for data in ops:
            entry = self._verified.pop(data, None)
            if entry is not None:
                verified.append(entry[0])
                sender = entry[1]
                continue
            unverified.append(data)
        outcomes: list[Outcome] = []
        try:
            if verified:
                outcomes += await self.node.ingest_verified(verified, source="gossip")
            # Held already (the validator skipped those), or evicted from the cache: ingest
            # checks what is not held, and reports what is as Duplicate.
            if unverified:
                outcomes += await self.node.ingest(unverified, source="gossip")
        except P2PCommentsError as error:  # the store failed or the node is closing: not a peer's
            logger.warning("could not store a gossip batch: %s", error)
            return
        self._tally.gossip_ops_applied += sum(
            1 for o in outcomes if not isinstance(o, Rejected | Duplicate)
        )
        if not self._host.is_connected(sender):
            sender = origin
        self._fetcher.after_ingest(sender, outcomes, blame=False)
