"""Rules that travel with a thread (SPEC §11): bans, approvals, modes, who may reply, proof of
work, reports, recommended mute lists; and a reader's own mutes. Pure: no clock, no I/O.

Rules (protocol/SPEC.md §11 states them for other implementations):

1. Rule operations are moderate operations with actions 8-17 (`ops.RULE_ACTIONS`), all aimed at
   the thread itself. They are *view rules*: validity is unchanged (§5; a rule is valid from the
   owner or a moderator at the operation, a report from anyone), and what they decide is a pure
   function of the set of valid operations of the thread and of its site thread, so every node
   holding the same operations shows the same thing, whatever the order they arrived in.
2. Scopes: a page thread's rules are its own and its *site thread*'s (`ops.site_thread`: the
   rules of (owner, site) for every page thread of that owner and site). Site moderators are the
   site thread's moderators. Both scopes apply: a comment withheld by either is withheld.
3. Per key (bans, approved authors), per (reporter, comment) (reports) and per list
   (recommendations): the rule operation with the greatest (timestamp_ms, id) wins. A ban
   withholds every comment of its subject whose own timestamp_ms is below its ``until_ms`` (0:
   all of them, earlier ones included): expiry is judged against the operations' own timestamps,
   never against a clock. Approving a comment (action 12) is final; hiding it is the way back.
4. Settings (mode, replies, difficulty): the greatest (timestamp_ms, id) wins per scope. A setting
   *binds* a comment of its own thread unless the comment is in the setting's causal past (what
   the moderator had seen when setting it is left as it was, like a close); a site setting binds
   the comments of the site's page threads whose timestamp_ms is at least its own (there is no
   causal link between threads). A comment bound by a setting is withheld when: pre-moderated
   and neither its author nor itself is approved; members only and its author is not approved;
   read-only and its author is neither the owner nor a moderator; a reply (its parent a comment)
   under replies "approved" by an author not approved (unless the comment is approved), or under
   "nobody new" by anyone but the owner and moderators.
5. Proof of work: a comment bound by a difficulty d > 0 whose id has fewer than d leading zero
   bits is withheld (``unpaid``), unless its author is approved. A node also refuses such an
   operation when it arrives (`Replica.admission`): it is neither stored nor forwarded. So that
   what is shown does not depend on whether a node held it before the difficulty, everything
   with an unpaid operation in its causal past is withheld as ``unpaid`` too (a node that refused
   the unpaid operation holds those pending), and reports that are unpaid count for nothing.
6. The owner, the thread's moderators and the site thread's moderators are always approved.
7. A reader's mutes (their own, and the bans of the mute lists they follow) are local: they
   mark a comment ``muted`` in that reader's view and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from p2pcomments.core.ops import (
    RULE_ACTIONS,
    Kind,
    ModAction,
    ModeratePayload,
    Operation,
    ReplyGate,
    ThreadMode,
)
from p2pcomments.core.thread_state import ThreadState

__all__ = [
    "BanView",
    "CommentRules",
    "ReportView",
    "RuleSet",
    "ThreadRules",
    "judge_thread",
    "leading_zero_bits",
    "pays",
    "thread_rules",
    "unpaid_operations",
]

WITHHELD_REASONS: Final = (
    "banned",
    "pre-moderated",
    "members-only",
    "read-only",
    "replies-approved",
    "replies-closed",
    "unpaid",
)


def leading_zero_bits(data: bytes) -> int:
    """The number of leading zero bits of ``data`` (an operation id: its proof of work)."""
    value = int.from_bytes(data, "big")
    return len(data) * 8 - value.bit_length()


def _lww(op: Operation) -> tuple[int, bytes]:
    return (op.timestamp_ms, op.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class BanView:
    author: bytes
    by: bytes
    reason: str
    until_ms: int  # 0: no end
    op_id: bytes
    timestamp_ms: int

    def covers(self, timestamp_ms: int) -> bool:
        """Whether an operation of the banned author at ``timestamp_ms`` is banned (rule 3)."""
        return self.until_ms == 0 or timestamp_ms < self.until_ms


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportView:
    comment: bytes
    reporter: bytes
    reason: str
    op_id: bytes
    timestamp_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    value: int
    op: Operation


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSet:
    """What the rule operations of one thread (one scope) say, by rule 3 and 4."""

    thread: bytes
    owner: bytes
    moderators: frozenset[bytes]
    bans: dict[bytes, BanView]
    approved_authors: frozenset[bytes]
    approved_comments: frozenset[bytes]
    mode: Setting | None
    replies: Setting | None
    difficulty: Setting | None
    reports: tuple[ReportView, ...]
    recommended_lists: tuple[bytes, ...]

    @classmethod
    def of(
        cls, thread: bytes, owner: bytes, moderators: frozenset[bytes], ops: Iterable[Operation]
    ) -> RuleSet:
        """The rule set of ``ops`` (the valid rule operations of one thread)."""
        per_key: dict[tuple[str, bytes], Operation] = {}
        settings: dict[ModAction, Operation] = {}
        reports: dict[tuple[bytes, bytes], Operation] = {}
        approved_comments: set[bytes] = set()
        for op in ops:
            payload = op.payload
            assert isinstance(payload, ModeratePayload)
            action = payload.action
            subject = payload.subject
            family = _FAMILY.get(action)
            if family is not None:
                assert subject is not None
                key = (family, subject)
                current = per_key.get(key)
                if current is None or _lww(op) > _lww(current):
                    per_key[key] = op
            elif action is ModAction.APPROVE_COMMENT:
                assert subject is not None
                approved_comments.add(subject)
            elif action is ModAction.REPORT:
                assert subject is not None
                report_key = (op.author, subject)
                current = reports.get(report_key)
                if current is None or _lww(op) > _lww(current):
                    reports[report_key] = op
            elif action in _SETTINGS:
                current = settings.get(action)
                if current is None or _lww(op) > _lww(current):
                    settings[action] = op
        bans: dict[bytes, BanView] = {}
        approved: set[bytes] = set()
        lists: list[bytes] = []
        for (family, subject), op in per_key.items():
            payload = op.payload
            assert isinstance(payload, ModeratePayload)
            if payload.action is ModAction.BAN:
                bans[subject] = BanView(
                    author=subject,
                    by=op.author,
                    reason=payload.reason,
                    until_ms=payload.value or 0,
                    op_id=op.id,
                    timestamp_ms=op.timestamp_ms,
                )
            elif payload.action is ModAction.APPROVE_AUTHOR:
                approved.add(subject)
            elif family == "list" and payload.value == 1:
                lists.append(subject)

        def setting(action: ModAction) -> Setting | None:
            op = settings.get(action)
            if op is None:
                return None
            payload = op.payload
            assert isinstance(payload, ModeratePayload)
            return Setting(value=payload.value or 0, op=op)

        report_views = []
        for op in sorted(reports.values(), key=_lww):
            payload = op.payload
            assert isinstance(payload, ModeratePayload)
            assert payload.subject is not None
            if payload.reason:  # an empty reason withdraws the report
                report_views.append(
                    ReportView(
                        comment=payload.subject,
                        reporter=op.author,
                        reason=payload.reason,
                        op_id=op.id,
                        timestamp_ms=op.timestamp_ms,
                    )
                )
        return cls(
            thread=thread,
            owner=owner,
            moderators=moderators,
            bans=bans,
            approved_authors=frozenset(approved),
            approved_comments=frozenset(approved_comments),
            mode=setting(ModAction.SET_MODE),
            replies=setting(ModAction.SET_REPLIES),
            difficulty=setting(ModAction.SET_DIFFICULTY),
            reports=tuple(report_views),
            recommended_lists=tuple(sorted(lists)),
        )


_FAMILY: Final = {
    ModAction.BAN: "ban",
    ModAction.UNBAN: "ban",
    ModAction.APPROVE_AUTHOR: "approve",
    ModAction.REVOKE_AUTHOR: "approve",
    ModAction.RECOMMEND_LIST: "list",
}
_SETTINGS: Final = frozenset({ModAction.SET_MODE, ModAction.SET_REPLIES, ModAction.SET_DIFFICULTY})


@dataclass(frozen=True, slots=True, kw_only=True)
class CommentRules:
    """What the rules say of one comment: why it is withheld (empty: shown), whether the reader
    muted its author, and the reports on it."""

    withheld: tuple[str, ...] = ()
    muted: bool = False
    reports: tuple[ReportView, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadRules:
    """The rules in force for one thread: its own scope and, for a page thread, its site's."""

    own: RuleSet
    site: RuleSet | None = None
    muted: frozenset[bytes] = field(default=frozenset())

    @property
    def scopes(self) -> tuple[RuleSet, ...]:
        return (self.own,) if self.site is None else (self.own, self.site)

    def exempt(self, author: bytes) -> bool:
        """Rule 6: the owner and the moderators of either scope."""
        return any(author == s.owner or author in s.moderators for s in self.scopes)

    def approved(self, author: bytes) -> bool:
        return self.exempt(author) or any(author in s.approved_authors for s in self.scopes)

    def ban(self, author: bytes, timestamp_ms: int) -> BanView | None:
        for scope in self.scopes:
            ban = scope.bans.get(author)
            if ban is not None and ban.covers(timestamp_ms):
                return ban
        return None

    def required_difficulty(
        self, op: Operation, in_past: Callable[[bytes, bytes], bool] | None = None
    ) -> int:
        """The proof of work ``op`` must carry (rule 5); 0 for an approved author. ``in_past``
        (op id, setting id) tells whether an operation is in a setting's causal past; None for an
        operation not held yet (it is in no past)."""
        if self.approved(op.author):
            return 0
        required = 0
        for scope in self.scopes:
            setting = scope.difficulty
            if setting is not None and self._binds(scope, setting, op, in_past):
                required = max(required, setting.value)
        return required

    def _binds(
        self,
        scope: RuleSet,
        setting: Setting,
        op: Operation,
        in_past: Callable[[bytes, bytes], bool] | None,
    ) -> bool:
        if scope is self.own:
            return in_past is None or not in_past(op.id, setting.op.id)
        return op.timestamp_ms >= setting.op.timestamp_ms

    def judge(
        self,
        comment: Operation,
        *,
        is_reply: bool,
        in_past: Callable[[bytes, bytes], bool],
        unpaid: frozenset[bytes] | None = None,
    ) -> CommentRules:
        """Rules 3-7 for one comment of the thread."""
        author = comment.author
        why: list[str] = []
        if self.ban(author, comment.timestamp_ms) is not None:
            why.append("banned")
        approved = self.approved(author)
        approved_comment = any(comment.id in s.approved_comments for s in self.scopes)
        for scope in self.scopes:
            mode = scope.mode
            if mode is not None and mode.value and self._binds(scope, mode, comment, in_past):
                if mode.value == ThreadMode.PRE_MODERATED and not (approved or approved_comment):
                    why.append("pre-moderated")
                elif mode.value == ThreadMode.MEMBERS_ONLY and not approved:
                    why.append("members-only")
                elif mode.value == ThreadMode.READ_ONLY and not self.exempt(author):
                    why.append("read-only")
            replies = scope.replies
            if (
                is_reply
                and replies is not None
                and replies.value
                and self._binds(scope, replies, comment, in_past)
            ):
                if replies.value == ReplyGate.APPROVED and not (approved or approved_comment):
                    why.append("replies-approved")
                elif replies.value == ReplyGate.NOBODY_NEW and not self.exempt(author):
                    why.append("replies-closed")
        if (unpaid is not None and comment.id in unpaid) or (
            unpaid is None
            and leading_zero_bits(comment.id) < self.required_difficulty(comment, in_past)
        ):
            why.append("unpaid")
        reports = tuple(
            r
            for s in self.scopes
            for r in s.reports
            if r.comment == comment.id and (unpaid is None or r.op_id not in unpaid)
        )
        return CommentRules(
            withheld=tuple(sorted(set(why), key=WITHHELD_REASONS.index)),
            muted=author in self.muted,
            reports=reports,
        )


def thread_rules(
    own: RuleSet, site: RuleSet | None = None, muted: Iterable[bytes] = ()
) -> ThreadRules:
    """The rules of a thread from its scopes, with the reader's muted keys (rule 7)."""
    return ThreadRules(own=own, site=site, muted=frozenset(muted))


def pays(op: Operation) -> bool:
    """Whether ``op`` is of a kind that pays proof of work: a comment, an edit, a reaction or a
    report (rule 5)."""
    kind = op.kind
    if kind is Kind.MODERATE:
        payload = op.payload
        return isinstance(payload, ModeratePayload) and payload.action is ModAction.REPORT
    return kind is Kind.COMMENT or kind is Kind.EDIT or kind is Kind.REACT


def judge_thread(state: ThreadState, rules: ThreadRules) -> dict[bytes, CommentRules]:
    """`ThreadRules.judge` for every comment of ``state`` (rules 3-7), with the causal pasts it
    needs computed once per setting."""
    pasts: dict[bytes, frozenset[bytes]] = {}

    def in_past(op_id: bytes, setting_id: bytes) -> bool:
        past = pasts.get(setting_id)
        if past is None:
            if setting_id not in state.ops:  # a setting of another scope: not in this thread
                return False
            past = pasts[setting_id] = state.causal_past(setting_id)
        return op_id in past

    frozen = unpaid_operations(state, rules, in_past)
    verdicts: dict[bytes, CommentRules] = {}
    for op in state.ops.values():
        if op.kind is not Kind.COMMENT:
            continue
        is_reply = op.target != state.id
        verdicts[op.id] = rules.judge(op, is_reply=is_reply, in_past=in_past, unpaid=frozen)
    return verdicts


def unpaid_operations(
    state: ThreadState,
    rules: ThreadRules,
    in_past: Callable[[bytes, bytes], bool] | None = None,
) -> frozenset[bytes]:
    """The operations of ``state`` withheld as unpaid (rule 5): those that lack the proof of
    work that binds them, and everything with one of those in its causal past."""
    if not any(scope.difficulty is not None for scope in rules.scopes):
        return frozenset()
    if in_past is None:
        pasts: dict[bytes, frozenset[bytes]] = {}

        def in_past(op_id: bytes, setting_id: bytes) -> bool:
            if setting_id not in state.ops:
                return False
            if setting_id not in pasts:
                pasts[setting_id] = state.causal_past(setting_id)
            return op_id in pasts[setting_id]

    unpaid: set[bytes] = set()
    for op in state.operations():  # causal order: parents first
        if any(parent in unpaid for parent in op.parents) or (
            pays(op) and leading_zero_bits(op.id) < rules.required_difficulty(op, in_past)
        ):
            unpaid.add(op.id)
    return frozenset(unpaid)


def is_rule(op: Operation) -> bool:
    """Whether ``op`` is a rule operation (rule 1)."""
    payload = op.payload
    return (
        op.kind is Kind.MODERATE
        and isinstance(payload, ModeratePayload)
        and payload.action in RULE_ACTIONS
    )
