"""`streamnlp bench` at a tiny size: every lane runs and the report has its parts (no timing asserts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.needs_model]


def test_bench_runs_every_lane(default_model_dir: Path, summarizer_model_dir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMNLP_")}
    env.update(STREAMNLP_MODEL_DIR=str(default_model_dir), STREAMNLP_SUMMARIZER_MODEL_DIR=str(summarizer_model_dir))
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.tools.cli", "bench", "--events", "24", "--latency-seconds", "1",
         "--long-docs", "1", "--workers", "2", "--json", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = orjson.loads(done.stdout)
    for lane in ("bare", "naive", "pipeline"):
        result = report["lanes"][lane]
        assert result["events_per_s"] > 0 and result["cpu_s_per_1k"] > 0 and result["peak_rss_mib"] > 0
        assert result["paced"]["latency"]["n"] > 0
    # toxicity's cost in the same run: the same backlog with STREAMNLP_TOXICITY_ENABLED=false
    assert report["lanes"]["pipeline_no_toxicity"]["events_per_s"] > 0 and report["config"]["toxicity"] is True
    compare = report["toxicity_compare"]
    assert len(compare["on_events_per_s"]) == len(compare["off_events_per_s"]) == compare["rounds"] == 2
    assert set(report["ratios"]) == {"pipeline/bare", "pipeline/naive", "toxicity on/off"}
    assert report["latency_run"]["p99_ms"] is not None
    assert report["summary_lane"]["summaries"]["docs"] == 1
    # the same mixed stream with generation in a SCHED_IDLE process (the default), at nice 19, and in a thread
    assert set(report["summary_isolation"]) == {"process-idle", "process-nice", "thread"}
    for mixed in report["summary_isolation"].values():
        assert mixed["summaries"]["docs"] == 1 and 0 <= mixed["summaries"]["fallback_share"] <= 1
        assert mixed["sentiment_p99_ratio"] is not None
    assert report["scaling"]["consumers"] == 2
    assert "ETA" in done.stderr  # progress while running
    assert orjson.loads(out.with_suffix(".json").read_bytes())["ratios"] == report["ratios"]
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
