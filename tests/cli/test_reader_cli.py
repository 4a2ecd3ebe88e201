"""``p2pc`` as a reader and writer lives with it (issue 16): long bodies from files, stdin or the
editor; short ids shown and prefixes taken; the whole edit history; a thread's completeness line;
absolute paths; the sync and import wording. The installed entry point, in subprocesses, on temp
data dirs, with and without a daemon."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api.processes import (
    P2PC,
    DaemonProcess,
    environment,
    ok,
    ok_json,
    run_p2pc,
    running_daemon,
)

pytestmark = pytest.mark.network

LIMIT = 32 * 1024


def _fails(data_dir: Path, *args: str, code: int = 1, stdin: str | None = None) -> str:
    result = run_p2pc(data_dir, *args, stdin=stdin)
    assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("reader-home")
    ok(data_dir, "init")
    return data_dir


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    data_dir = tmp_path_factory.mktemp("reader-daemon-home")
    ok(data_dir, "init")
    with running_daemon(data_dir, tmp_path_factory.mktemp("reader-logs")) as process:
        yield process
        assert process.stop(signal.SIGTERM) == 0, process.stderr


def _new_thread(data_dir: Path, title: str = "A thread", *extra: str) -> str:
    return ok(data_dir, "thread", "new", "--title", title, *extra)


def _bodies(data_dir: Path, thread: str) -> list[str | None]:
    return [c["body"] for c in ok_json(data_dir, "show", thread)["comments"]]


# -- long bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("through_daemon", [False, True])
def test_bodies_come_from_a_file_or_stdin_up_to_the_limit(
    home: Path, daemon: DaemonProcess, tmp_path: Path, through_daemon: bool
) -> None:
    data_dir = daemon.data_dir if through_daemon else home
    thread = _new_thread(data_dir)
    long_text = ("A long line of a long comment. " * 1000)[:30_000]
    text_file = tmp_path / "long.txt"
    text_file.write_text(long_text + "\n", encoding="utf-8")  # one trailing newline is dropped
    ok(data_dir, "comment", thread, "--body-file", str(text_file))
    ok(data_dir, "comment", thread, "--body-file", "-", stdin="from stdin\nline two\n")
    # At the limit in any script, and with characters JSON escapes: through the daemon too.
    accents = "é" * (LIMIT // 2)
    quotes = ('"\\' * 4000 + "\n") * 4
    for text in (accents, quotes):
        (tmp_path / "edge.txt").write_text(text, encoding="utf-8")
        ok(data_dir, "comment", thread, "--body-file", str(tmp_path / "edge.txt"))
    assert _bodies(data_dir, thread) == [
        long_text,
        "from stdin\nline two",
        accents,
        quotes.rstrip("\n"),
    ]


def test_a_body_over_the_limit_gets_p2pc_s_own_error(home: Path, tmp_path: Path) -> None:
    thread = _new_thread(home)
    huge = tmp_path / "huge.txt"
    huge.write_text("x" * 200_000, encoding="utf-8")  # over what one shell argument may hold
    line = _fails(home, "comment", thread, "--body-file", str(huge))
    assert line == (
        "p2pc: a comment: the text is 200,000 bytes of UTF-8; a comment holds at most 32,768 bytes"
    )
    line = _fails(home, "comment", thread, "--body", "-", stdin="é" * LIMIT)
    assert "the text is 65,536 bytes of UTF-8" in line
    assert _bodies(home, thread) == []


def test_a_body_file_must_be_readable_utf8_and_one_source_is_given(
    home: Path, tmp_path: Path
) -> None:
    thread = _new_thread(home)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    assert f"{latin1} is not UTF-8 text: byte 0xe9 at offset 3" in _fails(
        home, "comment", thread, "--body-file", str(latin1)
    )
    assert "cannot read /nonexistent/body" in _fails(
        home, "comment", thread, "--body-file", "/nonexistent/body"
    )
    both = run_p2pc(home, "comment", thread, "--body", "x", "--body-file", str(latin1))
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    # Not on a terminal and no text: say how to give it (no editor, no hang).
    line = _fails(home, "reply", "cmt_abcd", stdin="")
    assert "give the text with --body TEXT, --body-file FILE or --body -" in line


# -- the editor ------------------------------------------------------------------------------------

_EDITOR = """\
import os, shutil, sys
path = sys.argv[1]
shutil.copy(path, os.environ["SEEN"])
template = open(path, encoding="utf-8").read()
with open(path, "w", encoding="utf-8") as handle:
    handle.write(os.environ["EDITOR_TEXT"] + template)
sys.exit(int(os.environ.get("EDITOR_EXIT", "0")))
"""


def _in_a_terminal(
    data_dir: Path, tmp_path: Path, *args: str, text: str, exit_code: int = 0
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run p2pc with a terminal as stdin and EDITOR a script that writes ``text`` above the
    template; what it ran, and the draft as the editor found it."""
    editor = tmp_path / "editor.py"
    editor.write_text(_EDITOR, encoding="utf-8")
    seen = tmp_path / "seen.txt"
    seen.unlink(missing_ok=True)
    env = {
        **environment(data_dir),
        "EDITOR": f"{sys.executable} {editor}",
        "SEEN": str(seen),
        "EDITOR_TEXT": text,
        "EDITOR_EXIT": str(exit_code),
    }
    env.pop("VISUAL", None)
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [str(P2PC), *args],
            env=env,
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    return result, seen.read_text(encoding="utf-8") if seen.exists() else ""


def test_without_a_body_on_a_terminal_the_editor_writes_it(home: Path, tmp_path: Path) -> None:
    thread = _new_thread(home)
    result, draft = _in_a_terminal(
        home,
        tmp_path,
        "comment",
        thread,
        text="\n# my own note, stripped\nFirst line   \n\n  indented second\n\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("cmt_")
    assert "# Write a comment above. Lines starting with '#' are removed" in draft
    assert f"# Commenting on {thread}" in draft
    assert _bodies(home, thread) == ["First line\n\n  indented second"]
    assert not (home / "DRAFT_BODY.txt").exists()  # removed once posted

    parent = result.stdout.strip()
    result, draft = _in_a_terminal(home, tmp_path, "reply", parent[:12], text="I agree")
    assert result.returncode == 0, result.stderr
    assert "# > First line" in draft  # the text answered is shown
    result, draft = _in_a_terminal(home, tmp_path, "edit", parent, text="Better first line\n")
    assert result.returncode == 0, result.stderr
    assert draft.startswith("First line\n\n  indented second")  # an edit starts from the text
    assert _bodies(home, thread) == [
        "Better first line\nFirst line\n\n  indented second",
        "I agree",
    ]


def test_an_editor_that_fails_or_leaves_no_text_posts_nothing(
    home: Path, daemon: DaemonProcess, tmp_path: Path
) -> None:
    thread = _new_thread(home)
    result, _ = _in_a_terminal(home, tmp_path, "comment", thread, text="kept", exit_code=3)
    assert result.returncode == 1
    assert "the editor exited with status 3: nothing was posted" in result.stderr
    result, _ = _in_a_terminal(home, tmp_path, "comment", thread, text="\n\n# only comments\n")
    assert result.returncode == 1
    assert "a comment: the text is empty, so nothing was posted" in result.stderr
    assert _bodies(home, thread) == []

    # Posting fails: the text is kept, and the error says where and how to post it.
    closed = _new_thread(daemon.data_dir, "Closed")
    ok(daemon.data_dir, "moderate", "close", closed)
    result, _ = _in_a_terminal(
        daemon.data_dir, tmp_path, "comment", closed, text="words worth keeping"
    )
    assert result.returncode == 1
    draft = daemon.data_dir / "DRAFT_BODY.txt"
    assert f"(your text is kept in {draft}: `--body-file {draft}` posts it)" in result.stderr
    opened = _new_thread(daemon.data_dir, "Open")
    ok(daemon.data_dir, "comment", opened, "--body-file", str(draft))
    assert _bodies(daemon.data_dir, opened)[0].startswith("words worth keeping")


# -- short ids -------------------------------------------------------------------------------------


def _colliding_comments(thread_text: str) -> tuple[bytes, list[str]]:
    """A bundle of comments on the thread, two of whose ids share their first 4 characters."""
    from nacl.signing import SigningKey

    from p2pcomments.api.bundle import encode_bundle
    from p2pcomments.core.ops import CommentPayload, make_operation
    from p2pcomments.core.textform import TextKind, format_id, parse_id

    thread_id = parse_id(thread_text)
    key = SigningKey(b"\x05" * 32)
    seen: dict[str, object] = {}
    for n in range(20_000):
        op = make_operation(
            key,
            CommentPayload(body=f"comment {n}"),
            timestamp_ms=1_700_000_000_000 + n,
            thread=thread_id,
            refs=(thread_id,),
        )
        text = format_id(TextKind.COMMENT, op.id)
        other = seen.get(text[:8])
        if other is not None:
            return encode_bundle([other.encoded, op.encoded]), [  # type: ignore[attr-defined]
                format_id(TextKind.COMMENT, other.id),  # type: ignore[attr-defined]
                text,
            ]
        seen[text[:8]] = op
    raise AssertionError("no two ids share 4 characters")  # pragma: no cover


def test_ids_are_shown_short_and_any_unique_prefix_is_taken(home: Path, tmp_path: Path) -> None:
    thread = _new_thread(home, "Short ids")
    first = ok(home, "comment", thread, "--body", "one")
    assert len(first) == 60  # a command that creates prints the whole id, for scripts
    reply = ok(home, "reply", first[:12], "--body", "two")  # the prefix `show` prints
    assert ok(home, "edit", first[:8], "--body", "one, edited") == f"edited {first[:12]}"
    shown = ok(home, "show", thread[:10]).splitlines()
    heads = [line for line in shown if " · just now · cmt_" in line]
    assert [head.split(" · ")[2].split()[0] for head in heads] == [first[:12], reply[:12]]
    assert first not in "\n".join(shown)
    view = ok_json(home, "show", thread[:10])  # --json keeps whole ids
    assert [c["id"] for c in view["comments"]] == [first, reply]
    assert thread[:12] in ok(home, "threads")
    assert "no comment whose id starts with cmt_zzzz" in _fails(
        home, "reply", "cmt_zzzz", "--body", "x"
    )
    followed = ok_json(home, "follow", thread[:12])  # a prefix follows the thread it names
    assert thread in followed["threads"]
    assert ok(home, "unfollow", thread[:12]) == f"no longer following {thread[:12]}"


def test_an_ambiguous_prefix_lists_the_candidates(home: Path, tmp_path: Path) -> None:
    thread = _new_thread(home, "Crowded")
    bundle, (one, two) = _colliding_comments(thread)
    (tmp_path / "crowded.jsonl").write_bytes(bundle)
    ok(home, "import", str(tmp_path / "crowded.jsonl"))
    common = one[:8]
    line = _fails(home, "reply", common, "--body", "which one?")
    match = re.fullmatch(
        rf"p2pc: {common} is ambiguous: it starts the ids of 2 comments here: (\S+), (\S+)"
        r" \(give more of it\)",
        line,
    )
    assert match is not None, line
    candidates = set(match.groups())
    for candidate in candidates:  # each names one of the two, and only it
        assert one.startswith(candidate) != two.startswith(candidate)
    assert {one.startswith(candidate) for candidate in candidates} == {True, False}
    # What `show` prints for each tells them apart, and is taken back.
    shown = ok(home, "show", thread)
    [prefix] = {p for p in re.findall(r"cmt_[a-z2-7]+", shown) if one.startswith(p)}
    assert not two.startswith(prefix)
    ok(home, "react", prefix, "👍")
    reacted = {c["id"] for c in ok_json(home, "show", thread)["comments"] if c["reactions"]}
    assert reacted == {one}


# -- history and completeness --------------------------------------------------------------------


def test_show_history_has_every_version_and_what_a_reply_answered(home: Path) -> None:
    thread = _new_thread(home, "Edited")
    first = ok(home, "comment", thread, "--body", "I like cats")
    ok(home, "reply", first, "--body", "me too")
    ok(home, "edit", first, "--body", "I like dogs")
    ok(home, "edit", first, "--body", "I like birds")
    plain = ok(home, "show", thread)
    assert "I like cats" not in plain
    lines = ok(home, "show", thread, "--history").splitlines()
    start = lines.index("  history (3 versions, oldest first):")
    assert lines[start + 1] == "  [1] just now · original"
    assert lines[start + 2] == "    I like cats"
    assert lines[start + 3].startswith("  [2] just now · op_")
    assert lines[start + 4] == "    I like dogs"
    assert lines[start + 5].endswith("(shown)")
    assert lines[start + 6] == "    I like birds"
    answered = lines.index("    answered this version of its parent (just now, original):")
    assert lines[answered + 1] == "    > I like cats"
    view = ok_json(home, "show", thread)
    assert view["comments"][0]["original"]["body"] == "I like cats"
    assert view["comments"][1]["answered_version"]["body"] == "I like cats"


def test_show_says_how_complete_the_thread_is(home: Path) -> None:
    thread = _new_thread(home, "Complete")
    ok(home, "comment", thread, "--body", "one")
    view = ok_json(home, "show", thread)
    assert view["completeness"]["verified"] == view["completeness"]["held"] == 2
    line = ok(home, "show", thread).splitlines()[3]
    assert line == f"2 of 2 operations verified, none pending, digest {view['digest'][:16]}…"


def _pending_and_forged(thread_text: str, mine: str) -> bytes:
    """A comment whose parent is missing (it waits) and an edit of ``mine`` by someone else."""
    from nacl.signing import SigningKey

    from p2pcomments.api.bundle import encode_bundle
    from p2pcomments.core.ops import CommentPayload, EditPayload, make_operation
    from p2pcomments.core.textform import parse_id

    thread_id, mine_id = parse_id(thread_text), parse_id(mine)
    stranger = SigningKey.generate()
    now = time.time_ns() // 1_000_000
    missing = make_operation(
        stranger,
        CommentPayload(body="never sent"),
        timestamp_ms=now,
        thread=thread_id,
        refs=(thread_id,),
    )
    waiting = make_operation(
        stranger,
        CommentPayload(body="waits"),
        timestamp_ms=now + 1,
        thread=thread_id,
        refs=(missing.id,),
    )
    forged = make_operation(
        stranger,
        EditPayload(body="not yours"),
        timestamp_ms=now + 2,
        thread=thread_id,
        refs=(mine_id,),
    )
    return encode_bundle([waiting.encoded, forged.encoded])


def test_what_is_pending_or_rejected_in_a_thread_is_shown_with_why(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    import httpx

    home = daemon.data_dir
    thread = _new_thread(home, "Incomplete")
    mine = ok(home, "comment", thread, "--body", "mine")
    (tmp_path / "bad.jsonl").write_bytes(_pending_and_forged(thread, mine))
    assert run_p2pc(home, "import", str(tmp_path / "bad.jsonl")).returncode == 1  # one rejected
    lines = ok(home, "show", thread).splitlines()
    assert lines[3].startswith(
        "2 of 3 operations verified, 1 pending (waiting for 1 operation not received yet),"
        " 1 rejected, digest "
    )
    assert re.fullmatch(r"  pending cmt_\w+ \(comment\): waits for op_\w+", lines[4]), lines[4]
    assert re.fullmatch(
        r"  rejected op_\w+: not-author: only a comment's author may edit it", lines[5]
    ), lines[5]
    completeness = ok_json(home, "show", thread)["completeness"]
    assert (completeness["verified"], completeness["pending"], completeness["rejected"]) == (
        2,
        1,
        1,
    )
    assert completeness["rejected_operations"][0]["code"] == "not-author"
    page = httpx.get(f"{daemon.url}/t/{thread[:12]}", timeout=15)
    assert page.status_code == 200
    assert "2 of 3 operations verified, 1 pending" in page.text


# -- small things ----------------------------------------------------------------------------------


def test_the_data_dir_is_printed_as_an_absolute_path(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("P2PC_")}

    def run(*args: str) -> str:
        result = subprocess.run(
            [str(P2PC), "--data-dir", "relative-home", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout

    assert f"created an author key in {tmp_path / 'relative-home'}:" in run("init")
    statistics = run("statistics")
    assert re.search(
        rf"^data_dir\s+{re.escape(str(tmp_path / 'relative-home'))}$", statistics, re.M
    )
    assert json.loads(run("--json", "id"))["data_dir"] == str(tmp_path / "relative-home")


def test_threads_can_be_listed_for_one_page(home: Path) -> None:
    page = _new_thread(home, "About a page", "--url", "https://Blog.example/post/?utm_source=feed")
    listed = ok_json(home, "threads", "--url", "https://blog.example/post")["threads"]
    assert [t["id"] for t in listed] == [page]
    assert ok(home, "threads", "--url", "https://blog.example/elsewhere") == (
        "No thread here is about https://blog.example/elsewhere."
    )
    assert _fails(home, "threads", "--url", "ftp://blog.example/") == (
        "p2pc: a page URL is http or https, not ftp"
    )


def test_import_names_what_it_takes_and_points_an_export_to_its_importer(
    home: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(P2PC), "import", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert "bundle" in result.stdout
    export = tmp_path / "wordpress.xml"
    export.write_text('<?xml version="1.0"?>\n<rss><channel/></rss>\n', encoding="utf-8")
    assert _fails(home, "import", str(export)) == (
        f"p2pc: {export} is XML, not a bundle of signed operations: `p2pc import wordpress"
        f" {export}` imports a WordPress (WXR) export, `p2pc import disqus {export}` a Disqus one"
    )
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"not": "hex"}\n', encoding="utf-8")
    assert _fails(home, "import", str(junk)) == (
        f"p2pc: {junk} is not a bundle (bundle line 1 is not a JSON string of hex digits): a"
        " bundle is what `p2pc export` writes; `p2pc import wordpress|disqus FILE` takes those"
        " systems' exports"
    )
