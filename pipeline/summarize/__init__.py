"""Summary lane, model-free parts: faithfulness checks, extractive fallback, the publish policy."""

from pipeline.summarize.extractive import extractive_summary, split_sentences
from pipeline.summarize.faithfulness import FaithfulnessReport, detect_degenerate, score_faithfulness
from pipeline.summarize.policy import SummaryDecision, SummaryPolicy, decide

__all__ = [
    "FaithfulnessReport", "SummaryDecision", "SummaryPolicy", "decide", "detect_degenerate",
    "extractive_summary", "score_faithfulness", "split_sentences",
]
