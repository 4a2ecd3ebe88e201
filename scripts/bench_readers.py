"""A popular post served by a real daemon to many readers at once over HTTP (issue 14).

A data dir holding one page thread of ``--comments`` comments (bodies cut from real prose by
`bench_store.prose_bodies`, as in ``bench_loop.py --scenario popular-thread``) is served by
``p2pc daemon`` in its own process on 127.0.0.1. Timed: the first reader (cold), then,
``--rounds`` times, a comment submitted through the API and one reader, another comment and
``--readers`` readers reloading the page at once, each on its own connection, asking for gzip
as browsers do; then as many rounds of the thread's HTML page (``/t/{id}``). Printed: the wall
time, the daemon's CPU time (from /proc, so the readers' own CPU is not counted) and the bytes
sent; the reference beside the readers is the CPU of the one reader after a comment times
their number (what they would cost if nothing were shared).

Usage: .venv/bin/python scripts/bench_readers.py [--comments 10000] [--readers 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio
from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import prose_bodies

from p2pcomments.core.ops import CommentPayload, Operation, make_operation, page_thread
from p2pcomments.core.textform import TextKind, format_id
from p2pcomments.node import open_node

P2PC = Path(sys.executable).parent / "p2pc"
READY_SECONDS = 60


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _comment(author: SigningKey, post: Operation, head: bytes, body: str, at: int) -> Operation:
    return make_operation(
        author,
        CommentPayload(body=body),
        timestamp_ms=at,
        thread=post.id,
        refs=(post.id,),
        deps=frozenset({head}),
    )


AUTHORS = [SigningKey(bytes([0x60 + i]) * 32) for i in range(50)]
URL = "https://blog.example/popular"


async def make_post(data_dir: Path, comments: int) -> tuple[Operation, bytes]:
    """The data dir holding the post and its comments; returns the post and its last comment."""
    post, prose = page_thread(bytes(AUTHORS[0].verify_key), URL), prose_bodies()
    encoded, head = [post.encoded], post.id
    for number in range(comments):
        body = f"comment {number} " + prose[number % len(prose)]
        op = _comment(AUTHORS[number % len(AUTHORS)], post, head, body, 2_000_000 + number)
        encoded.append(op.encoded)
        head = op.id
    async with open_node(data_dir, create_identity=True) as node:
        for start in range(0, len(encoded), 5_000):
            await node.ingest(encoded[start : start + 5_000], source="bench")
    return post, head


def start_daemon(data_dir: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("P2PC_")}
    env["P2PC_HOME"] = str(data_dir)
    command = [str(P2PC), "daemon", "--data-dir", str(data_dir), "--api", "127.0.0.1:0"]
    command += ["--listen", "/ip4/127.0.0.1/tcp/0", "--sync-interval", "3600"]
    daemon = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"the daemon exited with {daemon.returncode}")
        try:
            api = json.loads((data_dir / "api.json").read_text())
        except (OSError, ValueError):
            api = {}
        if api.get("pid") == daemon.pid:
            return daemon, api
        time.sleep(0.05)
    daemon.terminate()
    daemon.wait(20)
    raise SystemExit(f"the daemon was not ready in {READY_SECONDS} s")


async def measure(
    pid: int, api: dict[str, str], post: Operation, head: bytes, readers: int, rounds: int
) -> None:
    query = {"url": URL, "owner": bytes(AUTHORS[0].verify_key).hex()}
    async with httpx.AsyncClient(base_url=api["url"], timeout=120) as client:

        async def comment(number: int) -> None:
            op = _comment(AUTHORS[1], post, head, f"one more {number}", 3_000_000 + number)
            headers = {"authorization": f"Bearer {api['token']}"}
            headers["content-type"] = "application/vnd.p2pcomments.op"
            (await client.post("/api/ops", content=op.encoded, headers=headers)).raise_for_status()

        cpu, started = _cpu_seconds(pid), time.perf_counter()
        (await client.get("/api/page", params=query)).raise_for_status()
        print(
            f"first reader (cold): {time.perf_counter() - started:.2f} s,"
            f" daemon CPU {_cpu_seconds(pid) - cpu:.2f} s"
        )
        html = f"/t/{format_id(TextKind.THREAD, post.id)}"
        for number in range(2 * rounds):
            path, params = ("/api/page", query) if number < rounds else (html, {})
            await comment(2 * number)
            cpu, started = _cpu_seconds(pid), time.perf_counter()
            response = await client.get(path, params=params)
            response.raise_for_status()
            alone = _cpu_seconds(pid) - cpu
            print(
                f"{path}, one reader after a comment: {time.perf_counter() - started:.2f} s,"
                f" daemon CPU {alone:.2f} s, {len(response.content) / 1e6:.1f} MB"
            )
            await comment(2 * number + 1)
            await _readers_at_once(pid, api["url"], path, params, readers, alone)


async def _readers_at_once(
    pid: int, base_url: str, path: str, query: dict[str, str], readers: int, alone: float
) -> None:
    sent: list[int] = []

    async def reload() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as own:  # own connection
            response = await own.get(path, params=query)
            response.raise_for_status()
            sent.append(int(response.headers.get("content-length", len(response.content))))

    cpu, started = _cpu_seconds(pid), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(readers):
            nursery.start_soon(reload)
    used = _cpu_seconds(pid) - cpu
    print(
        f"{path}, {readers} readers at once after a comment: {time.perf_counter() - started:.2f} s,"
        f" daemon CPU {used:.2f} s (reference, one reader's x {readers}: {alone * readers:.2f} s),"
        f" {sum(sent) / 1e6:.1f} MB sent"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=10_000)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="p2pc-bench-readers-") as temporary:
        data_dir = Path(temporary) / "data"
        post, head = trio.run(make_post, data_dir, args.comments)  # set-up, not timed
        daemon, api = start_daemon(data_dir)
        try:
            trio.run(measure, daemon.pid, api, post, head, args.readers, args.rounds)
        finally:
            daemon.terminate()
            daemon.wait(20)


if __name__ == "__main__":
    main()
