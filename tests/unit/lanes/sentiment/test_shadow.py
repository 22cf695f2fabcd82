"""Shadow mode: sampling, agreement bookkeeping, and that the shadow can never hurt the primary."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson

from pipeline.lanes.sentiment.agent import SentimentAgent
from pipeline.lanes.sentiment.enrichment import BatchEnricher, EnricherConfig
from pipeline.lanes.sentiment.shadow import ShadowConfig, ShadowItem, ShadowScorer, sampled
from pipeline.runtime.metrics import WorkerMetrics
from tests.doubles import MemoryTopic, PoisonAwareClassifier, StubPrediction, text_events
from tests.scrape import parse


@dataclass(frozen=True)
class StubModelInfo:
    name: str = "shadow-stub"
    version: str = "1"


class FixedClassifier:
    info = StubModelInfo()

    def __init__(self, label: str = "positive", fail: bool = False, gate: threading.Event | None = None) -> None:
        self.label, self.fail, self.gate = label, fail, gate
        self.calls = 0

    def predict(self, texts: Sequence[str]) -> list[StubPrediction]:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise RuntimeError("shadow model exploded")
        return [StubPrediction(self.label, 0.9, False) for _ in texts]


def _items(n: int, label: str = "positive") -> list[ShadowItem]:
    return [ShadowItem(f"id-{i}", f"text {i}", label) for i in range(n)]


def _drain(scorer: ShadowScorer) -> None:
    """Wait until the shadow thread is idle again (its lock is free)."""
    deadline = time.monotonic() + 5
    while not scorer._idle.acquire(timeout=0.05):
        assert time.monotonic() < deadline, "shadow never finished"
    scorer._idle.release()


def test_sampling_is_by_id_stable_and_proportional() -> None:
    ids = [f"event-{i}" for i in range(20_000)]
    chosen = [i for i in ids if sampled(i, 0.25)]
    assert chosen == [i for i in ids if sampled(i, 0.25)], "the same ids every time"
    assert 0.23 < len(chosen) / len(ids) < 0.27
    assert not any(sampled(i, 0.0) for i in ids[:1000]) and all(sampled(i, 1.0) for i in ids[:1000])


def test_agreement_and_confusion_are_reported() -> None:
    metrics = WorkerMetrics()
    scorer = ShadowScorer(FixedClassifier("positive"), ShadowConfig(sample_rate=1.0), metrics)
    scorer.offer(_items(3, "positive") + _items(1, "negative"))
    _drain(scorer)
    snap = scorer.snapshot()
    assert snap["compared"] == 4 and snap["agreement"] == 0.75 and snap["disagreements"] == {"negative->positive": 1}
    samples = parse(metrics.render()[0].decode())
    assert samples.get("streamnlp_shadow_comparisons_total", primary_label="positive", shadow_label="positive") == 3
    assert samples.get("streamnlp_shadow_comparisons_total", primary_label="negative", shadow_label="positive") == 1
    assert samples.get("streamnlp_shadow_agreement_ratio") == 0.75
    assert samples.get("streamnlp_inference_seconds_count", model="shadow:shadow-stub") == 1
    scorer.close()


def test_a_failing_shadow_is_counted_not_raised() -> None:
    metrics = WorkerMetrics()
    scorer = ShadowScorer(FixedClassifier(fail=True), ShadowConfig(sample_rate=1.0), metrics)
    scorer.offer(_items(5))
    _drain(scorer)
    assert scorer.snapshot()["errors"] == 5 and scorer.snapshot()["compared"] == 0
    assert parse(metrics.render()[0].decode()).get("streamnlp_shadow_skipped_total", reason="error") == 5
    scorer.close()


def test_a_busy_shadow_drops_samples_instead_of_queueing() -> None:
    release = threading.Event()
    classifier = FixedClassifier(gate=release)
    scorer = ShadowScorer(classifier, ShadowConfig(sample_rate=1.0), WorkerMetrics())
    scorer.offer(_items(2))
    started = time.perf_counter()
    scorer.offer(_items(3))  # the first sample is still being scored
    assert time.perf_counter() - started < 0.5, "offer must not wait for the shadow"
    release.set()
    _drain(scorer)
    snap = scorer.snapshot()
    assert classifier.calls == 1 and snap["skipped_busy"] == 3 and snap["compared"] == 2
    scorer.close()


async def test_the_primary_publishes_even_when_the_shadow_fails() -> None:
    out, dlq = MemoryTopic(), MemoryTopic()
    shadow = ShadowScorer(FixedClassifier(fail=True), ShadowConfig(sample_rate=1.0), WorkerMetrics())
    agent = SentimentAgent(enricher=BatchEnricher(EnricherConfig(worker="t")), classifier=PoisonAwareClassifier(),
                           output_topic=out, dlq_topic=dlq,  # type: ignore[arg-type]
                           executor=ThreadPoolExecutor(max_workers=1), shadow=shadow)
    await agent.process(text_events(["good", "fine", "great"]))  # type: ignore[arg-type]
    assert sorted(k for k, _, _ in out.records) == [b"e0", b"e1", b"e2"] and not dlq.records
    assert all(orjson.loads(v)["sentiment"]["label"] == "positive" for _, v, _ in out.records)
    _drain(shadow)
    assert shadow.snapshot()["errors"] == 3
    shadow.close()
