"""Repairing a data dir: what is damaged, found and explained, and what can be fixed, fixed.

Rules:

1. Repair works when the operations can't be loaded into a Node (that may be what is wrong):
   it locks the data dir and opens the store alone (as `p2pcomments.store.open_store` does), so
   it fails with `ConflictError` (``data-dir-locked``) while a Node (a daemon) has the data dir.
2. Every stored row is checked as if it had just arrived: its bytes must hash to its id, decode
   and carry a good signature (`decode_operations` with verification, 500 rows a call: opening
   a node skips the signature, so damage inside its 64 bytes, which the id does not cover, is
   found only here), and the rows, replayed in the order they were stored, must be accepted by
   a `Replica`.
3. Nothing is deleted unsaved: a row that fails rule 2 is first written to a quarantine bundle
   in the data dir (``quarantine-<UTC time>.jsonl``, the format ``p2pc import`` reads, which
   verifies everything again), then removed from the store. Its good copy, if a peer has one,
   comes back by sync: the id is the same.
4. Each kind of damage becomes one `Finding`: what was found, how many, what was done. With
   ``dry_run`` nothing is changed and each finding says what repair would do.
5. Rebuilding recomputes every view table from the stored operations, which are the truth (done
   whenever rows were removed or a view disagrees with them, or when asked); the integrity
   check is run again afterwards.
6. A database file SQLite itself finds damaged (its integrity check fails, reading or writing
   stops on a bad page) is rebuilt: a new file gets every operation that read and verified, in
   the order they were stored, and the damaged file is kept beside it (``.damaged-<UTC time>``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from p2pcomments import identity
from p2pcomments.core.ops import Operation, claimed_id, decode_operations
from p2pcomments.core.replica import Rejected, Replica
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.errors import IdentityMissing, InvalidOperation, P2PCommentsError, StoreError
from p2pcomments.store.data_dir import database_path
from p2pcomments.store.lock import DataDirLock
from p2pcomments.store.op_store import OpState, OpStore, StoredRow, WriteBatch

__all__ = ["Finding", "RepairReport", "repair_data_dir"]

_WAL_HEADER_BYTES = 32
_WAL_FRAME_HEADER_BYTES = 24


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One kind of damage (rule 4). ``kind`` is stable (for ``--json``), the texts are for
    people; ``problem`` is False for what is only worth knowing (a log replayed, a pending
    operation released)."""

    kind: str
    count: int
    found: str
    done: str
    problem: bool = True
    examples: tuple[str, ...] = ()  # a few: text ids, or row numbers where the id is damaged

    def line(self) -> str:
        return f"{self.found}: {self.done}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RepairReport:
    """What `repair_data_dir` found and did."""

    rows_checked: int
    findings: tuple[Finding, ...]
    problems: tuple[str, ...]  # everything found that was wrong, one line each
    rebuilt_views: bool
    problems_after: tuple[str, ...]  # what is still wrong afterwards
    quarantine: Path | None = None  # where removed rows were saved
    damaged_file: Path | None = None  # where a damaged database file was kept, once rebuilt
    dry_run: bool = False

    def count(self, kind: str) -> int:
        return sum(f.count for f in self.findings if f.kind == kind)

    @property
    def bad_signatures(self) -> int:
        return self.count("bad-signature")


@dataclass(slots=True)
class _Scan:
    """Rule 2's verdict on every row."""

    rows: int = 0
    undecodable: list[tuple[StoredRow, str]] = field(default_factory=list)
    bad_signature: list[StoredRow] = field(default_factory=list)
    rejected: list[tuple[StoredRow, str]] = field(default_factory=list)
    released: list[Operation] = field(default_factory=list)  # stored pending, now applied
    waiting: int = 0  # stored applied, but what they reference is gone
    good: list[Operation] = field(default_factory=list)  # what reads, verifies, is accepted
    replica: Replica = field(default_factory=Replica)
    cut: str | None = None  # why reading the rows stopped early (a damaged table)


def repair_data_dir(
    data_dir: Path, *, rebuild_views: bool = False, dry_run: bool = False
) -> RepairReport:
    """Rules 1-6. Blocks (SQLite, signature checks): call it from a thread in async code."""
    findings = [f for f in (_check_author_key(data_dir),) if f is not None]
    wal_bytes = _size(Path(f"{database_path(data_dir)}-wal"))
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with DataDirLock.acquire(data_dir):
        store = OpStore.open(database_path(data_dir))
        try:
            if wal_bytes:
                findings.append(_fold_log(store, wal_bytes, dry_run))
            damaged_file = _file_problems(store)  # SQLite's own check: the file, not the views
            scan = _scan(store)
            remove = [
                *(row for row, _ in scan.undecodable),
                *scan.bad_signature,
                *(row for row, _ in scan.rejected),
            ]
            quarantine = _save(data_dir, remove) if remove and not dry_run else None
            if not dry_run and not damaged_file and scan.cut is None:
                try:
                    if remove:
                        store.remove_rows([row.seq for row in remove])
                    if scan.released:
                        store.write_blocking(WriteBatch(promote=scan.released))
                    if rebuild_views and not remove:
                        store.rebuild_views()  # `remove_rows` rebuilt them already
                except StoreError as error:  # a page that reads but can't be written
                    damaged_file = [error.message]
            kept_aside = None
            if damaged_file or scan.cut is not None:
                findings.append(_damaged_file_finding(damaged_file, scan, dry_run))
                if not dry_run:
                    store.close()
                    kept_aside = _salvage(data_dir, scan)
                    store = OpStore.open(database_path(data_dir))
            findings.extend(_scan_findings(scan, quarantine, dry_run))
            view_problems = [p for p in store.integrity_check() if p.startswith(_VIEW_PROBLEM)]
            if view_problems:
                if not dry_run:
                    store.rebuild_views()
                findings.append(
                    Finding(
                        kind="views",
                        count=len(view_problems),
                        found="; ".join(p.partition(": rebuild")[0] for p in view_problems),
                        done="would be rebuilt" if dry_run else "rebuilt from the operations",
                    )
                )
            after = tuple(store.integrity_check())
        finally:
            store.close()
    rebuilt = not dry_run and (
        rebuild_views or bool(remove) or kept_aside is not None or bool(view_problems)
    )
    problems = tuple(f.line() for f in findings if f.problem)
    # Left after repair: what it can't change (the author key) and what the store still shows.
    still = [f.line() for f in findings if f.problem and f.kind == "author-key"]
    return RepairReport(
        rows_checked=scan.rows,
        findings=tuple(findings),
        problems=problems,
        rebuilt_views=rebuilt,
        problems_after=problems if dry_run else (*still, *after),
        quarantine=quarantine,
        damaged_file=kept_aside,
        dry_run=dry_run,
    )


_VIEW_PROBLEM = "view "  # how `OpStore.integrity_check` starts a view's disagreement


def _file_problems(store: OpStore) -> list[str]:
    """SQLite's ``integrity_check`` of the file itself (not the views), as lines."""
    try:
        problems = store.integrity_check()
    except StoreError as error:  # so damaged the check itself stops
        return [error.message]
    return [p for p in problems if not p.startswith(_VIEW_PROBLEM)]


def _damaged_file_finding(problems: list[str], scan: _Scan, dry_run: bool) -> Finding:
    what = "; ".join(problems[:3]) if problems else ""
    if scan.cut is not None:
        what = "; ".join(
            x for x in (what, f"reading stopped after {scan.rows:,} rows: {scan.cut}") if x
        )
    keep = scan.rows - len(scan.undecodable) - len(scan.bad_signature) - len(scan.rejected)
    return Finding(
        kind="database-file",
        count=max(1, len(problems)),
        found=f"the database file is damaged ({what})",
        done=(
            f"would be rebuilt from the {keep:,} operations that read and verify"
            if dry_run
            else f"rebuilt from the {keep:,} operations that read and verify; the damaged file"
            f" kept beside it as {_DAMAGED_SUFFIX}<time>"
        ),
    )


_DAMAGED_SUFFIX = ".damaged-"


def _salvage(data_dir: Path, scan: _Scan) -> Path:
    """Rule 6: a new database holding every operation that read and verified, in the order
    they were stored, in place of the damaged file, which is kept beside it."""
    path = database_path(data_dir)
    fresh = path.with_name(path.name + ".repairing")
    for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
        leftover.unlink(missing_ok=True)
    with OpStore.open(fresh) as store:
        rows = [
            (op, OpState.APPLIED if op.id in scan.replica else OpState.PENDING) for op in scan.good
        ]
        store.write_blocking(WriteBatch(insert=rows))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}{_DAMAGED_SUFFIX}{stamp}")
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    os.replace(path, aside)
    os.replace(fresh, path)
    return aside


_SCAN_CHUNK = 500  # rows decoded, and their signatures checked, in one call


def _decode_rows(rows: list[StoredRow]) -> list[Operation | InvalidOperation | str]:
    """Each row decoded and its signature checked (`decode_operations`: a chunk's signatures in
    one call, key tables included), or why it is no operation at all."""
    raws: list[bytes] = []
    ids: list[bytes] = []
    verdicts: list[Operation | InvalidOperation | str | None] = []
    for row in rows:
        raw = row.raw
        if row.state not in (OpState.APPLIED, OpState.PENDING):
            verdicts.append("with no valid state")
        elif type(raw) is not bytes or type(row.id) is not bytes:
            verdicts.append("whose bytes are not a blob")
        elif claimed_id(raw) != row.id:
            verdicts.append("with bytes that no longer hash to their id")
        else:
            raws.append(raw)
            ids.append(row.id)
            verdicts.append(None)
    decoded = iter(decode_operations(raws, ids))
    return [next(decoded) if verdict is None else verdict for verdict in verdicts]


def _scan(store: OpStore) -> _Scan:
    """Rule 2: every row checked and replayed, in the order it was stored."""
    scan = _Scan()
    replica = scan.replica
    stored_pending: list[tuple[StoredRow, Operation]] = []
    stored_applied: list[Operation] = []
    try:
        rows = list(store.iter_rows())
    except StoreError as error:
        rows, scan.cut = [], error.message
        with contextlib.suppress(StoreError):  # what reads before the damage
            for row in store.iter_rows():
                rows.append(row)
    for start in range(0, len(rows), _SCAN_CHUNK):
        part = rows[start : start + _SCAN_CHUNK]
        scan.rows += len(part)
        for row, decoded in zip(part, _decode_rows(part), strict=True):
            if isinstance(decoded, str):
                scan.undecodable.append((row, decoded))
                continue
            if isinstance(decoded, InvalidOperation):
                if decoded.reason == "bad-signature":
                    scan.bad_signature.append(row)
                else:
                    scan.undecodable.append((row, f"refused by the decoder as {decoded.reason}"))
                continue
            outcome = replica.apply(decoded, admit=False).outcome  # admitted when it arrived
            if isinstance(outcome, Rejected):
                scan.rejected.append((row, outcome.reason))
                continue
            scan.good.append(decoded)
            if row.state == OpState.PENDING:
                stored_pending.append((row, decoded))
            else:
                stored_applied.append(decoded)
    # `in` is applied (`Replica.get` also finds the pending).
    scan.released = [op for _, op in stored_pending if op.id in replica]
    scan.waiting = sum(1 for op in stored_applied if op.id not in replica)
    return scan


def _scan_findings(scan: _Scan, quarantine: Path | None, dry_run: bool) -> list[Finding]:
    where = quarantine.name if quarantine is not None else "a quarantine file"
    removed = (
        f"would be saved to {where} and removed"
        if dry_run
        else f"saved to {where} and removed (sync fetches a good copy from peers)"
    )
    findings = []
    if scan.undecodable:
        reasons = _tally(reason for _, reason in scan.undecodable)
        findings.append(
            Finding(
                kind="undecodable",
                count=len(scan.undecodable),
                found=f"{len(scan.undecodable):,} stored row(s) no longer decode ({reasons})",
                done=removed,
                examples=tuple(f"row {row.seq}" for row, _ in scan.undecodable[:5]),
            )
        )
    if scan.bad_signature:
        findings.append(
            Finding(
                kind="bad-signature",
                count=len(scan.bad_signature),
                found=(
                    f"{len(scan.bad_signature):,} stored operation(s) have a signature that no"
                    " longer verifies (damaged on disk; opening does not check signatures)"
                ),
                done=removed,
                examples=tuple(_row_name(row) for row in scan.bad_signature[:5]),
            )
        )
    if scan.rejected:
        reasons = _tally(reason for _, reason in scan.rejected)
        findings.append(
            Finding(
                kind="rejected",
                count=len(scan.rejected),
                found=f"{len(scan.rejected):,} stored operation(s) are now rejected ({reasons})",
                done=removed,
                examples=tuple(_row_name(row) for row, _ in scan.rejected[:5]),
            )
        )
    if scan.released:
        findings.append(
            Finding(
                kind="released-pending",
                count=len(scan.released),
                found=(
                    f"{len(scan.released):,} operation(s) stored as pending have everything"
                    " they reference (a stop between two commits leaves them)"
                ),
                done="would be marked applied" if dry_run else "marked applied",
                problem=False,
                examples=tuple(format_id(TextKind.OPERATION, op.id) for op in scan.released[:5]),
            )
        )
    if scan.waiting:
        findings.append(
            Finding(
                kind="waiting",
                count=scan.waiting,
                found=(
                    f"{scan.waiting:,} operation(s) reference operations this store no longer holds"
                ),
                done="kept: they show once sync brings what they reference",
                problem=False,
            )
        )
    return findings


def _fold_log(store: OpStore, wal_bytes: int, dry_run: bool) -> Finding:
    if dry_run:
        return Finding(
            kind="wal",
            count=1,
            found=f"a write-ahead log of {wal_bytes:,} bytes was left behind",
            done="would be folded into the database (SQLite keeps its valid frames)",
            problem=False,
        )
    folded = store.checkpoint()
    valid = folded.frames * (folded.page_bytes + _WAL_FRAME_HEADER_BYTES)
    ignored = max(0, wal_bytes - _WAL_HEADER_BYTES - valid) if folded.frames else wal_bytes
    found = f"a write-ahead log of {wal_bytes:,} bytes was left behind"
    if ignored:
        found += f", {ignored:,} bytes of it torn or garbled"
    done = (
        f"{folded.frames:,} valid frame(s) folded into the database"
        + (", the rest ignored (SQLite checks each frame's checksum)" if ignored else "")
        + (" (readers were busy: the log is not empty yet)" if folded.busy else "")
    )
    return Finding(kind="wal", count=1, found=found, done=done, problem=False)


def _check_author_key(data_dir: Path) -> Finding | None:
    try:
        identity.read_public_key(data_dir)
    except IdentityMissing:
        return Finding(
            kind="author-key",
            count=0,
            found="no author key",
            done="nothing to repair (reading works; `p2pc init` makes a key, `p2pc key import`"
            " restores one)",
            problem=False,
        )
    except P2PCommentsError as error:
        return Finding(
            kind="author-key",
            count=1,
            found=f"the author key is damaged: {error.message}",
            done="not changed: restore it with `p2pc key import --force <exported key>`",
        )
    return None


def _save(data_dir: Path, rows: Iterable[StoredRow]) -> Path:
    """Rule 3: the rows' bytes in a bundle beside the store, written and synced before any
    row is removed."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = data_dir / f"quarantine-{stamp}.jsonl"
    n = 1
    while path.exists():
        n += 1
        path = data_dir / f"quarantine-{stamp}-{n}.jsonl"
    lines = []
    for row in rows:
        raw = row.raw if isinstance(row.raw, bytes) else str(row.raw).encode("utf-8", "replace")
        lines.append(b'"' + raw.hex().encode("ascii") + b'"\n')
    with open(path, "xb") as file:
        file.write(b"".join(lines))
        file.flush()
        os.fsync(file.fileno())
    return path


def _row_name(row: StoredRow) -> str:
    if isinstance(row.id, bytes) and len(row.id) == 32:
        return format_id(TextKind.OPERATION, row.id)
    return f"row {row.seq}"


def _tally(reasons: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.items(), key=lambda i: -i[1]))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
