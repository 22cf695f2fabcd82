"""`streamnlp bench` at a tiny size: every lane runs and the report has its parts (no timing asserts)."""

from __future__ import annotations

import pytest

from pipeline.tools.benchmark.meter import percentiles
from pipeline.tools.benchmark.texts import SHORT_MAX_CHARS, bench_texts

pytestmark = [pytest.mark.integration, pytest.mark.needs_model]


def test_texts_are_seeded_and_below_the_summary_threshold() -> None:
    first, again = bench_texts(50, summary_min_chars=400), bench_texts(50, summary_min_chars=400)
    assert first.texts == again.texts
    assert all(len(t) < 400 for t in first.texts)
    stats = first.stats()
    assert 0 < stats["short"] < 50 and stats["short_max_chars"] == SHORT_MAX_CHARS


def test_percentiles_nearest_rank() -> None:
    assert percentiles(range(1, 101)) == {"n": 100, "p50_ms": 50, "p95_ms": 95, "p99_ms": 99}
    assert percentiles([])["p99_ms"] is None

