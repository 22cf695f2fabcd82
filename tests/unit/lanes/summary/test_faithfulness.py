"""Faithfulness scoring: labelled span-level cases plus targeted unit tests (pure Python, fast)."""

from __future__ import annotations

import json
import re

import pytest

from pipeline.lanes.summary.faithfulness import (
    HARD_FACT_CAP,
    detect_degenerate,
    extract_spans,
    number_value,
    score_faithfulness,
)
from tests.paths import FIXTURES

CASES_PATH = FIXTURES / "faithfulness_cases.jsonl"
CASES = [json.loads(line) for line in CASES_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]

BUS_SOURCE = (
    "Metro Transit will launch three new bus routes on June 2, connecting the Eastgate neighborhood to the "
    "hospital and the central station. The routes will run every 12 minutes during rush hour. Fares stay at $2.50."
)


# ------------------------------------------------------------------------------------------
# Span-level evaluation over the labelled cases
# ------------------------------------------------------------------------------------------
def _norm_span(span: str) -> str:
    return re.sub(r"\s+", " ", span.lower()).strip(" .,;:!?\"'()")


def spans_match(predicted: str, expected: str) -> bool:
    """Span matching used for recall/precision.

    Both spans are lower-cased, whitespace-collapsed and stripped of surrounding punctuation;
    they match when one occurs in the other as a whole-word substring. So "Luca" matches
    "Server Luca", "50" matches "50-meter", "voucher" matches "store voucher", but "3" does not
    match "$3.50" partially inside a word ("3" vs "33" never match).
    """
    p, e = _norm_span(predicted), _norm_span(expected)
    if not p or not e:
        return False

    def inside(a: str, b: str) -> bool:
        return re.search(r"(?<!\w)" + re.escape(a) + r"(?!\w)", b) is not None

    return inside(p, e) or inside(e, p)


def evaluate(cases: list[dict]) -> dict[str, float]:
    """Recall = expected spans matched by some predicted span / expected spans;
    precision = predicted spans matching some expected span / predicted spans (micro, over all cases;
    every span predicted for a case labelled [] is a false positive)."""
    tp_pred = n_pred = tp_exp = n_exp = 0
    for case in cases:
        predicted = score_faithfulness(case["source"], case["summary"]).unsupported
        expected = case["unsupported"]
        tp_pred += sum(any(spans_match(p, e) for e in expected) for p in predicted)
        tp_exp += sum(any(spans_match(p, e) for p in predicted) for e in expected)
        n_pred += len(predicted)
        n_exp += len(expected)
    return {"recall": tp_exp / n_exp, "precision": tp_pred / n_pred if n_pred else 1.0}


def test_fixture_is_well_formed() -> None:
    assert len(CASES) >= 40
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert set(case) == {"id", "source", "summary", "unsupported", "note"}, case["id"]
        assert 300 <= len(case["source"]) <= 800, case["id"]
        for span in case["unsupported"]:
            assert span.lower() in case["summary"].lower(), (case["id"], span)
    assert sum(not c["unsupported"] for c in CASES) >= 10, "enough fully faithful summaries"


def test_span_recall_and_precision_over_labelled_cases() -> None:
    metrics = evaluate(CASES)
    assert metrics["recall"] >= 0.9, metrics
    assert metrics["precision"] >= 0.8, metrics


def test_threshold_separates_labelled_cases() -> None:
    """At the default threshold (0.75) no faithful case is rejected and at most 2 unfaithful ones pass."""
    threshold = 0.75
    false_reject = [c["id"] for c in CASES if not c["unsupported"]
                    and score_faithfulness(c["source"], c["summary"]).score < threshold]
    false_accept = [c["id"] for c in CASES if c["unsupported"]
                    and score_faithfulness(c["source"], c["summary"]).score >= threshold]
    assert false_reject == []
    assert len(false_accept) <= 2, false_accept


def test_spans_match_definition() -> None:
    assert spans_match("Server Luca", "Luca")
    assert spans_match("50", "50-meter")
    assert spans_match("9 pm.", "9 PM")
    assert not spans_match("3", "33")
    assert not spans_match("", "x")


# ------------------------------------------------------------------------------------------
# Targeted unit tests
# ------------------------------------------------------------------------------------------
def test_the_33_bus_routes_case() -> None:
    report = score_faithfulness("The city adds three new bus routes next month.", "The city adds 33 bus routes.")
    assert report.unsupported == ["33"]
    assert report.score <= HARD_FACT_CAP
    bus = score_faithfulness(BUS_SOURCE, "Metro Transit will launch 33 bus routes on June 2.")
    assert bus.unsupported == ["33"] and bus.score < 0.75


def test_faithful_summary_scores_one() -> None:
    report = score_faithfulness(BUS_SOURCE, "Metro Transit will launch three new bus routes on June 2.")
    assert report.score == 1.0 and report.unsupported == [] and report.checked >= 4


def test_summary_without_checkable_spans_scores_one_with_nothing_checked() -> None:
    report = score_faithfulness(BUS_SOURCE, "It is what it is.")
    assert report == type(report)(score=1.0, unsupported=[], checked=0)
    assert score_faithfulness(BUS_SOURCE, "").checked == 0


@pytest.mark.parametrize(("text", "value"), [
    ("three", 3), ("twenty-one", 21), ("a dozen", 12), ("half a dozen", 6), ("three hundred and five", 305),
    ("1,200", 1200), ("$2.50", 2.5), ("40%", 40), ("25 percent", 25), ("1.2 million", 1.2e6), ("$4.2 million", 4.2e6),
    ("3rd", 3), ("15k", 15000),
])
def test_number_normalisation(text: str, value: float) -> None:
    assert number_value(text) == pytest.approx(value)


@pytest.mark.parametrize(("source", "summary", "unsupported"), [
    ("They hired three new nurses for the ward this spring.", "They hired 3 nurses.", []),
    ("They hired 3 new nurses for the ward this spring.", "They hired three nurses.", []),
    ("They hired 3 new nurses for the ward this spring.", "They hired four nurses.", ["four"]),
    ("They hired twenty-one nurses for the ward this spring.", "They hired 21 nurses.", []),
    ("They hired twenty-one nurses for the ward this spring.", "They hired 12 nurses.", ["12"]),
    ("The shop sold 1,200 tickets at $15 each.", "The shop sold 1200 tickets at 15 dollars each.", []),
    ("Prices rose 40% last year.", "Prices rose forty percent.", []),
    ("A dozen volunteers cleaned the beach.", "12 volunteers cleaned the beach.", []),
])
def test_number_words_and_digits(source: str, summary: str, unsupported: list[str]) -> None:
    assert score_faithfulness(source, summary).unsupported == unsupported


@pytest.mark.parametrize(("source", "summary", "unsupported"), [
    ("The talk starts at 19:00 in the main hall.", "The talk starts at 7 pm.", []),
    ("The talk starts at 7 p.m. in the main hall.", "The talk starts at 19:00.", []),
    ("The talk starts at 7 p.m. in the main hall.", "The talk starts at 8 pm.", ["8 pm"]),
    ("Doors open at noon on Saturday.", "Doors open at 12:00 on Saturday.", []),
    ("The fair opens on May 3 in the park.", "The fair opens on 3 May.", []),
    ("The fair opens on 2024-05-03 in the park.", "The fair opens on May 3, 2024.", []),
    ("The fair opens on May 3 in the park.", "The fair opens on May 4.", ["May 4"]),
    ("The fair opens on May 3 in the park.", "The fair opens on June 3.", ["June 3"]),
    ("The fair opens on May 3, 2024 in the park.", "The fair opens on May 3, 2025.", ["May 3, 2025"]),
    ("The fair opens on Friday, May 3, 2024.", "The fair opens on Thursday.", ["Thursday"]),
    ("The fair opens on 2024-05-03 in the park.", "The fair opens on a Friday.", []),  # 2024-05-03 was a Friday
])
def test_times_and_dates(source: str, summary: str, unsupported: list[str]) -> None:
    assert score_faithfulness(source, summary).unsupported == unsupported


@pytest.mark.parametrize(("source", "summary", "unsupported"), [
    ("Acme Corp recalled its heaters.", "Acme recalled heaters.", []),
    ("Acme recalled its heaters.", "Acme Corp recalled heaters.", []),           # company suffix ignored
    ("Acme Corp recalled its heaters.", "Acme Labs recalled heaters.", ["Acme Labs"]),
    ("Dr. Maria Lopez opened the clinic.", "Dr. Lopez opened the clinic.", []),
    ("Dr. Maria Lopez opened the clinic.", "Dr. Maria Garcia opened the clinic.", ["Dr. Maria Garcia"]),
    ("The Metropolitan Transit Authority cut fares.", "The MTA cut fares.", []),
    ("Tim's time slot moved.", "Tom's slot moved.", ["Tom's"]),
])
def test_named_entities(source: str, summary: str, unsupported: list[str]) -> None:
    assert score_faithfulness(source, summary).unsupported == unsupported


@pytest.mark.parametrize(("source", "summary"), [
    ("The city will add a new route to the airport.", "The city adds routes to the airport."),
    ("The bakery opened a second shop downtown.", "The bakery is opening a shop downtown."),
    ("Deliveries were delayed for a week.", "The delivery was delayed."),
    ("The agency replaced the broken turnstiles.", "Turnstile replacement completed."),
])
def test_inflections_are_supported(source: str, summary: str) -> None:
    assert score_faithfulness(source, summary).unsupported == []


def test_invented_rare_word_is_flagged_but_common_words_are_not() -> None:
    source = "The library will close its Elm Street branch at the end of the year to save money."
    report = score_faithfulness(source, "The library will close a branch and open a planetarium.")
    assert report.unsupported == ["planetarium"]
    assert 0.5 < report.score < 1.0  # one plain word: weighted, not capped


def test_weights_hard_facts_over_plain_words() -> None:
    source = "Metro Transit will add three bus routes to the hospital in June."
    wrong_word = score_faithfulness(source, "Metro Transit will add three tram routes to the hospital in June.")
    wrong_number = score_faithfulness(source, "Metro Transit will add four bus routes to the hospital in June.")
    assert wrong_word.unsupported == ["tram"] and wrong_number.unsupported == ["four"]
    assert wrong_number.score <= HARD_FACT_CAP < wrong_word.score


# ------------------------------------------------------------------------------------------
# Degenerate outputs
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("summary", "reason"), [
    ("", "empty"),
    ("  ... \n", "empty"),
    ("Metro Transit adds routes. Metro Transit adds routes. Metro Transit adds routes.", "repetition"),
    ("The new bus routes the new bus routes the new bus routes the new bus routes", "repetition"),
    ("Routes routes routes routes routes.", "repetition"),
    ("I'm sorry, but I can't help with that request.", "answer_not_summary"),
    ("As an AI language model, I do not have opinions about bus routes.", "answer_not_summary"),
    ("Sure! Here is a summary: Metro Transit adds three routes.", "answer_not_summary"),
    ("Thank you for sharing this update about the new routes!", "answer_not_summary"),
    ("You should check the new timetable before travelling.", "answer_not_summary"),
    ("Would you like to know more about the routes?", "answer_not_summary"),
    ("Summarize the following text in one or two sentences.", "copy_of_prompt"),
    ("Summarize the text above in one or two sentences.", "copy_of_prompt"),   # the summarizer's instruction
    ("You are a helpful assistant that writes short, faithful summaries.", "copy_of_prompt"),
    ("<|im_start|>assistant\nMetro Transit adds routes.", "copy_of_prompt"),
    (BUS_SOURCE, "copy_of_prompt"),
    (BUS_SOURCE.replace("Fares stay at $2.50.", "Fares stay at $2.50 for riders of all ages and every route."), "too_long"),
])
def test_degenerate_reasons(summary: str, reason: str) -> None:
    assert detect_degenerate(BUS_SOURCE, summary) == reason


@pytest.mark.parametrize("summary", [
    "Metro Transit will launch three new bus routes on June 2, running every 12 minutes at rush hour.",
    "Three new routes connect Eastgate to the hospital and central station; fares stay at $2.50.",
    "The new routes run every 12 minutes, and the routes start on June 2.",   # a repeated word is not a loop
])
def test_normal_summaries_are_not_degenerate(summary: str) -> None:
    assert detect_degenerate(BUS_SOURCE, summary) is None


def test_chat_phrases_that_quote_the_source_are_not_degenerate() -> None:
    ticket = ("I'm sorry to complain again, but my order #5521 still has not arrived after three weeks. "
              "Support told me you should wait ten days, and I have waited twenty-one.")
    assert detect_degenerate(ticket, "The customer is sorry to complain but order #5521 has not arrived.") is None
    assert detect_degenerate(ticket, "Support said you should wait ten days; the customer waited twenty-one.") is None


def test_no_labelled_summary_is_degenerate() -> None:
    flagged = [(c["id"], detect_degenerate(c["source"], c["summary"])) for c in CASES]
    assert [f for f in flagged if f[1]] == []


def test_extract_spans_kinds() -> None:
    kinds = {s.text: s.kind for s in extract_spans("On Friday, May 3, Acme Corp sold 3 drones for $40 at 7 pm.")}
    assert kinds == {"Friday": "date", "May 3": "date", "Acme Corp": "entity", "3": "number", "drones": "word",
                     "$40": "number", "7 pm": "time"}
