"""What feeds the dashboard: the output topics (all partitions, no group) and this worker's metrics.

The agents do not feed it on purpose: in a group each worker only sees its own partitions, so a
dashboard fed by the agents would show a different slice on every worker. Reading the *output*
topics with a consumer that joins no group gives every worker's page the whole stream, costs the
group nothing (no rebalance, no commits) and shows exactly what downstream consumers see.
Throughput and lag come from this worker's own Prometheus registry (they are per worker).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from pipeline.dashboard.hub import Hub, StatsSample, Update
from pipeline.kafka.security import client_security
from pipeline.logs import get_logger
from pipeline.settings import Settings

log = get_logger("streamnlp.dashboard")

DEFAULT_WINDOWS_TOPIC = "texts.sentiment.windows"


@dataclass(frozen=True)
class FeedConfig:
    enriched_topic: str
    summaries_topic: str | None
    windows_topic: str | None
    history: int = 50                 # records per partition read back at start, so a page is not empty
    sample_interval_s: float = 2.0    # metrics sampling
    topic_recheck_s: float = 5.0      # a topic created after start (the windows topic) is picked up this late
    fetch_max_wait_ms: int = 250      # a dashboard needs no 25 ms latency; longer fetches cost the broker less

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedConfig:
        return cls(
            enriched_topic=settings.output_topic,
            summaries_topic=settings.summaries_topic if settings.summarizer_mode != "off" else None,
            # Read by name: the windows lane is optional and its setting may not exist in this build.
            windows_topic=getattr(settings, "windows_topic", DEFAULT_WINDOWS_TOPIC),
        )

    @property
    def topics(self) -> list[str]:
        return [t for t in (self.enriched_topic, self.summaries_topic, self.windows_topic) if t]


def sample_metrics(registry: CollectorRegistry, at_s: float | None = None) -> StatsSample:
    """Cumulative counters and the summed lag of one worker's registry (pipeline/runtime/metrics.py names)."""
    totals = {"streamnlp_events_in_total": 0.0, "streamnlp_events_enriched_total": 0.0,
              "streamnlp_events_dead_lettered_total": 0.0, "streamnlp_consumer_lag": 0.0}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in totals:
                if sample.name == "streamnlp_events_dead_lettered_total" and sample.labels.get("lane") != "sentiment":
                    continue  # summary-lane dead letters are not input records
                totals[sample.name] += sample.value
    return StatsSample(
        at_s=time.time() if at_s is None else at_s,
        consumed_total=totals["streamnlp_events_in_total"],
        enriched_total=totals["streamnlp_events_enriched_total"],
        dead_lettered_total=totals["streamnlp_events_dead_lettered_total"],
        lag=totals["streamnlp_consumer_lag"],
    )


class DashboardFeed:
    """Runs until cancelled: records -> hub -> `publish`, metric samples likewise. Never raises to the worker."""

    def __init__(self, settings: Settings, config: FeedConfig, hub: Hub, publish: Callable[[list[Update]], None],
                 registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.config = config
        self.hub = hub
        self.publish = publish
        self.registry = registry

    async def run(self) -> None:
        loops = [self._follow()]
        if self.registry is not None:
            loops.append(self._sample())
        await asyncio.gather(*loops)

    async def _sample(self) -> None:
        assert self.registry is not None
        while True:
            try:
                self.publish(self.hub.stats(sample_metrics(self.registry)))
            except Exception as exc:  # noqa: BLE001 - the dashboard must never stop the worker
                log.warning("dashboard_sample_error", error=repr(exc))
            await asyncio.sleep(self.config.sample_interval_s)

    async def _follow(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broken dashboard feed must never stop the worker
                log.warning("dashboard_feed_error", error=repr(exc))
                await asyncio.sleep(self.config.topic_recheck_s)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers, group_id=None, enable_auto_commit=False,
            auto_offset_reset="latest", fetch_max_wait_ms=self.config.fetch_max_wait_ms,
            **client_security(self.settings),
        )
        await consumer.start()
        try:
            assigned: set[TopicPartition] = set()
            next_check = 0.0
            while True:
                if len({tp.topic for tp in assigned}) < len(self.config.topics) and time.monotonic() >= next_check:
                    assigned = await self._assign(consumer, assigned)
                    next_check = time.monotonic() + self.config.topic_recheck_s
                if not assigned:
                    await asyncio.sleep(self.config.topic_recheck_s)
                    continue
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    for record in records:
                        self.publish(self._apply(tp.topic, record.value, record.timestamp))
        finally:
            await consumer.stop()

    async def _assign(self, consumer: AIOKafkaConsumer, current: set[TopicPartition]) -> set[TopicPartition]:
        """Add the partitions of topics that exist now; keep the positions of those already read."""
        await consumer._client.force_metadata_update()  # no public way to refresh a groupless consumer
        wanted = set(current)
        for topic in self.config.topics:
            for partition in consumer.partitions_for_topic(topic) or ():
                wanted.add(TopicPartition(topic, partition))
        new = wanted - current
        if not new:
            return current
        positions = {tp: await consumer.position(tp) for tp in current}
        consumer.assign(list(wanted))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        ends = await consumer.end_offsets(list(new))
        starts = await consumer.beginning_offsets(list(new))
        for tp in new:
            consumer.seek(tp, max(starts.get(tp, 0), ends.get(tp, 0) - self.config.history))
        log.info("dashboard_feed_assigned", topics=sorted({tp.topic for tp in wanted}), partitions=len(wanted))
        return wanted

    def _apply(self, topic: str, value: bytes | None, timestamp_ms: int) -> list[Update]:
        try:
            obj: Any = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            return []
        if not isinstance(obj, dict):
            return []
        if topic == self.config.enriched_topic:
            return self.hub.enriched(obj, timestamp_ms)
        if topic == self.config.summaries_topic:
            return self.hub.summary(obj)
        return self.hub.window(obj)
