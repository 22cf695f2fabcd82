"""Abstractive or extractive? Pure decision logic for the summary agent (no model, no Kafka).

Order: a forced reason (backlog, generation error, lane disabled) or no candidate ->
extractive; a degenerate candidate -> extractive ("degenerate:<reason>", which includes
"incomplete" for text with no complete last sentence and "meta_text" for text about the text); a candidate whose
faithfulness is below the threshold -> extractive ("unfaithful"); else the candidate.
The extractive text is always computed from the source, so it is faithful by construction
(score 1.0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.lanes.summary.extractive import extractive_summary
from pipeline.lanes.summary.faithfulness import detect_degenerate, score_faithfulness
from pipeline.lanes.summary.guard import form_problem, name_runs, number_attribution, scattered_sentences

__all__ = ["SummaryPolicy", "SummaryDecision", "decide", "FORCED_REASONS"]

FORCED_REASONS = frozenset({"backlog", "generation_error", "disabled"})


@dataclass(frozen=True)
class SummaryPolicy:
    # 0.75, chosen on the 79 labelled cases (tests/fixtures/faithfulness_cases.jsonl): no faithful
    # summary is rejected (lowest faithful score 0.78) and 2 of 46 erroneous ones pass (a single
    # invented plain word: 0.83, 0.86). Wrong numbers/dates/times/names are capped at 0.5 anyway.
    # Table and reasoning: docs/faithfulness.md.
    faithfulness_threshold: float = 0.75
    # share of a summary sentence's content words that must sit within two consecutive source
    # sentences; 0.8 chosen on the dev labels (docs/faithfulness.md, "Real model output")
    locality: float = 0.8
    max_sentences: int = 2          # extractive fallback size
    max_chars: int = 400


@dataclass(frozen=True)
class SummaryDecision:
    text: str
    method: str                     # "abstractive" | "extractive"
    faithfulness: float             # of the published text (extractive = 1.0)
    unsupported: list[str] = field(default_factory=list)  # of the abstractive candidate, [] if it was accepted
    fallback_reason: str | None = None  # None | "unfaithful" | "degenerate:<reason>" | "backlog" | "generation_error" | "disabled"
    candidate_faithfulness: float | None = None  # score of the model's candidate; None if none was scored


def _extractive(source: str, policy: SummaryPolicy) -> str:
    text = extractive_summary(source, max_sentences=policy.max_sentences, max_chars=policy.max_chars)
    return text or source.strip()


def decide(
    source: str, candidate: str | None, policy: SummaryPolicy, *, forced_reason: str | None = None
) -> SummaryDecision:
    """Choose what to publish for ``source`` given the model's ``candidate`` (None if the model did not run).

    ``forced_reason`` ("backlog", "generation_error", "disabled") skips the candidate entirely;
    a None candidate without a forced reason counts as "generation_error". Unknown forced
    reasons raise ValueError (they would not validate in the SummaryEvent schema anyway).
    """
    if forced_reason is not None and forced_reason not in FORCED_REASONS:
        raise ValueError(f"unknown forced_reason {forced_reason!r}; expected one of {sorted(FORCED_REASONS)}")
    if forced_reason is not None or candidate is None:
        return SummaryDecision(text=_extractive(source, policy), method="extractive", faithfulness=1.0,
                               unsupported=[], fallback_reason=forced_reason or "generation_error")
    text = candidate.strip()
    degenerate = detect_degenerate(source, text) or form_problem(source, text)
    report = score_faithfulness(source, text)
    if degenerate is not None:
        return SummaryDecision(text=_extractive(source, policy), method="extractive", faithfulness=1.0,
                               unsupported=list(report.unsupported), fallback_reason=f"degenerate:{degenerate}",
                               candidate_faithfulness=report.score)
    # facts put together wrongly, though each word is in the source: a figure counting the wrong
    # noun, a name run the source never forms, a sentence built from distant parts of the source
    misattributed = number_attribution(source, text) + name_runs(source, text) + [
        f"scattered: {s}" for s in scattered_sentences(source, text, min_share=policy.locality)]
    if misattributed:
        return SummaryDecision(text=_extractive(source, policy), method="extractive", faithfulness=1.0,
                               unsupported=list(report.unsupported) + misattributed, fallback_reason="unfaithful",
                               candidate_faithfulness=min(report.score, 0.5))
    if report.score < policy.faithfulness_threshold:
        return SummaryDecision(text=_extractive(source, policy), method="extractive", faithfulness=1.0,
                               unsupported=list(report.unsupported), fallback_reason="unfaithful",
                               candidate_faithfulness=report.score)
    return SummaryDecision(text=text, method="abstractive", faithfulness=report.score, unsupported=[],
                           fallback_reason=None, candidate_faithfulness=report.score)
