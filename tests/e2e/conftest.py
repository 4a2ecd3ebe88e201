"""Fixtures for the end-to-end network tests: real daemons, one process each (see harness.py).

A failing test's report gets the tail of every running cluster's daemon logs.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from .harness import daemon_has_networking, open_clusters


@pytest.fixture(scope="session")
def networking() -> None:
    """Skip (once, with the reason) when the installed ``p2pc daemon`` has no networking yet."""
    if not daemon_has_networking():
        pytest.skip("`p2pc daemon --help` lists no --listen/--bootstrap: networking not built")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and report.when in ("setup", "call"):
        for group in open_clusters():
            report.sections.append((f"daemon logs ({group.root})", group.log_tails()))
    return report
