"""Shadow mode on a real worker and the embedded broker: agreement is reported, nothing extra is published."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import orjson
import pytest

from pipeline.kafka.broker import free_port
from pipeline.kafka.clients import OutRecord, ensure_topics, produce
from tests.harness import WorkerProcess, collect_until, unique_settings, valid_samples
from tests.scrape import Samples, poll_until, scrape

pytestmark = [pytest.mark.integration, pytest.mark.needs_model]

EVENTS = 120


def _shadow_lines(log_path: Path) -> list[dict]:
    lines = []
    for line in log_path.read_text(errors="replace").splitlines():
        if '"shadow_agreement"' in line:
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


async def test_shadow_same_model_agrees_fully_and_publishes_nothing(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path,
) -> None:
    # fp32 on both sides: identical weights and arithmetic, so every label must match
    # (int8 activations are quantized per batch, and the two sides batch differently).
    port = free_port()
    settings = unique_settings(kafka_bootstrap, tmp_path, model_dir=default_model_dir, model_precision="fp32",
                               shadow_model_dir=default_model_dir, shadow_precision="fp32", shadow_sample_rate=1.0,
                               summarizer_mode="off", web_port=port)
    await ensure_topics(settings)
    events = valid_samples(EVENTS)
    await produce(settings, settings.input_topic,
                  [OutRecord(key=e["id"].encode(), value=orjson.dumps(e)) for e in events])
    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(settings, log_path).start()
    base = f"http://127.0.0.1:{port}"
    try:
        got = await collect_until(settings, EVENTS, timeout_s=180, worker=worker)
        scored = sum(orjson.loads(r.value)["sentiment"] is not None for r in got.enriched)

        def shadow_done(s: Samples) -> bool:  # every sampled event compared, dropped while busy, or failed
            return (s.total("streamnlp_shadow_comparisons_total") + s.total("streamnlp_shadow_skipped_total")) >= scored

        async with aiohttp.ClientSession() as session:
            m = await poll_until(lambda: scrape(session, base), shadow_done, timeout_s=120,
                                 what="the shadow to account for every scored event", worker=worker)
        compared = m.total("streamnlp_shadow_comparisons_total")
        assert compared >= 1
        assert m.get("streamnlp_shadow_agreement_ratio") == 1.0
        assert m.total("streamnlp_shadow_skipped_total", reason="error") == 0
        disagreements = [ls for ls in m.labelsets("streamnlp_shadow_comparisons_total")
                         if ls["primary_label"] != ls["shadow_label"]]
        assert not disagreements, disagreements
        models = {ls["role"]: ls for ls in m.labelsets("streamnlp_model_info")}
        assert models["shadow"]["precision"] == "fp32" and models["shadow"]["name"] == models["sentiment"]["name"]

        # The periodic log line (every 10 s) says the same.
        line = await poll_until(lambda: _async(_shadow_lines(log_path)), lambda ls: any(x["compared"] > 0 for x in ls),
                                timeout_s=30, what="a shadow_agreement log line", worker=worker)
        last = [x for x in line if x["compared"] > 0][-1]
        assert last["agreement"] == 1.0 and last["disagreements"] == {} and last["sample_rate"] == 1.0
    finally:
        assert worker.terminate() == 0, worker.log_tail()

    assert len(got.enriched) == EVENTS and not got.dead, "shadow results are never published"
    assert sorted(got.enriched_ids()) == sorted(e["id"] for e in events)


async def _async(value: object) -> object:
    return value
