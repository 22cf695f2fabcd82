"""pipeline.lanes.sentiment.decoding: one test per error code, valid edge cases, dead-letter payload cap."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import orjson
import pytest

from pipeline.deadletter import InvalidEvent, make_dead_letter
from pipeline.lanes.sentiment.decoding import decode_text_event
from pipeline.limits import DEFAULT_MAX_PAYLOAD_BYTES
from schemas.events import DeadLetter, ErrorCode, TextEvent, to_json_bytes
from tests.paths import REPO

SECRET = "my card number is 4111 1111 and I hate this app"


def _json(obj) -> bytes:
    return orjson.dumps(obj)


def _reject(raw, **kwargs) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        decode_text_event(raw, **kwargs)
    err = info.value
    assert isinstance(err.code, ErrorCode)
    assert err.reason and len(err.reason) <= 1000
    return err


# --------------------------------------------------------------------------- #
# Valid input
# --------------------------------------------------------------------------- #


def test_minimal_event():
    event = decode_text_event(b'{"id":"r-1","text":"Great battery life, arrived a day early."}')
    assert isinstance(event, TextEvent)
    assert event.id == "r-1"
    assert event.text == "Great battery life, arrived a day early."
    assert event.metadata == {} and event.source is None and event.schema_version == "1.0"


def test_full_event_and_unknown_fields_ignored():
    raw = _json(
        {
            "schema_version": "1.3",
            "id": "play-88213",
            "text": "Crashes every time I open the camera tab.",
            "source": "play-store",
            "lang": "en",
            "timestamp": "2024-05-01T12:30:00+02:00",
            "metadata": {"rating": 1, "app_version": "4.2.0", "verified": True, "score": 0.5, "region": None},
            "producer_debug": {"host": "ingest-3"},
        }
    )
    event = decode_text_event(raw)
    assert event.timestamp == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    assert event.metadata["rating"] == 1 and event.metadata["verified"] is True
    assert not hasattr(event, "producer_debug")


@pytest.mark.parametrize(
    "text",
    [
        "Das Essen war ausgezeichnet 👍🎉 — wir kommen wieder!",
        "这家餐厅的服务非常好，菜也很好吃。",
        "الخدمة ممتازة والتوصيل سريع جدا",
        "שירות מעולה, ממליץ בחום",
        "tab\tseparated\nmulti-line\r\ntext with a NUL \x00 inside",
        "😀",
    ],
)
def test_unicode_and_control_characters_are_valid(text):
    event = decode_text_event(_json({"id": "u-1", "text": text}))
    assert event.text == text  # preserved exactly


@pytest.mark.parametrize("ts", [1714566600, 1714566600.5, 1714566600000, "2024-05-01T12:30:00Z", "2024-05-01T12:30:00"])
def test_timestamp_iso_or_epoch(ts):
    event = decode_text_event(_json({"id": "t", "text": "ok", "timestamp": ts}))
    assert event.timestamp.tzinfo is not None
    assert event.timestamp.year == 2024


def test_utf8_bom_is_tolerated():
    assert decode_text_event(b"\xef\xbb\xbf" + _json({"id": "bom", "text": "fine"})).id == "bom"


def test_text_exactly_at_limit_is_valid():
    assert len(decode_text_event(_json({"id": "l", "text": "a" * 20_000})).text) == 20_000


def test_max_text_chars_is_configurable():
    raw = _json({"id": "l", "text": "a" * 101})
    decode_text_event(raw, max_text_chars=101)
    assert _reject(raw, max_text_chars=100).code is ErrorCode.text_too_long


# --------------------------------------------------------------------------- #
# One test per error code
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("raw", [None, b""])
def test_empty_payload(raw):
    assert _reject(raw).code is ErrorCode.empty_payload


def test_payload_too_large_5mb_text():
    raw = _json({"id": "big-1", "text": "lorem ipsum " * (5 * 1024 * 1024 // 12)})
    assert len(raw) > 5_000_000
    err = _reject(raw)
    assert err.code is ErrorCode.payload_too_large
    assert str(len(raw)) in err.reason and str(DEFAULT_MAX_PAYLOAD_BYTES) in err.reason
    assert err.event_id is None  # never parsed


def test_payload_limit_is_configurable():
    raw = _json({"id": "x", "text": "hello there"})
    assert _reject(raw, max_payload_bytes=len(raw) - 1).code is ErrorCode.payload_too_large
    decode_text_event(raw, max_payload_bytes=len(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",
        b"\xff\xfe{\x00\"\x00i\x00d\x00\"\x00",  # UTF-16 LE from a Windows producer
        b'{"id":"x","text":"caf\xe9"}',  # Latin-1 byte inside a string
        b'{"id":"x","text":"\xed\xa0\x80"}',  # CESU/WTF-8 encoded surrogate
    ],
)
def test_invalid_utf8(raw):
    err = _reject(raw)
    assert err.code is ErrorCode.invalid_utf8
    assert "UTF-8" in err.reason and "offset" in err.reason


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "x", "text": "unterminated}',
        b"{'id': 'x', 'text': 'single quotes'}",
        b'{"id":"x","text":"ok",}',
        b'{"id":"x","text":"ok"}{"id":"y","text":"two"}',
        b"id=x&text=hello",
        b'{"id":"x","text":"\\ud83d"}',  # lone surrogate escape
        b'{"id":"x","text":"ok","metadata":{"n":NaN}}',
    ],
)
def test_invalid_json(raw):
    err = _reject(raw)
    assert err.code is ErrorCode.invalid_json
    assert "line 1 column" in err.reason


@pytest.mark.parametrize(
    ("raw", "got"),
    [
        (b'[{"id":"a","text":"batched"}]', "array"),
        (b'"just a string"', "string"),
        (b"42", "int"),
        (b"null", "null"),
        (b"true", "bool"),
    ],
)
def test_not_an_object(raw, got):
    err = _reject(raw)
    assert err.code is ErrorCode.not_an_object
    assert f"got {got}" in err.reason


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"id": "m-1"}, "text"),
        ({"text": SECRET}, "id"),
        ({"id": "m-2", "body": SECRET}, "text"),
        ({}, "id"),
    ],
)
def test_missing_field(obj, field):
    err = _reject(_json(obj))
    assert err.code is ErrorCode.missing_field
    assert f"'{field}' is missing" in err.reason
    assert SECRET not in err.reason


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"id": 12345, "text": SECRET}, "field 'id' must be a string, got int"),
        ({"id": "w-1", "text": None}, "field 'text' must be a string, got null"),
        ({"id": "w-2", "text": {"body": SECRET}}, "field 'text' must be a string, got object"),
        ({"id": "w-3", "text": [SECRET]}, "field 'text' must be a string, got array"),
        ({"id": "w-4", "text": 3.5}, "field 'text' must be a string, got float"),
        ({"id": True, "text": SECRET}, "field 'id' must be a string, got bool"),
        ({"id": "w-5", "text": SECRET, "source": 7}, "field 'source' must be a string, got int"),
        ({"id": "w-6", "text": SECRET, "metadata": ["a"]}, "field 'metadata' must be an object, got array"),
        ({"id": "w-7", "text": SECRET, "metadata": {"user": {"id": 1}}}, "key 'user'"),
        ({"id": "w-8", "text": SECRET, "timestamp": False}, "field 'timestamp' must be an ISO-8601"),
    ],
)
def test_wrong_type(obj, expected):
    err = _reject(_json(obj))
    assert err.code is ErrorCode.wrong_type
    assert expected in err.reason
    assert SECRET not in err.reason


@pytest.mark.parametrize("text", ["", "   ", "\n\t \r\n", "\u200b\u200b", "\u3000", "\x00"])
def test_empty_text(text):
    err = _reject(_json({"id": "e-1", "text": text}))
    assert err.code is ErrorCode.empty_text
    assert err.event_id == "e-1"


def test_text_too_long():
    text = "This product is fine. " * 1000  # 22,000 chars, well under the byte limit
    err = _reject(_json({"id": "long-1", "text": text}))
    assert err.code is ErrorCode.text_too_long
    assert "22000 characters" in err.reason and "20000" in err.reason
    assert "This product" not in err.reason
    assert err.event_id == "long-1"


def test_text_length_counts_characters_not_bytes():
    text = "😀" * 20_000  # 80,000 UTF-8 bytes but 20,000 characters
    assert decode_text_event(_json({"id": "emoji", "text": text})).text == text


def test_unsupported_schema_version():
    err = _reject(_json({"schema_version": "2.0", "id": "v2", "text": "hello"}))
    assert err.code is ErrorCode.unsupported_schema_version
    assert "'2.0'" in err.reason


@pytest.mark.parametrize(
    "obj",
    [
        {"id": "", "text": "ok"},
        {"id": "   ", "text": "ok"},
        {"id": "x" * 129, "text": "ok"},
        {"id": "t-1", "text": "ok", "timestamp": "last tuesday"},
        {"id": "t-2", "text": "ok", "lang": "e" * 65},
        {"id": "t-3", "text": "ok", "schema_version": "one"},
    ],
)
def test_invalid_field(obj):
    err = _reject(_json(obj))
    assert err.code is ErrorCode.invalid_field


def test_inference_error_dead_letter():
    # Not raised by decoding: the agent builds it when the model fails on an event.
    raw = _json({"id": "inf-1", "text": "fine text"})
    err = InvalidEvent(ErrorCode.inference_error, "the sentiment model failed (RuntimeError: boom)", "inf-1")
    dl = make_dead_letter(raw, err, topic="texts", partition=2, offset=9, key=b"inf-1", headers={}, worker="w")
    assert dl.error_code is ErrorCode.inference_error and dl.event_id == "inf-1"


def test_error_codes_are_stable():
    assert {c.value for c in ErrorCode} == {
        "empty_payload",
        "payload_too_large",
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "missing_field",
        "wrong_type",
        "empty_text",
        "text_too_long",
        "unsupported_schema_version",
        "invalid_field",
        "inference_error",
        "summarization_error",
        "output_too_large",
        "output_rejected",
    }


def test_most_important_problem_wins_and_all_are_listed():
    err = _reject(_json({"text": 5}))
    assert err.code is ErrorCode.missing_field
    assert "'id' is missing" in err.reason and "'text' must be a string, got int" in err.reason


def test_event_id_reported_when_readable():
    assert _reject(_json({"id": "keep-me", "text": None})).event_id == "keep-me"
    assert _reject(_json({"id": 7, "text": None})).event_id is None


# --------------------------------------------------------------------------- #
# Dead letters
# --------------------------------------------------------------------------- #


def _dead_letter(raw, cap=262_144, **kwargs) -> DeadLetter:
    try:
        decode_text_event(raw)
    except InvalidEvent as err:
        error = err
    else:  # pragma: no cover
        raise AssertionError("expected InvalidEvent")
    args = dict(topic="texts", partition=3, offset=1042, key=b"user-77", headers={}, worker="worker-a")
    args.update(kwargs)
    return make_dead_letter(raw, error, payload_cap_bytes=cap, **args)


def test_dead_letter_small_payload_is_byte_exact():
    raw = b'{"id":"d-1","text":"caf\xe9 latin-1"}'
    dl = _dead_letter(raw, headers={"trace-id": b"abc123", "bin": b"\x00\xff\x10"}, timestamp_ms=1714566600000)
    assert dl.error_code is ErrorCode.invalid_utf8
    assert base64.b64decode(dl.payload_b64) == raw
    assert dl.payload_truncated is False and dl.payload_head_b64 is None and dl.payload_null is False
    assert dl.payload_size == len(raw)
    assert dl.payload_sha256 == hashlib.sha256(raw).hexdigest()
    assert dl.source_topic == "texts" and dl.source_partition == 3 and dl.source_offset == 1042
    assert base64.b64decode(dl.source_key_b64) == b"user-77"
    assert dl.headers == {"trace-id": "abc123"}
    assert base64.b64decode(dl.headers_b64["bin"]) == b"\x00\xff\x10"
    assert dl.source_timestamp_ms == 1714566600000
    assert dl.failed_at.tzinfo is not None and dl.worker == "worker-a"


def test_dead_letter_payload_exactly_at_cap_is_kept():
    raw = _json({"id": "c", "text": " " * 100})
    dl = _dead_letter(raw, cap=len(raw))
    assert base64.b64decode(dl.payload_b64) == raw and not dl.payload_truncated


def test_dead_letter_over_cap_keeps_only_size_hash_head():
    raw = _json({"id": "big-2", "text": "word " * 300_000})  # ~1.5 MB
    dl = _dead_letter(raw)
    assert dl.error_code is ErrorCode.payload_too_large
    assert dl.payload_b64 is None and dl.payload_truncated is True
    assert dl.payload_size == len(raw)
    assert dl.payload_sha256 == hashlib.sha256(raw).hexdigest()
    assert base64.b64decode(dl.payload_head_b64) == raw[:1024]
    assert len(to_json_bytes(dl)) < 8192  # the DLQ record itself stays small


def test_dead_letter_cap_is_configurable():
    raw = _json({"id": "e", "text": "   "})
    dl = _dead_letter(raw, cap=10)
    assert dl.payload_truncated and dl.payload_b64 is None
    assert base64.b64decode(dl.payload_head_b64) == raw[:1024]


def test_dead_letter_null_payload_and_no_key():
    dl = _dead_letter(None, key=None)
    assert dl.error_code is ErrorCode.empty_payload
    assert dl.payload_null is True and dl.payload_b64 is None and dl.payload_size == 0
    assert dl.payload_sha256 == hashlib.sha256(b"").hexdigest()
    assert dl.source_key_b64 is None


def test_dead_letter_json_round_trip_and_no_text_body():
    raw = _json({"id": "s-1", "text": {"body": SECRET}})
    dl = _dead_letter(raw)
    out = to_json_bytes(dl)
    parsed = orjson.loads(out)
    assert parsed["error_code"] == "wrong_type" and parsed["event_id"] == "s-1"
    assert SECRET not in parsed["reason"]
    assert DeadLetter.model_validate_json(out) == dl


# --------------------------------------------------------------------------- #
# samples/events.jsonl (documented in samples/README.md)
# --------------------------------------------------------------------------- #

SAMPLE_MALFORMED = {
    12: ErrorCode.invalid_json,
    31: ErrorCode.missing_field,
    50: ErrorCode.empty_text,
    69: ErrorCode.wrong_type,
    88: ErrorCode.wrong_type,
    107: ErrorCode.not_an_object,
    126: ErrorCode.wrong_type,
    145: ErrorCode.invalid_field,
    158: ErrorCode.unsupported_schema_version,
}


def test_sample_file():

    path = REPO / "samples" / "events.jsonl"
    lines = path.read_bytes().splitlines()
    assert len(lines) == 171 and all(line.strip() for line in lines)
    ids, labels, failures = set(), {"positive": 0, "negative": 0}, {}
    for number, line in enumerate(lines, 1):
        try:
            event = decode_text_event(line)
        except InvalidEvent as err:
            failures[number] = err.code
            continue
        assert event.id not in ids
        ids.add(event.id)
        if event.id.startswith("sample-long-"):
            assert 400 <= len(event.text) <= 1000, event.id  # summarizer inputs
        else:
            assert 40 <= len(event.text) <= 400, event.id
        assert event.source
        labels[event.metadata["gold_label"]] += 1
    assert failures == SAMPLE_MALFORMED
    assert labels == {"positive": 81, "negative": 81}
    assert ids == {f"sample-{i:04d}" for i in range(1, 151)} | {f"sample-long-{i:02d}" for i in range(1, 13)}
