"""The CLI as a user runs it: real subprocesses, exit codes and the one line they print."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.kafka.broker import free_port
from tests.harness import REPO, run_cli


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Exactly one `streamnlp: error:` line, no traceback (structured startup logs may precede it)."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("streamnlp: error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return errors[0]


def test_worker_with_missing_model_exits_2_with_a_fix(tmp_path: Path) -> None:
    result = run_cli(["worker"], {"STREAMNLP_MODEL_DIR": str(tmp_path / "nope"), "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode == 2
    assert "streamnlp models build" in _one_error_line(result)


def test_worker_with_unknown_setting_exits_2(tmp_path: Path) -> None:
    result = run_cli(["worker"], {"STREAMNLP_BATCH_MAXSIZE": "3"})
    assert result.returncode == 2
    assert "STREAMNLP_BATCH_MAXSIZE" in _one_error_line(result)


@pytest.mark.needs_model
def test_worker_with_unreachable_broker_exits_2_before_consuming(default_model_dir: Path) -> None:
    port = free_port()  # nothing listens there
    result = run_cli(["worker"], {"STREAMNLP_MODEL_DIR": str(default_model_dir), "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"})
    assert result.returncode == 2
    line = _one_error_line(result)
    assert f"127.0.0.1:{port}" in line and "KAFKA_BOOTSTRAP_SERVERS" in line


def test_config_lists_every_setting() -> None:
    result = run_cli(["config"], {})
    assert result.returncode == 0, result.stderr
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stdout and "STREAMNLP_BATCH_MAX_WAIT_MS" in result.stdout


@pytest.mark.needs_model
def test_worker_process_never_imports_torch(default_model_dir: Path, summarizer_model_dir: Path) -> None:
    """Everything the worker imports and does up to consuming, in a fresh interpreter."""
    code = f"""
import sys
from pipeline.tools import cli
from pipeline.service import worker
from pipeline.service import app
from pipeline.lanes.sentiment import agent as agents
from pipeline.lanes.sentiment import enrichment
from pipeline.kafka import clients as kafka_io
from pipeline.tools import demo
from pipeline.lanes.sentiment import decoding
from pipeline import settings as s
from pipeline.lanes.summary import agent as summary_agent
from pipeline.service.worker import load_classifier, load_summarizer
from pipeline.service.app import create_app
cfg = s.Settings(model_dir={str(default_model_dir)!r}, summarizer_model_dir={str(summarizer_model_dir)!r},
                 bootstrap_servers="127.0.0.1:1", web_port=0)
classifier = load_classifier(cfg)
assert classifier.predict(["a fine film"])[0].label in ("positive", "negative")
summarizer = load_summarizer(cfg)
assert summarizer.summarize(["The council approved three new bus routes on Tuesday. They start in June."])[0].text
create_app(cfg, classifier, summarizer)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "optimum"))
print("HEAVY", heavy)
sys.exit(1 if heavy else 0)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_version_names_the_installed_release() -> None:
    from importlib.metadata import version

    result = run_cli(["--version"], {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"streamnlp, version {version('streamnlp')}"


def test_tail_lines_print_foreign_records_raw() -> None:
    from pipeline.tools.console import tail_line

    enriched = b'{"id": "e1", "text": "fine", "sentiment": {"label": "positive", "score": 0.9}}'
    assert "positive 0.90  e1" in tail_line(enriched, dead_letter=False)
    toxic = b'{"id": "e2", "text": "idiot", "sentiment": {"label": "negative", "score": 0.8}, ' \
        b'"toxicity": {"label": "offensive", "score": 0.97}}'
    assert "negative 0.80  e2  (-) toxicity: offensive 0.97  idiot" == tail_line(toxic, dead_letter=False)
    letter = b'{"error_code": "invalid_json", "reason": "cut short", "source_partition": 1, "source_offset": 4}'
    assert "invalid_json: cut short" in tail_line(letter, dead_letter=True)
    for raw in (b"{not json", b"[1, 2]", b'"text"', b'{"sentiment": "odd", "id": "x"}', b'{"sentiment": {"score": "x"}}'):
        assert tail_line(raw, dead_letter=False) == raw.decode()
    assert tail_line(b"caf\xe9", dead_letter=True) == "caf\ufffd"
    assert tail_line(None, dead_letter=False) == ""

