"""What this node follows: threads and sites whose gossip topics it joins (``follows.json``).

No libp2p and no trio here: the CLI edits the file offline (`p2pc follow`), the network service
reads it at start and keeps it up to date while it runs.

Rules:

1. The file is a JSON object ``{"version": 1, "threads": [thr_…], "sites": [...],
   "unfollowed": {"threads": [...], "sites": [...]}}``, written atomically (temporary file,
   fsync, rename), mode 0600. Lists are sorted, so the file only changes when the follows do.
2. A missing file means no follows. An unreadable or foreign one is set aside as
   ``follows.json.bad`` (logged) and the node starts with none: follows are a convenience, and
   writing over the user's file would lose it for good.
3. Creating or commenting on a thread follows it (`FollowList.follow_automatically`): its site if
   it has one, else the thread itself, unless the user unfollowed exactly that before. Following
   something explicitly clears an earlier unfollow; unfollowing records it so it is not followed
   again automatically.
4. Topics (protocol/SPEC.md §8): a thread with a site lives on ``p2pc/1/site/<site>``, one without
   on ``p2pc/1/thread/<thr_ text form>``. A site is compared exactly as signed in the thread
   operation (no case folding), after trimming white space from what a user typed.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from p2pcomments.atomic_file import write_json_atomically
from p2pcomments.core.ops import MAX_SITE_BYTES
from p2pcomments.core.textform import TextKind, format_id, parse_id
from p2pcomments.errors import TextFormError

__all__ = [
    "FOLLOWS_FILE",
    "SITE_TOPIC_PREFIX",
    "THREAD_TOPIC_PREFIX",
    "FollowList",
    "Follows",
    "parse_follow_target",
    "site_topic",
    "thread_topic",
]

logger = logging.getLogger(__name__)

FOLLOWS_FILE: Final = "follows.json"
FILE_VERSION: Final = 1
SITE_TOPIC_PREFIX: Final = "p2pc/1/site/"
THREAD_TOPIC_PREFIX: Final = "p2pc/1/thread/"


def site_topic(site: str) -> str:
    """The gossip topic of every thread about ``site`` (rule 4)."""
    return SITE_TOPIC_PREFIX + site


def thread_topic(thread_id: bytes) -> str:
    """The gossip topic of a thread that has no site (rule 4)."""
    return THREAD_TOPIC_PREFIX + format_id(TextKind.THREAD, thread_id)


def _check_site(site: str) -> str:
    site = site.strip()
    if not site or len(site.encode("utf-8")) > MAX_SITE_BYTES or any(c.isspace() for c in site):
        raise ValueError(f"not a site name: {site!r}")
    return site


def parse_follow_target(text: str) -> tuple[bytes | None, str | None]:
    """What a user typed after ``follow``: ``(thread id, None)`` for a ``thr_…`` (or 64-hex) id,
    ``(None, site)`` otherwise. Raises ValueError (`TextFormError` for a mistyped id)."""
    cleaned = text.strip()
    if cleaned.lower().startswith(("thr_", "cmt_", "op_", "key_")) or (
        len(cleaned) == 64 and all(c in "0123456789abcdefABCDEF" for c in cleaned)
    ):
        return parse_id(cleaned, expect=frozenset({TextKind.THREAD})), None
    return None, _check_site(cleaned)


@dataclass(frozen=True, slots=True, kw_only=True)
class Follows:
    """A snapshot of the follow list."""

    threads: frozenset[bytes] = frozenset()
    sites: frozenset[str] = frozenset()
    unfollowed_threads: frozenset[bytes] = frozenset()
    unfollowed_sites: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, object]:
        """The JSON form of the file and of the API (thread ids in text form)."""
        return {
            "version": FILE_VERSION,
            "threads": sorted(format_id(TextKind.THREAD, t) for t in self.threads),
            "sites": sorted(self.sites),
            "unfollowed": {
                "threads": sorted(format_id(TextKind.THREAD, t) for t in self.unfollowed_threads),
                "sites": sorted(self.unfollowed_sites),
            },
        }


def _from_json(document: object) -> Follows:
    if not isinstance(document, dict) or document.get("version") != FILE_VERSION:
        raise ValueError("not a version 1 follows file")
    unfollowed = document.get("unfollowed", {})
    if not isinstance(unfollowed, dict):
        raise ValueError("unfollowed is not an object")

    def threads(value: object) -> frozenset[bytes]:
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ValueError("threads must be a list of thread ids")
        return frozenset(parse_id(t, expect=frozenset({TextKind.THREAD})) for t in value)

    def sites(value: object) -> frozenset[str]:
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise ValueError("sites must be a list of names")
        return frozenset(_check_site(s) for s in value)

    return Follows(
        threads=threads(document.get("threads", [])),
        sites=sites(document.get("sites", [])),
        unfollowed_threads=threads(unfollowed.get("threads", [])),
        unfollowed_sites=sites(unfollowed.get("sites", [])),
    )


class FollowList:
    """The follow list of one data dir (rules 1-3). Each change is saved at once."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FOLLOWS_FILE
        self._follows = Follows()

    @classmethod
    def load(cls, data_dir: Path) -> FollowList:
        """Read ``follows.json`` (rule 2: a bad file is set aside, never fatal)."""
        follow_list = cls(data_dir)
        try:
            raw = follow_list.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return follow_list
        except OSError as error:
            logger.warning("can't read %s: %s", follow_list.path, error)
            return follow_list
        try:
            follow_list._follows = _from_json(json.loads(raw))
        except (ValueError, TextFormError) as error:
            logger.warning("ignoring %s (%s); moved aside to .bad", follow_list.path, error)
            with contextlib.suppress(OSError):
                follow_list.path.replace(follow_list.path.with_name(FOLLOWS_FILE + ".bad"))
        return follow_list

    @property
    def follows(self) -> Follows:
        return self._follows

    def follow(self, *, thread: bytes | None = None, site: str | None = None) -> bool:
        """Follow a thread or a site explicitly; return whether anything changed."""
        current = self._follows
        if thread is not None:
            return self._replace(
                Follows(
                    threads=current.threads | {thread},
                    sites=current.sites,
                    unfollowed_threads=current.unfollowed_threads - {thread},
                    unfollowed_sites=current.unfollowed_sites,
                )
            )
        name = _check_site(_required(site))
        return self._replace(
            Follows(
                threads=current.threads,
                sites=current.sites | {name},
                unfollowed_threads=current.unfollowed_threads,
                unfollowed_sites=current.unfollowed_sites - {name},
            )
        )

    def unfollow(self, *, thread: bytes | None = None, site: str | None = None) -> bool:
        """Stop following a thread or a site, and don't follow it again automatically."""
        current = self._follows
        if thread is not None:
            return self._replace(
                Follows(
                    threads=current.threads - {thread},
                    sites=current.sites,
                    unfollowed_threads=current.unfollowed_threads | {thread},
                    unfollowed_sites=current.unfollowed_sites,
                )
            )
        name = _check_site(_required(site))
        return self._replace(
            Follows(
                threads=current.threads,
                sites=current.sites - {name},
                unfollowed_threads=current.unfollowed_threads,
                unfollowed_sites=current.unfollowed_sites | {name},
            )
        )

    def follow_automatically(self, thread: bytes, site: str | None) -> bool:
        """Rule 3: follow what this node wrote in, unless the user unfollowed it."""
        current = self._follows
        if site is not None:
            if site in current.sites or site in current.unfollowed_sites:
                return False
            return self.follow(site=site)
        if thread in current.threads or thread in current.unfollowed_threads:
            return False
        return self.follow(thread=thread)

    def is_followed(self, thread: bytes, site: str | None) -> bool:
        return thread in self._follows.threads or (site is not None and site in self._follows.sites)

    def _replace(self, follows: Follows) -> bool:
        if follows == self._follows:
            return False
        self._save(follows)
        self._follows = follows
        return True

    def _save(self, follows: Follows) -> None:
        """Write atomically (rule 1). Raises OSError when the data dir is not writable."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self.path, follows.to_json())


def _required(site: str | None) -> str:
    if site is None:
        raise ValueError("give a thread or a site")
    return site
