"""The commands about the data dir itself: the author key, statistics, repair (bundles and
exports in and out are in ``importing.py``).

Rules:

1. ``init`` and ``key import`` touch only the identity files (``key import`` under the data dir's
   lock, so a running daemon never signs with a key that changes under it).
2. ``repair`` exits 1 while problems remain.
"""

from __future__ import annotations

import sys

from p2pcomments.cli.arguments import UsageError, read_input_file, write_output_file
from p2pcomments.cli.render import render_repair
from p2pcomments.cli.session import EXIT_OK, EXIT_USER_ERROR, Session

__all__ = [
    "cmd_init",
    "cmd_key_export",
    "cmd_key_import",
    "cmd_repair",
    "cmd_statistics",
]


def cmd_init(session: Session) -> int:
    from p2pcomments.core.textform import TextKind, format_id
    from p2pcomments.identity import create_identity, has_identity, read_public_key

    data_dir = session.data_dir
    if has_identity(data_dir):
        key = format_id(TextKind.KEY, read_public_key(data_dir))
        session.emit(
            {"author": key, "data_dir": str(data_dir), "created": False},
            f"{data_dir} already has an author key: {key}",
        )
        return EXIT_OK
    passphrase = None
    if session.args.passphrase_stdin:
        passphrase = sys.stdin.readline().rstrip("\r\n")
        if not passphrase:
            raise UsageError("--passphrase-stdin: standard input holds no passphrase")
    identity = create_identity(data_dir, passphrase=passphrase)
    key = str(identity)
    session.emit(
        {
            "author": key,
            "data_dir": str(data_dir),
            "created": True,
            "encrypted": identity.encrypted,
        },
        f"created an author key in {data_dir}: {key}\n"
        "`p2pc daemon` starts the node (every command also works without it, offline)",
    )
    return EXIT_OK


def cmd_key_export(session: Session) -> int:
    from p2pcomments.identity import export_identity

    armoured = export_identity(session.data_dir)
    write_output_file(session.args.output, armoured.encode("ascii"), private=True)
    if session.args.output not in (None, "-"):
        session.emit(
            {"file": session.args.output},
            f"exported the author key to {session.args.output} (keep it secret)",
        )
    return EXIT_OK


def cmd_key_import(session: Session) -> int:
    from p2pcomments.core.textform import TextKind, format_id
    from p2pcomments.identity import import_identity
    from p2pcomments.store.lock import DataDirLock

    armoured = read_input_file(session.args.file).decode("utf-8", "replace")
    session.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The lock keeps a running daemon from signing with a key that changes under it.
    with DataDirLock.acquire(session.data_dir):
        key = format_id(
            TextKind.KEY, import_identity(session.data_dir, armoured, force=session.args.force)
        )
    session.emit({"author": key, "data_dir": str(session.data_dir)}, f"author key is now {key}")
    return EXIT_OK


def cmd_statistics(session: Session) -> int:
    result = session.call("statistics")
    width = max((len(k) for k in result), default=0)
    session.emit(result, "\n".join(f"{k:<{width}}  {v}" for k, v in result.items()))
    return EXIT_OK


def cmd_repair(session: Session) -> int:
    from p2pcomments.node.maintenance import repair_data_dir

    report = repair_data_dir(
        session.data_dir, rebuild_views=session.args.rebuild_views, dry_run=session.args.dry_run
    )
    result = {
        "rows_checked": report.rows_checked,
        "findings": [
            {
                "kind": f.kind,
                "count": f.count,
                "found": f.found,
                "done": f.done,
                "problem": f.problem,
                "examples": list(f.examples),
            }
            for f in report.findings
        ],
        "problems": list(report.problems),
        "rebuilt_views": report.rebuilt_views,
        "quarantine": None if report.quarantine is None else str(report.quarantine),
        "damaged_file": None if report.damaged_file is None else str(report.damaged_file),
        "dry_run": report.dry_run,
        "problems_after": list(report.problems_after),
    }
    session.emit(result, render_repair(result))
    return EXIT_USER_ERROR if report.problems_after else EXIT_OK
