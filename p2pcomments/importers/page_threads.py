"""The page thread of (owner, URL) and its title, as the importer needs them.

A thin seam over `core.ops` (SPEC §10.2): imported posts land in the page thread of the importing
node's key and the post's normal URL, so their comments show in the widget on that page. The title
is set by an owner-signed retitle (moderate action 7), which anyone can tell from a forgery.
"""

from __future__ import annotations

from nacl.signing import SigningKey

from p2pcomments.core.ops import (
    ModAction,
    ModeratePayload,
    Operation,
    make_operation,
    page_thread,
)

__all__ = ["page_thread_for", "title_operation"]


def page_thread_for(owner: bytes, normal_url: str) -> Operation:
    """The (unsigned, deterministic) page thread of ``normal_url`` owned by ``owner``."""
    return page_thread(owner, normal_url)


def title_operation(
    signing_key: SigningKey, thread: Operation, title: str, *, timestamp_ms: int
) -> Operation:
    """The owner's retitle of ``thread`` to ``title``, dated ``timestamp_ms`` (the post's date,
    so that a title the owner sets later wins)."""
    return make_operation(
        signing_key,
        ModeratePayload(action=ModAction.RETITLE, reason=title),
        timestamp_ms=timestamp_ms,
        thread=thread.id,
        refs=(thread.id,),
    )
