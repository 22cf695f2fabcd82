"""Source-constrained decoding: the pure rules on known token pieces, and the decode loop on a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.inference.constraints import SourceConstraint, SourceIndex, TokenTable
from tests.fixtures_llm import TINY_TEXTS, build_tiny_llm_dir

# byte-level-style pieces: a leading space is part of the piece, digits are single pieces
PIECES = ["<eos>", " ", "1", "2", "8", " people", " killed", ",", ".", " The", "The", " In", " in", " Paris",
          " Ohio", " Rom", "ney", "care", " said", " eighteen", " twelve", " Monday", " Tuesday", "\n\n", " He",
          " Summary", ":", " Eight", "een", " seven", " French", " workers", "many", " many"]
TABLE = TokenTable.from_surfaces(["" if p == "<eos>" else p for p in PIECES])
ID = {p: i for i, p in enumerate(PIECES)}
SOURCE = "Mitt Romney said on Tuesday that 12 workers in Ohio lost their jobs."


def constraint(source: str = SOURCE) -> SourceConstraint:
    return SourceConstraint.for_source(source, TABLE, eos_ids=[ID["<eos>"]])


def logits(*ranked: str) -> np.ndarray:
    """Scores where `ranked[0]` is the greedy token, `ranked[1]` the runner-up, and so on."""
    out = np.full(len(PIECES), -10.0, dtype=np.float32)
    for rank, piece in enumerate(ranked):
        out[ID[piece]] = 10.0 - rank
    return out


def allowed(text: str, piece: str, source: str = SOURCE) -> bool:
    return constraint(source).allowed(text, ID[piece])


def test_a_number_absent_from_the_source_is_replaced_by_the_best_allowed_token():
    c = constraint()
    # "killed 18": "1" may start "12" (in the source), "8" would make "18" (not in it)
    assert c.choose(" killed ", logits("1", "2"), ID["1"]) == ID["1"]
    assert c.choose(" killed 1", logits("8", "2", " people"), ID["8"]) == ID["2"]
    assert (c.replaced, c.unresolved) == (1, 0)


def test_a_number_in_the_source_passes_digit_by_digit_and_when_finished():
    assert allowed("lost ", "1") and allowed("lost 1", "2") and allowed("lost 12", " workers")
    # "1" alone is a prefix of "12", but a finished "1" is a figure the source never states
    assert not allowed("lost 1", " people")


def test_number_words_count_as_numbers_in_either_spelling():
    src = SOURCE + " Eighteen states agreed."
    assert allowed("about", " twelve", src)          # the source says 12
    assert allowed("killed 1", "8", src) and allowed("killed 18", " people", src)  # it says "Eighteen"
    assert allowed("about", " eighteen", src)
    assert not allowed("about", " seven", src)
    assert allowed("", " Eight", src) and allowed(" Eight", "een", src)  # "Eight" may still become "Eighteen"
    assert not allowed("killed 1", "8")


def test_names_must_continue_a_source_word():
    assert allowed("In", " Ohio")
    assert not allowed("In", " Paris")
    assert not allowed("The", " French")
    assert not allowed("on", " Monday") and allowed("on", " Tuesday")
    # "Rom" + "ney" is the source's "Romney"; finishing "Rom" or writing "Romneycare" is not
    assert allowed("Mitt", " Rom") and allowed("Mitt Rom", "ney") and allowed("Mitt Romney", " said")
    assert not allowed("Mitt Rom", " said")
    assert not allowed("Mitt Romney", "care")


def test_a_name_that_is_only_a_prefix_of_a_source_word_is_refused_when_it_finishes():
    src = "Supporters of Romneycare met."
    assert allowed("Fans of", " Rom", src) and allowed("Fans of Rom", "ney", src)
    assert not allowed("Fans of Romney", " said", src)   # "Romney" is not a word of the source
    assert allowed("Fans of Romney", "care", src)


def test_an_all_caps_word_must_be_all_caps_in_the_source():
    table = TokenTable.from_surfaces([" BR", "IZ", " Bri", " US", " Us"])
    c = SourceConstraint.for_source("They bring the USA home.", table)
    assert not c.allowed("The", 0) and c.allowed("The", 2)   # "Bri" may become "Bring"; "BR" spells nothing
    assert c.allowed("in the", 3) and c.allowed("in the", 4)   # "Us" may still become "Usa"


def test_sentence_initial_common_words_stay_allowed():
    src = "workers lost jobs"  # no "The", "In", "He" anywhere, in any case
    assert allowed("", "The", src) and allowed("Jobs were lost.", " He", src) and allowed("x:", " In", src)
    assert not allowed("jobs lost", " The", src)        # mid-sentence "The" is a name here
    assert allowed("jobs lost", " in", src)             # lowercase words are never constrained
    assert not allowed("", " Summary", src)             # "Summary: ..." is not a source word either


def test_punctuation_after_a_finished_word_is_free():
    c = constraint()
    assert c.allowed("In Ohio", ID[","]) and c.allowed("In Ohio,", ID[" "]) and c.allowed("", ID["\n\n"])


def test_eos_or_a_newline_is_not_used_to_dodge_a_name_mid_sentence():
    c = constraint()
    # greedy " Paris"; the runner-up ends the row, which would cut the sentence: take " Ohio"
    assert c.choose("Workers in", logits(" Paris", "<eos>", "\n\n", " Ohio"), ID[" Paris"]) == ID[" Ohio"]
    # after a finished sentence, ending is a fine replacement
    assert c.choose("Workers lost jobs.", logits(" Paris", "<eos>", " Ohio"), ID[" Paris"]) == ID["<eos>"]


def test_a_refused_figure_is_replaced_by_words_before_another_figure_of_the_source():
    c = constraint()
    # "killed 8...": the source's 12 is likely 12 of something else; "many" states nothing new
    assert c.choose("Workers killed ", logits("8", "1", " many", "many"), ID["8"]) == ID[" many"]
    # no word among the top k: the source figure is the last resort
    c3 = SourceConstraint(SourceIndex(SOURCE), TABLE, top_k=3)
    assert c3.choose("Workers killed ", logits("8", "1", "2"), ID["8"]) == ID["1"]
    assert [(TABLE.surfaces[g], TABLE.surfaces[t]) for _, g, t in c.events + c3.events] == [("8", " many"), ("8", "1")]


def test_a_bare_space_is_never_the_replacement():
    c = constraint()
    assert c.choose("Workers in", logits(" Paris", " ", " Ohio"), ID[" Paris"]) == ID[" Ohio"]
    table = TokenTable.from_surfaces([" Paris", "\xa0", " Ohio"])
    scores = np.array([3.0, 2.0, 1.0], dtype=np.float32)
    assert SourceConstraint.for_source(SOURCE, table).choose("Workers in", scores, 0) == 2  # nor a no-break space


def test_after_the_bare_space_of_a_refused_digit_a_spaced_word_is_preferred_and_the_double_space_tidied():
    c = constraint()
    # " 8" is written " ", "8": "many" would glue onto the space, " many" leaves "killed  many"
    assert c.choose("Workers killed ", logits("8", "many", " many"), ID["8"]) == ID[" many"]
    assert c.tidy("Workers killed  many people.") == "Workers killed many people."
    assert constraint().tidy("a  b") == "a  b"  # a row the constraint never touched keeps its text


def test_no_allowed_token_in_top_k_keeps_the_greedy_token():
    c = SourceConstraint(SourceIndex(SOURCE), TABLE, top_k=2, eos_ids=[ID["<eos>"]])
    assert c.choose("In", logits(" Paris", " French", " Ohio"), ID[" Paris"]) == ID[" Paris"]
    assert (c.replaced, c.unresolved) == (0, 1)


def test_other_numeric_characters_are_figures():
    table = TokenTable.from_surfaces(["½", " half"])
    c = SourceConstraint.for_source("workers lost jobs", table)
    assert not c.allowed("lost ", 0) and c.allowed("lost", 1)


def test_source_index_numbers_and_initials():
    idx = SourceIndex("About 1,200 people, twenty-one of them from the United States of America, and 3 million.")
    assert {"1200", "1", "200", "21", "3"} <= idx.digits
    assert {"twenty", "one", "million", "three"} <= idx.number_words
    assert "uSA" in idx.words and "uS" in idx.words


def test_token_table_from_a_real_tokenizer_keeps_leading_spaces():
    from tests.fixtures_llm import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    table = TokenTable.from_tokenizer(tok)
    assert len(table.surfaces) == tok.get_vocab_size()
    assert table.surfaces[tok.token_to_id("city")] == " city"
    assert table.surfaces[tok.token_to_id("<|im_end|>")] == ""   # specials decode to nothing


# ---------------------------------------------------------------- the decode loop, tiny random model
@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_llm_dir(tmp_path_factory.mktemp("tiny-llm-constrained"))


def _load(model_dir: Path, **kw):
    from pipeline.inference.summarizer import Summarizer, SummarizerConfig

    cfg = dict(precision="fp32", intra_op_threads=1, max_new_tokens=12, stop_sequences=(), batch_size=8)
    cfg.update(kw)
    return Summarizer.load(model_dir, SummarizerConfig(**cfg))


# the tiny vocabulary is lower-case, so its checkable words are its number words
_NUMBER_WORDS = {"two", "four", "million"}


def test_constrained_generation_writes_no_number_absent_from_the_source(tiny_dir):
    free = _load(tiny_dir)
    constrained = _load(tiny_dir, constrain_to_source=True)
    assert not any(_NUMBER_WORDS & set(t.split()) for t in TINY_TEXTS)
    free_out = free.summarize(TINY_TEXTS)
    out = constrained.summarize(TINY_TEXTS)
    invented = [i for i, o in enumerate(free_out) if _NUMBER_WORDS & set(o.text.split())]
    assert invented, "the random model must invent a number for this test to mean anything"
    assert len(out) == len(TINY_TEXTS)
    for i, (a, b) in enumerate(zip(free_out, out, strict=True)):
        assert not (_NUMBER_WORDS & set(b.text.split()))
        if i not in invented:
            assert a.text == b.text  # rows with nothing to refuse decode exactly as without the constraint


def test_a_source_containing_every_word_leaves_generation_unchanged(tiny_dir):
    from tests.fixtures_llm import WORDS

    free = _load(tiny_dir)
    model = _load(tiny_dir, constrain_to_source=True)
    everything = " ".join(WORDS)
    prompts = [model.build_prompt(t)[0] for t in TINY_TEXTS]
    rows = [model.source_constraint(everything) for _ in prompts]
    assert model.generate_ids(prompts, constraints=rows) == free.generate_ids(prompts)
    assert all(r.replaced == 0 for r in rows)


def test_constrained_batch_equals_one_by_one(tiny_dir):
    model = _load(tiny_dir, constrain_to_source=True, batch_size=8)
    batched = model.summarize(TINY_TEXTS)
    alone = [model.summarize([t])[0] for t in TINY_TEXTS]
    assert [o.text for o in batched] == [o.text for o in alone]
