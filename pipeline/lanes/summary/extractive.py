"""Extractive summaries: the top source sentences by lexical centrality, in source order.

Zero hallucination by construction: the output is a concatenation of source
sentences (whitespace collapsed), trimmed at a word boundary with "…" only when
a single sentence is longer than ``max_chars``.

This module also holds the small lexical toolkit shared with
:mod:`pipeline.lanes.summary.faithfulness` (sentence splitter, tokenizer, stemmer,
stopwords) so imports go one way: faithfulness -> extractive.
"""

from __future__ import annotations

import math
import re
from collections import Counter

__all__ = ["extractive_summary", "split_sentences", "sentence_spans", "stem", "STOPWORDS", "word_tokens"]

# --------------------------------------------------------------------------------------------
# Stopwords (function words only; the "common words" list for faithfulness lives there)
# --------------------------------------------------------------------------------------------
STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each
    few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
    him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't
    my myself no nor not of off on once only or other ought our ours ourselves out over own same shan't she she'd
    she'll she's should shouldn't so some such than that that's the their theirs them themselves then there
    there's these they they'd they'll they're they've this those through to too under until up very was wasn't we
    we'd we'll we're we've were weren't what what's when when's where where's which while who who's whom why why's
    with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves also just will shall
    may might must yet still even ever per via upon within without onto toward towards among amongst across
    along around behind beside besides beyond near since though although unless whether whose whatever whenever
    wherever however therefore thus hence meanwhile otherwise instead either neither rather quite almost already
    """.split()
)

# --------------------------------------------------------------------------------------------
# Stemmer
# --------------------------------------------------------------------------------------------
# A deliberately small suffix stripper instead of a dependency (snowballstemmer would do,
# but the worker's dependency set stays unchanged and we only need *conflation within one
# source/summary pair*, not IR-quality stems: the same function runs on both sides, and
# faithfulness adds a common-prefix fallback for derivations like delivery/delivered).
_IRREGULAR = {
    "went": "go", "gone": "go", "goes": "go", "bought": "buy", "brought": "bring", "came": "come", "made": "make",
    "took": "take", "taken": "take", "gave": "give", "given": "give", "found": "find", "told": "tell",
    "said": "say", "says": "say", "paid": "pay", "sold": "sell", "sent": "send", "spent": "spend", "built": "build",
    "left": "leave", "lost": "lose", "broke": "break", "broken": "break", "ran": "run", "won": "win", "began": "begin",
    "begun": "begin", "chose": "choose", "chosen": "choose", "wrote": "write", "written": "write", "got": "get",
    "gotten": "get", "held": "hold", "kept": "keep", "met": "meet", "felt": "feel", "fell": "fall", "fallen": "fall",
    "rose": "rise", "risen": "rise", "grew": "grow", "grown": "grow", "knew": "know", "known": "know", "saw": "see",
    "seen": "see", "thought": "think", "children": "child", "people": "person", "men": "man", "women": "woman",
    "mice": "mouse", "feet": "foot", "teeth": "tooth", "better": "good", "best": "good", "worse": "bad",
    "worst": "bad", "led": "lead", "hired": "hire", "closed": "close", "shut": "shut",
}
_DOUBLE = re.compile(r"([bdfgklmnprtz])\1$")


def stem(word: str) -> str:
    """Lower-case, strip possessive and common inflections; y->i and a final e are normalised away.

    routes/route/routing -> "rout", opened/opens/opening -> "open", deliveries/delivery -> "deliveri".
    """
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    w = w.strip("'")
    if w in _IRREGULAR:
        w = _IRREGULAR[w]
    if len(w) <= 3:
        return w
    for suffix, repl, min_left in (
        ("ies", "i", 2), ("ied", "i", 2), ("sses", "ss", 2), ("ness", "", 4), ("ure", "", 4), ("ingly", "", 3), ("edly", "", 3),
        ("ings", "", 3), ("ing", "", 3), ("ed", "", 3), ("ly", "", 4), ("es", "e", 3), ("s", "", 3),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= min_left:
            if suffix == "s" and (w.endswith("ss") or w.endswith("us") or w.endswith("is")):
                continue
            w = w[: len(w) - len(suffix)] + repl
            if suffix in ("ing", "ed", "ings", "ingly", "edly") and _DOUBLE.search(w):
                w = w[:-1]
            break
    if w.endswith("y") and len(w) > 3:
        w = w[:-1] + "i"
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


_WORD = re.compile(r"[A-Za-z0-9]+(?:['’\-][A-Za-z0-9]+)*")


def word_tokens(text: str) -> list[tuple[str, int, int]]:
    """Word-ish tokens with their character offsets (letters/digits with inner hyphens/apostrophes)."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


# --------------------------------------------------------------------------------------------
# Sentence splitting
# --------------------------------------------------------------------------------------------
# Abbreviations that never end a sentence (titles, "e.g.", month abbreviations before a day...).
_ABBR_NEVER = frozenset(
    "dr mr mrs ms prof sr jr st mt ft vs e.g i.e eg ie cf approx dept est fig no nos vol ca "
    "jan feb mar apr jun jul aug sep sept oct nov dec gen gov sen rep rev capt lt col sgt".split()
)
# Abbreviations that may end a sentence: boundary only if the next word is a capitalised function word.
_ABBR_MAYBE = frozenset("etc inc ltd co corp llc a.m p.m am pm u.s u.k bros".split())
_BOUNDARY = re.compile(r"[.!?…]+[\"'’”)\]]*(?=\s|$)|\n[ \t]*\n|\n(?=[ \t]*(?:[-*•·]|\d+[.)])\s)")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of sentences in ``text``, leading/trailing whitespace excluded."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        if m.group()[0] == ".":
            before = re.search(r"([A-Za-z][A-Za-z.]*)$", text[start : m.start()])
            word = before.group(1).lower().rstrip(".") if before else ""
            after = re.match(r"\s*([\"'“‘(\[]?)(\S*)", text[end:])
            nxt = after.group(2) if after else ""
            if len(m.group().rstrip("\"'’”)]")) == 1:  # a single ".", not "..." or "?!"
                if word in _ABBR_NEVER:
                    continue
                if len(word) == 1 and word.isalpha() and before and before.group(1).isupper():
                    continue  # an initial: "J. Smith"
                if word in _ABBR_MAYBE and not (nxt[:1].isupper() and nxt.lower().strip(".,") in STOPWORDS):
                    continue
            if nxt[:1].islower():
                continue  # "e.g. the", "... and then"
        elif m.group()[0] in "!?…":
            after = re.match(r"\s*(\S*)", text[end:])
            if after and after.group(1)[:1].islower():
                continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def _norm_ws(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` with whitespace collapsed (abbreviation- and decimal-aware)."""
    return [_norm_ws(text[s:e]) for s, e in sentence_spans(text)]


# --------------------------------------------------------------------------------------------
# Extractive summary
# --------------------------------------------------------------------------------------------
_LEAD_BONUS = 0.1          # news-style texts front-load the point; small enough to be overruled
_SHORT_TOKENS = 4          # sentences with fewer content tokens are mostly greetings/fragments
_SHORT_PENALTY = 0.5
_QUESTION_PENALTY = 0.8    # questions rarely state the gist
_REDUNDANT_COSINE = 0.7    # don't pick a near-duplicate of an already picked sentence


def _content_terms(sentence: str) -> list[str]:
    return [stem(t) for t, _, _ in word_tokens(sentence) if t.lower() not in STOPWORDS and (len(t) > 2 or t.isdigit())]


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(v * b.get(k, 0.0) for k, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def trim_at_word(text: str, max_chars: int) -> str:
    """``text`` if it fits, else cut at the last word boundary so that text + "…" fits ``max_chars``."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 1:
        return "…"[:max_chars]
    cut = text[: max_chars - 1]
    if not text[max_chars - 1].isspace() and " " in cut:
        cut = cut[: cut.rfind(" ")]
    cut = cut.rstrip(" ,;:-–—(")
    return cut + "…"


def extractive_summary(text: str, max_sentences: int = 2, max_chars: int = 400) -> str:
    """The ``max_sentences`` most central sentences of ``text``, in their original order, within ``max_chars``.

    Centrality: cosine between a sentence's TF-IDF vector (sentences as documents, stemmed
    content words) and the document centroid; a small bonus for the lead sentence, a penalty
    for very short sentences and questions. Near-duplicates of a picked sentence are skipped.
    Sentences that would overflow ``max_chars`` are skipped in favour of the next best that fits;
    if not even the best one fits on its own, it is trimmed at a word boundary with "…".
    """
    sentences = split_sentences(text)
    if not sentences:
        return ""
    max_sentences = max(1, max_sentences)
    if len(sentences) == 1:
        return trim_at_word(sentences[0], max_chars)

    terms = [_content_terms(s) for s in sentences]
    n = len(sentences)
    df = Counter(t for ts in terms for t in set(ts))
    idf = {t: math.log((n + 1) / (c + 1)) + 1.0 for t, c in df.items()}
    vectors: list[dict[str, float]] = []
    for ts in terms:
        tf = Counter(ts)
        vec = {t: c * idf[t] for t, c in tf.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        vectors.append({t: v / norm for t, v in vec.items()})
    centroid: dict[str, float] = {}
    for vec in vectors:
        for t, v in vec.items():
            centroid[t] = centroid.get(t, 0.0) + v

    scores = []
    for i, (sentence, ts, vec) in enumerate(zip(sentences, terms, vectors, strict=True)):
        score = _cosine(vec, centroid)
        if i == 0:
            score += _LEAD_BONUS
        if len(ts) < _SHORT_TOKENS:
            score *= _SHORT_PENALTY
        if sentence.endswith("?"):
            score *= _QUESTION_PENALTY
        scores.append(score)

    order = sorted(range(n), key=lambda i: (-scores[i], i))
    picked: list[int] = []
    used = 0
    for i in order:
        if len(picked) >= max_sentences:
            break
        if any(_cosine(vectors[i], vectors[j]) > _REDUNDANT_COSINE for j in picked):
            continue
        extra = len(sentences[i]) + (1 if picked else 0)
        if used + extra > max_chars:
            continue
        picked.append(i)
        used += extra
    if not picked:
        return trim_at_word(sentences[order[0]], max_chars)
    return " ".join(sentences[i] for i in sorted(picked))
