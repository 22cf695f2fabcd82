"""A Kafka client that is not ours drives the pipeline: confluent-kafka (librdkafka) produces the input
and consumes the output of a real worker on the test broker (the embedded one on machines without Docker).

The embedded broker implements enough of the protocol for aiokafka (ours, and Faust's) and for
librdkafka 2.12; Debian's kcat 1.7.1 (librdkafka 2.0.2) fails its ApiVersion request with
"Read underflow" (README, "Which Kafka clients work").
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from pipeline.kafka.broker import free_port
from tests.harness import unique_settings
from tests.ready import start_ready_worker

pytestmark = [pytest.mark.integration, pytest.mark.needs_model]

EVENTS = 30


def produce_with_librdkafka(bootstrap: str, topic: str, events: list[dict]) -> list[KafkaError | None]:
    # Plain acks=all producer: the embedded broker has no idempotent producer (librdkafka 2.x's default is off).
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False})
    reports: list[KafkaError | None] = []
    for event in events:
        producer.produce(topic, key=event["id"], value=orjson.dumps(event), headers=[("trace-id", f"t-{event['id']}")],
                         on_delivery=lambda err, _msg: reports.append(err))
    assert producer.flush(60) == 0, "every record delivered or failed within 60 s"
    return reports


def consume_with_librdkafka(bootstrap: str, topic: str, expected: int, timeout_s: float) -> list[tuple[bytes, bytes, dict]]:
    """A consumer group of its own, as a downstream service would read the output; commits what it read."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"downstream-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        # The embedded broker holds a group join for the rebalance timeout (librdkafka: max.poll.interval.ms).
        "max.poll.interval.ms": 10_000, "session.timeout.ms": 6_000,
    })
    got: list[tuple[bytes, bytes, dict]] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while len(got) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            got.append((message.key(), message.value(), dict(message.headers() or [])))
        if got:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


async def test_confluent_kafka_produces_to_the_pipeline_and_reads_its_output(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path,
) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, model_dir=default_model_dir, summarizer_mode="off",
                               windows_enabled=False, web_port=free_port())
    events = [{"id": f"ext-{i}", "text": f"A warm, funny and clever film ({i})." if i % 2 else
               f"Dull, slow and far too long ({i})."} for i in range(EVENTS)]
    worker = await start_ready_worker(settings, tmp_path / "worker.log")
    try:
        reports = await asyncio.to_thread(produce_with_librdkafka, kafka_bootstrap, settings.input_topic, events)
        assert reports == [None] * EVENTS, [str(e) for e in reports if e]
        got = await asyncio.to_thread(consume_with_librdkafka, kafka_bootstrap, settings.output_topic, EVENTS, 120)
    finally:
        assert worker.terminate() == 0, worker.log_tail()
    assert len(got) == EVENTS, f"{len(got)} of {EVENTS} enriched events read\n{worker.log_tail()}"
    by_id = {}
    for key, value, headers in got:
        event = orjson.loads(value)
        assert key == event["id"].encode(), "keyed by event id"
        assert headers["trace-id"] == f"t-{event['id']}".encode(), "the producer's headers are copied"
        by_id[event["id"]] = event
    assert sorted(by_id) == sorted(e["id"] for e in events)
    assert all(e["sentiment"]["label"] in ("positive", "negative") for e in by_id.values())
