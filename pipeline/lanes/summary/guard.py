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

from pipeline.lanes.summary.extractive import STOPWORDS, split_sentences, stem, word_tokens
from pipeline.lanes.summary.faithfulness import extract_spans, number_value
from pipeline.lanes.summary.text import complete_sentences

__all__ = ["form_problem", "meta_text", "repeats", "number_attribution"]

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


def repeats(summary: str, source: str = "") -> str | None:
    """A phrase the summary says twice (and the source does not), or None.

    The older repetition check needs three-word sentences or long loops; the model's real
    repeats were shorter: "USA. USA. USA.", "Awesome job, great job, and a great job.",
    "a double standard when it comes to the American public" after "The American public",
    "populism, populism, and populism", "dedication and dedication".
    """
    found = _repeat(summary)
    if found is None or (source and found in _repeats_in(source)):
        return None  # "real people, people who are suffering" is the speaker's own wording
    return found


def _repeats_in(text: str) -> set[str]:
    return {r for sentence in split_sentences(text) if (r := _repeat(sentence)) is not None}


def _repeat(summary: str) -> str | None:
    sentences = [" ".join(t.lower() for t, _, _ in word_tokens(s)) for s in split_sentences(summary)]
    sentences = [s for s in sentences if s]
    for s in sentences:
        if sentences.count(s) > 1:
            return s
    for sentence in split_sentences(summary):
        words = [t.lower() for t, _, _ in word_tokens(sentence)]
        content = [stem(w) for w in words if w not in STOPWORDS and len(w) > 2]
        for a, b in zip(content, content[1:], strict=False):
            if a == b:  # "dedication and dedication", "populism, populism"
                return a
        pairs = list(zip(content, content[1:], strict=False))
        for pair in pairs:
            if pairs.count(pair) > 1:  # "great job ... great job" inside one sentence
                return " ".join(pair)
    return None


def number_attribution(source: str, summary: str) -> list[str]:
    """Numbers put to a noun the source does not count with them ("cut by 10 million students").

    A number in the summary is checked together with the first content word after it (the noun
    it counts: "18 people", "20 percent cut", "200,000 children"); some source sentence must hold
    the same value and that word's stem. The span checker only asks whether the number occurs
    anywhere, which is how "killing at least 18 people and injuring at least 18 people" passed.
    """
    src_sentences = []
    for sentence in split_sentences(source):
        toks = [t for t, _, _ in word_tokens(sentence)]
        src_sentences.append((sentence, {stem(t.lower()) for t in toks}))
    problems = []
    for span in extract_spans(summary):
        if span.kind != "number":
            continue
        value = number_value(span.text)
        if value is None:
            continue
        after = [t.lower() for t, _, _ in word_tokens(summary[span.end:])][:3]
        noun = next((w for w in after if w not in STOPWORDS and len(w) > 2 and number_value(w) is None), None)
        if noun is None:
            continue
        holding = [stems for sentence, stems in src_sentences if _has_value(sentence, value)]
        if holding and not any(stem(noun) in stems for stems in holding):
            problems.append(f"{span.text} {noun}")
    return problems


def _has_value(sentence: str, value: float) -> bool:
    return any(s.kind == "number" and number_value(s.text) == value for s in extract_spans(sentence))


def form_problem(source: str, summary: str) -> str | None:
    """"incomplete" (no complete last sentence), "meta_text", "repetition", or None."""
    text = summary.strip()
    if complete_sentences(text) != text:
        return "incomplete"
    if meta_text(source, text) is not None:
        return "meta_text"
    if repeats(text, source) is not None:
        return "repetition"
    return None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("’", "'")).strip()
