"""Repairing a data dir's store: its integrity check and rebuilding its views.

Rules:

1. Repair works when the operations can't be loaded into a Node (that may be what is wrong):
   it locks the data dir and opens the store alone (`p2pcomments.store.open_store`), so it
   fails with `ConflictError` (``data-dir-locked``) while a Node (a daemon) has the data dir.
2. Rebuilding recomputes every view table from the stored operations, which are the truth;
   the check is run again afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from p2pcomments.store import open_store

__all__ = ["RepairReport", "repair_data_dir"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairReport:
    """What `repair_data_dir` found, whether it rebuilt the views, and what is left."""

    problems: tuple[str, ...]
    rebuilt_views: bool
    problems_after: tuple[str, ...]


def repair_data_dir(data_dir: Path, *, rebuild_views: bool = False) -> RepairReport:
    """Rules 1-2. Blocks (SQLite): call it from a thread in async code."""
    with open_store(data_dir) as store:
        problems = tuple(store.integrity_check())
        if not rebuild_views:
            return RepairReport(problems=problems, rebuilt_views=False, problems_after=problems)
        store.rebuild_views()
        after = tuple(store.integrity_check())
    return RepairReport(problems=problems, rebuilt_views=True, problems_after=after)
