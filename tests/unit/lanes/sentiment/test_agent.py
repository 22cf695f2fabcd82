"""SentimentAgent batch handling with in-memory topics: poison isolation and publish retries."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from pipeline.lanes.sentiment.agent import SentimentAgent
from pipeline.lanes.sentiment.enrichment import BatchEnricher, EnricherConfig
from tests.doubles import (
    MemoryTopic,
    PoisonAwareClassifier,
    text_events,
)


def _agent(out: MemoryTopic, dlq: MemoryTopic, classifier: PoisonAwareClassifier) -> SentimentAgent:
    return SentimentAgent(
        enricher=BatchEnricher(EnricherConfig(worker="test")), classifier=classifier,
        output_topic=out, dlq_topic=dlq, executor=ThreadPoolExecutor(max_workers=1),  # type: ignore[arg-type]
    )


async def test_one_poison_event_is_dead_lettered_and_the_rest_enriched() -> None:
    out, dlq, classifier = MemoryTopic(), MemoryTopic(), PoisonAwareClassifier()
    agent = _agent(out, dlq, classifier)
    await agent.process(text_events(["fine", "also fine", "poison pill", "still fine"]))  # type: ignore[arg-type]
    assert sorted(k for k, _, _ in out.records) == [b"e0", b"e1", b"e3"]
    assert len(dlq.records) == 1
    letter = orjson.loads(dlq.records[0][1])
    assert letter["error_code"] == "inference_error" and letter["event_id"] == "e2"
    assert classifier.calls[0] == 4, "the whole batch is tried first"
    assert all(h == [("trace", b"x")] for _, _, h in out.records)
    assert agent.stats.snapshot()["enriched"] == 3 and agent.stats.snapshot()["dead_lettered"] == 1


async def test_transient_publish_failures_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    out, dlq = MemoryTopic(fail_first=2), MemoryTopic()
    agent = _agent(out, dlq, PoisonAwareClassifier())
    await agent.process(text_events(["a", "b", "c"]))  # type: ignore[arg-type]
    assert sorted(k for k, _, _ in out.records) == [b"e0", b"e1", b"e2"]


async def test_publish_that_never_succeeds_exits_without_acking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)
    exits: list[int] = []

    def fake_exit(code: int) -> None:
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr("pipeline.runtime.batches.os._exit", fake_exit)
    agent = _agent(MemoryTopic(fail_first=10**6), MemoryTopic(), PoisonAwareClassifier())
    with pytest.raises(SystemExit):
        await agent.process(text_events(["a"]))  # type: ignore[arg-type]
    assert exits == [70]


async def test_an_output_over_the_record_limit_is_dead_lettered_and_the_batch_published() -> None:
    # The input is small; its headers, copied to the output, are not: the output can never be published.
    out, dlq = MemoryTopic(), MemoryTopic()
    agent = SentimentAgent(
        enricher=BatchEnricher(EnricherConfig(worker="test", max_record_bytes=65_536)),
        classifier=PoisonAwareClassifier(), output_topic=out, dlq_topic=dlq,  # type: ignore[arg-type]
        executor=ThreadPoolExecutor(max_workers=1),
    )
    events = text_events(["fine", "big headers", "still fine"])
    events[1].message.headers = [("blob", b"h" * 70_000)]
    await agent.process(events)  # type: ignore[arg-type]
    assert sorted(k for k, _, _ in out.records) == [b"e0", b"e2"]
    (letter,) = [orjson.loads(v) for _, v, _ in dlq.records]
    assert letter["error_code"] == "output_too_large" and letter["event_id"] == "e1"
    assert "65536" in letter["reason"] and letter["headers_dropped"], "the letter itself fits: headers dropped"
    assert dlq.records[0][2] == []
    assert agent.stats.snapshot()["enriched"] == 2 and agent.stats.snapshot()["dead_lettered"] == 1


async def test_the_input_cap_is_the_configured_one() -> None:
    out, dlq = MemoryTopic(), MemoryTopic()
    agent = SentimentAgent(
        enricher=BatchEnricher(EnricherConfig(worker="test", max_payload_bytes=40)),
        classifier=PoisonAwareClassifier(), output_topic=out, dlq_topic=dlq,  # type: ignore[arg-type]
        executor=ThreadPoolExecutor(max_workers=1),
    )
    await agent.process(text_events(["short", "a text long enough to pass the forty bytes"]))  # type: ignore[arg-type]
    assert [k for k, _, _ in out.records] == [b"e0"]
    assert orjson.loads(dlq.records[0][1])["error_code"] == "payload_too_large"


async def _no_sleep(_: float) -> None:
    return None
