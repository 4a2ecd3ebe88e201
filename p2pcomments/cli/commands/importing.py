"""``p2pc import`` (bundles, WordPress and Disqus exports) and ``p2pc export`` (bundle, JSON, WXR).

Rules:

1. ``p2pc import FILE`` and ``p2pc import bundle FILE`` ingest a bundle of signed operations, as
   before; ``p2pc import wordpress|disqus FILE`` imports an export (`p2pcomments.importers`):
   the whole file is checked before anything is written, and its exit code is 1 when the file
   is refused or any operation was rejected.
2. Offline, the import streams from the file in this process, with a progress bar on stderr
   when stderr is a terminal (and never with ``--json``). Through a running daemon, the file
   goes to its API (``POST /api/import/wordpress`` or ``/disqus``) and a spinner shows while it
   works.
3. ``p2pc export THREAD`` writes a bundle as before; ``--format json`` writes the readable JSON
   of one thread, or of every thread without THREAD; ``--format wxr`` writes WordPress WXR.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from p2pcomments.cli.arguments import UsageError, output_file, read_input_file, write_output_file
from p2pcomments.cli.session import EXIT_OK, EXIT_USER_ERROR, Session
from p2pcomments.errors import DecodeError

if TYPE_CHECKING:
    from p2pcomments.cli.client import ByteSink
    from p2pcomments.node import Node

__all__ = ["cmd_export", "cmd_import", "render_import_report"]

_SOURCES: Final = ("wordpress", "disqus")
_FORMS: Final = "p2pc import [bundle] FILE | p2pc import wordpress FILE | p2pc import disqus FILE"


def cmd_import(session: Session) -> int:
    args = session.args
    words = [args.what] if args.file is None else [args.what, args.file]
    if len(words) == 1:
        kind, file = "bundle", words[0]
    elif len(words) == 2 and words[0] in ("bundle", *_SOURCES):
        kind, file = words
    else:
        raise UsageError(f"import: {_FORMS}")
    options = {
        "include_unapproved": args.include_unapproved,
        "include_spam": args.include_spam,
        "include_deleted": args.include_deleted,
    }
    if kind == "bundle":
        if any(options.values()) or args.dry_run:
            raise UsageError("import: --dry-run and --include-* are for wordpress and disqus")
        return _import_bundle(session, file)
    return _import_export(session, kind, file, options, dry_run=args.dry_run)


def _import_bundle(session: Session, file: str) -> int:
    from p2pcomments.api.bundle import decode_bundle
    from p2pcomments.cli.render import render_outcomes

    data = read_input_file(file)
    where = "standard input" if file == "-" else file
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        # The old `p2pc import FILE` took only bundles; an export file given so is a mistake.
        shown = "FILE" if file == "-" else file
        raise UsageError(
            f"{where} is XML, not a bundle of signed operations: `p2pc import wordpress {shown}`"
            f" imports a WordPress (WXR) export, `p2pc import disqus {shown}` a Disqus one"
        )
    try:
        decode_bundle(data)  # a malformed file is reported before the daemon or store is touched
    except DecodeError as error:
        raise UsageError(
            f"{where} is not a bundle ({error.message}): a bundle is what `p2pc export` writes;"
            " `p2pc import wordpress|disqus FILE` takes those systems' exports",
            reason=error.reason,
        ) from None
    result = session.call("import_bundle", bundle=data)
    session.emit(result, render_outcomes(result))
    return EXIT_USER_ERROR if result["rejected"] else EXIT_OK


def _import_export(
    session: Session, source: str, file: str, options: dict[str, bool], *, dry_run: bool
) -> int:
    from p2pcomments.cli.backends import DirectBackend

    path = Path(file)
    if not path.is_file():
        raise UsageError(f"import: no file {file}")
    show_progress = sys.stderr.isatty() and not session.json
    if isinstance(session.backend(), DirectBackend):
        result = _import_here(session, source, path, options, dry_run, show_progress)
    else:
        result = _import_through_daemon(session, source, path, options, dry_run, show_progress)
    session.emit(result, render_import_report(result))
    return EXIT_USER_ERROR if result["rejected"] else EXIT_OK


def _import_here(
    session: Session,
    source: str,
    path: Path,
    options: dict[str, bool],
    dry_run: bool,
    show_progress: bool,
) -> dict[str, Any]:
    from p2pcomments.importers import ImportOptions, import_export

    size = path.stat().st_size

    async def work(node: Node) -> dict[str, Any]:
        if not show_progress:
            report = await import_export(
                node, path, source=source, options=ImportOptions(**options), dry_run=dry_run
            )
            return report.to_json()
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("importing {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
        )
        from rich.console import Console

        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(path.name, total=size)
            report = await import_export(
                node,
                path,
                source=source,
                options=ImportOptions(**options),
                dry_run=dry_run,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        return report.to_json()

    result: dict[str, Any] = session.run_with_node(work)
    return result


def _import_through_daemon(
    session: Session,
    source: str,
    path: Path,
    options: dict[str, bool],
    dry_run: bool,
    show_progress: bool,
) -> dict[str, Any]:
    flags = {name: "true" if value else "false" for name, value in options.items()}
    flags["dry_run"] = "true" if dry_run else "false"
    data = path.read_bytes()
    if not show_progress:
        result: dict[str, Any] = session.call(f"import_{source}", export=data, **flags)
        return result
    from rich.console import Console

    with Console(stderr=True).status(f"importing {path.name} (the daemon is working)"):
        result = session.call(f"import_{source}", export=data, **flags)
    return result


def render_import_report(report: dict[str, Any]) -> str:
    """The summary printed at the end of an import."""
    from p2pcomments.importers.labels import source_name

    imported = report["imported"]
    parts = [f"{imported.get(kind, 0)} {kind}" for kind in ("comments", "pingbacks", "trackbacks")]
    verb = "would import" if report["dry_run"] else "imported"
    lines = [
        f"{report['file']} ({source_name(report['source'])}): {verb} {', '.join(parts)} "
        f"in {report['threads']} threads ({report['closed_threads']} closed)"
    ]
    by_status = report["imported_by_status"]
    if by_status:
        lines.append("  included: " + ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())))
    if report["orphans"]:
        lines.append(
            f"  {report['orphans']} replies whose parent was not imported are at the top level"
        )
    skipped = report["skipped"]
    if skipped:
        lines.append("  skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())))
        hints = [
            f"--include-{status}"
            for status in ("unapproved", "spam", "deleted")
            if skipped.get(status)
        ]
        if hints:
            lines.append("  (" + " / ".join(hints) + " to import those)")
    new = report["new_operations"]
    total = report["operations"]
    if report["dry_run"]:
        lines.append(f"  {new} of {total} operations are new here (dry run: nothing written)")
    else:
        lines.append(f"  {new} of {total} operations were new here")
    if report["rejected"]:
        lines.append(
            "  rejected: "
            + ", ".join(f"{n} {why}" for why, n in sorted(report["rejected"].items()))
        )
    return "\n".join(lines)


def cmd_export(session: Session) -> int:
    import json

    args = session.args
    form = args.format
    if form == "bundle":
        if args.all == (args.thread is not None):
            raise UsageError("export: give a thread id or --all (not both)")
        if args.all:  # streamed: a store larger than memory exports a few threads at a time
            with output_file(args.output) as sink:
                counted = _Counter(sink, b"\n")
                session.download("export", counted)
            count = counted.seen
        else:
            data: bytes = session.call("export_thread", thread=args.thread)
            write_output_file(args.output, data)
            count = data.count(b"\n")
        what = f"{count} operations"
        summary: dict[str, Any] = {"operations": count}
    else:
        if args.all and args.thread is not None:
            raise UsageError("export: give a thread id or --all (not both)")
        params: dict[str, Any] = {} if args.thread is None else {"thread": args.thread}
        if form == "json" and args.thread is None:  # streamed, as a bundle of everything is
            from p2pcomments.importers.export import JSON_THREAD_START

            with output_file(args.output) as sink:
                threads = _Counter(sink, JSON_THREAD_START)
                session.download("export_json", threads)
            what = f"{threads.seen} threads as JSON"
            summary = {"threads": threads.seen}
        elif form == "json":
            document = session.call("export_thread_json", **params)
            data = (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
            what = f"{len(document['threads'])} threads as JSON"
            summary = {"threads": len(document["threads"])}
            write_output_file(args.output, data)
        elif args.thread is None:  # streamed, as a bundle of everything is
            with output_file(args.output) as sink:
                items = _Counter(sink, b"<item>")
                session.download("export_wxr", items)
            what = f"{items.seen} threads as WordPress WXR"
            summary = {"threads": items.seen}
        else:
            data = session.call("export_thread_wxr", **params)
            what = f"{data.count(b'<item>')} threads as WordPress WXR"
            summary = {"threads": data.count(b"<item>")}
            write_output_file(args.output, data)
    if args.output not in (None, "-"):
        summary.update(file=args.output, format=form)
        session.emit(summary, f"exported {what} to {args.output}")
    return EXIT_OK


class _Counter:
    """A binary sink that counts how often ``marker`` passes through it (a bundle's lines, a
    WXR file's items), chunk boundaries included."""

    def __init__(self, sink: ByteSink, marker: bytes) -> None:
        self._sink = sink
        self._marker = marker
        self._tail = b""  # the end of the last chunk, where a marker may begin
        self.seen = 0

    def write(self, data: bytes) -> object:
        joined = self._tail + data
        self.seen += joined.count(self._marker)
        self._tail = joined[-(len(self._marker) - 1) :] if len(self._marker) > 1 else b""
        return self._sink.write(data)
