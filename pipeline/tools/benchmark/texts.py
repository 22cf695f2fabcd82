"""The benchmark's texts: a fixed, seeded mix of short and medium sample texts, all below the summarizer threshold."""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from pathlib import Path

from pipeline.tools.samples import DEFAULT_SAMPLES, labelled_samples

#: Shorter than this is "short" (a one-line review); from here to the summary threshold "medium".
SHORT_MAX_CHARS = 120


@dataclass(frozen=True)
class BenchTexts:
    texts: list[str]
    short_share: float
    seed: int

    def stats(self) -> dict[str, float | int]:
        lengths = sorted(len(t) for t in self.texts)
        return {
            "count": len(lengths), "seed": self.seed, "short_share": self.short_share,
            "short_max_chars": SHORT_MAX_CHARS,
            "chars_min": lengths[0], "chars_p50": int(statistics.median(lengths)),
            "chars_mean": round(statistics.fmean(lengths), 1), "chars_max": lengths[-1],
            "short": sum(1 for n in lengths if n < SHORT_MAX_CHARS),
        }


def sample_pools(summary_min_chars: int, path: Path = DEFAULT_SAMPLES) -> tuple[list[str], list[str], list[str]]:
    """(short, medium, long) texts of the labelled samples; long = at least `summary_min_chars`."""
    texts = [str(e["text"]) for e in labelled_samples(path)]
    short = [t for t in texts if len(t) < SHORT_MAX_CHARS]
    medium = [t for t in texts if SHORT_MAX_CHARS <= len(t) < summary_min_chars]
    long = [t for t in texts if len(t) >= summary_min_chars]
    if not short or not medium:
        raise ValueError(f"{path} needs labelled texts both under {SHORT_MAX_CHARS} chars and under {summary_min_chars}")
    return short, medium, long


def bench_texts(count: int, *, summary_min_chars: int, seed: int = 6, short_share: float = 0.5) -> BenchTexts:
    """`count` texts, each short with probability `short_share`, else medium; same seed, same list."""
    short, medium, _ = sample_pools(summary_min_chars)
    rng = random.Random(seed)
    texts = [rng.choice(short) if rng.random() < short_share else rng.choice(medium) for _ in range(count)]
    return BenchTexts(texts=texts, short_share=short_share, seed=seed)


def long_texts(count: int, *, summary_min_chars: int, seed: int = 6) -> list[str]:
    """`count` texts long enough for the summary lane (cycled from the samples' long texts)."""
    _, _, long = sample_pools(summary_min_chars)
    if not long:
        raise ValueError(f"no sample text reaches summary_min_chars={summary_min_chars}")
    rng = random.Random(seed)
    return [rng.choice(long) for _ in range(count)]
