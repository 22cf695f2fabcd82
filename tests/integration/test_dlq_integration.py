"""`streamnlp dlq inspect|replay` as an operator runs them, on a real broker."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from pipeline.deadletter import InvalidEvent, make_dead_letter
from pipeline.kafka.clients import InRecord, OutRecord, ensure_topics, produce, read_to_end
from pipeline.settings import Settings
from pipeline.tools.dlq import REPLAY_HEADER
from pipeline.tools.processes import worker_env
from schemas.events import ErrorCode, to_json_bytes
from tests.harness import REPO, WorkerProcess, collect_until, unique_settings

pytestmark = [pytest.mark.integration]

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def cli(settings: Settings, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.tools.cli", *args], env=worker_env(settings), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


async def read_all(settings: Settings, topic: str) -> list[InRecord]:
    return [record async for record in read_to_end(settings, topic)]


def dead_letter_record(settings: Settings, code: ErrorCode, raw: bytes | None, *, at: datetime, key: bytes | None,
                       event_id: str | None = None, headers: dict[str, bytes] | None = None,
                       cap: int = 262_144) -> OutRecord:
    """A dead letter exactly as the worker writes it (same builder), for a record of the input topic."""
    letter = make_dead_letter(raw, InvalidEvent(code, f"{code.value}: fix the producer", event_id),
                              topic=settings.input_topic, partition=0, offset=int(at.timestamp()) % 10_000,
                              key=key, headers=headers or {}, worker="test", payload_cap_bytes=cap, failed_at=at)
    return OutRecord(key=(event_id.encode() if event_id else key), value=to_json_bytes(letter),
                     headers=tuple(headers.items()) if headers else ())


async def test_inspect_then_replay_a_filtered_subset_byte_exact(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, summarizer_mode="off")
    await ensure_topics(settings)
    minute = timedelta(minutes=1)
    letters = [dead_letter_record(settings, ErrorCode.invalid_json, b'{"id": "j%d", "text": "cut' % i,
                                  at=T0 + i * minute, key=f"j{i}".encode(), headers={"trace-id": f"t-j{i}".encode()})
               for i in range(6)]
    letters += [dead_letter_record(settings, ErrorCode.text_too_long, orjson.dumps({"id": f"long-{i}", "text": "w " * 90}),
                                   at=T0 + (10 + i) * minute, key=f"long-{i}".encode(), event_id=f"long-{i}")
                for i in range(4)]
    utf8_raw = b'{"id": "u1", "text": "caf\xe9"}'
    letters.append(dead_letter_record(settings, ErrorCode.invalid_utf8, utf8_raw, at=T0 + 13 * minute, key=None,
                                      headers={"trace-id": b"t-u1", "bin": b"\x00\xff\x10"}))
    letters.append(dead_letter_record(settings, ErrorCode.text_too_long, b"z" * 4096, at=T0 + 14 * minute,
                                      key=b"huge", event_id="huge", cap=1024))
    letters.append(dead_letter_record(settings, ErrorCode.empty_payload, None, at=T0 + 15 * minute, key=b"tomb"))
    letters.append(OutRecord(key=b"noise", value=b"not a dead letter"))
    metadata = await produce(settings, settings.dlq_topic, letters)
    assert len({m.partition for m in metadata}) >= 3, "the dead letters are spread over partitions"
    where = {record.key: f"{settings.dlq_topic}/{m.partition}/{m.offset}" for record, m in zip(letters, metadata, strict=True)}

    inspected = cli(settings, "dlq", "inspect", "--json")
    assert inspected.returncode == 0, inspected.stderr
    summary = orjson.loads(inspected.stdout)
    assert (summary["total"], summary["unreadable"]) == (len(letters), 1)
    by_code = {c["error_code"]: c for c in summary["error_codes"]}
    assert {code: c["count"] for code, c in by_code.items()} == {
        "invalid_json": 6, "text_too_long": 5, "invalid_utf8": 1, "empty_payload": 1}
    assert by_code["invalid_json"]["first_failed_at"] == T0.isoformat()
    assert by_code["invalid_json"]["last_failed_at"] == (T0 + 5 * minute).isoformat()
    assert by_code["text_too_long"]["not_replayable"] == 1 and by_code["empty_payload"]["not_replayable"] == 1
    assert len(by_code["invalid_json"]["example_ids"]) == 3
    table = cli(settings, "dlq", "inspect")
    assert table.returncode == 0 and "invalid_json" in table.stdout and "text_too_long" in table.stdout

    # Long texts from 12:12 on, the invalid UTF-8 one, and one invalid JSON record by key.
    selection = ["--error-code", "text_too_long", "--error-code", "invalid_utf8", "--since", "2026-11-01T12:12:00Z"]
    dry = cli(settings, "dlq", "replay", *selection, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    listed = [line for line in dry.stdout.splitlines() if line.startswith("would replay ")]
    assert len(listed) == 3 and "payload_truncated: 1" in dry.stdout, dry.stdout
    assert await read_all(settings, settings.input_topic) == [], "a dry run publishes nothing"

    replayed = cli(settings, "dlq", "replay", *selection)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "selected 4, replayed 3, skipped 1 (payload_truncated: 1)" in replayed.stdout, replayed.stdout
    by_id = cli(settings, "dlq", "replay", "--id", "j4", "--json")
    assert by_id.returncode == 0 and orjson.loads(by_id.stdout.splitlines()[-1])["replayed"] == 1, by_id.stdout

    got = await read_all(settings, settings.input_topic)
    # key -> (key, raw value, original headers) as they were before dead-lettering
    originals = {b"long-2": (b"long-2", orjson.dumps({"id": "long-2", "text": "w " * 90}), []),
                 b"long-3": (b"long-3", orjson.dumps({"id": "long-3", "text": "w " * 90}), []),
                 None: (None, utf8_raw, [("trace-id", b"t-u1"), ("bin", b"\x00\xff\x10")]),
                 b"j4": (b"j4", b'{"id": "j4", "text": "cut', [("trace-id", b"t-j4")])}
    assert sorted((r.key or b"") for r in got) == sorted((k or b"") for k in originals), "exactly the selection"
    for record in got:
        key, value, headers = originals[record.key]
        assert record.value == value, "byte-exact payload"
        assert list(record.headers) == [*headers, (REPLAY_HEADER, where[record.key].encode())]


async def test_replay_all_skips_letters_a_replay_made_unless_included(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, summarizer_mode="off")
    await ensure_topics(settings)
    raw = b'{"id": "loop-1", "text": "cut'
    first = dead_letter_record(settings, ErrorCode.invalid_json, raw, at=T0, key=b"loop-1")
    [meta] = await produce(settings, settings.dlq_topic, [first])
    # What the worker writes when the replayed record fails again: the same raw bytes, the replay marker kept.
    marker = f"{settings.dlq_topic}/{meta.partition}/{meta.offset}".encode()
    again = dead_letter_record(settings, ErrorCode.invalid_json, raw, at=T0 + timedelta(minutes=5), key=b"loop-1",
                               headers={REPLAY_HEADER: marker})
    await produce(settings, settings.dlq_topic, [again])

    replayed = cli(settings, "dlq", "replay", "--all")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "selected 2, replayed 1, skipped 1 (made_by_replay: 1)" in replayed.stdout, replayed.stdout
    got = await read_all(settings, settings.input_topic)
    assert [(r.key, r.value) for r in got] == [(b"loop-1", raw)], "the input once, not once per failed replay"
    assert dict(got[0].headers)[REPLAY_HEADER] == marker, "replayed from the original letter"

    both = cli(settings, "dlq", "replay", "--all", "--include-replays", "--json")
    assert both.returncode == 0, both.stdout + both.stderr
    assert orjson.loads(both.stdout.splitlines()[-1])["replayed"] == 2


@pytest.mark.needs_model
async def test_replay_after_fixing_the_cause_gets_events_enriched(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path
) -> None:
    strict = unique_settings(kafka_bootstrap, tmp_path, model_dir=default_model_dir, summarizer_mode="off",
                             max_text_chars=80)
    await ensure_topics(strict)
    short = [{"id": f"ok-{i}", "text": f"Great phone, battery lasts days ({i})."} for i in range(8)]
    long = [{"id": f"long-{i}", "text": "A long and thoughtful review of a quiet, lovely film. " * 3} for i in range(3)]
    records = [OutRecord(key=e["id"].encode(), value=orjson.dumps(e), headers=(("trace-id", e["id"].encode()),))
               for e in short + long]
    records.append(OutRecord(key=b"broken", value=b'{"id": "broken", "text": '))
    await produce(strict, strict.input_topic, records)

    worker = WorkerProcess(strict, tmp_path / "strict.log").start()
    try:
        first = await collect_until(strict, len(records), timeout_s=150, worker=worker)
    finally:
        assert worker.terminate() == 0, worker.log_tail()
    codes = sorted(orjson.loads(r.value)["error_code"] for r in first.dead)
    assert codes == ["invalid_json", "text_too_long", "text_too_long", "text_too_long"]

    # The cause is fixed (the limit raised); replay only the texts that were too long.
    fixed = strict.model_copy(update={"max_text_chars": 20_000})
    worker = WorkerProcess(fixed, tmp_path / "fixed.log").start()
    try:
        result = cli(fixed, "dlq", "replay", "--error-code", "text_too_long")
        assert result.returncode == 0 and "replayed 3" in result.stdout, result.stdout + result.stderr
        second = await collect_until(fixed, len(records) + 3, timeout_s=150, worker=worker)
    finally:
        assert worker.terminate() == 0, worker.log_tail()
    assert sorted(set(second.enriched_ids())) == sorted(e["id"] for e in short + long)
    replayed = [r for r in second.enriched if orjson.loads(r.value)["id"].startswith("long-")]
    assert len(replayed) == 3
    for record in replayed:
        headers = dict(record.headers)
        assert headers[REPLAY_HEADER].startswith(f"{fixed.dlq_topic}/".encode()), "the marker reaches the output"
        assert headers["trace-id"] == orjson.loads(record.value)["id"].encode(), "original headers too"
