"""The local HTTP API: the Node served as JSON, server-sent events and read-only pages.

Importing this package is cheap: the CLI uses `p2pcomments.api.actions` (the one table of what the
API can do) and `p2pcomments.api.address_file` without loading Starlette or Hypercorn, which only
`p2pcomments.api.app` and `p2pcomments.api.server` import.
"""
