"""Hooks: a command or a webhook run for each new comment in a followed thread, for a blogger
who still wants an e-mail (``p2pc daemon --on-comment CMD`` / ``--webhook URL``).

Rules:

1. A hook fires for every comment newly applied here (from gossip, sync, a bundle or the web)
   whose thread this node follows (`Node.follows`: the thread or its site), except this node's
   own author's comments. It receives one JSON document (`hook_payload`): the signed operation
   in hex, its JSON form, and the comment as the thread shows it, with the thread's summary.
2. The command (argv, split like a shell would, never run through one) gets the document on
   stdin and ``P2PC_EVENT``/``P2PC_THREAD``/``P2PC_COMMENT`` in its environment; the webhook
   gets it as the body of a ``POST`` (``application/json``).
3. The webhook is ``http(s)`` to 127.0.0.1, ``localhost`` or ``::1`` unless
   ``webhook_allow_remote`` (``--webhook-allow-remote``) says otherwise: a node does not post
   what it receives to other hosts unless told to. A bad URL or command is a `ConfigError` at
   start.
4. Hooks never hold up ingest: newly applied operations are handed over through a bounded
   channel without waiting; when it is full (a sync brought thousands of comments) the excess is
   dropped and counted in the log. `HookConfig.concurrency` workers run the hooks, each bounded by
   `HookConfig.timeout` seconds (a command still running then is killed). A failure (exit code,
   HTTP status, timeout, refused connection) is logged, never fatal.
5. Structured concurrency: `run_hooks` is a service of the daemon's nursery (``task_status``);
   cancelling it stops the workers and kills commands in flight.
6. Catching up is not news twice over, nor is history (`CatchUpHorizon`): a comment that came by
   sync fires only if its timestamp is later than the newest operation the node held in its
   thread when the hooks started (for a thread it did not hold, the newest it held at all; on an
   empty node, the start time). So a node that was down a day hooks the day's comments when it
   syncs again, and a fresh node that syncs a blog's ten years does not hook them all. Comments
   by gossip, from the web or an import are new by definition.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import trio

from p2pcomments.clock import wall_clock_ms
from p2pcomments.core.ops import Kind, Operation
from p2pcomments.errors import P2PCommentsError

if TYPE_CHECKING:
    # As in api/server.py: trio-typing's stubs (a libp2p dependency) are what mypy sees of trio.
    from trio_typing import TaskStatus

    from p2pcomments.daemon import StartServices
    from p2pcomments.node import Node

__all__ = [
    "CatchUpHorizon",
    "HookConfig",
    "HookConfigError",
    "HookStatistics",
    "describe",
    "hook_payload",
    "read_hook_config",
    "run_hooks",
    "with_hooks",
]

_log = logging.getLogger(__name__)

CONFIG_FILE: Final = "config.json"
QUEUE_SIZE: Final = 256
_LOCAL_HOSTS: Final = frozenset({"localhost"})


class HookConfigError(P2PCommentsError, ValueError):
    """A hook option or ``config.json`` hook entry is unusable (rule 3)."""

    http_status = 400
    default_reason = "bad-config"


@dataclass(frozen=True, slots=True, kw_only=True)
class HookConfig:
    """What to run for each new comment (rule 1); nothing when both are None."""

    command: tuple[str, ...] | None = None
    webhook: str | None = None
    webhook_allow_remote: bool = False
    concurrency: int = 4
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.command is not None and not self.command:
            raise HookConfigError("the --on-comment command is empty")
        if self.webhook is not None:
            _check_webhook(self.webhook, allow_remote=self.webhook_allow_remote)
        if self.concurrency < 1 or not self.timeout > 0:
            raise HookConfigError("hooks need a concurrency >= 1 and a timeout > 0")

    @property
    def enabled(self) -> bool:
        return self.command is not None or self.webhook is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class CatchUpHorizon:
    """Rule 6: what a comment that came by sync must be newer than to be news."""

    by_thread: dict[bytes, int]
    default_ms: int

    @classmethod
    def of(cls, node: Node, now_ms: int) -> CatchUpHorizon:
        # The store's activity view: the same greatest timestamp, without loading every thread.
        by_thread = {row.thread: row.last_activity_ms for row in node.store.thread_activity()}
        newest = max(by_thread.values(), default=None)
        return cls(by_thread=by_thread, default_ms=now_ms if newest is None else newest)

    def is_news(self, op: Operation, source: str) -> bool:
        if source != "sync":
            return True
        return op.timestamp_ms > self.by_thread.get(op.thread or b"", self.default_ms)


@dataclass(slots=True, kw_only=True)
class HookStatistics:
    """Counters of one `run_hooks` (also logged)."""

    queued: int = 0
    dropped: int = 0
    history: int = 0  # comments that came by sync and were older than the horizon (rule 6)
    succeeded: int = 0
    failed: int = 0
    by_hook: dict[str, int] = field(default_factory=dict)


def _check_webhook(url: str, *, allow_remote: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HookConfigError(f"a webhook is an http(s) URL with a host, not {url!r}")
    if allow_remote:
        return
    host = parts.hostname
    if host in _LOCAL_HOSTS:
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise HookConfigError(
        f"the webhook {url} is not on this machine (127.0.0.1, localhost, ::1): posting what"
        " this node receives to another host needs --webhook-allow-remote"
        ' (config.json: "webhook_allow_remote": true)'
    )


def read_hook_config(
    data_dir: Path,
    *,
    command: str | None = None,
    webhook: str | None = None,
    allow_remote: bool = False,
) -> HookConfig:
    """The hooks of ``config.json`` (``"on_comment"``: a command line or an argv list,
    ``"webhook"``, ``"webhook_allow_remote"``), overridden by the options given."""
    document: dict[str, Any] = {}
    path = data_dir / CONFIG_FILE
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        loaded = {}
    except (OSError, ValueError) as error:
        raise HookConfigError(f"cannot read {path}: {error}") from None
    if not isinstance(loaded, dict):
        raise HookConfigError(f"{path} must hold a JSON object")
    document = loaded
    configured = document.get("on_comment")
    argv: tuple[str, ...] | None
    if command is not None:
        argv = _split(command)
    elif configured is None:
        argv = None
    elif isinstance(configured, str):
        argv = _split(configured)
    elif isinstance(configured, list) and all(isinstance(a, str) for a in configured):
        argv = tuple(configured)
    else:
        raise HookConfigError(f"{path}: on_comment must be a command line or a list of strings")
    url = webhook if webhook is not None else document.get("webhook")
    if url is not None and not isinstance(url, str):
        raise HookConfigError(f"{path}: webhook must be a URL")
    remote = allow_remote or document.get("webhook_allow_remote") is True
    return HookConfig(command=argv, webhook=url, webhook_allow_remote=remote)


def _split(command: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(command))
    except ValueError as error:
        raise HookConfigError(f"cannot split the command {command!r}: {error}") from None


def hook_payload(node: Node, op: Operation, source: str) -> dict[str, Any] | None:
    """The document a hook receives for comment ``op`` (rule 1), None if it is gone."""
    from p2pcomments.api.representations import comment_json, operation_json, thread_summary_json

    thread_id = op.thread
    if thread_id is None or thread_id not in node.replica.threads:
        return None
    view = node.thread_view(thread_id)
    row = next((c for c in view.comments if c.id == op.id), None)
    if row is None:
        return None
    summary = node.thread_summary(thread_id)
    return {
        "event": "comment",
        "source": source,
        "operation_hex": op.encoded.hex(),
        "operation": operation_json(op),
        "comment": comment_json(row, thread_id),
        "thread": thread_summary_json(summary),
    }


async def run_hooks(
    node: Node,
    config: HookConfig,
    *,
    statistics: HookStatistics | None = None,
    task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``config``'s hooks for new comments until cancelled (rules 1-5)."""
    stats = statistics if statistics is not None else HookStatistics()
    send, receive = trio.open_memory_channel[tuple[Operation, str]](QUEUE_SIZE)
    horizon = CatchUpHorizon.of(node, wall_clock_ms())
    async with trio.open_nursery() as nursery:
        for _ in range(config.concurrency):
            nursery.start_soon(_worker, node, config, receive.clone(), stats)
        receive.close()
        with node.subscribe_applied() as batches:
            task_status.started()
            async with send:
                async for batch in batches:
                    follows = node.follows()  # the network's live list, or follows.json
                    for op in batch.ops:
                        if op.kind is not Kind.COMMENT or op.author == node.author:
                            continue
                        state = node.replica.threads.get(op.thread or b"")
                        if state is None:
                            continue
                        site = state.payload.site
                        if state.id not in follows.threads and site not in follows.sites:
                            continue
                        if not horizon.is_news(op, batch.source):
                            stats.history += 1
                            continue
                        try:
                            send.send_nowait((op, batch.source))
                        except trio.WouldBlock:
                            stats.dropped += 1
                            if stats.dropped == 1 or stats.dropped % 1000 == 0:
                                _log.warning(
                                    "hooks: %d new comments not hooked (the queue of %d is full)",
                                    stats.dropped,
                                    QUEUE_SIZE,
                                )
                            continue
                        stats.queued += 1
        nursery.cancel_scope.cancel()  # the node closed: what is queued is not run


async def _worker(
    node: Node,
    config: HookConfig,
    jobs: trio.MemoryReceiveChannel[tuple[Operation, str]],
    stats: HookStatistics,
) -> None:
    import httpx

    async with jobs, httpx.AsyncClient(timeout=config.timeout, follow_redirects=False) as client:
        async for op, source in jobs:
            payload = hook_payload(node, op, source)
            if payload is None:
                continue
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            comment_id = payload["comment"]["id"]
            if config.command is not None:
                await _run_command(config, body, payload, comment_id, stats)
            if config.webhook is not None:
                await _post(client, config, body, comment_id, stats)


def _count(stats: HookStatistics, hook: str, ok: bool) -> None:
    if ok:
        stats.succeeded += 1
    else:
        stats.failed += 1
    stats.by_hook[hook] = stats.by_hook.get(hook, 0) + 1


async def _run_command(
    config: HookConfig,
    body: bytes,
    payload: dict[str, Any],
    comment_id: str,
    stats: HookStatistics,
) -> None:
    assert config.command is not None
    env = {
        **os.environ,
        "P2PC_EVENT": "comment",
        "P2PC_THREAD": payload["thread"]["id"],
        "P2PC_COMMENT": comment_id,
    }
    ok = False
    with trio.move_on_after(config.timeout) as timer:
        try:
            result = await trio.run_process(
                list(config.command),
                stdin=body,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=env,
            )
        except OSError as error:
            _log.warning("hook command %s failed to start: %s", config.command[0], error)
        else:
            ok = result.returncode == 0
            if not ok:
                _log.warning(
                    "hook command %s exited %s for %s: %s",
                    config.command[0],
                    result.returncode,
                    comment_id,
                    result.stderr.decode("utf-8", "replace").strip()[-500:],
                )
    if timer.cancelled_caught:
        _log.warning(
            "hook command %s took over %g s for %s: killed",
            config.command[0],
            config.timeout,
            comment_id,
        )
    _count(stats, "command", ok)


async def _post(
    client: Any, config: HookConfig, body: bytes, comment_id: str, stats: HookStatistics
) -> None:
    import httpx

    assert config.webhook is not None
    ok = False
    with trio.move_on_after(config.timeout) as timer:
        try:
            response = await client.post(
                config.webhook,
                content=body,
                headers={"Content-Type": "application/json", "User-Agent": "p2pcomments-hook"},
            )
        except httpx.HTTPError as error:
            _log.warning("webhook %s failed for %s: %s", config.webhook, comment_id, error)
        else:
            ok = 200 <= response.status_code < 300
            if not ok:
                _log.warning(
                    "webhook %s answered %s for %s",
                    config.webhook,
                    response.status_code,
                    comment_id,
                )
    if timer.cancelled_caught:
        _log.warning("webhook %s took over %g s for %s", config.webhook, config.timeout, comment_id)
    _count(stats, "webhook", ok)


def with_hooks(start: StartServices, config: HookConfig) -> StartServices:
    """The daemon's services ``start`` and then the hooks (after the network, so the follows
    are the network's live ones)."""
    if not config.enabled:
        return start

    async def start_with_hooks(node: Node, services: trio.Nursery) -> None:
        await start(node, services)
        await services.start(_hooks_service, node, config)

    return start_with_hooks


async def _hooks_service(
    node: Node, config: HookConfig, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    await run_hooks(node, config, task_status=task_status)


def describe(config: HookConfig) -> Sequence[str]:
    """Lines for the daemon's start-up banner."""
    lines = []
    if config.command is not None:
        lines.append(f"on each new comment: {shlex.join(config.command)}")
    if config.webhook is not None:
        lines.append(f"on each new comment: POST {config.webhook}")
    return lines
