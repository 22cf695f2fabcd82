"""Faust application factory: topics, the agents, backpressure, metrics and health endpoints, a stats log."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.types import TP

from pipeline.dashboard.service import install_dashboard
from pipeline.inference.language import LanguageGate, LanguageGateConfig
from pipeline.kafka.security import faust_credentials
from pipeline.lanes.sentiment.agent import SentimentAgent
from pipeline.lanes.sentiment.enrichment import BatchEnricher, Classifier, EnricherConfig, ToxicityModel
from pipeline.lanes.sentiment.shadow import ShadowConfig, ShadowScorer
from pipeline.lanes.summary.agent import Generator, SummaryAgent, SummaryAgentConfig, consumer_backlog
from pipeline.lanes.summary.policy import SummaryPolicy
from pipeline.lanes.windows.agent import WindowAggregator, WindowRouter, window_agents_config
from pipeline.lanes.windows.state import PartitionedState, state_loader
from pipeline.logs import get_logger
from pipeline.runtime.buffers import byte_budget_stream
from pipeline.runtime.health import Readiness, register_endpoints
from pipeline.runtime.lag import partition_lag
from pipeline.runtime.metrics import WorkerMetrics
from pipeline.runtime.transport import StreamnlpApp
from pipeline.settings import Settings

log = get_logger("streamnlp.app")

STATS_INTERVAL_S = 10.0
LAG_INTERVAL_S = 5.0


class _BufferFullSensor(faust.Sensor):
    """Counts Faust pausing a partition because its agent's buffer filled up (backpressure engaging)."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        super().__init__()
        self.metrics = metrics

    def on_topic_buffer_full(self, tp: TP) -> None:
        self.metrics.buffer_full(tp.topic, tp.partition)


def language_gate(settings: Settings) -> LanguageGate:
    return LanguageGate(LanguageGateConfig(
        enabled=settings.language_gate, allowed=settings.sentiment_language_set,
        min_letters=settings.language_min_letters,
    ))


def create_app(
    settings: Settings, classifier: Classifier, summarizer: Generator | None = None,
    *, metrics: WorkerMetrics | None = None, shadow: Classifier | None = None, toxicity: ToxicityModel | None = None,
) -> tuple[faust.App, SentimentAgent]:
    """The worker's Faust app; `shadow` is an optional second sentiment classifier (shadow mode); `toxicity` the
    offensive-language model scored in the sentiment lane's batches (None: toxicity off)."""
    metrics = metrics if metrics is not None else WorkerMetrics()
    app = StreamnlpApp(
        settings.consumer_group,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        broker=settings.broker_urls,
        broker_credentials=faust_credentials(settings),  # TLS/SASL: the same as every CLI client
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        # Faust's 60 s default would leave a crashed worker's partitions idle for a minute.
        broker_session_timeout=settings.session_timeout_s,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # The limit publish_all checks each record against before sending (pipeline/deadletter.py).
        producer_max_request_size=settings.producer_max_request_bytes,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=settings.web_port != 0,
        web_port=settings.web_port or 6066,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        # A batch's records are all handed to the producer before its acks are awaited, so they
        # batch by themselves; lingering only delays the batch (and the next one behind it).
        producer_linger_ms=1,
        # Backpressure. Faust stops fetching a partition once its agent's buffer passes 80% of
        # stream_buffer_maxsize, but still delivers the rest of the poll it is in, and a poll that
        # overflows a full buffer blocks delivery to *every* agent (the summary lane would stall
        # sentiment). Capping a poll at 1/8 of the buffer keeps the overshoot inside the last 20%.
        stream_buffer_maxsize=settings.stream_buffer_maxsize,
        broker_max_poll_records=max(1, settings.stream_buffer_maxsize // 8),
        # ... and by bytes (pipeline/runtime/buffers.py; worst case per worker in docs/operations.md): buffers and
        # batches stop at a byte budget too, fetches at a per-partition and per-response size.
        stream_buffer_max_bytes=settings.stream_buffer_max_bytes,
        Stream=byte_budget_stream(settings.batch_max_bytes),
        consumer_max_fetch_size=settings.consumer_max_partition_fetch_bytes,
        fetch_max_bytes=settings.consumer_fetch_max_bytes,
    )
    # Raw bytes in: decoding (and dead-lettering) is ours, so a malformed record
    # never reaches Faust's deserializer and never crashes the stream.
    input_topic = app.topic(settings.input_topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    output_topic = app.topic(settings.output_topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    dlq_topic = app.topic(settings.dlq_topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    summaries_on = settings.summarizer_mode != "off"
    requests_topic = summaries_topic = None
    if summaries_on:
        requests_topic = app.topic(settings.summary_requests_topic, key_type=bytes, value_type=bytes,
                                   value_serializer="raw", internal=True)
        summaries_topic = app.topic(settings.summaries_topic, key_type=bytes, value_type=bytes, value_serializer="raw")

    # One inference thread: ONNX Runtime parallelises inside a run; two runs at
    # once on a 2-core box would only fight over the same cores.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx")
    runner = SentimentAgent(
        enricher=BatchEnricher(EnricherConfig(
            worker=settings.worker_name,
            max_text_chars=settings.max_text_chars,
            max_payload_bytes=settings.max_payload_bytes,
            dlq_payload_cap_bytes=settings.dlq_payload_cap_bytes,
            max_record_bytes=settings.producer_max_request_bytes,
            summary_min_chars=settings.summary_min_chars,
            summaries_enabled=summaries_on,
        )),
        classifier=classifier,
        output_topic=output_topic,
        dlq_topic=dlq_topic,
        executor=executor,
        requests_topic=requests_topic,
        metrics=metrics,
        gate=language_gate(settings),
        shadow=None if shadow is None else ShadowScorer(shadow, ShadowConfig(settings.shadow_sample_rate), metrics),
        toxicity=toxicity,
    )

    @app.agent(input_topic, name="sentiment")
    async def sentiment(stream: faust.StreamT) -> None:
        await runner.run(stream, max_batch=settings.batch_max_size, max_wait_s=settings.batch_max_wait_ms / 1000.0)

    summary_runner: SummaryAgent | None = None
    if summaries_on:
        assert summaries_topic is not None and requests_topic is not None
        summary_runner = SummaryAgent(
            config=SummaryAgentConfig(
                worker=settings.worker_name,
                mode="abstractive" if settings.summarizer_mode == "abstractive" else "extractive",
                backlog_max=settings.summary_backlog_max,
                batch_time_budget_s=settings.summarizer_batch_time_budget_s,
                dlq_payload_cap_bytes=settings.dlq_payload_cap_bytes,
                max_record_bytes=settings.producer_max_request_bytes,
                concurrency=settings.summarizer_concurrency,
            ),
            generator=summarizer,
            policy=SummaryPolicy(faithfulness_threshold=settings.faithfulness_threshold),
            summaries_topic=summaries_topic,
            dlq_topic=dlq_topic,
            # Its own threads: generation never queues behind (or in front of) sentiment.
            executor=ThreadPoolExecutor(max_workers=settings.summarizer_concurrency, thread_name_prefix="llm"),
            backlog=consumer_backlog(app),
            metrics=metrics,
        )

        @app.agent(requests_topic, name="summaries")
        async def summaries(stream: faust.StreamT) -> None:
            # one take feeds every concurrent generation batch
            await summary_runner.run(stream, max_batch=settings.summarizer_batch_size * settings.summarizer_concurrency,
                                     max_wait_s=settings.summarizer_batch_max_wait_ms / 1000.0)

    aggregator = _wire_windows(app, settings, output_topic, metrics) if settings.windows_enabled else None

    @app.timer(STATS_INTERVAL_S)
    async def report_stats() -> None:
        stats = runner.stats.snapshot()
        if summary_runner is not None:
            stats.update(summary_runner.stats.snapshot())
        if aggregator is not None:
            stats.update(aggregator.stats.snapshot())
        log.info("worker_stats", **stats)
        if runner.shadow is not None:
            log.info("shadow_agreement", primary_model=classifier.info.name, **runner.shadow.snapshot())

    readiness = Readiness.create(
        source_topics=[settings.input_topic] + ([settings.summary_requests_topic] if summaries_on else []),
        required_models=["sentiment"] + (["summarizer"] if settings.summarizer_mode == "abstractive" else [])
        + (["toxicity"] if toxicity is not None else []),
    )
    _observe(app, metrics, readiness, classifier, summarizer, shadow, toxicity)
    if settings.web_port != 0:
        register_endpoints(app, metrics, readiness)
        if settings.dashboard_enabled:
            install_dashboard(app, settings, metrics.registry)
    return app, runner


def _wire_windows(
    app: faust.App, settings: Settings, output_topic: faust.TopicT, metrics: WorkerMetrics,
) -> WindowAggregator:
    """Windowed sentiment (pipeline/lanes/windows/agent.py): router, aggregator with its state, idle ticks."""
    route_topic = app.topic(settings.windows_route_topic, key_type=bytes, value_type=bytes, value_serializer="raw",
                            internal=True, partitions=settings.topic_partitions)
    windows_topic = app.topic(settings.windows_topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    # Not a Faust Table: see pipeline/lanes/windows/state.py (tables re-seek every stream after recovery).
    state_topic = app.topic(settings.windows_state_topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    state = PartitionedState(state_topic, state_loader(settings, settings.windows_state_topic))
    aggregator = WindowAggregator(config=window_agents_config(settings), state=state, windows_topic=windows_topic,
                                  metrics=metrics)
    router = WindowRouter(route_topic, aggregator.stats)

    @app.agent(output_topic, name="windows-router")
    async def windows_router(stream: faust.StreamT) -> None:
        await router.run(stream, max_batch=settings.batch_max_size, max_wait_s=settings.batch_max_wait_ms / 1000.0)

    @app.agent(route_topic, name="windows")
    async def windows_agg(stream: faust.StreamT) -> None:
        await aggregator.run(stream)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # Faust types receivers as (sender, *args, **kwargs)
    async def forget_revoked_windows(_app: faust.App, revoked: set, **_: object) -> None:
        # Another worker may own them next; it restores them from the state topic.
        aggregator.revoke(tp.partition for tp in revoked if tp.topic == settings.windows_route_topic)

    if settings.window_idle_flush_s > 0:
        @app.timer(max(0.5, min(settings.window_idle_flush_s / 4, 10.0)))
        async def window_idle_ticks() -> None:
            await aggregator.send_ticks(app.consumer.assignment(), route_topic)

    return aggregator


def _observe(
    app: faust.App, metrics: WorkerMetrics, readiness: Readiness, classifier: Classifier, summarizer: Generator | None,
    shadow: Classifier | None = None, toxicity: ToxicityModel | None = None,
) -> None:
    """Feed readiness and the metrics that no agent sees: models, assignment, lag, backpressure."""
    # create_app is handed loaded models (the worker loads them before anything touches Kafka).
    models: tuple[tuple[str, Any], ...] = (("sentiment", classifier), ("summarizer", summarizer), ("shadow", shadow),
                                           ("toxicity", toxicity))
    for role, model in models:
        if model is not None:
            info = model.info
            metrics.model_loaded(role, name=str(info.name), version=str(info.version),  # type: ignore[arg-type]
                                 precision=str(getattr(info, "precision", "unknown")))
            if role != "shadow":  # the shadow is optional: readiness never waits for it
                readiness.model_loaded(role)
    app.sensors.add(_BufferFullSensor(metrics))

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # Faust types receivers as (sender, *args, **kwargs)
    async def on_assigned(_app: faust.App, assigned: set, **_: object) -> None:
        readiness.partitions_assigned(assigned)
        log.info("partitions_assigned", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # Faust types receivers as (sender, *args, **kwargs)
    async def on_revoked(_app: faust.App, revoked: set, **_: object) -> None:
        readiness.partitions_revoked(revoked)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # Faust types receivers as (sender, *args, **kwargs)
    async def on_shutdown(_app: faust.App, **_: object) -> None:
        readiness.stopping()

    @app.timer(LAG_INTERVAL_S)
    async def refresh_lag() -> None:
        lag = await partition_lag(app.consumer, readiness.source_topics)
        if lag is not None:  # None: the consumer could not tell (rebalance); keep the last values
            metrics.consumer_lag(lag)
