"""CLI commands that talk to a broker, as a user runs them: real subprocesses (the rest: tests/unit/tools/test_cli.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import REPO, cli_env, run_cli


@pytest.mark.integration
@pytest.mark.needs_model
def test_demo_count_accounts_for_every_event(default_model_dir: Path, tmp_path: Path) -> None:
    env = {"STREAMNLP_MODEL_DIR": str(default_model_dir), "STREAMNLP_DATA_DIR": str(tmp_path / "data")}
    result = run_cli(["demo", "--count", "200", "--timeout", "240"], env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    import orjson

    tally = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert tally["produced"] == 200
    assert tally["enriched"] + tally["dead_lettered"] == 200
    assert tally["dead_lettered"] >= 9, "the sample file's malformed lines are dead-lettered"


@pytest.mark.integration
def test_produce_from_stdin_then_tail_json(kafka_bootstrap: str) -> None:
    import uuid

    topic = f"cli-{uuid.uuid4().hex[:8]}"
    lines = ['{"id": "c1", "text": "first"}', "{not json", '{"id": "c3", "text": "third"}']
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    produced = subprocess.run([sys.executable, "-m", "pipeline.tools.cli", "produce", "-", "--topic", topic],
                              input="\n".join(lines) + "\n\n", env={**cli_env(), **env}, cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    assert produced.returncode == 0, produced.stderr
    assert "produced 3 records" in produced.stderr, "blank lines are skipped, malformed lines are sent as-is"
    tailed = run_cli(["tail", "--json", "--max", "3"], {**env, "STREAMNLP_OUTPUT_TOPIC": topic}, timeout=60)
    assert tailed.returncode == 0, tailed.stderr
    assert sorted(tailed.stdout.splitlines()) == sorted(lines), "records arrive byte-exact"


@pytest.mark.integration
def test_tail_prints_a_non_json_record_raw_and_keeps_following(kafka_bootstrap: str) -> None:
    import uuid

    topic = f"cli-tail-{uuid.uuid4().hex[:8]}"
    lines = ['{"id": "t1", "text": "good", "sentiment": {"label": "positive", "score": 0.91}}', "plain text, not JSON",
             "[1, 2, 3]", '{"id": "t4", "text": "last", "sentiment": {"label": "negative", "score": 0.8}}']
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    produced = subprocess.run([sys.executable, "-m", "pipeline.tools.cli", "produce", "-", "--topic", topic],
                              input="\n".join(lines) + "\n", env={**cli_env(), **env}, cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    assert produced.returncode == 0, produced.stderr
    tailed = run_cli(["tail", "--max", "4"], {**env, "STREAMNLP_OUTPUT_TOPIC": topic}, timeout=60)
    assert tailed.returncode == 0, tailed.stderr
    assert "Traceback" not in tailed.stderr
    out = tailed.stdout.splitlines()
    assert "plain text, not JSON" in out and "[1, 2, 3]" in out, tailed.stdout
    assert any("positive 0.91  t1" in line for line in out) and any("t4" in line for line in out), tailed.stdout
