"""`core.thread_state` rule 11 as a property: a view (and the rules' verdicts) kept by a thread
is always the one made afresh, whatever was applied and whatever profile changed since."""

from __future__ import annotations

import functools

from hypothesis import given, settings

from p2pcomments.core import thread_state
from p2pcomments.core.replica import Replica
from p2pcomments.core.rules import judge_thread
from p2pcomments.core.thread_state import KEPT_VIEW

from .strategies import History, budget, histories

EXAMPLES = settings(max_examples=budget(0.4))


@EXAMPLES
@given(history=histories())
def test_a_kept_view_is_always_the_one_made_afresh(history: History) -> None:
    kept_above = thread_state._KEPT_ABOVE
    thread_state._KEPT_ABOVE = -1  # every thread keeps its view here, however small
    try:
        replica = Replica()
        for op in history.ops:
            replica.apply(op)
            for thread_id, state in replica.threads.items():
                names = replica.names()
                assert replica.view(thread_id) == state.view(names)
                assert replica.view(thread_id) is replica.view(thread_id)  # kept, not remade
                rules = replica.rules(thread_id, frozenset())
                verdicts = state.kept(
                    "verdicts", rules, functools.partial(judge_thread, state, rules)
                )
                assert verdicts == judge_thread(state, rules)
    finally:
        thread_state._KEPT_ABOVE = kept_above


@EXAMPLES
@given(history=histories())
def test_what_is_made_elsewhere_is_kept_only_if_nothing_was_applied_since(
    history: History,
) -> None:
    """Rule 12: a view made of a state (in another thread, say) and handed to `keep` later is
    kept only if the state has had nothing applied since; either way the view then given is the
    one made afresh."""
    kept_above = thread_state._KEPT_ABOVE
    thread_state._KEPT_ABOVE = -1
    try:
        replica = Replica()
        made: dict[bytes, tuple[int, int, thread_state.ThreadView]] = {}
        for op in history.ops:
            replica.apply(op)
            for thread_id, state in replica.threads.items():
                if thread_id in made:  # made one step ago, handed over now
                    made_at, version, view = made[thread_id]
                    kept = state.keep(KEPT_VIEW, version, view, made_at=made_at)
                    assert kept == (made_at == len(state))
                    assert state.is_kept(KEPT_VIEW, version) == kept
                    assert replica.view(thread_id) == state.view(replica.names())
                made[thread_id] = (len(state), replica.names_version, state.view(replica.names()))
    finally:
        thread_state._KEPT_ABOVE = kept_above
