"""The commands about the data dir itself: the author key, bundles in and out, statistics, repair.

Rules:

1. ``init`` and ``key import`` touch only the identity files (``key import`` under the data dir's
   lock, so a running daemon never signs with a key that changes under it).
2. ``import`` checks a bundle's form before the daemon or the store is touched; its exit code is
   1 when any operation was rejected.
3. ``repair`` exits 1 while problems remain.
"""

from __future__ import annotations

import sys

from p2pcomments.cli.arguments import UsageError, read_input_file, write_output_file
from p2pcomments.cli.session import EXIT_OK, EXIT_USER_ERROR, Session

__all__ = [
    "cmd_export",
    "cmd_import",
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


def cmd_export(session: Session) -> int:
    args = session.args
    if args.all == (args.thread is not None):
        raise UsageError("export: give a thread id or --all (not both)")
    if args.all:
        bundle: bytes = session.call("export")
    else:
        bundle = session.call("export_thread", thread=args.thread)
    write_output_file(args.output, bundle)
    count = bundle.count(b"\n")
    if args.output not in (None, "-"):
        summary = {"operations": count, "file": args.output}
        session.emit(summary, f"exported {count} operations to {args.output}")
    return EXIT_OK


def cmd_import(session: Session) -> int:
    from p2pcomments.api.bundle import decode_bundle
    from p2pcomments.cli.render import render_outcomes

    data = read_input_file(session.args.file)
    decode_bundle(data)  # a malformed file is reported before the daemon or store is touched
    result = session.call("import_bundle", bundle=data)
    session.emit(result, render_outcomes(result))
    return EXIT_USER_ERROR if result["rejected"] else EXIT_OK


def cmd_statistics(session: Session) -> int:
    result = session.call("statistics")
    width = max((len(k) for k in result), default=0)
    session.emit(result, "\n".join(f"{k:<{width}}  {v}" for k, v in result.items()))
    return EXIT_OK


def cmd_repair(session: Session) -> int:
    from p2pcomments.node.maintenance import repair_data_dir

    report = repair_data_dir(session.data_dir, rebuild_views=session.args.rebuild_views)
    problems, rebuilt, problems_after = report.problems, report.rebuilt_views, report.problems_after
    result = {
        "problems": list(problems),
        "rebuilt_views": rebuilt,
        "problems_after": list(problems_after),
    }
    lines = [f"found: {p}" for p in problems] or ["no problems found"]
    if rebuilt:
        lines.append("rebuilt the views from the operations")
        lines.extend(f"still: {p}" for p in problems_after)
    elif problems:
        lines.append("`p2pc repair --rebuild-views` rebuilds the views from the operations")
    session.emit(result, "\n".join(lines))
    return EXIT_USER_ERROR if problems_after else EXIT_OK
