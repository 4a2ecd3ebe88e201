"""Hook options (`p2pcomments.hooks`): what is accepted, and what is refused before a start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from p2pcomments.hooks import HookConfig, HookConfigError, read_hook_config

from .processes import run_p2pc


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost/x",
        "https://[::1]:8443/",
        "http://127.8.9.1/",
    ],
)
def test_webhooks_on_this_machine_are_accepted(url: str) -> None:
    assert HookConfig(webhook=url).enabled


@pytest.mark.parametrize(
    "url", ["http://example.org/hook", "http://10.0.0.2/", "http://[2001:db8::1]/"]
)
def test_a_webhook_on_another_host_needs_allow_remote(url: str) -> None:
    with pytest.raises(HookConfigError, match="--webhook-allow-remote"):
        HookConfig(webhook=url)
    assert HookConfig(webhook=url, webhook_allow_remote=True).webhook == url


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "127.0.0.1:9000", "http:///path", ""])
def test_a_webhook_is_an_http_url(url: str) -> None:
    with pytest.raises(HookConfigError, match="http"):
        HookConfig(webhook=url)


def test_config_json_and_the_flags(tmp_path: Path) -> None:
    assert not read_hook_config(tmp_path).enabled  # no config.json: no hooks
    config = {"on_comment": "notify --to 'me here'", "webhook": "http://10.1.1.1/h"}
    config["webhook_allow_remote"] = True  # type: ignore[assignment]
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    read = read_hook_config(tmp_path)
    assert read.command == ("notify", "--to", "me here")
    assert (read.webhook, read.webhook_allow_remote) == ("http://10.1.1.1/h", True)
    flags = read_hook_config(tmp_path, command="other", webhook="http://127.0.0.1/")
    assert (flags.command, flags.webhook) == (("other",), "http://127.0.0.1/")
    (tmp_path / "config.json").write_text(json.dumps({"on_comment": ["a", "b c"]}), "utf-8")
    assert read_hook_config(tmp_path).command == ("a", "b c")
    for bad in ({"on_comment": 3}, {"webhook": ["x"]}, [1]):
        (tmp_path / "config.json").write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(HookConfigError):
            read_hook_config(tmp_path)
    (tmp_path / "config.json").write_text("{", encoding="utf-8")
    with pytest.raises(HookConfigError, match="cannot read"):
        read_hook_config(tmp_path)
    with pytest.raises(HookConfigError, match="cannot split"):
        read_hook_config(tmp_path / "nothing", command="unterminated 'quote")


@pytest.mark.network
def test_the_daemon_refuses_a_remote_webhook_before_it_starts(tmp_path: Path) -> None:
    assert run_p2pc(tmp_path, "init").returncode == 0
    result = run_p2pc(tmp_path, "daemon", "--no-network", "--webhook", "http://example.org/")
    assert result.returncode == 1, result.stderr
    assert "--webhook-allow-remote" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "api.json").exists()


def test_what_sync_brings_is_news_only_past_the_horizon(tmp_path: Path) -> None:
    """Rule 6: a day's comments after a restart are news; a fresh node's first sync is not."""
    import trio
    from nacl.signing import SigningKey

    from p2pcomments.core.ops import CommentPayload, Operation, make_operation
    from p2pcomments.hooks import CatchUpHorizon
    from p2pcomments.node import open_node

    async def horizons() -> tuple[CatchUpHorizon, CatchUpHorizon, bytes, int]:
        async with open_node(tmp_path / "fresh", create_identity=True) as fresh:
            empty = CatchUpHorizon.of(fresh, now_ms=5_000_000)
        async with open_node(tmp_path / "held", create_identity=True, clock=lambda: 1_000) as node:
            thread = await node.create_thread("held")
            return empty, CatchUpHorizon.of(node, now_ms=9_000_000), thread.id, 1_000

    empty, held, thread_id, last = trio.run(horizons)

    def comment(thread: bytes, timestamp_ms: int) -> Operation:
        return make_operation(
            SigningKey(b"\x51" * 32),
            CommentPayload(body="c"),
            timestamp_ms=timestamp_ms,
            thread=thread,
            refs=(thread,),
        )

    other = bytes(32)
    assert empty.default_ms == 5_000_000  # nothing held: history is what came before the start
    assert not empty.is_news(comment(other, 4_999_999), "sync")
    assert empty.is_news(comment(other, 4_999_999), "gossip")
    assert held.default_ms == last  # the newest operation held
    assert held.is_news(comment(thread_id, last + 1), "sync")
    assert not held.is_news(comment(thread_id, last), "sync")
    assert held.is_news(comment(other, last + 1), "sync")
    assert held.is_news(comment(thread_id, 0), "import")


@pytest.mark.network
def test_on_comment_given_as_a_flag_runs_offline_for_a_followed_thread(tmp_path: Path) -> None:
    import shlex
    import sys
    import time

    import httpx

    from .processes import foreign_comment_bundle, foreign_comment_id, ok, running_daemon

    home = tmp_path / "home"
    ok(home, "init")
    thread = json.loads(ok(home, "--json", "thread", "new", "--title", "Hooked"))["id"]
    ok(home, "follow", thread)  # offline, the follows are follows.json's
    out = tmp_path / "hooked.json"
    script = (  # written whole, then renamed: the test never reads half a document
        f"import os, sys; open({str(out)!r} + '.part', 'w').write(sys.stdin.read());"
        f" os.replace({str(out)!r} + '.part', {str(out)!r})"
    )
    command = shlex.join([sys.executable, "-c", script])
    with running_daemon(home, tmp_path / "logs", "--no-network", "--on-comment", command) as daemon:
        assert "on each new comment:" in daemon.stderr
        bundle = foreign_comment_bundle(thread, "a comment from afar")
        response = httpx.post(
            f"{daemon.url}/api/import",
            content=bundle,
            headers={**daemon.auth, "Content-Type": "application/x-ndjson"},
            timeout=15,
        )
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        document = json.loads(out.read_text(encoding="utf-8"))
        assert document["comment"]["id"] == foreign_comment_id(bundle)
        assert document["comment"]["body"] == "a comment from afar"
