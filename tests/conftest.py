from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.kafka.broker import EmbeddedBroker, EmbeddedBrokerConfig
from pipeline.settings import DEFAULT_MODEL_CACHE, DEFAULT_SENTIMENT_MODEL
from tests.kafka_backend import choose_kafka_backend, docker_engine_reachable
from tests.paths import ARTIFACTS, TESTS

# tiny_model_dir / tiny_model_copy: a tiny exported classifier for any test that asks for one.
pytest_plugins = ["tests.fixtures_models", "tests.reliability"]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """An external cluster (KAFKA_BOOTSTRAP_SERVERS), a testcontainers broker (Docker reachable), else embedded."""
    backend = choose_kafka_backend(os.environ, docker_engine_reachable)
    if backend == "external":
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    if backend == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:3.8.0") as container:
            yield container.get_bootstrap_server()
        return
    ARTIFACTS.mkdir(exist_ok=True)
    with EmbeddedBroker(EmbeddedBrokerConfig(log_path=ARTIFACTS / "broker.log")) as broker:
        yield broker.bootstrap_servers


def _built_model(env_var: str, name: str, what: str) -> Path:
    """The model directory the worker would use (env var, else the build cache); fail if it is not built."""
    path = Path(os.environ.get(env_var, DEFAULT_MODEL_CACHE / name))
    if not (path / "manifest.json").is_file():
        pytest.fail(f"{what} is not built at {path}; run `make models` (streamnlp models build)")
    return path


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    return _built_model("STREAMNLP_MODEL_DIR", DEFAULT_SENTIMENT_MODEL, "the default sentiment model")


@pytest.fixture(scope="session")
def summarizer_model_dir() -> Path:
    from pipeline.settings import DEFAULT_SUMMARIZER_MODEL

    return _built_model("STREAMNLP_SUMMARIZER_MODEL_DIR", DEFAULT_SUMMARIZER_MODEL, "the default summarizer model")


@pytest.fixture(scope="session")
def toxicity_model_dir() -> Path:
    from pipeline.settings import DEFAULT_TOXICITY_MODEL

    return _built_model("STREAMNLP_TOXICITY_MODEL_DIR", DEFAULT_TOXICITY_MODEL, "the toxicity model")


# --- tiers: tests/unit needs no broker, and says when it needs a built model --------------------
# `make test-unit` runs tests/unit with -m "not needs_model" before any model is built: a unit test that
# reaches a broker, or a built model without the marker, would make that tier fail or hang on a fresh
# checkout. Checked at collection, where the fixtures a test requests are known.
UNIT = TESTS / "unit"
BROKER_FIXTURES = {"kafka_bootstrap"}
MODEL_FIXTURES = {"default_model_dir", "summarizer_model_dir", "toxicity_model_dir"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    misplaced = []
    for item in items:
        if not item.path.is_relative_to(UNIT):
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & BROKER_FIXTURES:
            misplaced.append(f"{item.nodeid}: talks to a broker; move it to tests/integration/")
        elif fixtures & MODEL_FIXTURES and item.get_closest_marker("needs_model") is None:
            misplaced.append(f"{item.nodeid}: uses a built model; mark it @pytest.mark.needs_model")
    if misplaced:
        raise pytest.UsageError("tests/unit is for tests that need no broker and mark the built models they use:\n  "
                                + "\n  ".join(misplaced))


# --- CI: a required test that is skipped fails the run ---------------------------------
# In CI every collected test is required: a skip (missing model, tool, broker...) would
# turn a green run into a lie. Tests not meant for CI are deselected by marker (`soak`,
# see pyproject addopts), which is not a skip.
_skipped: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):  # xfail is an expectation, not a skip
        _skipped.append(f"{report.nodeid}: {_skip_reason(report)}")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:  # a module-level skip / importorskip
        _skipped.append(f"{report.nodeid}: {_skip_reason(report)}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _in_ci() and _skipped and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    if _in_ci() and _skipped:
        terminalreporter.section("skipped tests fail CI (CI is set)", red=True)
        for line in _skipped:
            terminalreporter.write_line(line)
        terminalreporter.write_line("deselect tests that are not for CI by marker (e.g. -m 'not soak'); do not skip them")
