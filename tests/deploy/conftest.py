"""Fixtures of the deploy suite: podman, the base and project images (built once per run, cached by
content hash across runs), the models to mount, and a per-phase timing record."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.settings import DEFAULT_SENTIMENT_MODEL, DEFAULT_SUMMARIZER_MODEL
from tests.deploy.podman import ARTIFACTS, ROOT, Podman, containers_conf, missing_tools
from tests.fault.report import FaultRecord, merge_into_report

MODELS = ROOT / "models" / "cache"  # what docker-compose.yml mounts at /models


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    missing = missing_tools()
    if missing:  # in CI a skip fails the run (tests/conftest.py); .ci/run installs these
        pytest.skip(f"the container tests need {', '.join(missing)} (apt-get install {' '.join(missing)})")
    if os.geteuid() != 0:
        pytest.skip("the container tests run podman rootful: run them as root (CI does)")
    tool = Podman(containers_conf(tmp_path_factory.mktemp("podman")))
    yield tool
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(tool.timings, indent=2) + "\n")


@pytest.fixture(scope="session")
def project_image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The runtime-nomodels image on a locally built Debian base (no registry here)."""
    return podman.project_image(podman.base_image(), tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="session")
def models_dir() -> Path:
    for name in (DEFAULT_SENTIMENT_MODEL, DEFAULT_SUMMARIZER_MODEL):
        if not (MODELS / name / "manifest.json").is_file():
            pytest.fail(f"{MODELS / name} is not built: run `make models` (the containers mount {MODELS} read-only)")
    return MODELS


@pytest.fixture
def phase(podman: Podman, request: pytest.FixtureRequest):
    """`with phase("name"):` records how long a step of the test took (test-artifacts/deploy/timings.json)."""
    from contextlib import contextmanager

    test = request.node.name

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            podman.timed(f"{test}: {name}", started)

    return timed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_OUTCOME] = report.outcome


_OUTCOME = pytest.StashKey[str]()


@pytest.fixture
def run_record(request: pytest.FixtureRequest) -> Iterator[FaultRecord]:
    """A row of docs/reliability.md's table (test-artifacts/reliability.json), written even when the test fails."""
    record = FaultRecord(fault=request.node.name)
    started = time.monotonic()
    yield record
    record.duration_s = round(time.monotonic() - started, 1)
    record.outcome = request.node.stash.get(_OUTCOME, "error")
    merge_into_report(request.node.nodeid, record)
