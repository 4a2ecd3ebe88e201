"""Importing an export file into a Node: parse fully, then write; report what happened.

Rules:

1. The whole file is read and checked first (well-formed, no entity declarations, the right kind
   of export) and nothing is written until that pass succeeds: a file that is broken anywhere
   imports nothing and raises `ExportFormatError` naming the line and column. Then a second
   streaming pass builds the operations (`plan`) and ingests them in batches, as an import
   source: each is verified and checked like any other operation.
2. Operations are deterministic (`plan` rule 2): what the node already holds is a duplicate and
   adds nothing. The report says how many operations were new.
3. ``dry_run`` builds and counts everything but ingests nothing; its ``new_operations`` counts
   the operations this node does not hold yet.
4. Memory is bounded by one post (its comments, as read) and the replies waiting for a parent,
   not by the file: elements are cleared as they are read and operations go to the node in
   batches of `BATCH`, two at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from p2pcomments.core.ops import CommentPayload, Kind, Operation
from p2pcomments.core.replica import Applied, Pending, Rejected
from p2pcomments.importers.plan import ImportOptions, ImportPlan
from p2pcomments.importers.records import ExportFormatError, ParsedExport

if TYPE_CHECKING:
    from trio_typing import TaskStatus

    from p2pcomments.node import Node

__all__ = ["BATCH", "ImportReport", "Progress", "import_export", "read_export"]

BATCH: Final = 500
Progress = Callable[[int, int], None]
"""Called with (bytes read so far, file size) as the second pass goes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    """What an import did. ``imported`` counts comments, pingbacks and trackbacks;
    ``imported_by_status`` those among them that were unapproved, spam or deleted (included by
    option); ``skipped`` what was left out, by reason; ``orphans`` the imported comments placed
    at the top level because their parent was not imported."""

    source: str
    file: str
    dry_run: bool
    threads: int
    closed_threads: int
    imported: dict[str, int]
    imported_by_status: dict[str, int]
    skipped: dict[str, int]
    orphans: int
    operations: int
    new_operations: int
    rejected: dict[str, int] = field(default_factory=dict)
    thread_ids: tuple[bytes, ...] = ()

    def to_json(self) -> dict[str, object]:
        from p2pcomments.core.textform import TextKind, format_id

        return {
            "source": self.source,
            "file": self.file,
            "dry_run": self.dry_run,
            "threads": self.threads,
            "closed_threads": self.closed_threads,
            "imported": dict(sorted(self.imported.items())),
            "imported_by_status": dict(sorted(self.imported_by_status.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "orphans": self.orphans,
            "operations": self.operations,
            "new_operations": self.new_operations,
            "rejected": dict(sorted(self.rejected.items())),
            "thread_ids": [format_id(TextKind.THREAD, t) for t in self.thread_ids],
        }


def _held_by(node: Node) -> Callable[[bytes, str], dict[str, bytes]]:
    """What a thread of ``node`` holds of an import (`plan` rule 6): the importer's comments
    from ``source``, by original id."""
    owner = node.author

    def held(thread_id: bytes, source: str) -> dict[str, bytes]:
        state = node.replica.threads.get(thread_id)
        if state is None:
            return {}
        found: dict[str, bytes] = {}
        for op in state.ops.values():
            payload = op.payload
            if (
                op.kind is Kind.COMMENT
                and op.author == owner
                and isinstance(payload, CommentPayload)
                and payload.provenance is not None
                and payload.provenance.source == source
            ):
                key = payload.provenance.original_id
                # Of two held for one original id, the greatest id stands (any fixed choice).
                if key not in found or op.id > found[key]:
                    found[key] = op.id
        return found

    return held


def read_export(path: Path, source: str) -> ParsedExport:
    """The first pass (rule 1): `ExportFormatError` unless the whole file can be imported."""
    if source == "wordpress":
        from p2pcomments.importers.wordpress import read_wordpress

        return read_wordpress(path)
    if source == "disqus":
        from p2pcomments.importers.disqus import read_disqus

        return read_disqus(path)
    raise ExportFormatError(f"unknown export format {source!r}", reason="unknown-format")


async def import_export(
    node: Node,
    path: Path | str,
    *,
    source: str,
    options: ImportOptions | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a WordPress (WXR) or Disqus export into ``node``, signed by its author key.
    ``source`` is ``"wordpress"`` or ``"disqus"`` (else `ExportFormatError`)."""
    import trio

    path = Path(path)
    export = await trio.to_thread.run_sync(read_export, path, source)
    signing_key = node._signer()  # the importer signs: the imported threads are its own
    node._check_writable()
    plan = ImportPlan(export, signing_key, options or ImportOptions(), known=_held_by(node))
    operations = iter(plan.operations())
    size = path.stat().st_size
    count = new = 0
    rejected: dict[str, int] = {}
    thread_ids: list[bytes] = []

    def next_batch() -> list[Operation]:
        batch: list[Operation] = []
        for op in operations:
            batch.append(op)
            if len(batch) >= BATCH:
                break
        return batch

    # Rule 4: two batches in flight, the next verifying while the last applies and commits
    # (`node.ingest` rule 5: they still apply in order).
    in_flight = trio.Semaphore(2)

    async def ingest(
        blobs: list[bytes], task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        nonlocal new
        try:
            outcomes = await node.ingest(blobs, source="import", task_status=task_status)
        finally:
            in_flight.release()
        for outcome in outcomes:
            if isinstance(outcome, Applied | Pending):
                new += 1
            elif isinstance(outcome, Rejected):
                rejected[outcome.reason] = rejected.get(outcome.reason, 0) + 1

    try:
        async with trio.open_nursery() as nursery:
            while True:
                batch = await trio.to_thread.run_sync(next_batch)
                if not batch:
                    break
                count += len(batch)
                thread_ids.extend(op.id for op in batch if op.thread is None)
                if dry_run:
                    new += sum(1 for op in batch if node.get_operation(op.id) is None)
                else:
                    await in_flight.acquire()
                    await nursery.start(ingest, [op.encoded for op in batch])
                if progress is not None:
                    progress(min(size, export.position), size)
    except BaseExceptionGroup as group:  # what failed is raised as it was (a StoreError, say)
        if len(group.exceptions) != 1:
            raise
        raise group.exceptions[0] from None
    if progress is not None:
        progress(size, size)
    tally = plan.tally
    return ImportReport(
        source=export.source,
        file=path.name,
        dry_run=dry_run,
        threads=tally.threads,
        closed_threads=tally.closed_threads,
        imported=dict(tally.imported),
        imported_by_status=dict(tally.imported_by_status),
        skipped=dict(tally.skipped),
        orphans=tally.orphans,
        operations=count,
        new_operations=new,
        rejected=rejected,
        thread_ids=tuple(thread_ids),
    )
