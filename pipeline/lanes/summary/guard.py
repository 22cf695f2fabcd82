"""Checks for what the summarizer really gets wrong, beyond span lookup: pure text logic, no model.

`faithfulness.score_faithfulness` asks whether each checkable span of a summary occurs in the
source. Labelled output of the lane's own model (pipeline/tools/evaluation/summaries/) showed
errors that pass that test because every word is in the source but the claim is not:
a summary that talks about "the text" instead of its content, text cut mid-sentence, and facts
put together wrongly. `form_problem` names the first two; the fact checks live beside it.
Every pattern is applied only when its match is not in the source itself (a speech that says
"this text" may be summarised with those words).
"""

from __future__ import annotations

import re

from pipeline.lanes.summary.text import complete_sentences

__all__ = ["form_problem", "meta_text"]

_META = [re.compile(p, re.IGNORECASE) for p in (
    # a label or a wrap-up lead-in instead of the summary itself
    r"^\W*(?:summary|tl;?\s?dr|in summary|to summari[sz]e|in short|in conclusion|key points?)\b\s*[:,\-]",
    # the document as the subject ("The text is...", "This article discusses...", "The above passage")
    r"\b(?:the|this|that|these)\s+(?:above\s+|original\s+|given\s+|following\s+|provided\s+|preceding\s+|"
    r"previous\s+|same\s+)?(?:text|texts|article|passage|excerpt|paragraph|summary|document|tweet|post|"
    r"transcript|snippet|sentence|content|input)\b",
    # a speech or story judged as a piece of writing
    r"\b(?:the|this)\s+(?:speech|story|statement|quote|message|narrative|poem|letter|piece)\s+(?:is|was|"
    r"highlights?|discusses|describes|emphasi[sz]es|conveys|uses|captures|serves|reflects|explores|presents|"
    r"illustrates|showcases|paints|offers|delves|touches|is told|is written|is filled)\b",
    # writing-quality talk
    r"\b(?:well-structured|well-written|vivid (?:imagery|description|language)|engaging (?:style|read)|"
    r"narrative voice|clear and concise|concise and (?:clear|impactful|engaging)|creative (?:writing|language)|"
    r"rhetorical (?:device|question)s?|figurative language|literary|poignant reminder|writing style)\b",
)]


def meta_text(source: str, summary: str) -> str | None:
    """The first span where `summary` talks about the text instead of its content, or None."""
    src = _norm(source)
    for pattern in _META:
        for m in pattern.finditer(summary):
            if _norm(m.group()) not in src:
                return m.group()
    return None


def form_problem(source: str, summary: str) -> str | None:
    """"incomplete" (no complete last sentence), "meta_text", or None."""
    text = summary.strip()
    if complete_sentences(text) != text:
        return "incomplete"
    if meta_text(source, text) is not None:
        return "meta_text"
    return None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("’", "'")).strip()
