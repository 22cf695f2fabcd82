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
