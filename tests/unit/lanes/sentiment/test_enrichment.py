"""The batch logic between Kafka records and the classifier, with a stand-in classifier."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from pipeline.deadletter import RawRecord
from pipeline.lanes.sentiment.enrichment import BatchEnricher, EnricherConfig
from schemas.events import DeadLetter, EnrichedEvent, to_json_bytes
from tests.doubles import LengthClassifier


def _record(offset: int, value: bytes | None, headers: tuple[tuple[str, bytes], ...] = ()) -> RawRecord:
    return RawRecord("texts", 1, offset, b"k", value, headers)


def test_split_separates_valid_from_dead_letters_in_input_order() -> None:
    enricher = BatchEnricher(EnricherConfig(worker="w1"))
    valid, dead = enricher.split([
        _record(0, b'{"id": "a", "text": "short"}'),
        _record(1, b"{oops"),
        _record(2, b'{"id": "b", "text": "a much longer text here"}'),
    ])
    assert [v.event.id for v in valid] == ["a", "b"]
    assert len(dead) == 1
    letter = dead[0].value
    assert isinstance(letter, DeadLetter)
    assert letter.error_code == "invalid_json"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("texts", 1, 1)


def test_package_keeps_input_fields_and_headers() -> None:
    enricher = BatchEnricher(EnricherConfig(worker="w1"))
    headers = (("trace-id", b"abc"),)
    valid, _ = enricher.split([_record(5, orjson.dumps({
        "id": "e1", "text": "this product is great", "source": "app-store", "lang": "en",
        "timestamp": "2026-01-02T03:04:05Z", "metadata": {"stars": 5, "verified": True},
    }), headers)])
    classifier = LengthClassifier()
    out = enricher.package(valid, classifier.predict([v.event.text for v in valid]), classifier.info,
                           batch_size=7, inference_ms=12.5, ingested_at=datetime.now(UTC))
    assert len(out) == 1
    item = out[0]
    assert item.key == b"e1"
    assert item.headers == headers
    event = item.value
    assert isinstance(event, EnrichedEvent)
    assert (event.source, event.lang, event.metadata) == ("app-store", "en", {"stars": 5, "verified": True})
    assert event.sentiment.label == "positive" and event.sentiment.model == "stub-model"
    assert event.sentiment.model_version == "9.9"
    assert event.processing.batch_size == 7 and event.processing.worker == "w1"
    assert event.processing.enriched_at >= event.processing.ingested_at
    assert orjson.loads(to_json_bytes(event))["summary"] is None


def test_prediction_count_mismatch_is_an_error() -> None:
    enricher = BatchEnricher(EnricherConfig(worker="w1"))
    valid, _ = enricher.split([_record(0, b'{"id": "a", "text": "x"}')])
    try:
        enricher.package(valid, [], LengthClassifier.info, batch_size=1, inference_ms=0, ingested_at=datetime.now(UTC))
    except RuntimeError as exc:
        assert "0 predictions for 1 texts" in str(exc)
    else:
        raise AssertionError("expected a RuntimeError")


def test_inference_failure_becomes_a_dead_letter_with_the_event_id() -> None:
    enricher = BatchEnricher(EnricherConfig(worker="w1"))
    valid, _ = enricher.split([_record(3, b'{"id": "boom", "text": "x"}')])
    out = enricher.inference_failed(valid[0], ValueError("shape mismatch"))
    assert out.key == b"boom"
    assert out.value.error_code == "inference_error"
    assert "shape mismatch" in out.value.reason


def test_max_text_chars_is_applied() -> None:
    enricher = BatchEnricher(EnricherConfig(worker="w1", max_text_chars=10))
    valid, dead = enricher.split([_record(0, b'{"id": "a", "text": "eleven char"}')])
    assert not valid and dead[0].value.error_code == "text_too_long"
