"""The distillation rows of `streamnlp eval`: intervals, paired differences, the switch rule, the report."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pipeline.tools.evaluation.plan import Target, compare_sentiment
from pipeline.tools.evaluation.report import render_markdown, write_report
from pipeline.tools.evaluation.scores import bootstrap_interval, paired_difference


def test_bootstrap_interval_covers_the_accuracy_and_is_seeded() -> None:
    outcomes = [i % 20 != 0 for i in range(1275)]  # 95% right
    low, high = bootstrap_interval(outcomes)
    assert low < 0.95 < high
    assert 0.01 < high - low < 0.04  # ~ +-1.2 points at n = 1,275
    assert bootstrap_interval(outcomes) == (low, high)


def test_paired_difference_and_mcnemar() -> None:
    rng = random.Random(0)
    b = [rng.random() < 0.85 for _ in range(1275)]
    a = [True if not x and rng.random() < 0.3 else x for x in b]  # A fixes ~30% of B's errors, breaks none
    d = paired_difference(a, b)
    assert d["b_only"] == 0 and d["a_only"] > 0
    assert d["low"] > 0 and d["difference"] == pytest.approx((sum(a) - sum(b)) / 1275)
    assert d["mcnemar_p"] < 1e-6
    same = paired_difference(b, b)
    assert same["difference"] == 0 and same["mcnemar_p"] == 1.0
    # McNemar exact: 10 discordant texts split 8 / 2 -> two-sided binomial p = 0.109
    a2 = [True] * 8 + [False] * 2 + [True] * 5
    b2 = [False] * 8 + [True] * 2 + [True] * 5
    assert paired_difference(a2, b2)["mcnemar_p"] == pytest.approx(0.109375)


def _row(model: str, precision: str, correct: str, ood: str, tput: float) -> dict:
    return {"model": model, "version": "v", "precision": precision, "n": len(correct), "labels": ["negative", "positive"],
            "unknown_gold_labels": [], "correct": correct, "ood_correct": ood, "ood_n": len(ood),
            "accuracy": correct.count("1") / len(correct), "ood_accuracy": ood.count("1") / len(ood),
            "macro_f1": 0.8, "ece": 0.05, "size_bytes": 10_000_000, "peak_rss_delta_bytes": 50_000_000,
            "batch_size": 128, "onnx_batch_size": 32, "latency_ms_p50": 100.0, "latency_ms_p99": 150.0,
            "throughput_per_s": tput}


def _rows() -> tuple[list[Target], list[dict]]:
    n = 2000
    default = "1" * 1700 + "0" * 300  # 85%
    better = "1" * 1800 + "0" * 200  # fixes 100 of the default's errors
    targets = [Target("sentiment", "sentiment-minilm-rt", Path("d"), ("fp32", "int8"), default=True,
                      manifest={"name": "sentiment-minilm-rt"}),
               Target("sentiment", "sentiment-teacher", Path("t"), ("fp32",), manifest={"name": "sentiment-teacher"})]
    rows = [_row("sentiment-minilm-rt", "int8", default, "1" * 700 + "0" * 300, 1000.0),
            _row("sentiment-teacher", "fp32", "1" * 1850 + "0" * 150, "1" * 800 + "0" * 200, 50.0),
            _row("sentiment-student-l6", "int8", better, "1" * 720 + "0" * 280, 990.0),  # qualifies
            _row("sentiment-student-l4", "int8", better, "1" * 650 + "0" * 350, 1500.0),  # loses out of domain
            _row("sentiment-student-l3", "int8", default[:n], "1" * 700 + "0" * 300, 2000.0),  # not better
            {**_row("sentiment-student-wide", "int8", better, "1" * 720 + "0" * 280, 500.0),
             "size_bytes": 20_000_000}]  # better, but a bigger graph and slower: costs more
    return targets, rows


def test_compare_sentiment_applies_the_switch_rule() -> None:
    targets, rows = _rows()
    comp = compare_sentiment(targets, rows)
    assert comp is not None
    assert all("correct" not in r and "ood_correct" not in r for r in rows)  # outcomes dropped after use
    assert all(r["accuracy_ci95"][0] < r["accuracy"] < r["accuracy_ci95"][1] for r in rows)
    default = rows[0]
    assert default["accuracy_vs_default"]["difference"] == 0
    assert comp["keeps"]["accuracy_share"] == pytest.approx(0.85 / 0.925)
    assert comp["keeps"]["cost_share"] == pytest.approx(50 / 1000)
    assert comp["keeps"]["line"] == "the default keeps 91.9% of the teacher's accuracy at 5.0% of its cost per event"
    verdicts = {v["model"]: v for v in comp["switch_rule"]["students"]}
    assert verdicts["sentiment-student-l6"]["qualifies"]
    assert not verdicts["sentiment-student-l4"]["no_loss_out_of_domain"]
    assert not verdicts["sentiment-student-l3"]["beats_default_held_out"]
    assert verdicts["sentiment-student-l3"]["costs_no_more"]  # same graph size: same cost, whatever the timing says
    assert not verdicts["sentiment-student-wide"]["costs_no_more"]
    assert not verdicts["sentiment-student-wide"]["qualifies"]
    assert comp["switch_rule"]["winner"]["model"] == "sentiment-student-l6"


def test_report_shows_intervals_the_line_and_the_verdict(tmp_path: Path) -> None:
    targets, rows = _rows()
    comp = compare_sentiment(targets, rows)
    report = {
        "created_at": "2026-12-04T00:00:00+00:00", "command": "streamnlp eval",
        "machine": {"cpus": 2, "arch": "x86_64", "system": "Linux", "python": "3.11", "onnxruntime": "1.31",
                    "load_average_1m_at_start": 1.0, "load_average_1m_at_end": 1.0},
        "settings": {"sentiment_batch_size": 128, "onnx_batch_size": 32, "threads": 2, "summarizer_batch_size": 4,
                     "summarizer_max_new_tokens": 48, "faithfulness_threshold": 0.75},
        "data": {"sentiment": {"name": "held-out reviews", "source": "rt", "n": 2000, "labels": {"positive": 1000}},
                 "sentiment_ood": {"name": "out-of-domain sentences", "source": "vader", "n": 1000,
                                   "labels": {"positive": 500}}},
        "sentiment": rows, "summarization": [], "toxicity": [], "headline": None, "distillation": comp,
        "elapsed_s": 1.0,
    }
    md = render_markdown(report)
    assert "85.0% (83." in md  # accuracy with its interval
    assert "+5.0 (" in md  # the student's paired difference in points
    assert "**The default keeps 91.9% of the teacher's accuracy at 5.0% of its cost per event**" in md
    assert "Verdict: sentiment-student-l6 int8 qualifies." in md
    written = write_report(report, tmp_path / "eval")
    assert all(p.is_file() for p in written)
