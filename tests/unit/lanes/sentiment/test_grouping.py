"""short_then_long: which records of a micro-batch are scored and published first."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import orjson

from pipeline.lanes.sentiment.agent import SentimentAgent
from pipeline.lanes.sentiment.enrichment import BatchEnricher, EnricherConfig
from pipeline.lanes.sentiment.grouping import short_then_long
from tests.doubles import FakeEvent, FakeMessage, MemoryTopic, PoisonAwareClassifier

LONG = 100


def test_empty_batch() -> None:
    assert short_then_long([], LONG) == ([], [])


def test_all_short_is_one_group_in_order() -> None:
    assert short_then_long([(b"a", 10), (None, 99), (b"b", 0)], LONG) == ([0, 1, 2], [])


def test_all_long() -> None:
    assert short_then_long([(b"a", 100), (None, 500)], LONG) == ([], [0, 1])


def test_the_threshold_is_inclusive() -> None:
    assert short_then_long([(None, 99), (None, 100)], LONG) == ([0], [1])


def test_a_key_with_a_long_record_goes_long_with_all_its_records() -> None:
    records = [(b"k1", 5), (b"k2", 5), (b"k1", 400), (b"k1", 7), (b"k3", 300), (b"k2", 6)]
    assert short_then_long(records, LONG) == ([1, 5], [0, 2, 3, 4])


def test_records_without_a_key_go_by_their_size_alone() -> None:
    records = [(None, 5), (None, 400), (None, 6), (b"", 7)]
    assert short_then_long(records, LONG) == ([0, 2, 3], [1]), "None is no key; an empty key is a key"


def _event(offset: int, key: bytes | None, text: str) -> FakeEvent:
    value = orjson.dumps({"id": f"e{offset}", "text": text})
    return FakeEvent(FakeMessage("texts", 0, offset, key, value, []))


async def test_the_agent_publishes_short_results_first_and_keeps_a_keys_order() -> None:
    out, dlq, requests, classifier = MemoryTopic(), MemoryTopic(), MemoryTopic(), PoisonAwareClassifier()
    config = EnricherConfig(worker="test", summaries_enabled=True, summary_min_chars=LONG)
    agent = SentimentAgent(enricher=BatchEnricher(config), classifier=classifier, output_topic=out,  # type: ignore[arg-type]
                           dlq_topic=dlq, requests_topic=requests, executor=ThreadPoolExecutor(max_workers=1))  # type: ignore[arg-type]
    long_text = "A long review that goes on. " * 5
    events = [_event(0, b"u1", "short one"), _event(1, None, long_text), _event(2, b"u2", "short two"),
              _event(3, b"u1", long_text), _event(4, b"u1", "after the long one, same key"), _event(5, None, "short")]
    events.append(FakeEvent(FakeMessage("texts", 0, 6, None, b"{not json", [])))
    await agent.process(events)  # type: ignore[arg-type]

    assert [k for k, _, _ in out.records] == [b"e2", b"e5", b"e0", b"e1", b"e3", b"e4"]
    assert classifier.calls == [2, 4], "two inference batches: the short group, then the long one"
    # batch_size counts the group's records, the invalid one in the short group included (as it did the batch's).
    assert [orjson.loads(v)["processing"]["batch_size"] for _, v, _ in out.records] == [3, 3, 4, 4, 4, 4]
    assert len(dlq.records) == 1 and [k for k, _, _ in requests.records] == [b"e1", b"e3"]
    stats = agent.stats.snapshot()
    assert (stats["consumed"], stats["enriched"], stats["dead_lettered"], stats["batches"]) == (7, 6, 1, 1)
    sample = agent.metrics.registry.get_sample_value
    assert sample("streamnlp_events_in_total", {}) == 7
    assert (sample("streamnlp_batch_size_count", {"lane": "sentiment"}),
            sample("streamnlp_batch_size_sum", {"lane": "sentiment"})) == (1, 7), "the micro-batch counts once"
    assert sample("streamnlp_inference_seconds_count", {"model": classifier.info.name}) == 2, "one per group"
