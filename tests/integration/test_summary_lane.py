"""The summary lane end to end: real broker, real worker, real summarizer model."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.kafka.clients import OutRecord, TopicFollower, ensure_topics, produce
from pipeline.tools.samples import labelled_samples
from tests.harness import WorkerProcess, unique_settings

pytestmark = [pytest.mark.integration, pytest.mark.needs_model]


def _samples(long: bool) -> list[dict]:
    return [event for event in labelled_samples() if (len(event["text"]) >= 400) == long]


async def test_long_texts_do_not_stall_sentiment(
    kafka_bootstrap: str, default_model_dir: Path, summarizer_model_dir: Path, tmp_path: Path
) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, model_dir=default_model_dir,
                               summarizer_model_dir=summarizer_model_dir)
    await ensure_topics(settings)
    longs, shorts = _samples(long=True), _samples(long=False)
    long_events = [dict(longs[i % len(longs)], id=f"long-{i:02d}") for i in range(20)]
    short_events = [dict(shorts[i % len(shorts)], id=f"short-{i:03d}") for i in range(100)]
    # Long texts first: a summarizer that blocked the stream would hold up every short one behind them.
    await produce(settings, settings.input_topic,
                  [OutRecord(key=e["id"].encode(), value=orjson.dumps(e)) for e in long_events + short_events])

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    enriched: dict[str, tuple[int, dict]] = {}
    summaries: dict[str, tuple[int, dict]] = {}
    try:
        async with TopicFollower(settings, [settings.output_topic, settings.summaries_topic, settings.dlq_topic]) as f:
            import time

            deadline = time.monotonic() + 300
            while len(enriched) < 120 or len(summaries) < 20:
                assert time.monotonic() < deadline, f"timed out: {len(enriched)} enriched, {len(summaries)} summaries\n{worker.log_tail()}"
                assert worker.alive(), worker.log_tail()
                for record in await f.poll(0.5):
                    value = orjson.loads(record.value)
                    assert record.topic != settings.dlq_topic, value
                    target = enriched if record.topic == settings.output_topic else summaries
                    target.setdefault(value["id"], (record.timestamp_ms, value))
    finally:
        assert worker.terminate() == 0, worker.log_tail()

    assert set(enriched) == {e["id"] for e in long_events + short_events}
    assert set(summaries) == {e["id"] for e in long_events}, "one summary per long text, none for short ones"
    for event_id, (_, event) in enriched.items():
        assert event["summary_status"] == ("pending" if event_id.startswith("long-") else "none")
    for _, summary in summaries.values():
        assert 0.0 <= summary["faithfulness"]["score"] <= 1.0
        assert summary["method"] in ("abstractive", "extractive")
        assert summary["summary"].strip()

    # Arrival order at the broker (record timestamps set when each result was published).
    tenth_summary_at = sorted(ts for ts, _ in summaries.values())[9]
    last_short_at = max(ts for event_id, (ts, _) in enriched.items() if event_id.startswith("short-"))
    assert last_short_at <= tenth_summary_at, "all short results must be out before the 10th summary"
