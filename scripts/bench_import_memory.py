#!/usr/bin/env python3
"""Peak memory of importing a large export: the importer streams, so it stays bounded.

    .venv/bin/python scripts/bench_import_memory.py [--mb 50] [--format wordpress|disqus]

Generates an export of about ``--mb`` megabytes in a temporary directory, then runs, each in a
fresh interpreter, and prints the peak RSS (``ru_maxrss``) of:

1. baseline: the interpreter with the node and importer modules imported;
2. dry run: the whole file parsed, mapped and every operation built and signed, none kept;
3. import: the same, ingested into a node (real SQLite in the temporary directory);
4. reopen: opening that node afterwards (what holding the imported operations costs the node,
   which keeps every operation of the threads it holds in memory, import or not).

The importer's own cost is (2) - (1) and (3) - (4); a parser that built the document tree would
need several times the file's size on top.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BODY = (
    '<p>Un commentaire « typique » d\u2019un lecteur… avec un <a href="https://example.org/{n}">lien'
    "</a>, de l\u2019<em>emphase</em> et quelques phrases de plus pour atteindre une taille "
    "réaliste de commentaire de blog. 👍</p><p>Second paragraph, with &amp; entities &#8217; and a "
    "line<br/>break.</p>"
)


def write_wordpress(path: Path, target: int) -> tuple[int, int]:
    posts = comments = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:wp="http://wordpress.org/export/1.2/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
        )
        while out.tell() < target:
            posts += 1
            out.write(
                f"<item><title>Post {posts}</title><link>https://blog.example/{posts}/</link>"
                f"<wp:post_id>{posts}</wp:post_id><wp:post_date_gmt>2012-01-24 10:00:00"
                "</wp:post_date_gmt><wp:comment_status>open</wp:comment_status>"
                "<wp:status>publish</wp:status><wp:post_type>post</wp:post_type>\n"
            )
            for index in range(1, 51):
                comments += 1
                parent = 0 if index % 3 == 1 else index - 1
                out.write(
                    f"<wp:comment><wp:comment_id>{index}</wp:comment_id>"
                    f"<wp:comment_author><![CDATA[Lecteur {comments}]]></wp:comment_author>"
                    "<wp:comment_author_email>x@example.org</wp:comment_author_email>"
                    f"<wp:comment_author_url>https://reader{comments}.example/"
                    "</wp:comment_author_url><wp:comment_author_IP>192.0.2.1"
                    "</wp:comment_author_IP>"
                    f"<wp:comment_date_gmt>2012-01-24 {index // 60 + 10:02d}:{index % 60:02d}:00"
                    "</wp:comment_date_gmt>"
                    f"<wp:comment_content><![CDATA[{BODY.format(n=comments)}]]>"
                    "</wp:comment_content><wp:comment_approved>1</wp:comment_approved>"
                    f"<wp:comment_type></wp:comment_type><wp:comment_parent>{parent}"
                    "</wp:comment_parent></wp:comment>\n"
                )
            out.write("</item>\n")
        out.write("</channel>\n</rss>\n")
    return posts, comments


def write_disqus(path: Path, target: int) -> tuple[int, int]:
    threads = posts = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="utf-8"?>\n<disqus xmlns="http://disqus.com" '
            'xmlns:dsq="http://disqus.com/disqus-internals">\n'
        )
        per_thread = 50
        # Threads first (as Disqus writes them), then posts; estimate how many threads we need.
        estimate = max(1, target // (per_thread * (len(BODY) + 420)))
        for threads in range(1, estimate + 1):
            out.write(
                f'<thread dsq:id="{threads}"><link>https://blog.example/{threads}/</link>'
                f"<title>Post {threads}</title><createdAt>2012-01-24T10:00:00Z</createdAt>"
                "<isClosed>false</isClosed></thread>\n"
            )
        while out.tell() < target:
            posts += 1
            thread = (posts - 1) // per_thread % estimate + 1
            parent = f'<parent dsq:id="{posts - 1}"/>' if posts % 3 == 0 else ""
            out.write(
                f'<post dsq:id="{posts}"><id/><message><![CDATA[{BODY.format(n=posts)}]]>'
                f"</message><createdAt>2012-01-24T12:{posts // 60 % 60:02d}:{posts % 60:02d}Z"
                "</createdAt><isDeleted>false</isDeleted><isSpam>false</isSpam><author>"
                f"<email>x@example.org</email><name>Lecteur {posts}</name></author>"
                f'<ipAddress>192.0.2.1</ipAddress><thread dsq:id="{thread}"/>{parent}</post>\n'
            )
        out.write("</disqus>\n")
    return threads, posts


CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    import trio
    from p2pcomments.node import open_node
    from p2pcomments.importers import import_export
    import p2pcomments.importers.wordpress, p2pcomments.importers.disqus  # the parsers too

    mode, data_dir, export, source = sys.argv[1:5]

    async def main():
        report = None
        started = time.perf_counter()
        async with open_node(Path(data_dir), create_identity=True) as node:
            if mode in ("dry-run", "import"):
                report = await import_export(
                    node, Path(export), source=source, dry_run=mode == "dry-run"
                )
            held = node.statistics().operations
        return report, held, time.perf_counter() - started

    report, held, seconds = trio.run(main)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "peak_kib": peak_kib, "held": held, "seconds": seconds,
        "operations": report.operations if report else 0,
        "new": report.new_operations if report else 0,
    }))
    """
)


def run(mode: str, data_dir: Path, export: Path, source: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(data_dir), str(export), source],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of the export (MB)")
    parser.add_argument("--format", choices=("wordpress", "disqus"), default="wordpress")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="p2pc-import-") as tmp:
        root = Path(tmp)
        export = root / "export.xml"
        started = time.perf_counter()
        writer = write_wordpress if args.format == "wordpress" else write_disqus
        posts, comments = writer(export, int(args.mb * 1_000_000))
        size = export.stat().st_size
        print(
            f"export: {args.format}, {size / 1e6:.1f} MB, {posts} posts, {comments} comments "
            f"(written in {time.perf_counter() - started:.1f} s)"
        )
        data = root / "node"
        baseline = run("baseline", root / "baseline", export, args.format)
        dry = run("dry-run", root / "dry", export, args.format)
        real = run("import", data, export, args.format)
        reopen = run("reopen", data, export, args.format)
        mib = 1024.0
        rows = [
            ("baseline (modules imported, empty node)", baseline),
            ("dry run (parse, map, sign; nothing kept)", dry),
            ("import into a node", real),
            ("reopen the node holding the import", reopen),
        ]
        for label, figures in rows:
            print(
                f"{label:<44} peak RSS {figures['peak_kib'] / mib:7.1f} MiB"
                f"  ({figures['seconds']:.1f} s, {int(figures['held'])} operations held)"
            )
        print(
            "importer over baseline (dry run): "
            f"{(dry['peak_kib'] - baseline['peak_kib']) / mib:.1f} MiB"
            f" for a {size / 2**20:.1f} MiB file ({dry['operations']:.0f} operations built)"
        )
        print(
            f"import over reopen (the import's own cost): "
            f"{(real['peak_kib'] - reopen['peak_kib']) / mib:.1f} MiB;"
            f" new operations {real['new']:.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
