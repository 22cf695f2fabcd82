"""The sample events (samples/events.jsonl): what the demo sends, and the labelled texts the benchmark,
the evaluation and the tests draw from."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import cycle, islice
from pathlib import Path

import orjson

from pipeline.settings import REPO_ROOT

DEFAULT_SAMPLES = REPO_ROOT / "samples" / "events.jsonl"


def labelled_samples(path: Path = DEFAULT_SAMPLES) -> list[dict]:
    """The sample events that carry a gold label; the file's malformed lines carry none."""
    out = []
    for line in path.read_bytes().splitlines():
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("id"), str) and (obj.get("metadata") or {}).get("gold_label"):
            out.append(obj)
    return out


def sample_lines(path: Path, count: int | None) -> Iterator[bytes]:
    """The sample file's lines; beyond one pass, ids get a `-rN` suffix so every event is distinct."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path} has no events")
    total = len(lines) if count is None else count
    for index, line in enumerate(islice(cycle(lines), total)):
        round_no = index // len(lines)
        if round_no:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                obj["id"] = f"{obj['id']}-r{round_no}"
                line = orjson.dumps(obj)
        yield line
