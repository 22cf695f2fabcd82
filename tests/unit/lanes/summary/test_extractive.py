"""Extractive summaries: only source sentences, original order, length bound, sentence splitting."""

from __future__ import annotations

import re

import pytest

from pipeline.lanes.summary.extractive import extractive_summary, split_sentences, stem
from tests.paths import FIXTURES

NEWS = (
    "Metro Transit will launch three new bus routes on June 2. "
    "The weather was mild on Tuesday. "
    "The new bus routes connect the Eastgate neighborhood to the hospital and the central station. "
    "A local bakery celebrated its anniversary. "
    "Officials said the bus routes will run every 12 minutes during rush hour."
)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_output_is_made_of_source_sentences_in_original_order() -> None:
    summary = extractive_summary(NEWS, max_sentences=2)
    sentences = split_sentences(summary)
    assert 1 <= len(sentences) <= 2
    source_sentences = split_sentences(NEWS)
    positions = [source_sentences.index(s) for s in sentences]  # ValueError if a sentence was invented
    assert positions == sorted(positions)
    assert "bakery" not in summary and "weather" not in summary  # off-topic sentences lose on centrality


def test_max_sentences_is_respected() -> None:
    assert len(split_sentences(extractive_summary(NEWS, max_sentences=1))) == 1
    assert len(split_sentences(extractive_summary(NEWS, max_sentences=3))) == 3


@pytest.mark.parametrize("max_chars", [40, 80, 120, 200, 400])
def test_max_chars_is_respected_and_trim_is_at_a_word_boundary(max_chars: int) -> None:
    summary = extractive_summary(NEWS, max_sentences=2, max_chars=max_chars)
    assert 0 < len(summary) <= max_chars
    if summary.endswith("…"):
        body = summary[:-1]
        assert _norm(NEWS).find(body) >= 0
        following = _norm(NEWS)[_norm(NEWS).find(body) + len(body)]
        assert following == " ", "cut between words"
    else:
        assert all(s in split_sentences(NEWS) for s in split_sentences(summary))


def test_sentences_that_do_not_fit_are_skipped_for_shorter_ones() -> None:
    long_first = "Alpha beta gamma delta routes " * 20 + "end. Short routes sentence here. Another routes line."
    summary = extractive_summary(long_first, max_sentences=2, max_chars=80)
    assert not summary.endswith("…") and len(summary) <= 80


def test_single_sentence_text_is_returned_trimmed() -> None:
    assert extractive_summary("  Just one sentence about the new bus routes.  ") == "Just one sentence about the new bus routes."
    long_one = "word " * 200
    out = extractive_summary(long_one, max_chars=50)
    assert out.endswith("…") and len(out) <= 50 and "  " not in out


def test_empty_text() -> None:
    assert extractive_summary("") == ""
    assert extractive_summary("   \n ") == ""


def test_sentence_splitter_handles_abbreviations_decimals_and_initials() -> None:
    text = ("Dr. Smith met Mr. J. Doe at 7 p.m. on Friday. The fee was $2.50, e.g. for adults, i.e. most riders. "
            "Prices rose 3.5% in the U.S. The firm, Acme Inc. in Ohio, agreed! Was it worth it? Yes. "
            "See the list, etc. and more.")
    assert split_sentences(text) == [
        "Dr. Smith met Mr. J. Doe at 7 p.m. on Friday.",
        "The fee was $2.50, e.g. for adults, i.e. most riders.",
        "Prices rose 3.5% in the U.S.",
        "The firm, Acme Inc. in Ohio, agreed!",
        "Was it worth it?",
        "Yes.",
        "See the list, etc. and more.",
    ]


def test_sentence_splitter_paragraphs_and_bullets() -> None:
    text = "Release notes\n\n- Fixed the sync bug\n- Added dark mode\nThanks for updating."
    assert split_sentences(text) == ["Release notes", "- Fixed the sync bug", "- Added dark mode Thanks for updating."]


def test_extractive_never_invents_text_on_realistic_inputs() -> None:
    import json

    cases = FIXTURES / "faithfulness_cases.jsonl"
    sources = {json.loads(line)["source"] for line in cases.read_text(encoding="utf-8").splitlines() if line.strip()}
    for source in sources:
        summary = extractive_summary(source)
        assert 0 < len(summary) <= 400
        for sentence in split_sentences(summary.removesuffix("…")):
            assert sentence.removesuffix("…") in _norm(source)


@pytest.mark.parametrize(("a", "b"), [("routes", "route"), ("opened", "opens"), ("opening", "open"),
                                       ("deliveries", "delivery"), ("stopped", "stops"), ("buses", "bus")])
def test_stemmer_conflates_inflections(a: str, b: str) -> None:
    assert stem(a) == stem(b)
