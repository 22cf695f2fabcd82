"""The poison corpus through a real worker: every case gets its declared outcome, the worker never restarts.

Besides the corpus, the partition blockers (records whose *output* the producer cannot
publish, issue 12) go to partition 0, each followed by ordinary records: all of them must
come out, each exactly once, from the same worker process.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from pipeline.deadletter import RawRecord
from pipeline.kafka.clients import OutRecord, ensure_topics
from pipeline.lanes.sentiment.enrichment import BatchEnricher, EnricherConfig
from pipeline.settings import Settings
from tests.doubles import StubModelInfo, StubPrediction
from tests.fault.poison_corpus import ENRICHED, FOLLOWERS, PoisonCase, cases, expected_text, partition_blockers
from tests.fault.report import FaultRecord
from tests.fault.workload import (
    Coord,
    Ledger,
    Produced,
    Seen,
    Watcher,
    fault_settings,
    produce_raw,
    start_worker,
    stop_worker,
)

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.needs_model, pytest.mark.timeout(300)]

# The 5 MB case needs a producer that may send it (aiokafka's default cap is 1 MiB);
# the embedded broker accepts it (measured: Tansu has no lower message.max.bytes).
MAX_REQUEST = 8 * 1024 * 1024


def test_corpus_is_big_and_distinct() -> None:
    corpus = cases() + partition_blockers()
    assert len(corpus) >= 30 and len({c.name for c in corpus}) == len(corpus)
    assert len({c.value for c in corpus if c.name not in ("duplicate-id-a", "duplicate-id-b")}) == len(corpus) - 2


def test_partition_blockers_are_valid_inputs_whose_output_is_over_the_limit() -> None:
    # What makes them blockers, checked without a broker: the worker accepts each input, and
    # the enriched event it builds is over the default producer limit.
    settings = Settings()
    enricher = BatchEnricher(EnricherConfig(worker="w", max_payload_bytes=settings.max_payload_bytes))
    for case in partition_blockers()[:: FOLLOWERS + 1]:
        valid, dead = enricher.split([RawRecord("texts", 0, 0, case.record_key, case.value, case.headers)])
        assert not dead and len(case.value or b"") <= settings.max_payload_bytes, case.name
        (out,) = enricher.package(valid, [StubPrediction("positive", 0.9, False)], StubModelInfo(), batch_size=1,
                                  inference_ms=1.0, ingested_at=datetime.now(UTC))
        assert out.size > settings.producer_max_request_bytes, case.name


async def _produce_to_partition(settings: Settings, cases: Sequence[PoisonCase], partition: int) -> list[Produced]:
    """Send `cases` in order to one partition (acks=all); where each landed."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", max_request_size=MAX_REQUEST)
    await producer.start()
    try:
        futures = [await producer.send(settings.input_topic, c.value, key=c.record_key, headers=list(c.headers),
                                       partition=partition) for c in cases]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [Produced(c.name, m.partition, m.offset) for c, m in zip(cases, metadata, strict=True)]


@dataclass
class _Run:
    """One worker run over produced cases: what came out, attributed to each case."""

    ledger: Ledger
    case_at: dict[Coord, PoisonCase]
    log: str
    same_pid_alive: bool
    rc: int | None
    worker_log_tail: str

    def wrong_outcomes(self) -> list[str]:
        wrong = []
        for coord, case in self.case_at.items():
            seen = self.ledger.by_coord.get(coord, [])
            got = [s.value.get("error_code", ENRICHED) if s.kind == "dead" else ENRICHED for s in seen]
            if got != [str(case.expect)]:
                wrong.append(f"{case.name}: expected {case.expect}, got {got}")
        return wrong

    def first(self) -> dict[str, Seen]:
        return {case.name: self.ledger.by_coord[coord][0] for coord, case in self.case_at.items()}

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for seen in self.ledger.by_coord.values():
            key = seen[0].value.get("error_code", ENRICHED)
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


async def _run_worker(settings: Settings, tmp_path: Path, name: str, corpus: Sequence[PoisonCase],
                      produced: list[Produced]) -> _Run:
    case_at: dict[Coord, PoisonCase] = {p.coord: c for p, c in zip(produced, corpus, strict=True)}
    # Enriched outputs are traced back by (id, text): ids alone repeat on purpose.
    enriched_coord = {expected_text(c): p.coord for p, c in zip(produced, corpus, strict=True) if c.expect == ENRICHED}
    ledger = Ledger(produced, attribute=lambda v: enriched_coord[(v["id"], v["text"])])
    worker = start_worker(settings, tmp_path, name)
    pid = worker.pid
    try:
        async with Watcher(settings, ledger, [worker]) as watch:
            await watch.drain(timeout_s=180, alive=[worker])
            await watch.settle()
        alive_at_end = worker.alive() and worker.pid == pid
    finally:
        rc = await stop_worker(worker)
    return _Run(ledger, case_at, worker.log_path.read_text(errors="replace"), alive_at_end, rc, worker.log_tail())


def _assert_one_process(run: _Run) -> None:
    assert run.same_pid_alive, "the worker must survive the corpus in the same process"
    assert run.log.count('"worker_starting"') == 1
    for line in ("Restarting dead", "batch_failed_unexpectedly", "publish_gave_up"):
        assert line not in run.log, run.worker_log_tail
    assert run.rc == 0, run.worker_log_tail


async def test_poison_corpus_outcomes(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path, reliability_record: FaultRecord
) -> None:
    corpus = cases()
    settings = fault_settings(kafka_bootstrap, tmp_path, default_model_dir)
    await ensure_topics(settings)
    records = [OutRecord(key=c.record_key, value=c.value, headers=c.headers) for c in corpus]
    produced = await produce_raw(settings, records, [c.name for c in corpus], max_request_size=MAX_REQUEST)
    run = await _run_worker(settings, tmp_path, "poison-w1", corpus, produced)

    reliability_record.fault = "poison corpus"
    reliability_record.injected = f"{len(corpus)} distinct bad or strange records (incl. 5 MB, 19,000 chars, invalid UTF-8)"
    reliability_record.__dict__.update(run.ledger.summary())
    reliability_record.duplicate_bound = 0
    outcomes = run.outcomes()
    reliability_record.observed = {"outcomes": outcomes, "same_pid_alive": run.same_pid_alive,
                             "worker_starts": run.log.count('"worker_starting"')}
    reliability_record.notes = (f"{len(outcomes) - 1} distinct error codes, each as declared; "
                          f"same worker process alive at the end: {run.same_pid_alive}")

    wrong = run.wrong_outcomes()
    assert not wrong, "\n".join(wrong)

    first_output = run.first()
    by_name = {name: seen.value for name, seen in first_output.items()}
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
    for name in ("missing-key", "binary-key-and-header"):
        assert first_output[name].key == by_name[name]["id"].encode(), "outputs are keyed by event id"
    assert dict(first_output["binary-key-and-header"].headers)["bin"] == b"\xff\xfe\x00", "headers copied byte-exact"
    assert str(settings.max_payload_bytes) in by_name["metadata-1040079-bytes"]["reason"]
    _assert_one_process(run)


async def test_unpublishable_outputs_do_not_halt_their_partition(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path, reliability_record: FaultRecord
) -> None:
    """Issue 12: a record whose output is over the producer's limit failed its batch for ever
    (exit 70, restart, the same batch) and the records behind it never came out."""
    blockers = partition_blockers()
    settings = fault_settings(kafka_bootstrap, tmp_path, default_model_dir)
    await ensure_topics(settings)
    produced = await _produce_to_partition(settings, blockers, partition=0)
    run = await _run_worker(settings, tmp_path, "blockers-w1", blockers, produced)

    reliability_record.fault = "output over the producer's limit"
    reliability_record.injected = (f"on one partition: a record whose enriched output is 1.26 MB (metadata floats expand), "
                             f"{FOLLOWERS} ordinary records, a record with 1.1 MB of headers, {FOLLOWERS} ordinary records; "
                             f"producer limit {settings.producer_max_request_bytes} bytes")
    reliability_record.__dict__.update(run.ledger.summary())
    reliability_record.duplicate_bound = 0
    reliability_record.observed = {"outcomes": run.outcomes(), "same_pid_alive": run.same_pid_alive,
                             "worker_starts": run.log.count('"worker_starting"')}
    reliability_record.notes = (f"both dead-lettered as output_too_large (size and limit in the reason; the headers one "
                          f"without its headers), all {2 * FOLLOWERS} behind them enriched once; same worker process "
                          f"alive at the end: {run.same_pid_alive}, exit code {run.rc}")

    assert {p.partition for p in produced} == {0}
    wrong = run.wrong_outcomes()
    assert not wrong, "\n".join(wrong)
    first_output = run.first()
    meta = first_output["output-too-large-metadata"].value
    headers = first_output["output-too-large-headers"]
    limit = str(settings.producer_max_request_bytes)
    assert limit in meta["reason"] and "bytes serialized" in meta["reason"] and not meta["headers_dropped"]
    assert meta["payload_truncated"] and meta["payload_size"] == len(blockers[0].value or b"")
    assert meta["event_id"] == "p-block-meta" and first_output["output-too-large-metadata"].key == b"p-block-meta"
    letter = headers.value
    assert limit in letter["reason"] and "headers (1100012 bytes) were dropped" in letter["reason"]
    assert letter["headers_dropped"] and letter["headers"] == {} and letter["headers_b64"] == {}
    assert headers.headers == (), "the letter carries no Kafka headers either"
    assert base64.b64decode(letter["payload_b64"]) == blockers[FOLLOWERS + 1].value, "the input, byte-exact for replay"
    behind = [c.name for c in blockers if "-then-" in c.name]
    assert len(behind) == 2 * FOLLOWERS and all(first_output[name].value["sentiment"] for name in behind)
    assert '"output_too_large"' in run.log
    _assert_one_process(run)
