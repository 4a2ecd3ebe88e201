"""The daemon's service hook, in process: where networking will join the API's nursery."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import trio

from p2pcomments.api.address_file import ApiAddress
from p2pcomments.daemon import run_daemon
from p2pcomments.identity import create_identity


def test_services_start_before_the_api_is_announced_and_stop_after_it(tmp_path: Path) -> None:
    create_identity(tmp_path)
    events: list[str] = []

    async def service(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        events.append("service up")
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            events.append(f"service cancelled, api.json there: {(tmp_path / 'api.json').exists()}")

    async def start_services(node: object, services: trio.Nursery) -> None:
        await services.start(service)

    def ready(node: object, address: ApiAddress) -> None:
        events.append("api announced")
        assert json.loads((tmp_path / "api.json").read_text())["port"] == address.port
        os.kill(os.getpid(), signal.SIGTERM)  # received by the daemon's signal receiver

    trio.run(
        lambda: run_daemon(
            tmp_path, host="127.0.0.1", port=0, start_services=start_services, on_ready=ready
        )
    )
    assert events == ["service up", "api announced", "service cancelled, api.json there: False"]


def test_a_signal_stops_a_service_that_is_still_starting(tmp_path: Path) -> None:
    create_identity(tmp_path)
    announced: list[ApiAddress] = []

    async def start_services(node: object, services: trio.Nursery) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        await trio.sleep_forever()  # a bootstrap that never finishes

    trio.run(
        lambda: run_daemon(
            tmp_path,
            host="127.0.0.1",
            port=0,
            start_services=start_services,
            on_ready=lambda node, address: announced.append(address),
        )
    )
    assert announced == []
    assert not (tmp_path / "api.json").exists()
