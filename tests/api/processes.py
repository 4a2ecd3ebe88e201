"""Real ``p2pc`` processes for the API and CLI tests: the installed entry point, temp data dirs,
daemons on 127.0.0.1 with a free port. Every daemon started here is stopped by its PID."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

P2PC = Path(sys.executable).with_name("p2pc")
START_TIMEOUT = 30.0


# Bytecode is cached outside the tree, as it is on a user's machine, even where the environment
# says PYTHONDONTWRITEBYTECODE: every command would otherwise compile the package again.
PYCACHE = Path(tempfile.gettempdir()) / "p2pcomments-test-pycache"


def environment(data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("P2PC_") and key not in ("PYTHONWARNINGS", "PYTHONDONTWRITEBYTECODE")
    }
    env["P2PC_HOME"] = str(data_dir)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def run_p2pc(
    data_dir: Path, *args: str, stdin: str | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(P2PC), *args],
        env=environment(data_dir),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    """Run a command that must succeed; its stdout, stripped."""
    result = run_p2pc(data_dir, *args, stdin=stdin)
    assert result.returncode == 0, (args, result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout.strip()


def ok_json(data_dir: Path, *args: str, stdin: str | None = None) -> Any:
    return json.loads(ok(data_dir, "--json", *args, stdin=stdin))


@contextlib.contextmanager
def interruptible_p2pc(data_dir: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A running ``p2pc`` command (text pipes for stdout and stderr) that SIGINT stops as Ctrl-C
    would; killed by its PID if it is still running when the block ends.

    A process that inherits an ignored SIGINT keeps ignoring it (Python installs no
    KeyboardInterrupt handler then), and whatever starts the tests in the background (``cmd &``
    in a script, some CI runners) ignores it: the command would then never stop on SIGINT. A
    handled signal is reset to its default by exec, so the child is started while this process
    handles SIGINT (Python's own handler), the previous disposition restored once it is started.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [str(P2PC), *args],
            env=environment(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        if previous == signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def read_line(stream: IO[str], timeout: float = 30.0) -> str:
    """The next line of ``stream``, waiting at most ``timeout`` seconds (a reader thread)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None


class DaemonProcess:
    """``p2pc daemon --api 127.0.0.1:0 [ARGS]`` on ``data_dir``; its output goes to files in
    ``logs``."""

    def __init__(self, data_dir: Path, logs: Path, *args: str) -> None:
        self.data_dir = data_dir
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logs / f"daemon-{time.monotonic_ns()}.out"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [str(P2PC), "daemon", "--api", "127.0.0.1:0", *args],
                env=environment(data_dir),
                stdout=out,
                stderr=err,
            )
        self.info: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def token(self) -> str:
        return str(self.info["token"])

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def wait_ready(self) -> DaemonProcess:
        deadline = time.monotonic() + START_TIMEOUT
        api_file = self.data_dir / "api.json"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the daemon exited {self.process.returncode}: {self.stderr}")
            with contextlib.suppress(OSError, ValueError):
                info = json.loads(api_file.read_text())
                if info.get("pid") == self.pid:
                    self.info = info
                    return self
            time.sleep(0.05)
        raise AssertionError(f"the daemon did not start in {START_TIMEOUT} s: {self.stderr}")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``signum`` and wait; the exit code."""
        if self.process.poll() is None:
            os.kill(self.pid, signum)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextlib.contextmanager
def running_daemon(data_dir: Path, logs: Path, *args: str) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(data_dir, logs, *args)
    try:
        yield daemon.wait_ready()
    finally:
        daemon.kill()


def foreign_comment_bundle(thread_text: str, body: str = "a comment by someone else") -> bytes:
    """A bundle holding one top-level comment by a fresh author, on the thread named."""
    from nacl.signing import SigningKey

    from p2pcomments.api.bundle import encode_bundle
    from p2pcomments.core.ops import CommentPayload, make_operation
    from p2pcomments.core.textform import TextKind, parse_id

    thread_id = parse_id(thread_text, expect=frozenset({TextKind.THREAD}))
    op = make_operation(
        SigningKey.generate(),
        CommentPayload(body=body),
        timestamp_ms=time.time_ns() // 1_000_000,
        thread=thread_id,
        refs=(thread_id,),
    )
    return encode_bundle([op.encoded])


def old_threads_bundle(title: str, count: int, *, first_ms: int) -> tuple[bytes, list[str]]:
    """A bundle of ``count`` threads by one fresh author, titled ``title.format(n)`` and written a
    millisecond apart from ``first_ms``; with the threads' text ids, oldest first."""
    from nacl.signing import SigningKey

    from p2pcomments.api.bundle import encode_bundle
    from p2pcomments.core.ops import ThreadPayload, make_operation
    from p2pcomments.core.textform import TextKind, format_id

    key = SigningKey.generate()
    threads = [
        make_operation(key, ThreadPayload(title=title.format(n)), timestamp_ms=first_ms + n)
        for n in range(count)
    ]
    ids = [format_id(TextKind.THREAD, t.id) for t in threads]
    return encode_bundle([t.encoded for t in threads]), ids


def foreign_comment_id(bundle: bytes) -> str:
    from p2pcomments.api.bundle import decode_bundle
    from p2pcomments.core.ops import decode_operation
    from p2pcomments.core.textform import TextKind, format_id

    return format_id(TextKind.COMMENT, decode_operation(decode_bundle(bundle)[0]).id)
