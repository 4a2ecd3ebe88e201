"""`daemon.freeze_survivors`: what survived while operations streamed in is frozen, so a full
collection walks only what came since; an idle daemon freezes nothing."""

from __future__ import annotations

import gc
import weakref

import pytest
import trio

from p2pcomments.daemon import FREEZE_AFTER_COLLECTIONS, freeze_survivors


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.trio
async def test_survivors_are_frozen_after_a_burst_and_not_while_idle() -> None:
    gc.collect()
    frozen_before = gc.get_freeze_count()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(freeze_survivors, 0.01)
            await trio.sleep(0.05)  # idle: no middle-generation collections to speak of
            assert gc.get_freeze_count() == frozen_before
            middle = gc.get_stats()[1]["collections"]
            kept = []
            while gc.get_stats()[1]["collections"] - middle < FREEZE_AFTER_COLLECTIONS:
                kept.append([len(kept)])  # survivors, as applied operations are
            garbage = _Cycle()  # a cycle that dies before the freeze
            dead = weakref.ref(garbage)
            del garbage
            for _ in range(500):  # bounded: 5 s
                if gc.get_freeze_count() != frozen_before:
                    break
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert gc.get_freeze_count() - frozen_before >= len(kept)
        assert dead() is None  # collected, not frozen
    finally:
        gc.unfreeze()
