"""No summary is requested for an event whose enriched output is dead-lettered for its size."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import orjson

from pipeline.lanes.sentiment.agent import SentimentAgent
from pipeline.lanes.sentiment.enrichment import BatchEnricher, EnricherConfig
from tests.doubles import FakeEvent, FakeMessage, MemoryTopic, PoisonAwareClassifier

LIMIT = 64 * 1024


def _event(i: int, text: str, metadata_bytes: int = 0) -> FakeEvent:
    value: dict[str, object] = {"id": f"e{i}", "text": text}
    if metadata_bytes:
        value["metadata"] = {"blob": "x" * metadata_bytes}
    return FakeEvent(FakeMessage("texts", 0, i, None, orjson.dumps(value), []))


async def test_an_oversized_output_gets_a_dead_letter_and_no_summary_request() -> None:
    out, dlq, requests = MemoryTopic(), MemoryTopic(), MemoryTopic()
    config = EnricherConfig(worker="test", summaries_enabled=True, summary_min_chars=10,
                            max_payload_bytes=LIMIT, max_record_bytes=LIMIT - 2_000)
    agent = SentimentAgent(
        enricher=BatchEnricher(config), classifier=PoisonAwareClassifier(), output_topic=out,  # type: ignore[arg-type]
        dlq_topic=dlq, requests_topic=requests, executor=ThreadPoolExecutor(max_workers=1),  # type: ignore[arg-type]
    )
    long_text = "A long enough article to ask for a summary. " * 3
    # The input fits under the input cap; its enriched output does not fit under the record limit.
    big = _event(0, long_text, metadata_bytes=LIMIT - 2_500)
    await agent.process([big, _event(1, long_text)])  # type: ignore[list-item]

    assert [k for k, _, _ in out.records] == [b"e1"]
    (letter,) = [orjson.loads(v) for _, v, _ in dlq.records]
    assert letter["error_code"] == "output_too_large" and letter["event_id"] == "e0"
    assert [k for k, _, _ in requests.records] == [b"e1"], "no summary for an id whose enriched event was dead-lettered"
