"""Byte-bounded batches and buffers in a real worker on a real broker (the unit side: tests/unit/runtime/test_buffers.py)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import orjson
import pytest

from pipeline.kafka.broker import free_port
from pipeline.kafka.clients import OutRecord, ensure_topics, produce
from tests.harness import collect_until, unique_settings
from tests.ready import start_ready_worker
from tests.scrape import scrape


@pytest.mark.integration
@pytest.mark.needs_model
async def test_large_records_fill_batches_and_buffers_by_bytes(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path,
) -> None:
    """A backlog of ~20 KB texts: with 64 KiB budgets a batch holds at most 3 of them (128 by count) and the
    buffer pauses fetching long before its 1,024 records."""
    settings = unique_settings(kafka_bootstrap, tmp_path, model_dir=default_model_dir, summarizer_mode="off",
                               windows_enabled=False, web_port=free_port(),
                               batch_max_bytes=65_536, stream_buffer_max_bytes=65_536)
    await ensure_topics(settings)
    events = [{"id": f"big-{i}", "text": ("A long, careful and rather good review. " * 500)[:19_990]} for i in range(60)]
    records = [OutRecord(key=e["id"].encode(), value=orjson.dumps(e)) for e in events]
    assert all(19_000 < len(r.value) < 21_000 for r in records)
    await produce(settings, settings.input_topic, records)  # a backlog before the worker starts
    worker = await start_ready_worker(settings, tmp_path / "worker.log")
    try:
        got = await collect_until(settings, len(events), timeout_s=240, worker=worker)
        async with aiohttp.ClientSession() as session:
            m = await scrape(session, f"http://127.0.0.1:{settings.web_port}")
    finally:
        assert worker.terminate() == 0, worker.log_tail()
    assert sorted(set(got.enriched_ids())) == sorted(e["id"] for e in events)
    batches = m.get("streamnlp_batch_size_count", lane="sentiment")
    assert batches and m.get("streamnlp_batch_size_sum", lane="sentiment") == len(events)
    assert m.get("streamnlp_batch_size_bucket", lane="sentiment", le="4.0") == batches, "every batch ≤ 3 records by bytes"
    assert m.total("streamnlp_buffer_full_total", topic=settings.input_topic) >= 1, "bytes paused fetching"
