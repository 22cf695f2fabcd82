"""Prometheus metrics of one worker: the definitions and the small typed methods agents call.

Each `WorkerMetrics` owns its own `CollectorRegistry` (there is no module-global
registry), so a process or a test can hold several workers' metrics side by side.
Agents and the app call the methods below; nothing else in the worker touches
prometheus_client, and inference code does not know metrics exist.

Metric names (all prefixed `streamnlp_`) are listed in docs/operations.md, "Operating:
metrics and health".
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)

NAMESPACE = "streamnlp"

Lane = Literal["sentiment", "summary"]
ModelRole = Literal["sentiment", "summarizer", "shadow", "toxicity"]

# Up to the largest allowed STREAMNLP_BATCH_MAX_SIZE (4096), powers of two like the batch sizes people pick.
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
# A sentiment batch takes ~5 ms to a few seconds (128 long texts on a busy CPU); a summary batch up to its 30 s budget.
INFERENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# ~0.1 s at light load (docs/batching.md), minutes while a backlog drains.
END_TO_END_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class WorkerMetrics:
    """Every metric of one worker, in one registry; the methods are what agents and the app may call."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r, ns = self.registry, NAMESPACE
        # The standard process_* (RSS, CPU, open fds) and python_gc_* families: the default registry
        # has them, a private one must add them (memory alerts and the soak's RSS need no other exporter).
        ProcessCollector(registry=r)
        GCCollector(registry=r)
        self._events_in = Counter("events_in", "Records consumed from the input topic.", namespace=ns, registry=r)
        self._events_out = Counter(
            "events_enriched", "Enriched events published and acknowledged by the broker.", namespace=ns, registry=r)
        self._dead_lettered = Counter(
            "events_dead_lettered", "Dead letters published and acknowledged, by lane and error code.",
            ["lane", "error_code"], namespace=ns, registry=r)
        self._batch_size = Histogram(
            "batch_size", "Records per micro-batch taken from Kafka.", ["lane"],
            buckets=BATCH_SIZE_BUCKETS, namespace=ns, registry=r)
        self._inference = Histogram(
            "inference_seconds", "Wall time of one model call on a batch (off the event loop).", ["model"],
            buckets=INFERENCE_BUCKETS, namespace=ns, registry=r)
        self._end_to_end = Histogram(
            "end_to_end_seconds",
            "From the input record's Kafka timestamp to the broker acknowledging its output.", ["lane"],
            buckets=END_TO_END_BUCKETS, namespace=ns, registry=r)
        self._lag = Gauge(
            "consumer_lag", "Records not yet committed by this worker's group (highwater - committed), per assigned partition.",
            ["topic", "partition"], namespace=ns, registry=r)
        self._buffer_full = Counter(
            "buffer_full", "Times a partition's stream buffer filled up and fetching from it was paused (backpressure).",
            ["topic", "partition"], namespace=ns, registry=r)
        self._summary_backlog = Gauge(
            "summary_backlog", "Summary requests queued behind the last summary batch.", namespace=ns, registry=r)
        self._summaries = Counter(
            "summaries", "Summaries published, by method (abstractive or extractive).", ["method"],
            namespace=ns, registry=r)
        self._fallbacks = Counter(
            "summary_fallbacks",
            "Summaries published as extractive instead of abstractive, by reason "
            "(unfaithful, degenerate, backlog, generation_error, disabled = extractive mode).",
            ["reason"], namespace=ns, registry=r)
        self._sentiment_skipped = Counter(
            "sentiment_skipped", "Enriched events published with sentiment null, by reason (unsupported_language).",
            ["reason"], namespace=ns, registry=r)
        self._languages = Counter(
            "languages", "Texts by detected language (reliable detections; 'und' = too short to tell).",
            ["language"], namespace=ns, registry=r)
        self._toxicity = Counter(
            "toxicity", "Enriched events by toxicity label ('offensive', 'clean'; 'skipped:<reason>' when not scored).",
            ["label"], namespace=ns, registry=r)
        self._shadow_comparisons = Counter(
            "shadow_comparisons",
            "Events scored by both the primary and the shadow sentiment model, by the two labels "
            "(equal labels = agreement; the rest is the confusion matrix).",
            ["primary_label", "shadow_label"], namespace=ns, registry=r)
        self._shadow_agreement = Gauge(
            "shadow_agreement_ratio", "Share of compared events where the shadow model's label equals the primary's, "
            "since the worker started.", namespace=ns, registry=r)
        self._shadow_skipped = Counter(
            "shadow_skipped", "Sampled events the shadow model did not score: busy (still on the previous sample) or error.",
            ["reason"], namespace=ns, registry=r)
        self._windows_closed = Counter(
            "windows_closed", "Sentiment windows closed and published, by whether they raised an alert.",
            ["alert"], namespace=ns, registry=r)
        self._window_late = Counter(
            "window_late_events", "Enriched events whose window had already closed (not counted in any window).",
            namespace=ns, registry=r)
        self._window_future = Counter(
            "window_future_events", "Enriched events whose time was ahead of the wall clock by more than the tolerance "
            "(counted in the window of their Kafka timestamp instead).", namespace=ns, registry=r)
        self._model = Info("model", "Loaded models.", ["role"], namespace=ns, registry=r)
        self._lag_labels: set[tuple[str, str]] = set()

    # --- sentiment lane -------------------------------------------------------------------
    def events_consumed(self, count: int) -> None:
        self._events_in.inc(count)

    def events_enriched(self, count: int) -> None:
        self._events_out.inc(count)

    def dead_lettered(self, lane: Lane, error_codes: Iterable[str]) -> None:
        for code in error_codes:
            self._dead_lettered.labels(lane=lane, error_code=code).inc()

    def batch(self, lane: Lane, size: int) -> None:
        self._batch_size.labels(lane=lane).observe(size)

    def inference(self, model: str, seconds: float) -> None:
        self._inference.labels(model=model).observe(seconds)

    def end_to_end(self, lane: Lane, kafka_timestamps_s: Iterable[float | None], acked_at: float | None = None) -> None:
        """One observation per record; records without a timestamp (or with a future one) are skipped / clamped."""
        now = time.time() if acked_at is None else acked_at
        child = self._end_to_end.labels(lane=lane)
        for ts in kafka_timestamps_s:
            if ts:
                # Producer clocks drift; a negative latency would only distort the low buckets.
                child.observe(max(0.0, now - ts))

    def sentiment_skipped(self, reason: str, count: int = 1) -> None:
        self._sentiment_skipped.labels(reason=reason).inc(count)

    def languages_detected(self, codes: Iterable[str]) -> None:
        for code in codes:
            self._languages.labels(language=code).inc()

    def toxicity_labelled(self, labels: Iterable[str]) -> None:
        for label in labels:
            self._toxicity.labels(label=label).inc()

    # --- shadow model ----------------------------------------------------------------------
    def shadow_compared(self, pairs: Iterable[tuple[str, str]], agreement_ratio: float) -> None:
        """(primary label, shadow label) per compared event, and the running agreement."""
        for primary, shadow in pairs:
            self._shadow_comparisons.labels(primary_label=primary, shadow_label=shadow).inc()
        self._shadow_agreement.set(agreement_ratio)

    def shadow_skipped(self, reason: Literal["busy", "error"], count: int) -> None:
        self._shadow_skipped.labels(reason=reason).inc(count)

    # --- summary lane ---------------------------------------------------------------------
    def summary_backlog(self, queued: int) -> None:
        self._summary_backlog.set(queued)

    def summary_published(self, method: str, fallback_reason: str | None) -> None:
        self._summaries.labels(method=method).inc()
        if method != "abstractive":
            self._fallbacks.labels(reason=fallback_reason or "unknown").inc()

    # --- windowed aggregates --------------------------------------------------------------
    def window_closed(self, alert: bool) -> None:
        self._windows_closed.labels(alert=str(alert).lower()).inc()

    def window_late_event(self, count: int = 1) -> None:
        self._window_late.inc(count)

    def window_future_event(self, count: int = 1) -> None:
        self._window_future.inc(count)

    # --- worker ---------------------------------------------------------------------------
    def model_loaded(self, role: ModelRole, *, name: str, version: str, precision: str) -> None:
        self._model.labels(role=role).info({"name": name, "version": version, "precision": precision})

    def consumer_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """Replace the per-partition lag; partitions no longer assigned disappear instead of going stale."""
        current = {(topic, str(partition)): value for (topic, partition), value in lag.items()}
        for gone in self._lag_labels - current.keys():
            self._lag.remove(*gone)
        for (topic, partition), value in current.items():
            self._lag.labels(topic=topic, partition=partition).set(max(0, value))
        self._lag_labels = set(current)

    def buffer_full(self, topic: str, partition: int) -> None:
        self._buffer_full.labels(topic=topic, partition=str(partition)).inc()

    # --- exposition -----------------------------------------------------------------------
    def render(self) -> tuple[bytes, str]:
        """The registry in Prometheus text format, and its content type."""
        # 0.0.4: the format generate_latest writes, and the one every Prometheus version parses.
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
