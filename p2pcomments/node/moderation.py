"""The Node's rules (SPEC §11): writing them (bans, approvals, modes, reply gates, proof of work,
reports, recommended lists), reading what they decide, the moderation queue, and the reader's
own mutes.

Rules:

1. A rule's *scope* is a thread id: a thread's own, or a site thread's (`site_thread_id`), whose
   rules hold for every page thread of its owner and site. `ensure_site_thread` stores a site
   thread here (it is the same operation whoever makes it, like a page thread).
2. What the rules decide is `core.rules`' (a function of the operations held); the Node adds the
   reader's mutes (``mutes.json``, `p2pcomments.mutes`) and the bans of the mute lists they
   follow.
3. The queue is what waits for a moderator: comments withheld as pre-moderated (or members only,
   or replies by authors not approved), in threads where this node's author is the owner or a
   moderator, in either scope; approving the author or the comment releases it everywhere.
4. A local write that its thread's rules make pay proof of work is mined (`core.pow`) in a worker
   thread before it is signed and stored; ``mining_progress(attempts, difficulty)`` hears of it.
5. The queue and the reports of every thread are async: they visit only the threads that may
   hold work (`node.listings` rule 4), a few at a time through `Node.each_thread`, so a site
   that pre-moderates ten thousand pages is read off the loop, thread by thread, and not held
   in memory all at once. Each entry carries its comment, so showing it loads nothing again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Final

import trio

from p2pcomments.core.ops import (
    ModAction,
    ModeratePayload,
    Operation,
    ReplyGate,
    ThreadMode,
    site_thread,
)
from p2pcomments.core.replica import Applied, Duplicate
from p2pcomments.core.rules import CommentRules, ThreadRules, judge_thread
from p2pcomments.core.thread_state import ThreadState
from p2pcomments.mutes import MuteList, Mutes
from p2pcomments.node import listings
from p2pcomments.node.thread_walk import ThreadWalk
from p2pcomments.node.writes import LocalWrites

__all__ = ["QueueEntry", "ReportEntry", "RuleWrites"]

QUEUE_REASONS: Final = frozenset({"pre-moderated", "members-only", "replies-approved"})


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry:
    """A comment waiting for a moderator (rule 3)."""

    thread: bytes
    comment: Operation
    withheld: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportEntry:
    """A reported comment and what the rules say of it (its reports, whether it is withheld)."""

    thread: bytes
    comment: Operation
    verdict: CommentRules


_KEPT_VERDICTS: Final = "verdicts"  # the name a big thread keeps them under


def _oldest(entry: QueueEntry) -> tuple[int, bytes]:
    return entry.comment.timestamp_ms, entry.comment.id


class RuleWrites(LocalWrites, ThreadWalk):
    """Rule writes and reads of `Node` (module rules 1-5)."""

    mining_progress: Callable[[int, int], None] | None = None  # rule 4; set per instance

    # -- scopes --------------------------------------------------------------------------------

    def site_thread_id(self, site: str, owner: bytes | None = None) -> bytes:
        """The site thread of (``owner``, default this author; ``site``) (`PageUrlError` for a
        site that is not a host in normal form)."""
        return site_thread(owner if owner is not None else self.author, site).id

    async def ensure_site_thread(self, site: str, owner: bytes | None = None) -> Operation:
        """The site thread of (owner, ``site``), stored here if it was not (rule 1)."""
        op = site_thread(owner if owner is not None else self.author, site)
        if op.id not in self.replica:
            [outcome] = await self.ingest([op.encoded], source="local")
            assert isinstance(outcome, Applied | Duplicate), outcome
        return op

    # -- writes --------------------------------------------------------------------------------

    async def _rule(
        self,
        scope: bytes,
        action: ModAction,
        *,
        subject: bytes | None = None,
        reason: str = "",
        value: int | None = None,
    ) -> Operation:
        state = self._thread_state(scope)
        payload = ModeratePayload(action=action, subject=subject, reason=reason, value=value)
        return await self._write_in(state, payload, target=scope)

    async def ban(
        self, scope: bytes, author: bytes, *, reason: str = "", until_ms: int = 0
    ) -> Operation:
        """Withhold ``author``'s comments in the scope, those with a timestamp below
        ``until_ms`` (0: all of them)."""
        return await self._rule(scope, ModAction.BAN, subject=author, reason=reason, value=until_ms)

    async def unban(self, scope: bytes, author: bytes, *, reason: str = "") -> Operation:
        return await self._rule(scope, ModAction.UNBAN, subject=author, reason=reason)

    async def approve_author(self, scope: bytes, author: bytes, *, reason: str = "") -> Operation:
        """Approve ``author``: past the pre-moderation queue, a member, free of proof of work."""
        return await self._rule(scope, ModAction.APPROVE_AUTHOR, subject=author, reason=reason)

    async def revoke_author(self, scope: bytes, author: bytes, *, reason: str = "") -> Operation:
        return await self._rule(scope, ModAction.REVOKE_AUTHOR, subject=author, reason=reason)

    async def approve_comment(
        self, comment_id: bytes, *, scope: bytes | None = None, reason: str = ""
    ) -> Operation:
        """Release one comment from the queue; the scope defaults to the comment's thread."""
        state = self._comment_thread(comment_id)
        return await self._rule(
            scope if scope is not None else state.id,
            ModAction.APPROVE_COMMENT,
            subject=comment_id,
            reason=reason,
        )

    async def set_mode(self, scope: bytes, mode: ThreadMode, *, reason: str = "") -> Operation:
        return await self._rule(scope, ModAction.SET_MODE, reason=reason, value=int(mode))

    async def set_replies(self, scope: bytes, gate: ReplyGate, *, reason: str = "") -> Operation:
        return await self._rule(scope, ModAction.SET_REPLIES, reason=reason, value=int(gate))

    async def set_difficulty(self, scope: bytes, bits: int, *, reason: str = "") -> Operation:
        """Require ``bits`` leading zero bits of proof of work of authors not approved."""
        return await self._rule(scope, ModAction.SET_DIFFICULTY, reason=reason, value=bits)

    async def report(self, comment_id: bytes, reason: str) -> Operation:
        """Flag a comment for its thread's moderators; an empty reason withdraws the report."""
        state = self._comment_thread(comment_id)
        return await self._rule(state.id, ModAction.REPORT, subject=comment_id, reason=reason)

    async def recommend_list(
        self, scope: bytes, list_thread: bytes, *, recommend: bool = True
    ) -> Operation:
        """Recommend (or stop recommending) a mute list to the scope's readers."""
        return await self._rule(
            scope, ModAction.RECOMMEND_LIST, subject=list_thread, value=int(recommend)
        )

    # -- reads ---------------------------------------------------------------------------------

    def mutes(self) -> Mutes:
        """The reader's muted keys and followed mute lists (rule 2)."""
        return MuteList.load(self.data_dir).mutes

    def muted_keys(self) -> frozenset[bytes]:
        """The reader's muted keys and the keys banned in the mute lists they follow (held)."""
        mutes = self.mutes()
        keys = set(mutes.keys)
        for list_thread in mutes.lists:
            if list_thread in self.replica.threads:
                keys.update(self.replica.rule_set(list_thread).bans)
        return frozenset(keys)

    def mute(self, key: bytes) -> bool:
        return MuteList.load(self.data_dir).mute(key)

    def unmute(self, key: bytes) -> bool:
        return MuteList.load(self.data_dir).unmute(key)

    def subscribe_list(self, list_thread: bytes) -> bool:
        return MuteList.load(self.data_dir).subscribe(list_thread)

    def unsubscribe_list(self, list_thread: bytes) -> bool:
        return MuteList.load(self.data_dir).unsubscribe(list_thread)

    def thread_rules(self, thread_id: bytes) -> ThreadRules:
        """The rules in force for a thread held here (its own and its site's), with the reader's
        mutes."""
        self._thread_state(thread_id)  # NotFound
        return self.replica.rules(thread_id, self.muted_keys())

    def comment_rules(self, thread_id: bytes) -> Mapping[bytes, CommentRules]:
        """What the rules say of each comment of the thread (comment id → `CommentRules`); a
        big thread's is kept and shared between callers (read it, don't change it)."""
        state = self._thread_state(thread_id)
        rules = self.thread_rules(thread_id)
        # A function of the thread's operations and the rules alone (core.rules is pure): kept
        # by a big thread while neither changes (thread_state rule 11), made off the loop for a
        # server (`_to_show`).
        return state.kept(_KEPT_VERDICTS, rules, lambda: judge_thread(state, rules))

    def _to_show(self, state: ThreadState) -> list[tuple[str, object, Callable[[], object]]]:
        """`ThreadWalk._to_show`, and the rules' verdicts on each comment (`comment_rules`)."""
        rules = self.thread_rules(state.id)
        verdicts = (_KEPT_VERDICTS, rules, functools.partial(judge_thread, state, rules))
        return [*super()._to_show(state), verdicts]

    async def moderation_queue(self, thread_id: bytes | None = None) -> list[QueueEntry]:
        """Comments waiting for a moderator (rule 3), oldest first: of one thread, or of every
        thread this author moderates (read a few at a time off the loop: rule 5)."""
        if thread_id is not None:
            return sorted(self._queued(self._thread_state(thread_id), every=False), key=_oldest)
        entries: list[QueueEntry] = []
        async for part in self.each_thread(await self._moderated_threads(), self._queued):
            entries.extend(chain.from_iterable(part))
        # In a worker thread: 30,000 entries took 45 ms of the loop (scripts/bench_loop.py).
        return await trio.to_thread.run_sync(functools.partial(sorted, entries, key=_oldest))

    async def reports(self, thread_id: bytes | None = None) -> list[ReportEntry]:
        """Every reported comment and the rules' verdict on it, of one thread or of every thread
        this author moderates (read a few at a time off the loop: rule 5)."""
        if thread_id is not None:
            return self._reported(self._thread_state(thread_id), every=False)
        found: list[ReportEntry] = []
        async for part in self.each_thread(await self._moderated_threads(), self._reported):
            found.extend(chain.from_iterable(part))
        return found

    def _queued(self, state: ThreadState, *, every: bool = True) -> list[QueueEntry]:
        """What waits for a moderator in one thread; ``every``: none where this author does
        not moderate."""
        rules = self.replica.rules(state.id)
        if every and not rules.exempt(self.author):
            return []
        return [
            QueueEntry(thread=state.id, comment=state.ops[comment_id], withheld=verdict.withheld)
            for comment_id, verdict in judge_thread(state, rules).items()
            if QUEUE_REASONS.intersection(verdict.withheld) and "banned" not in verdict.withheld
        ]

    def _reported(self, state: ThreadState, *, every: bool = True) -> list[ReportEntry]:
        """The reported comments of one thread; ``every``: none where this author does not
        moderate."""
        rules = self.replica.rules(state.id)
        if not any(scope.reports for scope in rules.scopes):
            return []
        if every and not rules.exempt(self.author):
            return []
        return [
            ReportEntry(thread=state.id, comment=state.ops[comment_id], verdict=verdict)
            for comment_id, verdict in judge_thread(state, rules).items()
            if verdict.reports
        ]

    async def _moderated_threads(self) -> list[bytes]:
        """The threads a moderator may have work in (`node.listings` rule 4), the store's
        listings read in a worker thread."""
        found = await listings.read_current_listings(self.replica, self.store)
        return listings.threads_with_rules(found)

    # -- proof of work for local writes (rule 4) -----------------------------------------------

    def required_difficulty(self, thread_id: bytes, author: bytes | None = None) -> int:
        """The proof of work a new comment by ``author`` (default: this node's) must carry in the
        thread, as the rules held here say."""
        rules = self.replica.rules(self._thread_state(thread_id).id)
        who = author if author is not None else self.author
        if rules.approved(who):
            return 0
        return max((s.difficulty.value for s in rules.scopes if s.difficulty), default=0)
