"""p2pcomments: a peer-to-peer comment system that no one can take down."""

__version__ = "0.1.0"
