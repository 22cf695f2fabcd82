"""End to end on a real broker over TCP: a real worker process, real model, real records."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from pipeline.kafka.clients import OutRecord, ensure_topics, produce
from tests.harness import WorkerProcess, collect_until, unique_settings, valid_samples

pytestmark = [pytest.mark.integration, pytest.mark.needs_model]

# (raw value, expected error_code): twenty different ways producers get it wrong.
MALFORMED: list[tuple[bytes | None, str]] = [
    (b'{"id": "bad-01", "text": "unterminated', "invalid_json"),
    (b"not json at all", "invalid_json"),
    ('{"id":"bad-03","text":"caf\u00e9 au lait"}'.encode("latin-1"), "invalid_utf8"),
    (b"\xff\xfe{\x00}\x00", "invalid_utf8"),
    (b"[1, 2, 3]", "not_an_object"),
    (b'"just a string"', "not_an_object"),
    (b'{"id": "bad-07"}', "missing_field"),
    (b'{"text": "a review without an id"}', "missing_field"),
    (b'{"id": "bad-09", "text": ""}', "empty_text"),
    (b'{"id": "bad-10", "text": "   \\n\\t  "}', "empty_text"),
    (b'{"id": 42, "text": "numeric id"}', "wrong_type"),
    (b'{"id": "bad-12", "text": null}', "wrong_type"),
    (b'{"id": "bad-13", "text": {"nested": "object"}}', "wrong_type"),
    (b'{"id": "bad-14", "text": ["a", "list"]}', "wrong_type"),
    (orjson.dumps({"id": "bad-15", "text": "long " * 5000}), "text_too_long"),
    (b"", "empty_payload"),
    (b'{"id": "bad-17", "text": "fine", "metadata": {"deep": {"er": 1}}}', "wrong_type"),
    (orjson.dumps({"id": "x" * 200, "text": "id too long"}), "invalid_field"),
    (b'{"id": "bad-19", "text": "when?", "timestamp": "yesterday"}', "invalid_field"),
    (None, "empty_payload"),
]


def _records(valid: list[dict]) -> tuple[list[OutRecord], list[str | None]]:
    """Valid and malformed records shuffled together; the second list is the expected code per record."""
    items: list[tuple[OutRecord, str | None]] = [
        (OutRecord(key=e["id"].encode(), value=orjson.dumps(e), headers=(("trace-id", f"t-{e['id']}".encode()),)), None)
        for e in valid
    ]
    items += [(OutRecord(key=f"bad-{i}".encode(), value=raw, headers=(("trace-id", f"t-bad-{i}".encode()),)), code)
              for i, (raw, code) in enumerate(MALFORMED)]
    random.Random(7).shuffle(items)
    return [r for r, _ in items], [c for _, c in items]


async def test_500_events_with_20_malformed(kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, model_dir=default_model_dir)
    await ensure_topics(settings)
    valid = valid_samples(480)
    records, expected_codes = _records(valid)
    metadata = await produce(settings, settings.input_topic, records)
    expected_by_offset = {(m.partition, m.offset): code for m, code in zip(metadata, expected_codes, strict=True) if code}

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        got = await collect_until(settings, 500, timeout_s=180, worker=worker)
    finally:
        assert worker.terminate() == 0, worker.log_tail()

    ids = got.enriched_ids()
    assert len(ids) == len(set(ids)) == 480, "a clean run enriches every valid event exactly once"
    assert set(ids) == {e["id"] for e in valid}

    assert len(got.dead) == 20
    for record in got.dead:
        letter = orjson.loads(record.value)
        where = (letter["source_partition"], letter["source_offset"])
        assert letter["error_code"] == expected_by_offset[where], letter["reason"]
        assert letter["source_topic"] == settings.input_topic
        assert letter["reason"]

    gold = {e["id"]: e["metadata"]["gold_label"] for e in valid}
    declared = {e["id"]: e.get("lang") for e in valid}
    matches = scored = 0
    for record in got.enriched:
        event = orjson.loads(record.value)
        assert record.key == event["id"].encode(), "output is keyed by event id"
        assert dict(record.headers)["trace-id"] == f"t-{event['id']}".encode(), "input headers are copied"
        assert event["summary"] is None
        assert event["processing"]["batch_size"] >= 1
        assert event["language"]["code"]
        if event["sentiment"] is None:  # language gate: only the samples' non-English texts
            assert event["sentiment_skipped_reason"] == "unsupported_language"
            assert declared[event["id"]] not in (None, "en"), event["text"]
            continue
        assert event["sentiment"]["model"] and event["sentiment"]["model_version"]
        scored += 1
        matches += event["sentiment"]["label"] == gold[event["id"]]
    assert scored >= 0.95 * 480, f"only {scored} of 480 got a sentiment"
    assert matches / scored >= 0.90, f"gold-label agreement {matches / scored:.1%}"


# kill -9 mid-stream and restart: tests/fault/test_crash_restart.py (5,000 events, duplicates bounded).
