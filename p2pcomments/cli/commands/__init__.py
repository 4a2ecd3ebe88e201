"""The ``p2pc`` commands, one function per command (``cmd_<name>``, taking the `Session` and
returning the exit code), grouped by what they are about: `discussion` (threads, comments,
moderation, profiles, watch), `network` (daemon, id, peers, follows, sync) and `data` (the
author key, bundles, statistics, repair). `p2pcomments.cli.parser` wires them to subcommands.
"""
