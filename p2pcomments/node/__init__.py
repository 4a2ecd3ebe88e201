"""The Node: the one object an embedder needs. Open a data dir, write, ingest, read, watch.

``from p2pcomments.node import Node, open_node``. The parts, each with its own rules:
`node` (the class and its reads), `writes`, `ingest`, `changes` (watching), `inbox`, `node_state`
(what they share), `opening` (`open_node`), `values` (what they return).
"""

from __future__ import annotations

from p2pcomments.node.changes import ChangeStream
from p2pcomments.node.inbox import Inbox, InboxChange
from p2pcomments.node.node import Node
from p2pcomments.node.opening import open_node
from p2pcomments.node.values import AppliedBatch, NodeStatistics, ThreadChange, ThreadSummary

__all__ = [
    "AppliedBatch",
    "ChangeStream",
    "Inbox",
    "InboxChange",
    "Node",
    "NodeStatistics",
    "ThreadChange",
    "ThreadSummary",
    "open_node",
]
