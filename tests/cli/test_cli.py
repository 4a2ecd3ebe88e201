"""``p2pc`` as a user runs it: the installed entry point in subprocesses, on temp data dirs, with
and without a daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from api.processes import (
    P2PC,
    DaemonProcess,
    environment,
    foreign_comment_bundle,
    foreign_comment_id,
    interruptible_p2pc,
    ok,
    ok_json,
    read_line,
    run_p2pc,
    running_daemon,
)

pytestmark = pytest.mark.network

HEAVY_MODULES = ("libp2p", "starlette", "hypercorn", "httpx", "multiaddr")


def _unknown(prefix: str) -> str:
    from p2pcomments.core.textform import TextKind, format_id

    return format_id(TextKind(prefix), bytes(range(32)))


def _fails(data_dir: Path, *args: str, code: int = 1, stdin: str | None = None) -> str:
    """Run a command that must fail with ``code`` and one line on stderr; that line."""
    result = run_p2pc(data_dir, *args, stdin=stdin)
    assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("p2pc: ")
    return lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with an author key, used without a daemon."""
    data_dir = tmp_path_factory.mktemp("cli-home")
    created = ok_json(data_dir, "init")
    assert created["created"] is True
    assert created["author"].startswith("key_")
    return data_dir


@pytest.fixture(scope="module")
def thread(home: Path) -> str:
    return ok(home, "thread", "new", "--title", "Offline thread", "--url", "https://example.org/a")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    data_dir = tmp_path_factory.mktemp("cli-daemon-home")
    ok(data_dir, "init")
    with running_daemon(data_dir, tmp_path_factory.mktemp("cli-logs")) as process:
        yield process
        assert process.stop(signal.SIGTERM) == 0, process.stderr


# -- without a daemon ----------------------------------------------------------------------------


def test_an_encrypted_key_is_needed_to_write_but_not_to_read(tmp_path: Path) -> None:
    data_dir = tmp_path / "locked"
    ok(data_dir, "init", "--passphrase-stdin", stdin="correct horse\n")
    unlocked = {**environment(data_dir), "P2PC_PASSPHRASE": "correct horse"}
    made = subprocess.run(
        [str(P2PC), "thread", "new", "--title", "Locked"],
        env=unlocked,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    thread = made.stdout.strip()
    # No passphrase and no terminal: reading works, writing is refused with a hint, not a prompt.
    assert ok_json(data_dir, "show", thread)["title"] == "Locked"
    assert ok_json(data_dir, "threads")["threads"][0]["id"] == thread
    refused = _fails(data_dir, "comment", thread, "--body", "hello", code=1)
    assert "encrypted" in refused
    assert "P2PC_PASSPHRASE" in refused
    assert ok_json(data_dir, "show", thread)["comments"] == []  # nothing was written


def test_walkthrough_without_a_daemon(home: Path, thread: str) -> None:
    assert thread.startswith("thr_")
    assert ok(home, "profile", "set", "--name", "Alice") == "your display name is now Alice"
    first = ok(home, "comment", thread, "--body", "first comment")
    assert first.startswith("cmt_")
    second = ok(home, "reply", first, "--body", "-", stdin="a reply\nover two lines\n")
    assert second.startswith("cmt_")
    # Messages name ids by a short prefix; commands that create print the whole id.
    assert ok(home, "edit", first, "--body", "first comment, edited") == f"edited {first[:12]}"
    assert ok(home, "react", first, "👍") == f"reacted 👍 to {first[:12]}"

    shown = ok(home, "show", thread).splitlines()
    assert shown[0] == "Offline thread"
    assert "https://example.org/a · by Alice · just now · 2 comments" in shown[1]
    assert shown[2] == thread
    head = next(line for line in shown if first[:12] in line)
    assert head.startswith("Alice · just now · ")
    assert head.endswith("[edited]")
    assert "  first comment, edited" in shown
    assert "  👍 1" in shown
    reply_head = next(line for line in shown if second[:12] in line)
    assert reply_head.startswith("  Alice")  # indented one level
    assert reply_head.endswith("[parent edited after]")
    assert "    a reply" in shown
    assert "    over two lines" in shown


@pytest.fixture(scope="module")
def served_thread(daemon: DaemonProcess) -> str:
    return ok(daemon.data_dir, "thread", "new", "--title", "Served thread")


def test_json_output_parses(daemon: DaemonProcess, served_thread: str) -> None:
    home, thread = daemon.data_dir, served_thread
    comment = ok_json(home, "comment", thread, "--body", "json please")
    assert comment["kind"] == "comment"
    assert comment["thread"] == thread
    view = ok_json(home, "show", thread)
    assert view["id"] == thread
    assert comment["id"] in [row["id"] for row in view["comments"]]
    assert thread in [t["id"] for t in ok_json(home, "threads")["threads"]]
    identity = ok_json(home, "id")
    assert identity["daemon"]["pid"] == daemon.pid
    assert identity["data_dir"] == str(home)
    assert ok_json(home, "statistics")["threads"] >= 1
    assert ok_json(home, "react", comment["id"], "--remove")["reaction"] == ""
    assert ok_json(home, "moderate", "hide", comment["id"], "--reason", "test")["action"] == "hide"
    assert ok_json(home, "profile", "show")["author"] == identity["author"]
    assert ok_json(home, "retract", comment["id"])["kind"] == "retract"
    assert "[deleted]" in ok(home, "show", thread)
    listed = ok(home, "threads")
    assert thread[:12] in listed
    assert "Served thread" in listed


def test_moderation_commands(daemon: DaemonProcess) -> None:
    home = daemon.data_dir
    thread = ok(home, "thread", "new", "--title", "Moderated")
    comment = ok(home, "comment", thread, "--body", "hide me")
    ok(home, "moderate", "hide", comment, "--reason", "off-topic")
    shown = ok(home, "show", thread)
    assert "[hidden]" in shown
    assert "hide me" not in shown
    assert "hide me" in ok(home, "show", thread, "--all")
    ok(home, "moderate", "unhide", comment)
    moderator = _unknown("key")
    ok(home, "moderate", "add-mod", thread, moderator)
    assert ok_json(home, "show", thread)["moderators"] == [moderator]
    ok(home, "moderate", "remove-mod", thread, moderator)
    ok(home, "moderate", "close", thread)
    assert "[closed]" in ok(home, "show", thread).splitlines()[0]
    assert "closed" in _fails(home, "comment", thread, "--body", "too late")
    ok(home, "moderate", "reopen", thread)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("show", "UNKNOWN_THREAD"), "no thread thr_"),
        (("reply", "UNKNOWN_COMMENT", "--body", "hi"), "no comment cmt_"),
        (("show", "thr_typo"), "no thread whose id starts with thr_typo here"),
        (("show", "thr_ty"), "'thr_ty' is too short to look up: give at least 4 characters"),
        (("show", "thr_" + "a" * 57), "has 57 characters after 'thr_', expected 56"),
        (("reply", "thr_abcd", "--body", "x"), "'thr_abcd' names a thread, expected 'cmt_'"),
        (("comment", "THREAD", "--body", ""), "body must not be empty"),
        (("import", "/nonexistent/bundle"), "cannot read /nonexistent/bundle"),
    ],
)
def test_mistakes_are_one_line(
    daemon: DaemonProcess, served_thread: str, args: tuple[str, ...], expected: str
) -> None:
    values = {
        "UNKNOWN_THREAD": _unknown("thr"),
        "UNKNOWN_COMMENT": _unknown("cmt"),
        "THREAD": served_thread,
    }
    line = _fails(daemon.data_dir, *(values.get(arg, arg) for arg in args))
    assert expected in line


def test_not_the_author(daemon: DaemonProcess, served_thread: str, tmp_path: Path) -> None:
    home, thread = daemon.data_dir, served_thread
    bundle = tmp_path / "foreign.jsonl"
    bundle.write_bytes(foreign_comment_bundle(thread))
    assert "1 applied" in ok(home, "import", str(bundle))
    foreign = foreign_comment_id(bundle.read_bytes())
    assert "only a comment's author may edit it" in _fails(home, "edit", foreign, "--body", "x")


def test_no_identity_yet(tmp_path: Path) -> None:
    line = _fails(tmp_path / "empty", "threads")
    assert f"no author key in {tmp_path / 'empty'}: run `p2pc init`" in line
    as_json = run_p2pc(tmp_path / "empty", "--json", "threads")
    assert as_json.returncode == 1
    assert json.loads(as_json.stderr)["error"]["code"] == "no-identity"


def test_usage_errors_exit_2(home: Path) -> None:
    result = run_p2pc(home, "comment")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert run_p2pc(home, "no-such-command").returncode == 2


def test_help_everywhere() -> None:
    import argparse

    from p2pcomments.cli.main import build_parser

    top = run_p2pc(Path("/nonexistent"), "--help")
    assert top.returncode == 0
    assert "thread" in top.stdout

    def walk(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from walk(sub)

    parsers = list(walk(build_parser()))
    assert len(parsers) > 25
    for parser in parsers:
        assert "--data-dir" in parser.format_help()


def test_export_import_and_key_round_trip(
    daemon: DaemonProcess, served_thread: str, tmp_path: Path
) -> None:
    home, thread = daemon.data_dir, served_thread  # exported through the daemon
    ok(home, "comment", thread, "--body", "exported")  # whatever other tests have written there
    bundle = tmp_path / "thread.jsonl"
    exported = ok_json(home, "export", thread, "-o", str(bundle))
    assert exported["operations"] == len(bundle.read_text().splitlines()) > 1
    everything = ok(home, "export", "--all")
    assert set(bundle.read_text().splitlines()) <= set(everything.splitlines())
    _fails(home, "export")  # neither a thread nor --all

    other = tmp_path / "other"
    ok(other, "init")
    everything_file = tmp_path / "all.jsonl"
    everything_file.write_text(everything + "\n")
    result = ok_json(other, "import", str(everything_file))
    assert result["rejected"] == 0
    assert result["applied"] == result["total"]
    assert ok_json(other, "show", thread)["digest"] == ok_json(home, "show", thread)["digest"]

    key = tmp_path / "author.key.txt"
    ok(home, "key", "export", "-o", str(key))
    assert key.stat().st_mode & 0o777 == 0o600
    fresh = tmp_path / "fresh"
    ok(fresh, "key", "import", str(key))
    # `init` on a data dir that has a key says which (without opening the store).
    assert ok_json(fresh, "init")["author"] == ok_json(home, "id")["author"]
    assert "different author key" in _fails(other, "key", "import", str(key), code=1)


def test_repair(home: Path) -> None:
    assert ok(home, "repair").splitlines()[-1] == "no problems found"
    assert ok_json(home, "repair", "--rebuild-views")["rebuilt_views"] is True


def test_repair_says_what_it_found_and_did(tmp_path: Path) -> None:
    """A signature damaged on disk (opening does not verify it again): one line with the
    count and what was done, the same in --json, and exit 1 only while something is left."""
    import sqlite3

    from p2pcomments.store.data_dir import database_path

    home = tmp_path / "damaged"
    ok(home, "init")
    ok(home, "thread", "new", "--title", "To be damaged")
    connection = sqlite3.connect(database_path(home))
    with connection:
        seq, raw = connection.execute("SELECT seq, raw FROM ops ORDER BY seq DESC").fetchone()
        damaged = raw[:-1] + bytes([raw[-1] ^ 0x80])
        connection.execute("UPDATE ops SET raw = ? WHERE seq = ?", (damaged, seq))
    connection.close()
    dry = run_p2pc(home, "--json", "repair", "--dry-run")
    assert dry.returncode == 1  # something is wrong and left as it is
    assert [f["kind"] for f in json.loads(dry.stdout)["findings"]] == ["bad-signature"]
    text = ok(home, "repair")
    assert "found: 1 stored operation(s) have a signature that no longer verifies" in text
    assert "the removed rows are kept in" in text
    assert ok_json(home, "repair")["findings"] == []


def test_unreachable_daemon_exits_3(tmp_path: Path) -> None:
    from p2pcomments.api.address_file import ApiAddress, write_address_file
    from p2pcomments.store.lock import DataDirLock

    data_dir = tmp_path / "hung"
    ok(data_dir, "init")
    # A "daemon" that holds the data dir but answers nothing: this process, and a closed port.
    with DataDirLock.acquire(data_dir):
        address = ApiAddress(host="127.0.0.1", port=9, token="t", pid=os.getpid())
        write_address_file(data_dir, address)
        line = _fails(data_dir, "threads", code=3)
        assert "does not answer" in line
    # Once nothing holds the data dir, a left-over api.json is ignored.
    assert ok(data_dir, "threads").startswith("No threads yet")


def test_busy_data_dir_exits_4(home: Path) -> None:
    from p2pcomments.store.lock import DataDirLock

    with DataDirLock.acquire(home):
        assert f"pid {os.getpid()}" in _fails(home, "threads", code=4)


def test_show_does_not_import_heavy_modules(home: Path, thread: str) -> None:
    """`p2pc show` must start fast: no libp2p (or the HTTP server stack) at import."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(P2PC), "show", thread],
        env=environment(home),
        capture_output=True,
        text=True,
        check=True,
    )
    imported = _imported_modules(result.stderr)
    assert "p2pcomments.cli.main" in imported
    assert not {m for m in imported if m.split(".")[0] in HEAVY_MODULES}


def _imported_modules(importtime: str) -> set[str]:
    return {
        line.split("|")[-1].strip()
        for line in importtime.splitlines()
        if line.startswith("import time:") and "|" in line
    }


# -- through a daemon ----------------------------------------------------------------------------


def test_walkthrough_through_a_daemon(daemon: DaemonProcess) -> None:
    home = daemon.data_dir
    identity = ok_json(home, "id")
    assert identity["daemon"]["url"] == daemon.url
    assert identity["daemon"]["pid"] == daemon.pid
    assert daemon.url in ok(home, "id")

    thread = ok(home, "thread", "new", "--title", "Through the daemon")
    first = ok(home, "comment", thread, "--body", "hello daemon")
    ok(home, "reply", first, "--body", "hello back")
    ok(home, "edit", first, "--body", "hello daemon (edited)")
    ok(home, "react", first, "🎉")
    shown = ok(home, "show", thread)
    assert "hello daemon (edited)" in shown
    assert "🎉 1" in shown
    assert "[parent edited after]" in shown
    assert "no thread thr_" in _fails(home, "show", _unknown("thr"))
    assert "body must not be empty" in _fails(home, "comment", thread, "--body", "")

    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(P2PC), "show", thread],
        env=environment(home),
        capture_output=True,
        text=True,
        check=True,
    )
    imported = _imported_modules(result.stderr)
    assert "p2pcomments.cli.client" in imported  # it did go through the daemon
    assert not {m for m in imported if m.split(".")[0] in HEAVY_MODULES}


def test_watch_prints_new_comments_through_the_daemon(daemon: DaemonProcess) -> None:
    home = daemon.data_dir
    thread = ok(home, "thread", "new", "--title", "Watched")
    with interruptible_p2pc(home, "--json", "watch", thread) as watcher:
        assert watcher.stdout is not None
        assert watcher.stderr is not None
        assert read_line(watcher.stderr).startswith(f"watching {thread}")
        posted = ok(home, "comment", thread, "--body", "seen live")
        change = json.loads(read_line(watcher.stdout))
        assert change["id"] == posted
        assert change["operation"]["body"] == "seen live"
        os.kill(watcher.pid, signal.SIGINT)  # Ctrl-C ends the watch cleanly
        assert watcher.wait(timeout=10) == 0


def test_commands_answered_by_the_daemon_import_neither_trio_nor_the_store(
    daemon: DaemonProcess,
) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(P2PC), "threads"],
        env=environment(daemon.data_dir),
        capture_output=True,
        text=True,
        check=True,
    )
    imported = _imported_modules(result.stderr)
    assert "p2pcomments.cli.client" in imported
    assert not {m for m in imported if m.split(".")[0] == "trio" or m == "p2pcomments.node"}
