"""A micro-batch holding short and long texts publishes the short results first (real broker, worker, model)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.kafka.clients import OutRecord, ensure_topics, produce
from pipeline.tools.samples import labelled_samples
from tests.harness import WorkerProcess, collect_until, unique_settings

pytestmark = [pytest.mark.integration, pytest.mark.needs_model]

SHORTS = 24
LONGS = 6


async def test_short_results_of_a_batch_are_published_before_its_long_ones(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path
) -> None:
    samples = labelled_samples()
    # Short: the whole JSON record under the 400-byte threshold, so no near-miss lands in the long group.
    shorts = [e for e in samples if len(orjson.dumps(e)) < 400]
    longs = [e for e in samples if len(e["text"]) >= 400]
    assert shorts and longs, "samples/events.jsonl needs texts on both sides of 400 characters"
    events: list[tuple[bytes, dict]] = []
    for i in range(SHORTS):
        event = dict(shorts[i % len(shorts)], id=f"short-{i:02d}")
        events.append((event["id"].encode(), event))
        if i % 4 == 1:
            j = i // 4
            long_event = dict(longs[j % len(longs)], id=f"long-{j:02d}")
            events.append((long_event["id"].encode(), long_event))
    # A short text sharing its key with an earlier long one follows it into the long group (per-key order).
    keyed_long = dict(longs[0], id="long-keyed")
    keyed_short = dict(shorts[0], id="short-after-long-same-key")
    events[3:3] = [(b"user-7", keyed_long)]
    events.append((b"user-7", keyed_short))
    total = len(events)
    assert sum(e["id"].startswith("long-") for _, e in events) == LONGS + 1

    # One partition and a batch that closes only when full: every record lands in one micro-batch.
    settings = unique_settings(kafka_bootstrap, tmp_path, model_dir=default_model_dir, summarizer_mode="off",
                               topic_partitions=1, batch_max_size=total, batch_max_wait_ms=60_000)
    await ensure_topics(settings)
    await produce(settings, settings.input_topic, [OutRecord(key=key, value=orjson.dumps(e)) for key, e in events])

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        got = await collect_until(settings, total, timeout_s=180, worker=worker)
    finally:
        assert worker.terminate() == 0, worker.log_tail()

    assert not got.dead, [r.value for r in got.dead]
    outputs: dict[str, tuple[int, dict]] = {}
    for record in got.enriched:
        event = orjson.loads(record.value or b"null")
        outputs[event["id"]] = (record.timestamp_ms, event)
    assert len(got.enriched) == len(outputs) == total, "every record enriched exactly once"
    assert set(outputs) == {e["id"] for _, e in events}
    assert len({event["processing"]["ingested_at"] for _, event in outputs.values()}) == 1, "one micro-batch"

    late = {e["id"] for _, e in events if e["id"].startswith("long-")} | {"short-after-long-same-key"}
    early = set(outputs) - late
    assert {outputs[i][1]["processing"]["batch_size"] for i in early} == {len(early)}
    assert {outputs[i][1]["processing"]["batch_size"] for i in late} == {len(late)}
    # Broker record timestamps (set when each result was produced): the short group's acks came first.
    assert max(outputs[i][0] for i in early) <= min(outputs[i][0] for i in late)
    assert outputs["long-keyed"][0] <= outputs["short-after-long-same-key"][0], "one key's outputs in input order"
