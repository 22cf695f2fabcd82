from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from pipeline.broker import EmbeddedBroker, EmbeddedBrokerConfig
from pipeline.settings import DEFAULT_MODEL_CACHE, DEFAULT_SENTIMENT_MODEL

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """An external cluster when KAFKA_BOOTSTRAP_SERVERS is set, else the embedded broker."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    ARTIFACTS.mkdir(exist_ok=True)
    with EmbeddedBroker(EmbeddedBrokerConfig(log_path=ARTIFACTS / "broker.log")) as broker:
        yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    path = Path(os.environ.get("STREAMNLP_MODEL_DIR", DEFAULT_MODEL_CACHE / DEFAULT_SENTIMENT_MODEL))
    if not (path / "manifest.json").is_file():
        pytest.fail(f"the default sentiment model is not built at {path}; run `make models` (streamnlp models build)")
    return path


@pytest.fixture(scope="session")
def summarizer_model_dir() -> Path:
    from pipeline.settings import DEFAULT_SUMMARIZER_MODEL

    path = Path(os.environ.get("STREAMNLP_SUMMARIZER_MODEL_DIR", DEFAULT_MODEL_CACHE / DEFAULT_SUMMARIZER_MODEL))
    if not (path / "manifest.json").is_file():
        pytest.fail(f"the default summarizer model is not built at {path}; run `make models` (streamnlp models build)")
    return path
