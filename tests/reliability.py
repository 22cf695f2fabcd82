"""The reliability record of a fault or deploy test: one row of docs/reliability.md's table.

A pytest plugin (tests/conftest.py): the test fills in the `reliability_record` it gets;
the outcome is stamped after the call and the row merged into
test-artifacts/reliability.json, even when the test fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.fault.report import FaultRecord, merge_into_report

_OUTCOME = pytest.StashKey[str]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_OUTCOME] = report.outcome


@pytest.fixture
def reliability_record(request: pytest.FixtureRequest) -> Iterator[FaultRecord]:
    """The test fills it in as it goes; written even when the test fails (outcome says so)."""
    record = FaultRecord(fault=request.node.name)
    started = time.monotonic()
    yield record
    record.duration_s = round(time.monotonic() - started, 1)
    record.outcome = request.node.stash.get(_OUTCOME, "error")
    merge_into_report(request.node.nodeid, record)
