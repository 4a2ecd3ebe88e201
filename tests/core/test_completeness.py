"""core.completeness: verified of held, what waits and for what, and a bounded rejection log."""

from __future__ import annotations

from p2pcomments.core.completeness import (
    PendingOperation,
    RejectedOperation,
    RejectionLog,
    ThreadCompleteness,
    thread_completeness,
)
from p2pcomments.core.ops import Kind
from p2pcomments.core.replica import Rejected, Replica

from .story import ALICE, BOB, Story


def _of(replica: Replica, thread_id: bytes, log: RejectionLog) -> ThreadCompleteness:
    pending = {op.id: op for op in replica.pending_operations()}
    return thread_completeness(
        thread_id,
        verified=len(replica.threads[thread_id]),
        pending=[(pending[op_id], missing) for op_id, missing in replica.pending.items()],
        log=log,
    )


def test_a_whole_thread_is_all_verified_and_nothing_pending() -> None:
    story = Story()
    c = story.comment(ALICE)
    story.comment(BOB, parent=c)
    log = RejectionLog(since_ms=7)
    completeness = _of(story.replica, story.thread.id, log)
    assert completeness.verified == completeness.held == 3
    assert completeness.pending == ()
    assert completeness.complete
    assert completeness.rejected_count == 0
    assert completeness.rejections_since_ms == 7


def test_what_waits_is_named_with_what_it_misses() -> None:
    story = Story()
    c = story.comment(ALICE)
    reply = story.comment(BOB, parent=c)
    edit = story.edit(BOB, reply, "later")
    other = Story(title="another thread")
    other_comment = other.comment(ALICE)
    replica = story.replay([story.thread, reply, edit, other.thread, other_comment])
    log = RejectionLog(since_ms=0)
    completeness = _of(replica, story.thread.id, log)
    assert completeness.verified == 1
    assert completeness.held == 3
    assert not completeness.complete
    expected = sorted(
        [
            PendingOperation(id=reply.id, kind=Kind.COMMENT, missing=(c.id,)),
            PendingOperation(id=edit.id, kind=Kind.EDIT, missing=(reply.id,)),
        ],
        key=lambda p: p.id,
    )
    assert list(completeness.pending) == expected
    assert _of(replica, other.thread.id, log).complete


def test_rejections_are_kept_per_thread_bounded_and_counted() -> None:
    story = Story()
    c = story.comment(ALICE)
    forged = story.edit(BOB, c, "not Bob's to edit")
    assert story.reason(forged) == "not-author"
    other = Story(title="elsewhere")
    log = RejectionLog(since_ms=100, keep=2)
    others = [story.edit(BOB, c, f"not Bob's either {n}") for n in range(4)]
    for at, op in enumerate([forged, *others]):
        log.record(op, Rejected(op_id=op.id, reason="not-author", message=f"m{at}"), at_ms=at)
    log.record(forged, Rejected(op_id=forged.id, reason="not-author", message="again"), at_ms=9)
    recent, count = log.of(story.thread.id)
    assert count == 5  # the repeat is not counted again
    assert recent == (
        RejectedOperation(id=others[2].id, reason="not-author", message="m3", at_ms=3),
        RejectedOperation(id=others[3].id, reason="not-author", message="m4", at_ms=4),
    )
    assert log.of(other.thread.id) == ((), 0)
    completeness = _of(story.replica, story.thread.id, log)
    assert completeness.rejected == recent
    assert completeness.rejected_count == 5


def test_a_rejected_profile_names_no_thread() -> None:
    story = Story()
    profile = story.profile(ALICE, "Alice")
    log = RejectionLog(since_ms=0)
    log.record(profile, Rejected(op_id=profile.id, reason="x", message="y"), at_ms=1)
    assert log.of(story.thread.id) == ((), 0)
