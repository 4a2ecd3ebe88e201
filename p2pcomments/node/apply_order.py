"""Turns to apply (`ingest` rule 5): large ingest calls apply one after another, in the order
they were made, while each one's later chunks (and the next call's first) still verify."""

from __future__ import annotations

import trio

__all__ = ["ApplyOrder"]


class ApplyOrder:
    """Turns taken in the order calls join, each held until its call leaves (cancelled or not)."""

    def __init__(self) -> None:
        self._next = 0
        self._joined: dict[int, trio.Event] = {}  # ticket → set when it leaves; oldest first

    def join(self) -> int:
        ticket = self._next
        self._next += 1
        self._joined[ticket] = trio.Event()
        return ticket

    async def wait_turn(self, ticket: int) -> None:
        """Return once every call that joined before ``ticket`` has left."""
        while (oldest := next(iter(self._joined))) != ticket:
            await self._joined[oldest].wait()

    def leave(self, ticket: int) -> None:
        self._joined.pop(ticket).set()
