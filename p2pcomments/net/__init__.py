"""Networking on py-libp2p: the host and its peers (`host`), GossipSub batches (`gossip`), framed
request/response streams (`streams`), per-peer accounting (`peer_accounting`), and every py-libp2p
0.8.1 workaround in one module (`libp2p_workarounds`).

Nothing is imported here: importing libp2p costs 1-2 s and ~80 MB, so only code that starts
networking imports the submodules that need it. `gossip_payload`, `peer_accounting` and
`remembered_peers` are pure and never import libp2p.
"""
