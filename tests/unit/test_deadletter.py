"""pipeline/deadletter.py: the one dead-letter builder, its size guarantee, and the size settings."""

from __future__ import annotations

import base64
import re

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

import pipeline.lanes.sentiment.decoding
from pipeline import deadletter
from pipeline.deadletter import (
    DEFAULT_MAX_RECORD_BYTES,
    LETTER_OVERHEAD_BYTES,
    OUTPUT_HEADROOM_BYTES,
    InvalidEvent,
    RawRecord,
    dead_letter_record,
    letter_budget,
    record_size,
)
from pipeline.settings import ConfigError, Settings, load_settings
from schemas.events import MAX_ID_CHARS, ErrorCode
from tests.paths import REPO


def _record(value: bytes | None = b'{"id": "a", "text": "x"}', *, key: bytes | None = b"k",
            headers: tuple = ()) -> RawRecord:
    return RawRecord("texts", 3, 42, key, value, headers)


def _error(event_id: str | None = "a", reason: str = "output too large") -> InvalidEvent:
    return InvalidEvent(ErrorCode.output_too_large, reason, event_id)


def test_one_builder_and_one_payload_cap() -> None:
    assert pipeline.lanes.sentiment.decoding.InvalidEvent is deadletter.InvalidEvent
    builds = re.compile(r"(?<![\w.])DeadLetter\(")
    builders = [str(p.relative_to(REPO)) for p in (REPO / "pipeline").rglob("*.py") if builds.search(p.read_text())]
    assert builders == ["pipeline/deadletter.py"], "dead letters are built in one place"
    literal = re.compile(r"\b262_?144\b")
    where = [str(p.relative_to(REPO)) for p in (REPO / "pipeline").rglob("*.py") if literal.search(p.read_text())]
    assert where == ["pipeline/limits.py"], "the dead-letter payload cap is written once"


async def test_record_size_is_the_producers_own_check() -> None:
    # A record that passes record_size <= limit is never refused by send() for its size.
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", max_request_size=10_000)
    try:
        headers = [("trace", b"t" * 100)]
        value = b"v" * (10_000 - record_size(b"key", b"", headers))
        while record_size(b"key", value, headers) > 10_000:  # length varints grow with the value
            value = value[:-1]
        assert record_size(b"key", value, headers) == 10_000
        producer._serialize(b"key", value, headers)
        with pytest.raises(MessageSizeTooLargeError):
            producer._serialize(b"key", value + b"v", headers)
    finally:
        await producer.stop()


def test_a_letter_keeps_headers_and_key_when_they_fit() -> None:
    out = dead_letter_record(_record(headers=(("trace", b"abc"), ("bin", b"\xff"))), _error(), worker="w")
    letter = out.value
    assert letter.headers == {"trace": "abc"} and letter.headers_b64 == {"bin": "/w=="}
    assert not letter.headers_dropped and not letter.key_dropped and letter.source_key_b64 == "aw=="
    assert out.headers == (("trace", b"abc"), ("bin", b"\xff")) and out.key == b"a"
    assert out.source == _record(headers=(("trace", b"abc"), ("bin", b"\xff")))


def test_headers_too_large_for_a_letter_are_dropped_and_the_letter_says_so() -> None:
    headers = (("small", b"s"), ("blob", b"\xfe" * 700_000))  # base64 in JSON + raw as Kafka headers: > 1 MiB
    out = dead_letter_record(_record(headers=headers), _error(), worker="w")
    letter = out.value
    assert out.size <= DEFAULT_MAX_RECORD_BYTES
    assert letter.headers_dropped and letter.headers == {} and letter.headers_b64 == {} and out.headers == ()
    assert "headers (700010 bytes) were dropped" in letter.reason and str(DEFAULT_MAX_RECORD_BYTES) in letter.reason
    assert letter.payload_b64 is not None, "the payload is kept: it is what replay needs"
    assert not letter.key_dropped


def test_a_huge_key_is_dropped_after_the_headers() -> None:
    key = b"K" * 900_000
    out = dead_letter_record(_record(key=key), _error(event_id=None), worker="w")
    letter = out.value
    assert out.size <= DEFAULT_MAX_RECORD_BYTES
    assert letter.key_dropped and letter.source_key_b64 is None and out.key is None
    assert "its key (900000 bytes)" in letter.reason
    assert base64.b64decode(letter.payload_b64) == _record().value


@pytest.mark.parametrize("cap", [0, 1024, 262_144, 774_144])
@pytest.mark.parametrize("payload", [0, 1, 5_000, 262_144, 2_000_000])
@pytest.mark.parametrize(("key", "header"), [(0, 0), (10, 10), (300_000, 0), (0, 900_000), (600_000, 600_000)])
def test_a_letter_never_exceeds_the_smallest_limit_its_cap_allows(cap: int, payload: int, key: int, header: int) -> None:
    limit = max(letter_budget(cap), 65_536)
    record = _record(b"\x00" * payload, key=b"k" * key if key else None,
                     headers=(("h", b"\xff" * header),) if header else ())
    out = dead_letter_record(record, _error(), worker="w", payload_cap_bytes=cap, max_record_bytes=limit)
    assert out.size <= limit
    assert out.size == record_size(out.key, out.encoded, out.headers)


def test_the_letter_overhead_covers_a_worst_case_letter_without_payload() -> None:
    # Everything a letter carries besides payload, headers and key, at its largest and JSON-escaped.
    worst_id = "\u0001" * MAX_ID_CHARS
    error = InvalidEvent(ErrorCode.output_rejected, "\u0001" * 5000, worst_id)
    record = RawRecord("t" * 249, 2**31 - 1, 2**63 - 1, b"k" * 500_000, b"\x00" * 500_000, (("h", b"h" * 500_000),))
    out = dead_letter_record(record, error, worker="w" * 255, payload_cap_bytes=0, max_record_bytes=65_536)
    assert out.value.payload_b64 is None and out.value.key_dropped and out.value.headers_dropped
    assert out.size <= LETTER_OVERHEAD_BYTES


def test_default_sizes_are_consistent() -> None:
    settings = Settings()
    assert settings.max_payload_bytes + OUTPUT_HEADROOM_BYTES <= settings.producer_max_request_bytes
    assert letter_budget(settings.dlq_payload_cap_bytes) <= settings.producer_max_request_bytes
    assert settings.producer_max_request_bytes == DEFAULT_MAX_RECORD_BYTES


@pytest.mark.parametrize(("env", "fix"), [
    # The incident: a 1 MiB input cap against Faust's 1,000,000-byte producer default.
    ({"STREAMNLP_MAX_PAYLOAD_BYTES": "1048576", "STREAMNLP_PRODUCER_MAX_REQUEST_BYTES": "1000000"},
     "set STREAMNLP_MAX_PAYLOAD_BYTES<=983616"),
    ({"STREAMNLP_MAX_PAYLOAD_BYTES": "1040079"}, "set STREAMNLP_MAX_PAYLOAD_BYTES<=1032192"),
    ({"STREAMNLP_DLQ_PAYLOAD_CAP_BYTES": "900000"}, "set STREAMNLP_DLQ_PAYLOAD_CAP_BYTES<=774144"),
])
def test_inconsistent_sizes_fail_at_startup_naming_the_fix(
    env: dict[str, str], fix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(fix)):
        load_settings()


def test_the_largest_cap_the_message_suggests_is_accepted() -> None:
    Settings(dlq_payload_cap_bytes=774_144)
    Settings(max_payload_bytes=DEFAULT_MAX_RECORD_BYTES - OUTPUT_HEADROOM_BYTES)


def test_the_dead_letter_json_is_what_is_measured() -> None:
    out = dead_letter_record(_record(), _error(), worker="w")
    assert orjson.loads(out.encoded)["error_code"] == "output_too_large"
    assert out.size == record_size(out.key, out.encoded, out.headers)
