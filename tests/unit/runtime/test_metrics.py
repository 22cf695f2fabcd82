"""WorkerMetrics, Readiness, lag and the Faust endpoints, without a broker."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from pipeline.lanes.sentiment.agent import SentimentAgent
from pipeline.lanes.sentiment.enrichment import BatchEnricher, EnricherConfig
from pipeline.lanes.summary.agent import SummaryAgent, SummaryAgentConfig
from pipeline.lanes.summary.policy import SummaryPolicy
from pipeline.runtime.health import Readiness
from pipeline.runtime.lag import partition_lag
from pipeline.runtime.metrics import WorkerMetrics
from pipeline.settings import Settings
from schemas.events import to_json_bytes
from schemas.summaries import SummaryRequest
from tests.doubles import FakeEvent, FakeMessage, LengthClassifier, MemoryTopic, PoisonAwareClassifier


def value(metrics: WorkerMetrics, metric: str, /, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(metric, labels)


# --- WorkerMetrics ------------------------------------------------------------------------

def test_each_worker_has_its_own_registry() -> None:
    a, b = WorkerMetrics(), WorkerMetrics()
    a.events_consumed(3)
    assert value(a, "streamnlp_events_in_total") == 3
    assert value(b, "streamnlp_events_in_total") == 0


def test_counters_by_label() -> None:
    m = WorkerMetrics()
    m.events_consumed(10)
    m.events_enriched(7)
    m.dead_lettered("sentiment", ["invalid_json", "invalid_json", "empty_text"])
    m.dead_lettered("summary", ["summarization_error"])
    assert value(m, "streamnlp_events_enriched_total") == 7
    assert value(m, "streamnlp_events_dead_lettered_total", lane="sentiment", error_code="invalid_json") == 2
    assert value(m, "streamnlp_events_dead_lettered_total", lane="sentiment", error_code="empty_text") == 1
    assert value(m, "streamnlp_events_dead_lettered_total", lane="summary", error_code="summarization_error") == 1


def test_histograms_count_and_bucket() -> None:
    m = WorkerMetrics()
    for size in (1, 100, 128):
        m.batch("sentiment", size)
    m.inference("sentiment-minilm-rt", 0.04)
    assert value(m, "streamnlp_batch_size_count", lane="sentiment") == 3
    assert value(m, "streamnlp_batch_size_sum", lane="sentiment") == 229
    assert value(m, "streamnlp_batch_size_bucket", lane="sentiment", le="64.0") == 1
    assert value(m, "streamnlp_batch_size_bucket", lane="sentiment", le="128.0") == 3
    assert value(m, "streamnlp_inference_seconds_bucket", model="sentiment-minilm-rt", le="0.05") == 1
    assert value(m, "streamnlp_inference_seconds_bucket", model="sentiment-minilm-rt", le="0.025") == 0


def test_end_to_end_skips_missing_timestamps_and_clamps_clock_skew() -> None:
    m = WorkerMetrics()
    now = 1_000_000.0
    m.end_to_end("sentiment", [now - 0.2, None, now + 5.0], acked_at=now)
    assert value(m, "streamnlp_end_to_end_seconds_count", lane="sentiment") == 2
    assert value(m, "streamnlp_end_to_end_seconds_sum", lane="sentiment") == pytest.approx(0.2)
    assert value(m, "streamnlp_end_to_end_seconds_bucket", lane="sentiment", le="0.025") == 1  # the skewed one, as 0


def test_lag_gauge_drops_partitions_no_longer_assigned() -> None:
    m = WorkerMetrics()
    m.consumer_lag({("texts", 0): 5, ("texts", 1): 0})
    assert value(m, "streamnlp_consumer_lag", topic="texts", partition="0") == 5
    m.consumer_lag({("texts", 1): 12})
    assert value(m, "streamnlp_consumer_lag", topic="texts", partition="0") is None
    assert value(m, "streamnlp_consumer_lag", topic="texts", partition="1") == 12


def test_summary_backlog_fallbacks_and_model_info() -> None:
    m = WorkerMetrics()
    m.summary_backlog(250)
    m.summary_published("abstractive", None)
    m.summary_published("extractive", "backlog")
    m.summary_published("extractive", "unfaithful")
    m.summary_published("extractive", "unfaithful")
    m.model_loaded("sentiment", name="sentiment-minilm-rt", version="abc", precision="int8")
    assert value(m, "streamnlp_summary_backlog") == 250
    assert value(m, "streamnlp_summaries_total", method="extractive") == 3
    assert value(m, "streamnlp_summary_fallbacks_total", reason="unfaithful") == 2
    assert value(m, "streamnlp_summary_fallbacks_total", reason="backlog") == 1
    assert value(m, "streamnlp_model_info", role="sentiment", name="sentiment-minilm-rt", version="abc", precision="int8") == 1


def test_render_is_prometheus_text_format() -> None:
    m = WorkerMetrics()
    m.events_consumed(2)
    m.buffer_full("texts", 3)
    body, content_type = m.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert {"streamnlp_events_in", "streamnlp_buffer_full", "streamnlp_model_info"} <= families.keys()


def test_process_and_gc_collectors_are_in_each_workers_registry() -> None:
    a, b = WorkerMetrics(), WorkerMetrics()  # two registries in one process: no duplicate-registration error
    families = {f.name: f for f in text_string_to_metric_families(a.render()[0].decode())}
    assert {"process_resident_memory_bytes", "process_cpu_seconds", "process_open_fds",
            "python_gc_objects_collected", "python_gc_collections"} <= families.keys()
    rss = value(a, "process_resident_memory_bytes")
    assert rss is not None and rss > 1_000_000
    assert value(b, "process_start_time_seconds") == value(a, "process_start_time_seconds")
    assert value(a, "python_gc_collections_total", generation="0") is not None


# --- agents feed the metrics --------------------------------------------------------------

async def test_sentiment_agent_counts_in_out_dead_letters_and_latency() -> None:
    metrics = WorkerMetrics()
    agent = SentimentAgent(
        enricher=BatchEnricher(EnricherConfig(worker="t")), classifier=PoisonAwareClassifier(),
        output_topic=MemoryTopic(), dlq_topic=MemoryTopic(),  # type: ignore[arg-type]
        executor=ThreadPoolExecutor(max_workers=1), metrics=metrics,
    )
    sent = time.time() - 0.5
    events = [FakeEvent(FakeMessage("texts", 0, i, None, orjson.dumps({"id": f"e{i}", "text": t})))
              for i, t in enumerate(["fine", "poison", "ok"])]
    events.append(FakeEvent(FakeMessage("texts", 0, 3, None, b"{not json")))
    for event in events:
        event.message.timestamp = sent  # type: ignore[attr-defined]
    await agent.process(events)  # type: ignore[arg-type]
    assert value(metrics, "streamnlp_events_in_total") == 4
    assert value(metrics, "streamnlp_events_enriched_total") == 2
    assert value(metrics, "streamnlp_events_dead_lettered_total", lane="sentiment", error_code="invalid_json") == 1
    assert value(metrics, "streamnlp_events_dead_lettered_total", lane="sentiment", error_code="inference_error") == 1
    assert value(metrics, "streamnlp_batch_size_sum", lane="sentiment") == 4
    # Only successful model calls are latency samples: the two one-by-one retries that worked.
    assert value(metrics, "streamnlp_inference_seconds_count", model="stub-model") == 2
    assert value(metrics, "streamnlp_end_to_end_seconds_count", lane="sentiment") == 4
    assert value(metrics, "streamnlp_end_to_end_seconds_sum", lane="sentiment") >= 4 * 0.5


async def test_summary_agent_reports_backlog_and_fallback_reason() -> None:
    metrics = WorkerMetrics()
    agent = SummaryAgent(
        config=SummaryAgentConfig(worker="w", mode="extractive"), generator=None,
        policy=SummaryPolicy(), summaries_topic=MemoryTopic(), dlq_topic=MemoryTopic(),  # type: ignore[arg-type]
        executor=ThreadPoolExecutor(max_workers=1), backlog=lambda events: 42, metrics=metrics,
    )
    request = SummaryRequest(id="r1", text="The council met on Tuesday. It approved the plan. Work starts soon.",
                             requested_at=datetime.now(UTC))
    await agent.process([FakeEvent(FakeMessage("texts.summarize", 0, 0, b"r1", to_json_bytes(request)))])  # type: ignore[arg-type]
    assert value(metrics, "streamnlp_summary_backlog") == 42
    assert value(metrics, "streamnlp_summary_fallbacks_total", reason="disabled") == 1
    assert value(metrics, "streamnlp_batch_size_count", lane="summary") == 1


# --- readiness ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


def test_ready_only_with_models_and_source_partitions() -> None:
    r = Readiness.create(["texts", "texts.summarize"], ["sentiment", "summarizer"])
    assert r.status().reason == "models not loaded: sentiment, summarizer"
    r.model_loaded("sentiment")
    r.model_loaded("summarizer")
    assert not r.status().ready and "no partitions" in r.status().reason
    r.partitions_assigned({TP("app-__assignor-__leader", 0)})
    assert not r.status().ready, "Faust's internal topics are not work"
    r.partitions_assigned({TP("texts", 0), TP("texts", 2)})
    status = r.status()
    assert status.ready and status.partitions == ["texts:0", "texts:2"]
    r.partitions_revoked({TP("texts", 0), TP("texts", 2)})
    assert not r.status().ready
    r.partitions_assigned({TP("texts.summarize", 1)})
    assert r.status().ready
    r.stopping()
    assert r.status().as_dict()["reason"] == "stopping"


# --- lag ----------------------------------------------------------------------------------

class FakeConsumer:
    def __init__(self, assigned: list[TP], end: dict[TP, int], committed: dict[TP, int], earliest: dict[TP, int]) -> None:
        self._assigned, self._end, self._committed_offset, self._earliest = assigned, end, committed, earliest

    def assignment(self) -> set[TP]:
        return set(self._assigned)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self._end[tp] for tp in tps}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self._earliest[tp] for tp in tps}


async def test_lag_is_highwater_minus_committed_or_earliest() -> None:
    t0, t1, other = TP("texts", 0), TP("texts", 1), TP("internal", 0)
    consumer = FakeConsumer([t0, t1, other], end={t0: 100, t1: 50, other: 9}, committed={t0: 90}, earliest={t1: 20})
    assert await partition_lag(consumer, {"texts"}) == {("texts", 0): 10, ("texts", 1): 30}


async def test_lag_is_none_when_the_consumer_cannot_answer() -> None:
    class Broken(FakeConsumer):
        async def highwaters(self, *tps: TP) -> dict[TP, int]:
            raise RuntimeError("rebalancing")

    assert await partition_lag(Broken([TP("texts", 0)], {}, {}, {}), {"texts"}) is None


# --- endpoints on Faust's web app -----------------------------------------------------------

async def test_endpoints_served_by_faust_web(tmp_path: Path) -> None:
    from pipeline.service.app import create_app
    metrics = WorkerMetrics()
    settings = Settings(bootstrap_servers="127.0.0.1:1", web_port=6066, summarizer_mode="off", data_dir=tmp_path)
    app, _ = create_app(settings, LengthClassifier(), metrics=metrics)
    metrics.events_consumed(5)
    async with TestClient(TestServer(app.web.web_app)) as client:
        assert (await client.get("/healthz")).status == 200
        not_ready = await client.get("/readyz")
        assert not_ready.status == 503
        assert "no partitions" in (await not_ready.json())["reason"]
        await app.on_partitions_assigned.send({TP(settings.input_topic, 0)})
        assert (await client.get("/readyz")).status == 200
        scraped = await client.get("/metrics")
        assert scraped.status == 200 and scraped.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await scraped.text()
        assert "streamnlp_events_in_total 5.0" in text
        assert 'streamnlp_model_info{name="stub-model",precision="unknown",role="sentiment",version="9.9"} 1.0' in text


def test_web_port_zero_disables_the_web_server(tmp_path: Path) -> None:
    from pipeline.service.app import create_app
    settings = Settings(bootstrap_servers="127.0.0.1:1", web_port=0, summarizer_mode="off", data_dir=tmp_path)
    app, _ = create_app(settings, LengthClassifier())
    assert not app.conf.web_enabled
