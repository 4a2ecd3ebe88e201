"""`core.thread_state` rule 11 as a property: a view (and the rules' verdicts) kept by a thread
is always the one made afresh, whatever was applied and whatever profile changed since."""

from __future__ import annotations

import functools

from hypothesis import given, settings

from p2pcomments.core import thread_state
from p2pcomments.core.replica import Replica
from p2pcomments.core.rules import judge_thread

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
