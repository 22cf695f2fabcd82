"""Completeness and meta-text: the cases come from what the lane's model really wrote."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipeline.lanes.summary.guard import (
    form_problem,
    meta_text,
    name_runs,
    number_attribution,
    repeats,
    scattered_sentences,
)
from pipeline.lanes.summary.policy import SummaryPolicy, decide
from pipeline.lanes.summary.text import candidate_text, complete_sentences

SOURCE = ("The fire at St. Mary's church started on Sunday. Firefighters from three towns fought it for six hours. "
          "Nobody was hurt, the mayor said. The roof will be rebuilt by spring.")


@pytest.mark.parametrize(("text", "expected"), [
    ("The fire at St.", ""),                                     # an abbreviation is not a sentence end
    ("The fire at St. Mary's burned. It was", "The fire at St. Mary's burned."),
    ("Police are looking into a theft of a 28-", ""),            # cut mid-word: nothing complete
    ("Mr. Smith left.", "Mr. Smith left."),
    ("He moved to the U.S.", "He moved to the U.S."),
    ("He moved to the U.S. and then", ""),
    ("John F. Kennedy spoke. Then", "John F. Kennedy spoke."),
    ("It costs $2.50 a ride. Fares", "It costs $2.50 a ride."),
    ("The original text is:", ""),                               # a stop sequence after a colon
    ("And then... nothing", ""),                                 # trailing off is not an end
])
def test_complete_sentences(text: str, expected: str) -> None:
    assert complete_sentences(text) == expected


def test_candidate_text_is_cut_back_whatever_stopped_generation() -> None:
    for reason in ("eos", "stop_sequence", "max_new_tokens", "time_budget"):
        out = candidate_text(SimpleNamespace(text="A fire hit a church. Firefighters from", stop_reason=reason))
        assert out == "A fire hit a church."


def test_cut_text_with_no_complete_sentence_is_never_published() -> None:
    candidate = candidate_text(SimpleNamespace(text="The fire at St.", stop_reason="max_new_tokens"))
    decision = decide(SOURCE, candidate, SummaryPolicy())
    assert decision.method == "extractive"
    assert decision.fallback_reason == "degenerate:incomplete"


@pytest.mark.parametrize("summary", [
    "Summary: The article discusses a fire at a church.",
    "The text is a summary of a news article about a fire.",
    "The above text describes how firefighters fought a fire.",
    "This passage highlights the bravery of the firefighters.",
    "The story is told in a somber way, with vivid imagery.",
    "Firefighters fought the fire; the text is well-structured and easy to follow.",
])
def test_meta_text_falls_back(summary: str) -> None:
    assert form_problem(SOURCE, summary) == "meta_text"
    decision = decide(SOURCE, summary, SummaryPolicy())
    assert decision.method == "extractive" and decision.fallback_reason == "degenerate:meta_text"


@pytest.mark.parametrize("summary", [
    "Firefighters from three towns fought a church fire for six hours, and nobody was hurt.",
    "The mayor said nobody was hurt in the fire at St. Mary's church.",
    "The speaker says the roof will be rebuilt by spring.",   # attribution carries content: not meta
])
def test_content_is_not_meta(summary: str) -> None:
    assert meta_text(SOURCE, summary) is None
    assert form_problem(SOURCE, summary) is None


def test_meta_words_the_source_itself_uses_are_allowed() -> None:
    source = "I read this text to my children every night. It is short. It is kind. It ends well. We love it."
    assert meta_text(source, "The speaker reads this text to the children every night.") is None


@pytest.mark.parametrize("summary", [
    "USA. USA. USA.",
    "Awesome job, great job, and a great job.",
    "The American public is suffering from a double standard when it comes to the American public.",
    "It was a triumph of populism, populism, and populism.",
    "It highlights the dedication and dedication of a teacher.",
])
def test_short_repeats_the_model_wrote_are_caught(summary: str) -> None:
    assert repeats(summary, SOURCE) is not None
    assert form_problem(SOURCE, summary) == "repetition"


def test_a_repeat_the_speaker_made_is_not_the_models() -> None:
    source = "This election is about real people, people who are suffering. They want work. They want hope."
    assert repeats("This election is about real people, people who are suffering.", source) is None


def test_a_number_must_count_what_the_source_counts() -> None:
    source = ("Under their budget, education would be cut by up to 20 percent. 200,000 fewer children would get "
              "a chance to enroll in Head Start. 10 million students could see their Pell Grants reduced.")
    assert number_attribution(source, "The budget cuts education by 20 percent.") == []
    assert number_attribution(source, "10 million students could see their grants reduced.") == []
    # the number counts the right noun; the verb it hangs on is beyond a lexical check
    assert number_attribution(source, "Head Start would be cut by 10 million students.") == []
    assert number_attribution(source, "The plan would cut 200,000 teachers.") == ["200,000 teachers"]
    decision = decide(source, "The plan would cut 200,000 teachers.", SummaryPolicy())
    assert decision.method == "extractive" and decision.fallback_reason == "unfaithful"
    assert "200,000 teachers" in decision.unsupported


def test_a_number_the_source_does_not_state_is_left_to_the_span_check() -> None:
    assert number_attribution(SOURCE, "Firefighters from 18 towns fought it.") == []
    assert decide(SOURCE, "Firefighters from 18 towns fought it.", SummaryPolicy()).method == "extractive"


def test_a_name_run_the_source_never_forms_states_a_role() -> None:
    source = ("The Republican governor of Ohio went after collective bargaining rights, and Governor Romney "
              "supported him. President Barack Obama stood with the workers.")
    assert name_runs(source, "Ohio Governor Romney cut public employees.") == ["Ohio Governor Romney"]
    assert name_runs(source, "Governor Romney supported the governor of Ohio.") == []
    assert name_runs(source, "President Obama stood with the workers.") == []  # a skipped first name is fine
    assert name_runs(source, "In Ohio, workers lost rights.") == []


def test_a_sentence_built_from_distant_parts_of_the_source_is_scattered() -> None:
    source = ("Jill Biden has taught for thirty years. She grades papers on the weekend. "
              "Our state budget grew this year. Roads were repaved across the county. "
              "Her husband got a big promotion.")
    assert scattered_sentences(source, "Jill Biden has taught for thirty years and grades papers.") == []
    swapped = "Her husband got a promotion for grading papers on the weekend."
    assert scattered_sentences(source, swapped) == [swapped]
    assert decide(source, swapped, SummaryPolicy()).fallback_reason == "unfaithful"
