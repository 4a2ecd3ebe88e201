"""``p2pc``, the command line. Thin: it parses, calls the daemon's API or the Node, and formats.

Imports are kept cheap where users wait: nothing here imports libp2p, and trio and the Node are
imported only when a command opens the data dir itself (no daemon running).
"""
