"""`streamnlp eval`: data loading, summary judging, process isolation, the report files, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.modelbuild.data import LABELS, load_rotten_tomatoes, stratified_split
from pipeline.tools.cli import main
from pipeline.tools.evaluation.data import DataError, held_out_reviews, labelled_file, long_sample_texts
from pipeline.tools.evaluation.isolate import IsolatedRunError, run_isolated
from pipeline.tools.evaluation.report import render_markdown, write_report
from pipeline.tools.evaluation.runs import evaluate_extractive, judge_summaries

SOURCE = ("The city council approved three new bus routes on Tuesday. The routes start on June 2 and connect "
          "the university with the train station. Tickets cost the same as before, the mayor said.")


def test_held_out_reviews_is_the_builds_split() -> None:
    _, held = stratified_split(load_rotten_tomatoes(), held_out_fraction=0.1, seed=13)
    data = held_out_reviews({"parameters": {"seed": 13, "held_out_fraction": 0.1}})
    assert data.texts == [e.text for e in held] and data.labels == [LABELS[e.label] for e in held]
    other = held_out_reviews({"parameters": {"seed": 7, "held_out_fraction": 0.1}})
    assert other.texts != data.texts, "the split follows the model's manifest"
    assert len(data.limited(10).texts) == 10


def test_labelled_files(tmp_path: Path) -> None:
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "great", "label": "Positive"}\n\n{"text": "bad", "label": "negative", "x": 1}\n')
    assert labelled_file(jsonl).labels == ["positive", "negative"]
    csv = tmp_path / "d.csv"
    csv.write_text('label,text\npositive,"great, really"\nnegative,bad\n')
    assert labelled_file(csv).texts == ["great, really", "bad"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "label": "positive"}\n{"text": "", "label": "x"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: needs a non-empty string 'text'"):
        labelled_file(bad)
    no_header = tmp_path / "h.csv"
    no_header.write_text("sentence,sentiment\nhi,positive\n")
    with pytest.raises(DataError, match="must name 'text' and 'label'"):
        labelled_file(no_header)


def test_long_sample_texts_are_the_twelve_long_samples() -> None:
    assert len(long_sample_texts(400).texts) == 12


def test_judge_summaries_uses_the_service_policy() -> None:
    faithful = "The council approved three new bus routes that start on June 2."
    wrong_date = "The council approved five new bus routes that start on July 9."
    result = judge_summaries([SOURCE, SOURCE, SOURCE], [faithful, wrong_date, ""], threshold=0.75)
    assert result["n"] == 3
    assert result["fallback_rate"] == pytest.approx(2 / 3)
    assert set(result["fallback_reasons"]) == {"unfaithful", "degenerate"}
    assert result["below_threshold_share"] == pytest.approx(2 / 3)
    words = len(SOURCE.split())
    assert result["compression_ratio"] == pytest.approx((words / len(faithful.split()) + words / len(wrong_date.split())) / 2)


def test_extractive_row_is_faithful_by_construction() -> None:
    row = evaluate_extractive([SOURCE], 0.75, lambda done, total: None)
    assert row["faithfulness_mean"] == 1.0 and row["fallback_rate"] == 0.0 and row["compression_ratio"] >= 1.0


def double(job: int, progress: Callable[[int, int], None]) -> dict:
    progress(1, 2)
    progress(2, 2)
    return {"value": job * 2}


def explode(job: int, progress: Callable[[int, int], None]) -> dict:
    raise RuntimeError(f"model {job} is broken")


def test_isolated_runs_forward_progress_and_errors() -> None:
    seen: list[tuple[int, int]] = []
    assert run_isolated(double, 21, lambda d, t: seen.append((d, t))) == {"value": 42}
    assert seen == [(1, 2), (2, 2)]
    with pytest.raises(IsolatedRunError, match="RuntimeError: model 3 is broken"):
        run_isolated(explode, 3, lambda d, t: None)


def _report() -> dict:
    return {
        "created_at": "2026-11-22T00:00:00+00:00", "command": "streamnlp eval", "elapsed_s": 1.0,
        "machine": {"cpus": 2, "arch": "x86_64", "system": "Linux", "python": "3.11", "onnxruntime": "1",
                    "load_average_1m_at_start": 0.1, "int8_kernels": "AVX2, no VNNI"},
        "settings": {"sentiment_batch_size": 128, "onnx_batch_size": 32, "threads": 2, "summarizer_batch_size": 4,
                     "summarizer_max_new_tokens": 48, "faithfulness_threshold": 0.75},
        "data": {"sentiment": {"name": "held-out reviews", "source": "s", "n": 2, "labels": {"negative": 1, "positive": 1}},
                 "summarization": {"name": "long", "source": "s", "n": 1}},
        "sentiment": [{"model": "m", "precision": p, "accuracy": a, "macro_f1": a, "ece": 0.05, "size_bytes": s,
                       "peak_rss_delta_bytes": 9e7, "latency_ms_p50": 500.0, "latency_ms_p99": 600.0,
                       "throughput_per_s": t, "unknown_gold_labels": []}
                      for p, a, s, t in (("fp32", 0.83, 91e6, 150.0), ("int8", 0.82, 23e6, 200.0))],
        "summarization": [{"model": "extractive (no model)", "precision": "-", "faithfulness_mean": 1.0,
                           "below_threshold_share": 0.0, "fallback_rate": 0.0, "fallback_reasons": {},
                           "compression_ratio": 2.0, "docs_per_s": 500.0, "latency_ms_p50": 2.0, "size_bytes": 0,
                           "peak_rss_delta_bytes": 0}],
        "headline": {"model": "m", "version": "1", "accuracy_int8": 0.82, "accuracy_fp32": 0.83,
                     "fp32_int8_gap": 0.01, "throughput_int8_per_s": 200.0},
    }


def test_report_files(tmp_path: Path) -> None:
    written = write_report(_report(), tmp_path / "out" / "eval")
    md, js, png = written
    assert [p.name for p in written] == ["eval.md", "eval.json", "eval.png"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(js.read_text())["headline"]["accuracy_int8"] == 0.82
    text = md.read_text()
    assert "![quality vs throughput](eval.png)" in text
    assert "int8 **82.0%**, fp32 83.0% (fp32 - int8 = +1.0 points)" in text
    assert "| m | int8 | 82.0% |" in text and "extractive (no model)" in text
    assert render_markdown(_report()).count("## ") == 3
    assert "int8 kernels: AVX2, no VNNI" in render_markdown(_report())  # an int8 figure depends on them


@pytest.mark.needs_model
def test_eval_cli_json_has_the_headline(default_model_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "eval", "--task", "sentiment", "--model", "sentiment-minilm-rt", "--limit", "48", "--batch-size", "16",
        "--json", "--out", str(tmp_path / "r"), "--cache-dir", str(default_model_dir.parent),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    head = report["headline"]
    assert head["model"] == "sentiment-minilm-rt" and 0.5 < head["accuracy_int8"] <= 1.0
    assert head["fp32_int8_gap"] == pytest.approx(head["accuracy_fp32"] - head["accuracy_int8"], abs=1e-3)
    rows = {r["precision"]: r for r in report["sentiment"]}
    assert set(rows) == {"fp32", "int8"} and rows["int8"]["n"] == 48
    assert rows["int8"]["size_bytes"] < rows["fp32"]["size_bytes"] and rows["int8"]["peak_rss_delta_bytes"] > 0
    assert "[eval 2/2 sentiment-minilm-rt int8]" in result.stderr and "ETA" in result.stderr
    assert (tmp_path / "r.png").is_file() and (tmp_path / "r.md").is_file()


def test_eval_of_an_unbuilt_model_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "--model", "distilbert-sst2", "--cache-dir", str(tmp_path),
                                       "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "distilbert-sst2 is not built" in result.stderr


@pytest.mark.needs_model
def test_eval_writes_report_files_only_where_out_says(
    default_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [
        "eval", "--task", "sentiment", "--model", "sentiment-minilm-rt", "--limit", "16", "--batch-size", "16",
        "--json", "--cache-dir", str(default_model_dir.parent),
    ])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["headline"]["model"] == "sentiment-minilm-rt"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no --out: the report is printed, no file is written"
