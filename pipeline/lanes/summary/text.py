"""The model's candidate summary as the policy judges it: pure text handling, no model, no Kafka.

The summary agent and the evaluation both judge a generated summary; both take its text from here,
so the evaluation measures what the service would publish.

Only complete sentences are ever published. A generation stopped by the token or time cap, by a
stop sequence or even by EOS can end mid-sentence ("... a theft of a 28-") or at an abbreviation
("The fire at St."); the text is cut back to its last complete sentence, and when no sentence is
complete the candidate is empty, so the policy falls back to the extractive summary instead of
publishing cut text (issue 14: two of 22 published summaries on real news were cut).
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["Candidate", "candidate_text", "complete_sentences", "ABBREVIATIONS"]

# A sentence ends at . ! ? (optionally closed by a quote or bracket) before whitespace or the end.
# "..." and "…" trail off rather than end a thought: not an end.
_SENTENCE_END = re.compile(r"(?<!\.\.)[.!?][\"'”’)\]]?(?=\s|$)")
#: Words whose trailing period is part of the word, never a sentence end (lower-case, no period).
ABBREVIATIONS = frozenset(
    "mr mrs ms mx dr prof st sr jr rev gen gov sen rep lt col capt sgt cpl maj adm pres supt hon "
    "mt ft no vs etc inc corp ltd co dept univ jan feb mar apr jun jul aug sep sept oct nov dec "
    "e.g i.e approx est fig".split()
)
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")


class Candidate(Protocol):
    """A generated summary; `stop_reason`, when a generator reports one, is read if present."""

    @property
    def text(self) -> str: ...


def candidate_text(candidate: Candidate | None) -> str | None:
    """The model's text as the policy judges it: cut back to its last complete sentence.

    When no sentence is complete the text is returned as is, so the policy can name the reason
    ("degenerate:incomplete") rather than see an empty candidate; it never publishes it.
    """
    if candidate is None:
        return None
    return complete_sentences(candidate.text) or candidate.text.strip()


def _is_end(text: str, match: re.Match[str]) -> bool:
    if text[match.start()] != ".":
        return True
    word = _WORD_BEFORE.search(text[: match.start()])
    if word is None:
        return True
    token = word.group(1)
    if token.lower().rstrip(".") in ABBREVIATIONS:
        return False
    rest = text[match.end():]
    if len(token) == 1 and token.isupper():  # an initial ("John F. Kennedy"): ends only before a capital
        return bool(re.match(r"\s+[A-Z]", rest))
    if re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", token):  # "U.S.", "D.C.": ends at the end or before a capital
        return not rest or bool(re.match(r"\s+[A-Z]", rest))
    return True


def complete_sentences(text: str) -> str:
    """`text` up to the end of its last complete sentence; "" if no sentence is complete."""
    text = text.strip()
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if _is_end(text, m)]
    return text[: ends[-1]].strip() if ends else ""
