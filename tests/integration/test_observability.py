"""A real worker on the embedded broker: /healthz, /readyz and /metrics tell the truth about it."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import orjson
import pytest

from pipeline.kafka.broker import free_port
from pipeline.kafka.clients import OutRecord, ensure_topics, produce
from tests.harness import WorkerProcess, unique_settings
from tests.scrape import Samples, get, poll_until, scrape

pytestmark = [pytest.mark.integration, pytest.mark.needs_model]

VALID = 40
MALFORMED = [(b"{broken json", "invalid_json"), (b'{"id": "m-2", "text": "   "}', "empty_text"),
             (b'{"text": "no id here"}', "missing_field"), (b"also not json", "invalid_json")]


async def test_health_readiness_and_metrics_of_a_running_worker(
    kafka_bootstrap: str, default_model_dir: Path, summarizer_model_dir: Path, tmp_path: Path,
) -> None:
    port = free_port()
    settings = unique_settings(kafka_bootstrap, tmp_path, model_dir=default_model_dir,
                               summarizer_model_dir=summarizer_model_dir, web_port=port)
    base = f"http://127.0.0.1:{port}"
    await ensure_topics(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        async with aiohttp.ClientSession() as session:
            status, _ = await poll_until(lambda: get(session, f"{base}/healthz"), lambda r: r[0] == 200,
                                         timeout_s=120, what="/healthz 200", worker=worker)
            status, body = await poll_until(lambda: get(session, f"{base}/readyz"), lambda r: r[0] == 200,
                                            timeout_s=120, what="/readyz 200 after assignment", worker=worker)
            ready = json.loads(body)
            assert ready["ready"] and ready["models"] == {"sentiment": True, "summarizer": True, "toxicity": True}
            assert {p.rsplit(":", 1)[0] for p in ready["partitions"]} == {settings.input_topic, settings.summary_requests_topic}

            records = [OutRecord(key=f"ok-{i}".encode(), value=orjson.dumps({"id": f"ok-{i}", "text": f"A fine film, number {i}."}))
                       for i in range(VALID)]
            records += [OutRecord(key=f"bad-{i}".encode(), value=raw) for i, (raw, _) in enumerate(MALFORMED)]
            await produce(settings, settings.input_topic, records)
            total = VALID + len(MALFORMED)

            def all_out(s: Samples) -> bool:
                return (s.total("streamnlp_events_enriched_total")
                        + s.total("streamnlp_events_dead_lettered_total", lane="sentiment")) >= total

            m = await poll_until(lambda: scrape(session, base), all_out, timeout_s=120,
                                 what=f"{total} events enriched or dead-lettered", worker=worker)
            assert m.get("streamnlp_events_in_total") == total
            assert m.get("streamnlp_events_enriched_total") == VALID
            assert m.get("streamnlp_events_dead_lettered_total", lane="sentiment", error_code="invalid_json") == 2
            assert m.get("streamnlp_events_dead_lettered_total", lane="sentiment", error_code="empty_text") == 1
            assert m.get("streamnlp_events_dead_lettered_total", lane="sentiment", error_code="missing_field") == 1
            batches = m.get("streamnlp_batch_size_count", lane="sentiment")
            assert batches and batches >= 1 and m.get("streamnlp_batch_size_sum", lane="sentiment") == total
            assert m.get("streamnlp_inference_seconds_count", model="sentiment-minilm-rt") >= 1
            assert m.get("streamnlp_end_to_end_seconds_count", lane="sentiment") == total
            assert m.get("streamnlp_end_to_end_seconds_bucket", lane="sentiment", le="+Inf") == total

            manifest = orjson.loads((default_model_dir / "manifest.json").read_bytes())
            summarizer_manifest = orjson.loads((summarizer_model_dir / "manifest.json").read_bytes())
            models = {ls["role"]: ls for ls in m.labelsets("streamnlp_model_info")}
            assert models["sentiment"] == {"role": "sentiment", "name": manifest["name"],
                                           "version": manifest["version"], "precision": "int8"}
            assert models["summarizer"]["name"] == summarizer_manifest["name"]
            assert models["summarizer"]["precision"] == settings.summarizer_precision
            assert models["toxicity"]["name"] == "toxicity-linear" and models["toxicity"]["precision"] == "fp32"
            # every enriched event is counted by its toxicity label
            labelled = sum(m.get("streamnlp_toxicity_total", label=label) or 0 for label in ("clean", "offensive"))
            assert labelled == VALID

            # Lag is refreshed every few seconds from the broker's end offsets and the group's commits.
            m = await poll_until(
                lambda: scrape(session, base),
                lambda s: bool(s.labelsets("streamnlp_consumer_lag"))
                and s.total("streamnlp_consumer_lag", topic=settings.input_topic) == 0,
                timeout_s=60, what="consumer lag reported and back to 0", worker=worker)
            lag_partitions = {ls["partition"] for ls in m.labelsets("streamnlp_consumer_lag") if ls["topic"] == settings.input_topic}
            assert lag_partitions == {str(p) for p in range(settings.topic_partitions)}
            assert m.get("streamnlp_summary_backlog") is not None
            assert m.get("process_resident_memory_bytes") > 100e6, "the worker's own process: models loaded"
            assert m.get("python_gc_collections_total", generation="0") is not None
            assert (await get(session, f"{base}/healthz"))[0] == 200
    finally:
        assert worker.terminate() == 0, worker.log_tail()
