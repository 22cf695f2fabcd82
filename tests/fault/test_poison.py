"""The poison corpus through a real worker: every case gets its declared outcome, the worker never restarts."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from pipeline.kafka_io import OutRecord, ensure_topics
from tests.fault.poison_corpus import ENRICHED, PoisonCase, cases, expected_text
from tests.fault.report import FaultRecord
from tests.fault.workload import Coord, Ledger, Watcher, fault_settings, produce_raw, start_worker, stop_worker

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.needs_model, pytest.mark.timeout(300)]

# The 5 MB case needs a producer that may send it (aiokafka's default cap is 1 MiB);
# the embedded broker accepts it (measured: Tansu has no lower message.max.bytes).
MAX_REQUEST = 8 * 1024 * 1024


def test_corpus_is_big_and_distinct() -> None:
    corpus = cases()
    assert len(corpus) >= 30 and len({c.name for c in corpus}) == len(corpus)
    assert len({c.value for c in corpus if c.name not in ("duplicate-id-a", "duplicate-id-b")}) == len(corpus) - 2


async def test_poison_corpus_outcomes(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path, fault_record: FaultRecord
) -> None:
    corpus = cases()
    settings = fault_settings(kafka_bootstrap, tmp_path, default_model_dir)
    await ensure_topics(settings)
    records = [OutRecord(key=c.record_key, value=c.value, headers=c.headers) for c in corpus]
    produced = await produce_raw(settings, records, [c.name for c in corpus], max_request_size=MAX_REQUEST)
    case_at: dict[Coord, PoisonCase] = {p.coord: c for p, c in zip(produced, corpus)}
    # Enriched outputs are traced back by (id, text): ids alone repeat on purpose.
    enriched_coord = {expected_text(c): p.coord for p, c in zip(produced, corpus) if c.expect == ENRICHED}
    ledger = Ledger(produced, attribute=lambda v: enriched_coord[(v["id"], v["text"])])

    worker = start_worker(settings, tmp_path, "poison-w1")
    pid = worker.pid
    try:
        async with Watcher(settings, ledger, [worker]) as watch:
            await watch.drain(timeout_s=180, alive=[worker])
            await watch.settle()
        alive_at_end = worker.alive()
    finally:
        rc = await stop_worker(worker)
    log = worker.log_path.read_text(errors="replace")

    fault_record.fault = "poison corpus"
    fault_record.injected = f"{len(corpus)} distinct bad or strange records (incl. 5 MB, 19,000 chars, invalid UTF-8)"
    fault_record.__dict__.update(ledger.summary())
    fault_record.duplicate_bound = 0
    outcomes: dict[str, int] = {}
    for seen in ledger.by_coord.values():
        key = seen[0].value.get("error_code", ENRICHED)
        outcomes[key] = outcomes.get(key, 0) + 1
    fault_record.observed = {"outcomes": dict(sorted(outcomes.items())), "same_pid_alive": alive_at_end,
                             "worker_starts": log.count('"worker_starting"')}
    fault_record.notes = (f"{len(outcomes) - 1} distinct error codes, each as declared; "
                          f"same worker process alive at the end: {alive_at_end}")

    wrong = []
    for coord, case in case_at.items():
        seen = ledger.by_coord.get(coord, [])
        got = [s.value.get("error_code", ENRICHED) if s.kind == "dead" else ENRICHED for s in seen]
        if got != [str(case.expect)]:
            wrong.append(f"{case.name}: expected {case.expect}, got {got}")
    assert not wrong, "\n".join(wrong)

    by_name = {case.name: ledger.by_coord[coord][0].value for coord, case in case_at.items()}
    assert by_name["text-19000-chars"]["sentiment"]["truncated"] is True
    assert by_name["emoji"]["sentiment"]["truncated"] is False
    # Language gate (EnrichedEvent 1.2): non-English texts are enriched with sentiment null and the reason.
    for name, code in (("rtl-arabic", "ar"), ("rtl-hebrew-bidi", "he"), ("cjk-chinese", "zh"),
                       ("cjk-japanese", "ja"), ("korean", "ko")):
        assert by_name[name]["sentiment"] is None, name
        assert by_name[name]["sentiment_skipped_reason"] == "unsupported_language", name
        assert by_name[name]["language"]["code"] == code, name
    big = by_name["text-5mb"]
    five_mb = next(c for c in corpus if c.name == "text-5mb").value
    assert big["payload_truncated"] and big["payload_size"] == len(five_mb)
    assert big["payload_sha256"] == hashlib.sha256(five_mb).hexdigest()
    exact = by_name["latin-1"]  # small rejected payloads come back byte-exact for replay
    assert base64.b64decode(exact["payload_b64"]) == next(c for c in corpus if c.name == "latin-1").value
    assert {by_name["duplicate-id-a"]["id"], by_name["duplicate-id-b"]["id"]} == {"p-dup-id"}
    first_output = {case.name: ledger.by_coord[coord][0] for coord, case in case_at.items()}
    for name in ("missing-key", "binary-key-and-header"):
        assert first_output[name].key == by_name[name]["id"].encode(), "outputs are keyed by event id"
    assert dict(first_output["binary-key-and-header"].headers)["bin"] == b"\xff\xfe\x00", "headers copied byte-exact"

    assert alive_at_end and worker.pid == pid, "the worker must survive the corpus in the same process"
    assert log.count('"worker_starting"') == 1
    assert "Restarting dead" not in log and "batch_failed_unexpectedly" not in log, worker.log_tail()
    assert rc == 0, worker.log_tail()
