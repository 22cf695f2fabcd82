"""Candidate summaries of the committed long texts, as the lane's own model writes them.

Every change to model, precision, prompt or decoding writes new text, so candidates are always
regenerated, never stored as the truth: what is stored is the *labels* (summaries/labels.jsonl),
keyed by text id and the candidate's exact text, and `streamnlp eval` reports how many of the
regenerated candidates have no label yet.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.tools.evaluation.longtexts import LongText, load_long_texts

__all__ = ["Candidate", "candidate_key", "generate_candidates"]


@dataclass(frozen=True)
class Candidate:
    text_id: str
    split: str
    config: str
    raw: str            # what the model wrote (lead-in and stop sequence removed)
    candidate: str      # what the policy judges (a capped sentence dropped; "" = nothing complete)
    stop_reason: str
    new_tokens: int


def candidate_key(text_id: str, candidate: str) -> str:
    """Labels are keyed by text and the exact candidate text: new text needs a new label."""
    return hashlib.sha256(f"{text_id}\n{candidate.strip()}".encode()).hexdigest()[:16]


def generate_candidates(model_dir: Path, config_name: str, texts: list[LongText], *, precision: str = "int8",
                        max_new_tokens: int = 48, batch_size: int = 4, threads: int = 2,
                        constrain_to_source: bool = False,
                        progress: Callable[[int, int, float], None] | None = None) -> list[Candidate]:
    from pipeline.inference.summarizer import Summarizer, SummarizerConfig
    from pipeline.lanes.summary.text import candidate_text

    model = Summarizer.load(model_dir, SummarizerConfig(
        precision=precision, max_new_tokens=max_new_tokens, batch_size=batch_size, intra_op_threads=threads,
        constrain_to_source=constrain_to_source))
    out: list[Candidate] = []
    started = time.monotonic()
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        for t, g in zip(chunk, model.summarize([t.text for t in chunk]), strict=True):
            out.append(Candidate(t.id, t.split, config_name, g.text, candidate_text(g) or "", g.stop_reason,
                                 g.new_tokens))
        if progress:
            progress(len(out), len(texts), time.monotonic() - started)
    return out


def main(argv: list[str]) -> None:
    model_dir, config_name, precision, max_new, out_path = argv[:5]
    texts = load_long_texts()

    def show(done: int, total: int, elapsed: float) -> None:
        eta = elapsed / done * (total - done)
        print(f"\r{config_name}: {done}/{total} texts, {elapsed:.0f} s, ~{eta:.0f} s left", end="", file=sys.stderr)

    cands = generate_candidates(Path(model_dir), config_name, texts, precision=precision,
                                max_new_tokens=int(max_new), progress=show)
    print(file=sys.stderr)
    with open(out_path, "w", encoding="utf-8") as fh:
        for c in cands:
            fh.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
