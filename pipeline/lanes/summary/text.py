"""The model's candidate summary as the policy judges it: pure text handling, no model, no Kafka.

The summary agent and the evaluation both judge a generated summary; both take its text from here,
so the evaluation measures what the service would publish.
"""

from __future__ import annotations

import re
from typing import Protocol

__all__ = ["Candidate", "candidate_text", "complete_sentences"]

_SENTENCE_END = re.compile(r"[.!?…][\"')\]]?(?=\s|$)")


class Candidate(Protocol):
    """A generated summary; `stop_reason`, when a generator reports one, is read if present."""

    @property
    def text(self) -> str: ...


def candidate_text(candidate: Candidate | None) -> str | None:
    """The model's text as the policy judges it: a sentence cut off by a token or time cap is dropped."""
    if candidate is None:
        return None
    if getattr(candidate, "stop_reason", "") in ("max_new_tokens", "time_budget"):
        return complete_sentences(candidate.text)
    return candidate.text


def complete_sentences(text: str) -> str:
    """Drop a sentence cut off by the token cap; keep the text if no sentence is complete."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else text
