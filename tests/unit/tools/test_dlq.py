"""Dead-letter selection, replay planning and summaries: pure logic, no broker."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from pipeline.deadletter import InvalidEvent, make_dead_letter
from pipeline.settings import Settings
from pipeline.tools import dlq
from pipeline.tools.dlq import REPLAY_HEADER, DlqEntry, ReplayFilter, Skip, plan, summarise
from schemas.events import DeadLetter, ErrorCode

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
TARGETS = {"texts": "texts", "texts.summarize": "texts.summarize"}


def letter(
    code: ErrorCode = ErrorCode.invalid_json,
    *,
    raw: bytes | None = b"{not json",
    event_id: str | None = None,
    key: bytes | None = b"k-1",
    headers: dict[str, bytes] | None = None,
    at: datetime = T0,
    topic: str = "texts",
    cap: int = 262_144,
) -> DeadLetter:
    return make_dead_letter(raw, InvalidEvent(code, f"{code.value} happened", event_id), topic=topic, partition=1,
                            offset=7, key=key, headers=headers or {}, worker="w", payload_cap_bytes=cap,
                            failed_at=at)


def entry(dead: DeadLetter | None, offset: int = 3) -> DlqEntry:
    return DlqEntry("texts.dlq", 2, offset, dead)


# --------------------------------------------------------------------------- filter
def test_empty_filter_selects_everything() -> None:
    assert ReplayFilter().selects_everything
    assert ReplayFilter().matches(letter())
    assert not ReplayFilter(ids=frozenset({"x"})).selects_everything


def test_error_codes_are_alternatives() -> None:
    flt = ReplayFilter(error_codes=frozenset({ErrorCode.invalid_json, ErrorCode.text_too_long}))
    assert flt.matches(letter(ErrorCode.invalid_json))
    assert flt.matches(letter(ErrorCode.text_too_long))
    assert not flt.matches(letter(ErrorCode.empty_text))


def test_time_range_is_since_inclusive_until_exclusive() -> None:
    flt = ReplayFilter(since=T0, until=T0 + timedelta(hours=1))
    assert flt.matches(letter(at=T0))
    assert flt.matches(letter(at=T0 + timedelta(minutes=59)))
    assert not flt.matches(letter(at=T0 + timedelta(hours=1)))
    assert not flt.matches(letter(at=T0 - timedelta(seconds=1)))


def test_naive_times_are_utc() -> None:
    flt = ReplayFilter(since=T0.replace(tzinfo=None))
    assert flt.since == T0
    assert flt.matches(letter(at=T0)) and not flt.matches(letter(at=T0 - timedelta(seconds=1)))


def test_since_must_precede_until() -> None:
    with pytest.raises(ValueError, match="--since"):
        ReplayFilter(since=T0, until=T0)


def test_ids_match_the_event_id_else_the_original_key() -> None:
    flt = ReplayFilter(ids=frozenset({"review-9", "raw-key"}))
    assert flt.matches(letter(ErrorCode.text_too_long, event_id="review-9", key=b"other"))
    assert not flt.matches(letter(ErrorCode.text_too_long, event_id="review-8", key=b"raw-key")), "the id wins"
    assert flt.matches(letter(event_id=None, key=b"raw-key"))
    assert not flt.matches(letter(event_id=None, key=None))


def test_filters_combine() -> None:
    flt = ReplayFilter(error_codes=frozenset({ErrorCode.invalid_json}), since=T0, ids=frozenset({"k-1"}))
    assert flt.matches(letter(at=T0))
    assert not flt.matches(letter(at=T0 - timedelta(days=1)))
    assert not flt.matches(letter(ErrorCode.empty_text, at=T0))


# --------------------------------------------------------------------------- plan
def test_plan_restores_the_raw_record_byte_exact() -> None:
    raw = b'\xef\xbb\xbf{"id": "r1", "text": "caf\xc3\xa9 \xf0\x9f\x98\x80", "x": 1}  \r\n'
    headers = {"trace-id": b"t-1", "blob": b"\xff\x00\xfe"}
    item = plan(entry(letter(raw=raw, key=b"\x00key", headers=headers)), TARGETS)
    assert isinstance(item, dlq.ReplayItem)
    assert item.topic == "texts"
    assert item.record.value == raw and item.record.key == b"\x00key"
    assert dict(item.record.headers) == {"trace-id": b"t-1", "blob": b"\xff\x00\xfe",
                                         REPLAY_HEADER: b"texts.dlq/2/3"}


def test_plan_keeps_a_missing_key_missing_and_replaces_an_older_replay_marker() -> None:
    item = plan(entry(letter(key=None, headers={REPLAY_HEADER: b"texts.dlq/0/1"}), offset=9), TARGETS)
    assert isinstance(item, dlq.ReplayItem)
    assert item.record.key is None
    assert [v for k, v in item.record.headers if k == REPLAY_HEADER] == [b"texts.dlq/2/9"]


def test_letters_made_by_a_replay_are_skipped_unless_included() -> None:
    """A replayed record that failed again is a second letter for the same input: replaying both would
    send the input twice, and every `replay --all` would double the copies (a replay loop)."""
    again = entry(letter(headers={REPLAY_HEADER: b"texts.dlq/0/1", "trace-id": b"t"}), offset=9)
    original = entry(letter(), offset=1)
    assert dlq.made_by_replay(again.letter) and not dlq.made_by_replay(original.letter)
    assert dlq.replay_outcome(again, TARGETS) is Skip.made_by_replay
    assert isinstance(dlq.replay_outcome(original, TARGETS), dlq.ReplayItem)
    item = dlq.replay_outcome(again, TARGETS, include_replays=True)
    assert isinstance(item, dlq.ReplayItem) and dict(item.record.headers)[REPLAY_HEADER] == b"texts.dlq/2/9"
    assert "--include-replays" in dlq.SKIP_HELP[Skip.made_by_replay]


def test_payloads_above_the_cap_are_refused() -> None:
    dead = letter(raw=b"x" * 100, cap=10)
    assert dead.payload_truncated and dead.payload_b64 is None
    assert plan(entry(dead), TARGETS) is Skip.payload_truncated


def test_tombstones_and_corrupt_payloads_are_refused() -> None:
    assert plan(entry(letter(ErrorCode.empty_payload, raw=None)), TARGETS) is Skip.payload_null
    good = letter(raw=b"abc")
    tampered = good.model_copy(update={"payload_b64": base64.b64encode(b"abd").decode()})
    assert plan(entry(tampered), TARGETS) is Skip.payload_corrupt
    garbage = good.model_copy(update={"payload_b64": "not base64!"})
    assert plan(entry(garbage), TARGETS) is Skip.payload_corrupt
    assert plan(entry(None), TARGETS) is Skip.not_a_dead_letter


def test_letters_go_back_to_their_source_topic() -> None:
    request = letter(ErrorCode.summarization_error, raw=b'{"id": "s"}', topic="texts.summarize")
    item = plan(entry(request), TARGETS)
    assert isinstance(item, dlq.ReplayItem) and item.topic == "texts.summarize"
    foreign = letter(topic="someone-elses-topic")
    assert plan(entry(foreign), TARGETS) is Skip.unknown_source_topic
    forced = plan(entry(foreign), TARGETS, topic_override="texts")
    assert isinstance(forced, dlq.ReplayItem) and forced.topic == "texts"


def test_replay_targets_follow_the_settings() -> None:
    settings = Settings(input_topic="in", summary_requests_topic="in.sum", output_topic="o", dlq_topic="d",
                        summaries_topic="s")
    assert dlq.replay_targets(settings) == {"in": "in", "in.sum": "in.sum"}


# --------------------------------------------------------------------------- summary
def test_summary_by_error_code() -> None:
    entries = [entry(letter(ErrorCode.invalid_json, at=T0 + timedelta(minutes=i), key=f"k{i}".encode()), i)
               for i in range(5)]
    entries += [entry(letter(ErrorCode.text_too_long, event_id="long-1", raw=b"y" * 50, cap=10), 10), entry(None, 11)]
    summary = summarise("texts.dlq", entries)
    assert (summary.total, summary.unreadable) == (7, 1)
    codes = summary.codes()
    assert [(c.error_code, c.count) for c in codes] == [("invalid_json", 5), ("text_too_long", 1)]
    first = codes[0]
    assert (first.first_failed_at, first.last_failed_at) == (T0, T0 + timedelta(minutes=4))
    assert first.example_ids == ["k0", "k1", "k2"] and first.example_reasons == ["invalid_json happened"]
    assert codes[1].not_replayable == 1 and codes[1].example_ids == ["long-1"]
    data = summary.as_dict()
    assert data["error_codes"][0]["first_failed_at"] == T0.isoformat()
    table = dlq.format_summary(summary)
    assert "invalid_json" in table and "text_too_long" in table and "k0, k1, k2" in table


def test_report_line_counts_skips_by_reason() -> None:
    report = dlq.ReplayReport(dry_run=False, scanned=9, selected=4, planned=3, replayed=3)
    report.skipped["payload_truncated"] += 1
    line = dlq.format_report(report)
    assert "selected 4" in line and "replayed 3" in line and "payload_truncated: 1" in line
    assert report.ok


# --------------------------------------------------------------------------- CLI
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("STREAMNLP_") or key == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(key)


def test_replay_without_a_filter_needs_all(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.tools.cli import main

    _env(monkeypatch)
    result = CliRunner().invoke(main, ["dlq", "replay"])
    assert result.exit_code == 2 and "--all" in result.output


def test_replay_exits_non_zero_when_publishing_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.kafka import clients as kafka_io
    from pipeline.tools import cli

    _env(monkeypatch)
    entries = [entry(letter(key=b"a"), 1), entry(letter(key=b"b"), 2)]

    async def fake_read(settings: Settings):
        for item in entries:
            yield item

    async def fake_send(settings: Settings, items):
        items = list(items)
        return [ConnectionError("broker went away") for _ in items]

    monkeypatch.setattr(dlq, "read_dead_letters", fake_read)
    monkeypatch.setattr(dlq, "send_all", fake_send)
    monkeypatch.setattr(kafka_io, "check_reachable", lambda settings: None)
    result = CliRunner().invoke(cli.main, ["dlq", "replay", "--error-code", "invalid_json"])
    assert result.exit_code == 1, result.output
    assert "FAILED 2" in result.output and "broker went away" in result.output
