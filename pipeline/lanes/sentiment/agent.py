"""The sentiment agent: micro-batches from Kafka through the enricher and back out.

It runs on the at-least-once batch core (pipeline/runtime/batches.py). Delivery is at-least-once. Faust's `take_events` acks a batch's events (making
their offsets committable) when the agent body returns control, so the body only
returns after every enriched record and dead letter of the batch has been
acknowledged by the broker. Cancellation (shutdown) waits for the batch in
flight; if it cannot be published the process exits without acking, so the
batch is consumed again after a restart instead of being lost.

Publishing tells two kinds of failure apart. One that is a property of the record
(its output is over the producer's size limit, or the broker refuses it even when
sent alone: `RECORD_REFUSALS`) dead-letters that record's input and the batch moves
on; retrying or restarting could never get it through. Anything else (broker down,
timeouts) is retried, then the worker exits without committing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust

from pipeline.deadletter import Outgoing, RawRecord
from pipeline.inference.language import LanguageGate
from pipeline.lanes.sentiment.enrichment import BatchEnricher, Classifier, Scored, ToxicityModel, score_texts
from pipeline.lanes.sentiment.grouping import short_then_long
from pipeline.lanes.sentiment.shadow import ShadowItem, ShadowScorer
from pipeline.logs import get_logger
from pipeline.runtime.batches import (
    DeadLetterRoute,
    elapsed_ms,
    error_code,
    kafka_timestamp,
    publish_all,
    raw_record,
    run_batches,
)
from pipeline.runtime.metrics import WorkerMetrics
from schemas.events import EnrichedEvent

log = get_logger("streamnlp.agent")

@dataclass
class AgentStats:
    consumed: int = 0
    enriched: int = 0
    dead_lettered: int = 0
    sentiment_skipped: int = 0
    offensive: int = 0
    summary_requests: int = 0
    batches: int = 0
    inference_ms_total: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def snapshot(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "enriched": self.enriched,
            "dead_lettered": self.dead_lettered,
            "sentiment_skipped": self.sentiment_skipped,
            "offensive": self.offensive,
            "summary_requests": self.summary_requests,
            "batches": self.batches,
            "mean_batch": round(self.consumed / self.batches, 1) if self.batches else 0.0,
            "inference_ms_total": round(self.inference_ms_total, 1),
            "uptime_s": round(time.monotonic() - self.started, 1),
        }


class SentimentAgent:
    """Owns one batch at a time: decode, classify off the loop, publish, await acks."""

    def __init__(
        self,
        *,
        enricher: BatchEnricher,
        classifier: Classifier,
        output_topic: faust.TopicT,
        dlq_topic: faust.TopicT,
        executor: ThreadPoolExecutor,
        requests_topic: faust.TopicT | None = None,
        metrics: WorkerMetrics | None = None,
        gate: LanguageGate | None = None,
        shadow: ShadowScorer | None = None,
        toxicity: ToxicityModel | None = None,
    ) -> None:
        self.enricher = enricher
        self.classifier = classifier
        self.toxicity = toxicity  # None: toxicity off (every event says "disabled")
        self.gate = gate
        self.shadow = shadow
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic
        self.requests_topic = requests_topic
        self.executor = executor
        self.stats = AgentStats()
        config = enricher.config
        self.dead_letters = DeadLetterRoute(dlq_topic, worker=config.worker, payload_cap_bytes=config.dlq_payload_cap_bytes,
                                            max_record_bytes=config.max_record_bytes)
        # A private registry when none is given: tests and tools need not care about metrics.
        self.metrics = metrics if metrics is not None else WorkerMetrics()

    async def run(self, stream: faust.StreamT, *, max_batch: int, max_wait_s: float) -> None:
        await run_batches(stream, self.process, max_batch=max_batch, max_wait_s=max_wait_s)

    async def process(self, events: Sequence[faust.EventT]) -> None:
        ingested_at = datetime.now(UTC)
        started = time.perf_counter()
        records = [raw_record(event) for event in events]
        # Pairs with batch_done: a batch_started without its batch_done is the batch in flight
        # (what to look for when a worker seems stuck; the SIGTERM fault test waits for it).
        log.debug("batch_started", size=len(records))
        self.metrics.events_consumed(len(records))
        self.metrics.batch("sentiment", len(records))
        # Short texts are scored and published before the batch's long ones (grouping.py says why);
        # both groups are acknowledged before this returns, so run_batches still commits after publish.
        short, long = short_then_long([(r.key, len(r.value or b"")) for r in records],
                                      self.enricher.config.summary_min_chars)
        groups = [(events, records)] if not long else [
            ([events[i] for i in group], [records[i] for i in group]) for group in (short, long) if group]
        stats = self.stats
        before = (stats.enriched, stats.dead_lettered, stats.inference_ms_total)
        publish_ms = 0.0
        for group_events, group_records in groups:
            publish_ms += await self._process_group(group_events, group_records, ingested_at)
        stats.consumed += len(records)
        stats.batches += 1
        log.debug(
            "batch_done", size=len(records), enriched=stats.enriched - before[0],
            dead_lettered=stats.dead_lettered - before[1], inference_ms=round(stats.inference_ms_total - before[2], 1),
            publish_ms=round(publish_ms, 1), total_ms=round(elapsed_ms(started), 1), long=len(long),
        )

    async def _process_group(self, events: Sequence[faust.EventT], records: Sequence[RawRecord],
                             ingested_at: datetime) -> float:
        """Decode, score, package and publish `records` (all of a batch, or its short or long group); await the acks.

        Adds to the agent's stats; returns the milliseconds spent publishing."""
        # split() declares this group's bodies for log scrubbing, replacing the other group's: a group
        # only ever logs its own bodies, and the short group is published before the long one is decoded.
        valid, dead = self.enricher.split(records)
        enriched: list[Outgoing] = []
        inference_ms = 0.0
        if valid:
            loop = asyncio.get_running_loop()
            texts = [item.event.text for item in valid]
            t0 = time.perf_counter()
            try:
                scored = await loop.run_in_executor(self.executor, self._score, texts)
                inference_ms = elapsed_ms(t0)
                self.metrics.inference(self.classifier.info.name, inference_ms / 1000.0)
                enriched = self._package(valid, scored, batch_size=len(records), inference_ms=inference_ms,
                                         ingested_at=ingested_at)
            except Exception:
                log.exception("batch_inference_failed", size=len(valid))
                enriched, failed = await self._classify_one_by_one(valid, ingested_at, len(records))
                dead.extend(failed)
                inference_ms = elapsed_ms(t0)
        t_pub = time.perf_counter()
        # An output over the record limit is dead-lettered by publish_all (output_too_large): no summary
        # is requested for it, so no summary appears for an id whose enriched event never did.
        enriched_ids = {item.key for item in enriched if item.size <= self.dead_letters.max_record_bytes}
        requests = [r for r in self.enricher.summary_requests(valid) if r.key in enriched_ids]
        pending = [(self.output_topic, item) for item in enriched] + [(self.dlq_topic, item) for item in dead]
        if self.requests_topic is not None:
            pending += [(self.requests_topic, item) for item in requests]
            self.stats.summary_requests += len(requests)
        published = await publish_all(pending, self.dead_letters)
        publish_ms = elapsed_ms(t_pub)
        enriched = published.kept(enriched)
        dead = dead + published.dead_letters
        self._observe_enriched(enriched)
        self.metrics.events_enriched(len(enriched))
        self.metrics.dead_lettered("sentiment", (error_code(item) for item in dead))
        # Per group: a short text's end-to-end latency ends when its group is acknowledged.
        self.metrics.end_to_end("sentiment", (kafka_timestamp(event) for event in events))
        self.stats.enriched += len(enriched)
        self.stats.dead_lettered += len(dead)
        self.stats.inference_ms_total += inference_ms
        return publish_ms

    def _score(self, texts: Sequence[str]) -> Scored:
        return score_texts(self.classifier, self.gate, texts, self.toxicity)

    def _package(self, valid: Sequence[Any], scored: Scored, *, batch_size: int, inference_ms: float,
                 ingested_at: datetime) -> list[Outgoing]:
        return self.enricher.package(
            valid, scored.predictions, self.classifier.info, languages=scored.languages,
            batch_size=batch_size, inference_ms=inference_ms, ingested_at=ingested_at,
            toxicity=scored.toxicity, toxicity_skips=scored.toxicity_skips,
            toxicity_model=None if self.toxicity is None else self.toxicity.info,
        )

    def _observe_enriched(self, enriched: Sequence[Outgoing]) -> None:
        """After the acks: language and skip counters, and the shadow model's sample (never raises into the batch)."""
        try:
            self._count_and_shadow([item.value for item in enriched if isinstance(item.value, EnrichedEvent)])
        except Exception as exc:  # noqa: BLE001 - the batch is published; bookkeeping must not fail it
            log.warning("enriched_bookkeeping_failed", error=repr(exc))

    def _count_and_shadow(self, events: list[EnrichedEvent]) -> None:
        skipped = [e.sentiment_skipped_reason for e in events if e.sentiment is None and e.sentiment_skipped_reason]
        for reason in set(skipped):
            self.metrics.sentiment_skipped(reason, skipped.count(reason))
        self.stats.sentiment_skipped += len(skipped)
        offensive = sum(1 for e in events if e.toxicity is not None and e.toxicity.label == "offensive")
        self.stats.offensive += offensive
        self.metrics.toxicity_labelled(
            (e.toxicity.label if e.toxicity is not None else f"skipped:{e.toxicity_skipped_reason}") for e in events)
        self.metrics.languages_detected(
            (e.language.code if e.language.reliable else "und") for e in events if e.language is not None)
        if self.shadow is not None:
            self.shadow.offer([ShadowItem(e.id, e.text, e.sentiment.label) for e in events if e.sentiment is not None])

    async def _classify_one_by_one(self, valid: Sequence[Any], ingested_at: datetime, batch_size: int) -> tuple[list[Outgoing], list[Outgoing]]:
        """Isolate the event that broke the batch so the rest still gets enriched."""
        loop = asyncio.get_running_loop()
        enriched: list[Outgoing] = []
        failed: list[Outgoing] = []
        for item in valid:
            t0 = time.perf_counter()
            try:
                scored = await loop.run_in_executor(self.executor, self._score, [item.event.text])
            except Exception as exc:  # noqa: BLE001 - recorded in the dead letter
                failed.append(self.enricher.inference_failed(item, exc))
                continue
            self.metrics.inference(self.classifier.info.name, elapsed_ms(t0) / 1000.0)
            enriched.extend(self._package([item], scored, batch_size=batch_size, inference_ms=elapsed_ms(t0),
                                          ingested_at=ingested_at))
        return enriched, failed
