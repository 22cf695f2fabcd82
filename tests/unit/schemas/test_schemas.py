"""schemas.events: models, generated JSON Schema files, and compatibility."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas import generate
from schemas.events import (
    ENRICHED_EVENT_SCHEMA_VERSION,
    DeadLetter,
    EnrichedEvent,
    ErrorCode,
    Processing,
    Sentiment,
    TextEvent,
    to_json_bytes,
)
from tests.paths import FIXTURES

SCHEMA_DIR = Path(generate.__file__).parent


def _enriched(**overrides) -> EnrichedEvent:
    event = TextEvent.model_validate(
        {
            "id": "rev-1001",
            "text": "The staff were lovely and the ramen was outstanding.",
            "source": "yelp",
            "lang": "en",
            "timestamp": 1714566600,
            "metadata": {"stars": 5, "city": "Lisbon", "verified": True, "weight": 0.7, "ref": None},
        }
    )
    enriched = EnrichedEvent.from_text_event(
        event,
        sentiment=Sentiment(
            label="positive", score=0.987, model="sentiment-minilm-rt", model_version="1.0.0", truncated=False
        ),
        processing=Processing(
            worker="worker-a-4711",
            batch_size=16,
            inference_ms=12.5,
            ingested_at=datetime(2024, 5, 1, 12, 30, 0, 100000, tzinfo=UTC),
            enriched_at=datetime(2024, 5, 1, 12, 30, 0, 140000, tzinfo=UTC),
        ),
    )
    return enriched.model_copy(update=overrides)


# --------------------------------------------------------------------------- #
# Generated schema files
# --------------------------------------------------------------------------- #


def test_schema_files_match_models():
    stale = generate.drifted(SCHEMA_DIR)
    assert not stale, f"{stale} out of date: run `python -m schemas.generate`"


def test_generation_is_stable_and_formatted():
    first, second = generate.render_all(), generate.render_all()
    assert first == second
    for content in first.values():
        assert content.endswith("}\n") and not content.endswith("\n\n")
        data = json.loads(content)
        assert json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == content
        assert data["$schema"] == generate.JSON_SCHEMA_DIALECT
        jsonschema.Draft202012Validator.check_schema(data)


def test_check_mode_reports_drift(tmp_path, capsys):
    assert generate.main(["--dir", str(tmp_path)]) == 0
    assert generate.main(["--check", "--dir", str(tmp_path)]) == 0
    (tmp_path / "text_event.schema.json").write_text("{}\n")
    assert generate.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "text_event.schema.json" in capsys.readouterr().err


def _schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / name).read_text())


def test_model_output_validates_against_published_schemas():
    enriched = orjson.loads(to_json_bytes(_enriched()))
    jsonschema.validate(enriched, _schema("enriched_event.schema.json"), format_checker=jsonschema.FormatChecker())
    dl = DeadLetter(
        error_code=ErrorCode.invalid_json,
        reason="record value is not valid JSON",
        source_topic="texts",
        source_partition=0,
        source_offset=5,
        failed_at=datetime.now(UTC),
        worker="w",
        payload_b64="e30=",
        payload_size=2,
        payload_sha256="44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    )
    jsonschema.validate(orjson.loads(to_json_bytes(dl)), _schema("dead_letter.schema.json"))


@pytest.mark.parametrize(
    ("obj", "valid"),
    [
        ({"id": "a", "text": "hello"}, True),
        ({"id": "a", "text": "hello", "timestamp": 1714566600}, True),
        ({"id": "a", "text": "hello", "future_field": [1, 2]}, True),
        ({"id": 1, "text": "hello"}, False),
        ({"id": "a", "text": None}, False),
        ({"id": "a"}, False),
        ({"id": "a", "text": "hello", "metadata": {"nested": {"x": 1}}}, False),
    ],
)
def test_input_schema_agrees_with_model(obj, valid):
    schema = _schema("text_event.schema.json")
    schema_ok = jsonschema.Draft202012Validator(schema).is_valid(obj)
    try:
        TextEvent.model_validate(obj)
        model_ok = True
    except ValidationError:
        model_ok = False
    assert schema_ok == model_ok == valid


# --------------------------------------------------------------------------- #
# TextEvent
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "obj",
    [
        {"id": "a", "text": "ok"},
        {"id": "x" * 128, "text": "ok"},
        {"id": "a", "text": "ok", "source": None, "lang": None, "timestamp": None, "metadata": {}},
        {"id": "a", "text": "ok", "timestamp": "2024-05-01T12:30:00.123+05:30"},
        {"id": "a", "text": "ok", "metadata": {"s": "x", "i": 1, "f": 1.5, "b": False, "n": None}},
        {"id": "a", "text": "ok", "schema_version": "1.7"},
    ],
)
def test_text_event_valid(obj):
    event = TextEvent.model_validate(obj)
    assert event.schema_version.startswith("1.")
    assert event.timestamp is None or event.timestamp.tzinfo is not None


@pytest.mark.parametrize(
    ("obj", "error_type"),
    [
        ({"text": "ok"}, "missing"),
        ({"id": "", "text": "ok"}, "string_too_short"),
        ({"id": "x" * 129, "text": "ok"}, "string_too_long"),
        ({"id": 5, "text": "ok"}, "string_type"),
        ({"id": "a", "text": 5}, "string_type"),
        ({"id": "a", "text": b"bytes"}, "string_type"),
        ({"id": "a", "text": "   "}, "empty_text"),
        ({"id": "a", "text": "x" * 20_001}, "text_too_long"),
        ({"id": "a", "text": "ok", "lang": 1}, "string_type"),
        ({"id": "a", "text": "ok", "metadata": {"k": [1]}}, "metadata_value_type"),
        ({"id": "a", "text": "ok", "schema_version": "2.0"}, "unsupported_schema_version"),
        ({"id": "a", "text": "ok", "timestamp": True}, "datetime_type"),
    ],
)
def test_text_event_invalid(obj, error_type):
    with pytest.raises(ValidationError) as info:
        TextEvent.model_validate(obj)
    assert error_type in {e["type"] for e in info.value.errors()}


def test_text_limit_from_validation_context():
    obj = {"id": "a", "text": "x" * 50}
    TextEvent.model_validate(obj)
    with pytest.raises(ValidationError, match="limit is 49"):
        TextEvent.model_validate(obj, context={"max_text_chars": 49})
    TextEvent.model_validate({"id": "a", "text": "x" * 30_000}, context={"max_text_chars": 30_000})


def test_numbers_are_never_coerced_to_strings():
    with pytest.raises(ValidationError):
        TextEvent.model_validate({"id": 123, "text": 456})
    with pytest.raises(ValidationError):
        TextEvent.model_validate_json(b'{"id": 123, "text": "ok"}')


# --------------------------------------------------------------------------- #
# Output compatibility
# --------------------------------------------------------------------------- #


def test_enriched_event_json_round_trip():
    enriched = _enriched()
    data = to_json_bytes(enriched)
    assert EnrichedEvent.model_validate_json(data) == enriched
    parsed = orjson.loads(data)
    assert parsed["schema_version"] == ENRICHED_EVENT_SCHEMA_VERSION
    assert parsed["summary_status"] == "none"
    assert parsed["timestamp"] == "2024-05-01T12:30:00Z"
    assert parsed["summary"] is None and "summary" in parsed


def test_enriched_event_has_no_text_limit():
    # A worker configured with a larger max_text_chars must not break consumers.
    EnrichedEvent.model_validate({**_enriched().model_dump(), "text": "y" * 50_000})


def test_enriched_event_ignores_unknown_fields():
    data = orjson.loads(to_json_bytes(_enriched()))
    data["schema_version"] = "1.4"
    data["emotion"] = {"label": "joy", "score": 0.91}
    data["sentiment"]["calibrated_score"] = 0.97
    data["processing"]["gpu"] = None
    parsed = EnrichedEvent.model_validate_json(orjson.dumps(data))
    assert parsed.sentiment.label == "positive"
    assert parsed.schema_version == "1.4"


class _ConsumerSentimentV1_0(BaseModel):
    """Frozen copy of what a v1.0 downstream consumer declared. Do not edit."""

    model_config = ConfigDict(extra="ignore")
    label: str
    score: float


class _ConsumerEnrichedV1_0(BaseModel):
    """Frozen minimal v1.0 consumer model. Do not update it when the schema evolves."""

    model_config = ConfigDict(extra="ignore")
    schema_version: str
    id: str
    text: str
    sentiment: _ConsumerSentimentV1_0
    metadata: dict[str, str | int | float | bool | None] = {}


def test_older_consumer_reads_current_output():
    """Current output must satisfy the frozen v1.0 schema and a v1.0 consumer model."""
    snapshot = json.loads((FIXTURES / "enriched_event_v1_0.schema.json").read_text())
    payload = to_json_bytes(_enriched())
    jsonschema.validate(orjson.loads(payload), snapshot, format_checker=jsonschema.FormatChecker())
    consumer = _ConsumerEnrichedV1_0.model_validate_json(payload)
    assert consumer.schema_version.split(".")[0] == "1"
    assert consumer.id == "rev-1001" and consumer.sentiment.label == "positive"


def test_older_consumer_reads_newer_output_with_added_fields():
    snapshot = json.loads((FIXTURES / "enriched_event_v1_0.schema.json").read_text())
    data = orjson.loads(to_json_bytes(_enriched()))
    data.update(schema_version="1.1", keywords=["ramen", "staff"], summary="Great ramen.")
    jsonschema.validate(data, snapshot)
    assert _ConsumerEnrichedV1_0.model_validate(data).sentiment.score == pytest.approx(0.987)


def test_snapshot_is_a_real_v1_0_schema():
    snapshot = json.loads((FIXTURES / "enriched_event_v1_0.schema.json").read_text())
    assert set(snapshot["required"]) >= {"id", "text", "sentiment", "processing", "schema_version"}
    # Forward compatibility: no closed objects anywhere in the published output schema.
    assert '"additionalProperties": false' not in (SCHEMA_DIR / "enriched_event.schema.json").read_text()


def test_dead_letter_error_code_serialises_as_plain_string():
    assert str(ErrorCode.text_too_long) == "text_too_long"
    assert json.loads(json.dumps({"c": ErrorCode.wrong_type})) == {"c": "wrong_type"}


def test_language_gated_event_is_the_documented_exception_for_v1_0_consumers():
    """1.2: a text the model does not handle has sentiment null + a reason (schemas/events.py, compatibility).

    Scored events are unchanged (the tests above); a strict v1.0 consumer cannot read a gated one,
    which is why STREAMNLP_LANGUAGE_GATE=false exists.
    """
    from schemas.events import Language

    gated = _enriched(sentiment=None, sentiment_skipped_reason="unsupported_language",
                      language=Language(code="ar", confidence=0.78, reliable=True))
    payload = orjson.loads(to_json_bytes(gated))
    assert payload["sentiment"] is None and payload["sentiment_skipped_reason"] == "unsupported_language"
    jsonschema.validate(payload, _schema("enriched_event.schema.json"), format_checker=jsonschema.FormatChecker())
    assert EnrichedEvent.model_validate(payload).language.code == "ar"
    with pytest.raises(ValidationError):
        _ConsumerEnrichedV1_0.model_validate(payload)
    scored = orjson.loads(to_json_bytes(_enriched(language=Language(code="en", confidence=0.9, reliable=True))))
    assert _ConsumerEnrichedV1_0.model_validate(scored).sentiment.label == "positive"


def _with_toxicity(**overrides) -> EnrichedEvent:
    from schemas.events import Toxicity

    toxicity = Toxicity(label="offensive", score=0.93, model="toxicity-linear", model_version="1.0.0+0c4325cf")
    return _enriched(toxicity=toxicity, **overrides)


def test_v1_3_toxicity_round_trips_and_validates():
    payload = orjson.loads(to_json_bytes(_with_toxicity()))
    assert payload["schema_version"] == ENRICHED_EVENT_SCHEMA_VERSION == "1.3"
    assert payload["toxicity"]["label"] == "offensive" and payload["toxicity_skipped_reason"] is None
    jsonschema.validate(payload, _schema("enriched_event.schema.json"), format_checker=jsonschema.FormatChecker())
    assert EnrichedEvent.model_validate(payload).toxicity.score == pytest.approx(0.93)
    disabled = orjson.loads(to_json_bytes(_enriched(toxicity_skipped_reason="disabled")))
    assert disabled["toxicity"] is None and disabled["toxicity_skipped_reason"] == "disabled"
    jsonschema.validate(disabled, _schema("enriched_event.schema.json"), format_checker=jsonschema.FormatChecker())
    with pytest.raises(ValidationError):
        EnrichedEvent.model_validate({**payload, "toxicity_skipped_reason": "too_rude"})


@pytest.mark.parametrize("snapshot", ["enriched_event_v1_0.schema.json", "enriched_event_v1_2.schema.json"])
def test_earlier_consumers_read_v1_3_output(snapshot):
    """1.3 only adds fields: the frozen 1.0 and 1.2 schemas and a 1.0 consumer model accept it, scored or not."""
    frozen = json.loads((FIXTURES / snapshot).read_text())
    for event in (_with_toxicity(), _enriched(toxicity_skipped_reason="disabled"),
                  _enriched(toxicity_skipped_reason="unsupported_language")):
        payload = orjson.loads(to_json_bytes(event))
        jsonschema.validate(payload, frozen, format_checker=jsonschema.FormatChecker())
        assert _ConsumerEnrichedV1_0.model_validate(payload).sentiment.label == "positive"


def test_sentiment_window_validates_against_published_schema():
    from schemas.windows import SentimentWindow

    window = SentimentWindow(
        source="yelp",
        window_start=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        window_end=datetime(2024, 5, 1, 12, 31, tzinfo=UTC),
        counts={"negative": 2, "positive": 1},
        skipped=1,
        total=4,
        mean_score=-0.33,
        negative_share=0.667,
        most_negative_ids=["rev-2", "rev-7"],
        alert=True,
        alert_reason="negative share 0.67 is 0.62 above the trailing mean 0.05",
        baseline_negative_share=0.05,
        worker="worker-a-4711",
        closed_at=datetime(2024, 5, 1, 12, 31, 10, tzinfo=UTC),
    )
    payload = orjson.loads(to_json_bytes(window))
    jsonschema.validate(payload, _schema("sentiment_window.schema.json"), format_checker=jsonschema.FormatChecker())
    assert payload["window_start"] == "2024-05-01T12:30:00Z"
    with pytest.raises(ValidationError):
        SentimentWindow.model_validate({**payload, "mean_score": 1.5})
