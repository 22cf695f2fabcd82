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
from pipeline.lanes.summary.faithfulness import META_WORDS, extract_spans, normalized, number_value
from pipeline.lanes.summary.text import complete_sentences

__all__ = ["form_problem", "meta_text", "repeats", "number_attribution", "name_runs", "scattered_sentences"]

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
    src = normalized(source)
    for pattern in _META:
        for m in pattern.finditer(summary):
            if normalized(m.group()) not in src:
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
    numbers = [s for s in extract_spans(summary) if s.kind == "number"]
    if not numbers:
        return []
    src_sentences = [(_values(sentence), {stem(t.lower()) for t, _, _ in word_tokens(sentence)})
                     for sentence in split_sentences(source)]
    problems = []
    for span in numbers:
        value = number_value(span.text)
        if value is None:
            continue
        after = [t.lower() for t, _, _ in word_tokens(summary[span.end:])][:3]
        noun = next((w for w in after if w not in STOPWORDS and len(w) > 2 and number_value(w) is None), None)
        if noun is None:
            continue
        holding = [stems for values, stems in src_sentences if value in values]
        if holding and not any(stem(noun) in stems for stems in holding):
            problems.append(f"{span.text} {noun}")
    return problems


def _values(sentence: str) -> set[float]:
    return {v for s in extract_spans(sentence) if s.kind == "number" and (v := number_value(s.text)) is not None}


_NAME_RUN = re.compile(r"[A-Z][\w'’.-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w'’.-]*)+")
_RUN_SKIP = frozenset("the a an in on at this that these those he she it they we i but and so as for when while "
                      "mr mrs ms dr".split())


def name_runs(source: str, summary: str) -> list[str]:
    """Runs of capitalised words the source never puts together ("Ohio Governor Romney").

    Each word may be in the source on its own (the span check passes them), but a title, a place
    and a name glued into one run state a role; the run's neighbouring words must be neighbours
    somewhere in the source too, in any case ("of", "the" and a possessive 's are skipped).
    """
    src_words = _run_words(" ".join(t for t, _, _ in word_tokens(source)))
    # a skipped middle word is allowed: "President Obama" for the source's "President Barack Obama"
    src_pairs = set(zip(src_words, src_words[1:], strict=False)) | set(zip(src_words, src_words[2:], strict=False))
    problems = []
    for sentence in split_sentences(summary):
        for run in _NAME_RUN.finditer(sentence):
            words = _run_words(run.group())
            while words and (words[0] in _RUN_SKIP or words[0] in STOPWORDS):  # a sentence-initial "Under the"
                words = words[1:]
            if len(words) >= 2 and any(pair not in src_pairs for pair in zip(words, words[1:], strict=False)):
                problems.append(run.group().rstrip("."))
    return problems


def _run_words(run: str) -> list[str]:
    words = [re.sub(r"(?:'s|’s|'|’|\.)$", "", w).lower() for w in run.split()]
    return [w for w in words if w not in ("of", "the") and w]


def _content(sentence: str) -> list[str]:
    return [stem(t.lower()) for t, _, _ in word_tokens(sentence)
            if t.lower() not in STOPWORDS and t.lower() not in META_WORDS and len(t) > 2]


def scattered_sentences(source: str, summary: str, *, width: int = 2, min_share: float = 0.8) -> list[str]:
    """Summary sentences whose content is not found together in any `width` consecutive source sentences.

    On the labelled output of the lane's model, swapped roles and invented links ("Her husband ...
    is a teacher"; "He voted against a plan" for what his opponent did) join words from different
    parts of the source; a sentence that restates one passage keeps its words close together.
    """
    src = [set(_content(s)) for s in split_sentences(source)] or [set()]
    windows = [set().union(*src[i : i + width]) for i in range(max(1, len(src) - width + 1))]
    out = []
    for sentence in split_sentences(summary):
        words = _content(sentence)
        if words and max(sum(w in win for w in words) / len(words) for win in windows) < min_share:
            out.append(sentence)
    return out


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
