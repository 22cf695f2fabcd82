"""Summary lane, model-free parts: faithfulness checks, extractive fallback, the publish policy."""

from pipeline.lanes.summary.extractive import extractive_summary, split_sentences
from pipeline.lanes.summary.faithfulness import FaithfulnessReport, detect_degenerate, score_faithfulness
from pipeline.lanes.summary.policy import SummaryDecision, SummaryPolicy, decide

__all__ = [
    "FaithfulnessReport", "SummaryDecision", "SummaryPolicy", "decide", "detect_degenerate",
    "extractive_summary", "score_faithfulness", "split_sentences",
]
