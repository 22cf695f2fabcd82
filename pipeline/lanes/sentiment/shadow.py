"""Shadow mode: a second sentiment model scores a sample of the stream next to the primary.

A user can try a cheaper (or better) model on real traffic before switching: the worker
reports how often the shadow's label equals the primary's (Prometheus counters by label
pair + a periodic log line). Shadow results are never published.

The primary must not notice the shadow: `offer` never raises and never waits. The shadow
runs on its own single thread (and one ONNX thread); while it is still scoring the previous
sample, new samples are dropped and counted (`busy`) instead of queueing, so a slow shadow
costs CPU share, never memory or latency of the primary batch. A failing shadow is
counted and logged; the primary's results are already on their way.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pipeline.lanes.sentiment.enrichment import Classifier
from pipeline.logs import get_logger, mark_sensitive
from pipeline.runtime.metrics import WorkerMetrics

log = get_logger("streamnlp.shadow")

__all__ = ["ShadowConfig", "ShadowItem", "ShadowScorer", "sampled"]


@dataclass(frozen=True)
class ShadowConfig:
    sample_rate: float = 0.1


@dataclass(frozen=True)
class ShadowItem:
    event_id: str
    text: str
    primary_label: str


def sampled(event_id: str, rate: float) -> bool:
    """Whether `event_id` is in the sample: a hash, so every worker and every restart picks the same events."""
    if rate >= 1.0:
        return True
    return zlib.crc32(event_id.encode("utf-8")) < rate * 2**32


@dataclass
class ShadowStats:
    compared: int = 0
    agreed: int = 0
    skipped_busy: int = 0
    errors: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    def snapshot(self) -> dict[str, Any]:
        disagreements = {f"{p}->{s}": n for (p, s), n in sorted(self.confusion.items()) if p != s}
        agreement = self.agreement
        return {"compared": self.compared, "agreement": None if agreement is None else round(agreement, 4),
                "disagreements": disagreements, "skipped_busy": self.skipped_busy, "errors": self.errors}


class ShadowScorer:
    """Scores sampled events with the shadow classifier off the primary's path and tallies agreement."""

    def __init__(self, classifier: Classifier, config: ShadowConfig, metrics: WorkerMetrics,
                 executor: ThreadPoolExecutor | None = None) -> None:
        self.classifier = classifier
        self.config = config
        self.metrics = metrics
        self.stats = ShadowStats()
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._idle = threading.Lock()  # held while a sample is being scored
        self._stats_lock = threading.Lock()
        self._model_label = f"shadow:{classifier.info.name}"

    def offer(self, items: Sequence[ShadowItem]) -> None:
        """Hand over a batch's scored events; the sampled ones are scored later. Never raises, never blocks."""
        try:
            chosen = [item for item in items if sampled(item.event_id, self.config.sample_rate)]
            if not chosen:
                return
            if not self._idle.acquire(blocking=False):
                with self._stats_lock:
                    self.stats.skipped_busy += len(chosen)
                self.metrics.shadow_skipped("busy", len(chosen))
                return
            try:
                self._executor.submit(self._score, chosen)
            except BaseException:
                self._idle.release()
                raise
        except Exception as exc:  # noqa: BLE001 - the shadow must never break the primary
            self._failed(len(items), exc)

    def _score(self, chosen: list[ShadowItem]) -> None:
        try:
            mark_sensitive(item.text for item in chosen)  # this thread's log lines never quote the texts
            started = time.perf_counter()
            predictions = self.classifier.predict([item.text for item in chosen])
            self.metrics.inference(self._model_label, time.perf_counter() - started)
            pairs = [(item.primary_label, p.label) for item, p in zip(chosen, predictions, strict=True)]
            with self._stats_lock:
                self.stats.compared += len(pairs)
                self.stats.agreed += sum(primary == shadow for primary, shadow in pairs)
                self.stats.confusion.update(pairs)
                ratio = self.stats.agreed / self.stats.compared
            self.metrics.shadow_compared(pairs, ratio)
        except Exception as exc:  # noqa: BLE001 - counted and logged, never raised
            self._failed(len(chosen), exc)
        finally:
            self._idle.release()

    def _failed(self, count: int, exc: BaseException) -> None:
        with self._stats_lock:
            self.stats.errors += count
        self.metrics.shadow_skipped("error", count)
        log.warning("shadow_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}", events=count)

    def snapshot(self) -> dict[str, Any]:
        with self._stats_lock:
            return {"shadow_model": self.classifier.info.name, "sample_rate": self.config.sample_rate,
                    **self.stats.snapshot()}

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
