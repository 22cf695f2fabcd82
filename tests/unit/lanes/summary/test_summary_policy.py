"""Publish policy: abstractive when faithful, extractive otherwise (pure logic)."""

from __future__ import annotations

import pytest

from pipeline.lanes.summary.extractive import extractive_summary
from pipeline.lanes.summary.policy import SummaryDecision, SummaryPolicy, decide

SOURCE = (
    "Metro Transit will launch three new bus routes on June 2, connecting the Eastgate neighborhood to the "
    "hospital and the central station. The routes will run every 12 minutes during rush hour. Fares stay at $2.50."
)
FAITHFUL = "Metro Transit will launch three new bus routes on June 2."
ONE_WORD_OFF = "Metro Transit will launch three new bus routes and a tram on June 2."  # score ~0.93


def test_faithful_candidate_is_published() -> None:
    d = decide(SOURCE, FAITHFUL, SummaryPolicy())
    assert d == SummaryDecision(text=FAITHFUL, method="abstractive", faithfulness=1.0, unsupported=[],
                                fallback_reason=None, candidate_faithfulness=1.0)


def test_33_bus_routes_falls_back_to_extractive() -> None:
    d = decide(SOURCE, "Metro Transit will launch 33 bus routes on June 2.", SummaryPolicy())
    assert d.method == "extractive" and d.fallback_reason == "unfaithful"
    assert d.unsupported == ["33"] and d.faithfulness == 1.0 and d.candidate_faithfulness is not None
    assert d.text == extractive_summary(SOURCE)


def test_threshold_switch_below_and_above() -> None:
    score = decide(SOURCE, ONE_WORD_OFF, SummaryPolicy()).candidate_faithfulness
    assert score is not None and 0.75 < score < 1.0
    above = decide(SOURCE, ONE_WORD_OFF, SummaryPolicy(faithfulness_threshold=score))
    assert above.method == "abstractive" and above.faithfulness == score and above.unsupported == []
    below = decide(SOURCE, ONE_WORD_OFF, SummaryPolicy(faithfulness_threshold=min(1.0, score + 0.01)))
    assert below.method == "extractive" and below.fallback_reason == "unfaithful" and below.unsupported == ["tram"]


@pytest.mark.parametrize(("candidate", "reason"), [
    ("", "empty"),
    ("I'm sorry, but as an AI I cannot summarize this.", "answer_not_summary"),
    ("The routes. The routes. The routes. The routes.", "repetition"),
    ("Summarize the following text in one or two sentences.", "copy_of_prompt"),
])
def test_degenerate_candidate_falls_back(candidate: str, reason: str) -> None:
    d = decide(SOURCE, candidate, SummaryPolicy(faithfulness_threshold=0.0))  # degeneracy wins over any threshold
    assert d.method == "extractive" and d.fallback_reason == f"degenerate:{reason}"
    assert d.faithfulness == 1.0 and d.text == extractive_summary(SOURCE)


@pytest.mark.parametrize("reason", ["backlog", "generation_error", "disabled"])
def test_forced_reasons_skip_the_candidate(reason: str) -> None:
    d = decide(SOURCE, None, SummaryPolicy(), forced_reason=reason)
    assert d == SummaryDecision(text=extractive_summary(SOURCE), method="extractive", faithfulness=1.0,
                                unsupported=[], fallback_reason=reason, candidate_faithfulness=None)
    # a forced reason wins even if a candidate exists
    assert decide(SOURCE, FAITHFUL, SummaryPolicy(), forced_reason=reason).method == "extractive"


def test_missing_candidate_without_reason_is_a_generation_error() -> None:
    assert decide(SOURCE, None, SummaryPolicy()).fallback_reason == "generation_error"


def test_unknown_forced_reason_is_rejected() -> None:
    with pytest.raises(ValueError):
        decide(SOURCE, None, SummaryPolicy(), forced_reason="tired")


def test_extractive_sizes_come_from_the_policy() -> None:
    d = decide(SOURCE, None, SummaryPolicy(max_sentences=1, max_chars=60), forced_reason="backlog")
    assert len(d.text) <= 60


def test_default_threshold() -> None:
    assert SummaryPolicy().faithfulness_threshold == 0.75
