"""Event contracts for streamnlp (pydantic v2).

Every message on the three topics is one of the models below, serialised as a
UTF-8 JSON object:

=================  ===============  =========================================
topic              model            direction
=================  ===============  =========================================
``texts``          ``TextEvent``    producers -> worker (input, validated)
``texts.enriched`` ``EnrichedEvent``  worker -> consumers (output)
``texts.dlq``      ``DeadLetter``   worker -> operators (rejected input)
=================  ===============  =========================================

Compatibility policy
--------------------
* Every model carries ``schema_version`` ("MAJOR.MINOR", currently ``"1.0"``).
  Minor bumps only *add* optional fields; a major bump is a breaking change.
* Unknown fields are **ignored** by every model (``extra="ignore"``): producers
  may add fields before the worker knows them, and an older consumer can read
  newer output.  Unknown input fields are *not* copied to the output; put
  pass-through data in ``metadata``.
* Input (``TextEvent``) is strict about types: a number where a string is
  expected is rejected, never coerced.  ``timestamp`` is the exception: it
  accepts an ISO-8601 string or a Unix epoch number (seconds, or milliseconds
  when larger than 2e10); naive datetimes are taken as UTC.
* Input with ``schema_version`` of another major version is rejected
  (``ErrorCode.unsupported_schema_version``).
* The one exception to "minor bumps only add": ``EnrichedEvent`` 1.2 lets
  ``sentiment`` be null, with ``sentiment_skipped_reason`` saying why (a text
  in a language the model does not handle).  Every event the model scores is
  unchanged, so 1.0/1.1 consumers read those as before; a consumer that
  cannot handle a null ``sentiment`` keeps getting an object on every event
  from workers run with ``STREAMNLP_LANGUAGE_GATE=false``.
* ``EnrichedEvent`` 1.3 adds ``toxicity`` (``{label, score, model,
  model_version}``, or null with ``toxicity_skipped_reason``): only added
  fields, so every earlier consumer reads 1.3 output unchanged.

This module must not import from ``pipeline`` (see docs/architecture.md).
"""

from __future__ import annotations

import enum
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

try:  # orjson is a runtime dependency, but keep the schemas importable without it
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only in minimal environments
    _orjson = None  # type: ignore[assignment]  # the fallback below checks for None

__all__ = [
    "SCHEMA_VERSION",
    "TEXT_EVENT_SCHEMA_VERSION",
    "ENRICHED_EVENT_SCHEMA_VERSION",
    "DEAD_LETTER_SCHEMA_VERSION",
    "SUPPORTED_INPUT_MAJOR",
    "DEFAULT_MAX_TEXT_CHARS",
    "MAX_TEXT_CHARS_CONTEXT_KEY",
    "MAX_ID_CHARS",
    "MetadataValue",
    "TextEvent",
    "Sentiment",
    "Processing",
    "Language",
    "SentimentSkippedReason",
    "Toxicity",
    "ToxicitySkippedReason",
    "EnrichedEvent",
    "ErrorCode",
    "DeadLetter",
    "to_json_bytes",
    "to_jsonable",
    "json_type_name",
    "has_visible_char",
]

# --------------------------------------------------------------------------- #
# Versions and limits
# --------------------------------------------------------------------------- #

SCHEMA_VERSION = "1.0"
TEXT_EVENT_SCHEMA_VERSION = SCHEMA_VERSION
# 1.1 added summary_status; 1.2 added language and sentiment_skipped_reason (sentiment may be null);
# 1.3 added toxicity and toxicity_skipped_reason
ENRICHED_EVENT_SCHEMA_VERSION = "1.3"
# 1.1 added output_too_large / output_rejected and headers_dropped / key_dropped
DEAD_LETTER_SCHEMA_VERSION = "1.1"
#: Input events must have this major schema version (or omit schema_version).
SUPPORTED_INPUT_MAJOR = 1

#: Default maximum length of ``TextEvent.text`` in characters (code points).
DEFAULT_MAX_TEXT_CHARS = 20_000
#: Validation-context key overriding :data:`DEFAULT_MAX_TEXT_CHARS`:
#: ``TextEvent.model_validate(obj, context={"max_text_chars": 5000})``.
MAX_TEXT_CHARS_CONTEXT_KEY = "max_text_chars"
MAX_ID_CHARS = 128

_VERSION_PATTERN = r"^[0-9]+\.[0-9]+$"

SchemaVersion = Annotated[
    StrictStr,
    Field(
        pattern=_VERSION_PATTERN,
        description='Contract version "MAJOR.MINOR". Minor bumps only add optional fields.',
    ),
]

#: Metadata values are JSON scalars only (no nested objects/arrays).
MetadataValue = StrictStr | StrictBool | StrictInt | StrictFloat | None

_TimestampIn = Annotated[
    datetime,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "description": "Unix epoch seconds (milliseconds if > 2e10)"},
                {"type": "null"},
            ]
        },
        mode="validation",
    ),
]


def json_type_name(value: Any) -> str:
    """Name of a (decoded JSON) value's type, as used in error reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def has_visible_char(text: str) -> bool:
    """True if ``text`` contains anything besides whitespace/control/format chars.

    ``"   "``, ``"\\n\\t"``, ``"\\u200b"`` (zero-width space) and ``"\\x00"`` all
    count as empty: there is nothing for a model to classify.
    """
    for ch in text:
        if ch.isspace():
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            continue
        return True
    return False


# --------------------------------------------------------------------------- #
# Input: TextEvent
# --------------------------------------------------------------------------- #


class _EventCore(BaseModel):
    """Fields shared by TextEvent (input) and EnrichedEvent (output)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    schema_version: SchemaVersion = SCHEMA_VERSION
    id: Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=MAX_ID_CHARS,
            description="Producer-assigned event id (1-128 chars). Used for dedup and tracing.",
        ),
    ]
    text: Annotated[
        StrictStr,
        Field(min_length=1, description="The text to enrich. Must contain a visible character."),
    ]
    source: Annotated[StrictStr | None, Field(max_length=256, description='Origin, e.g. "app-store".')] = None
    lang: Annotated[
        StrictStr | None, Field(max_length=64, description='Language tag if known, e.g. "en", "pt-BR".')
    ] = None
    timestamp: Annotated[
        _TimestampIn | None,
        Field(description="When the text was written/received by the producer (UTC)."),
    ] = None
    metadata: Annotated[
        dict[StrictStr, MetadataValue],
        Field(description="Free-form pass-through data; values must be JSON scalars."),
    ] = Field(default_factory=dict)

    @field_validator("timestamp", mode="after")
    @classmethod
    def _naive_is_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_scalars_only(cls, value: Any) -> Any:
        # A single clear error instead of one error per union member.
        if isinstance(value, dict):
            for key, item in value.items():
                if item is not None and not isinstance(item, (str, int, float, bool)):
                    raise PydanticCustomError(
                        "metadata_value_type",
                        "metadata value for key '{key}' must be a string, number, boolean or null, got {got}",
                        {"key": key, "got": json_type_name(item)},
                    )
        return value


class TextEvent(_EventCore):
    """An input event on the ``texts`` topic.

    Validate with a custom text limit via the validation context::

        TextEvent.model_validate(obj, context={"max_text_chars": 5000})

    Custom pydantic error types raised (``pipeline.lanes.sentiment.decoding`` maps them to
    :class:`ErrorCode`): ``empty_text``, ``text_too_long``,
    ``unsupported_schema_version``, ``metadata_value_type``, ``blank_id``.
    """

    model_config = ConfigDict(
        extra="ignore",
        protected_namespaces=(),
        title="TextEvent",
        json_schema_extra={
            "$id": "https://streamnlp.dev/schemas/text_event.schema.json",
            "description": (
                "Input event on topic `texts`. Unknown fields are ignored. "
                "`text` max length is a worker setting (default 20000 characters)."
            ),
        },
    )

    @field_validator("schema_version", mode="after")
    @classmethod
    def _supported_major(cls, value: str) -> str:
        major = int(value.split(".", 1)[0])
        if major != SUPPORTED_INPUT_MAJOR:
            raise PydanticCustomError(
                "unsupported_schema_version",
                "schema_version '{version}' is not supported; this worker reads {major}.x",
                {"version": value, "major": SUPPORTED_INPUT_MAJOR},
            )
        return value

    @field_validator("id", mode="after")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank_id", "id must contain a non-whitespace character")
        return value

    @field_validator("text", mode="after")
    @classmethod
    def _text_rules(cls, value: str, info: ValidationInfo) -> str:
        limit = DEFAULT_MAX_TEXT_CHARS
        if info.context and info.context.get(MAX_TEXT_CHARS_CONTEXT_KEY) is not None:
            limit = int(info.context[MAX_TEXT_CHARS_CONTEXT_KEY])
        if len(value) > limit:
            raise PydanticCustomError(
                "text_too_long",
                "text has {length} characters, the limit is {limit}",
                {"length": len(value), "limit": limit},
            )
        if not has_visible_char(value):
            raise PydanticCustomError("empty_text", "text is empty or whitespace-only")
        return value


# --------------------------------------------------------------------------- #
# Output: EnrichedEvent
# --------------------------------------------------------------------------- #

_OUTPUT_CONFIG = ConfigDict(
    extra="ignore",
    protected_namespaces=(),
    # The worker always writes every field (None as null), so the published
    # JSON Schema marks them all required.
    json_schema_serialization_defaults_required=True,
)


class Sentiment(BaseModel):
    model_config = ConfigDict(**_OUTPUT_CONFIG, title="Sentiment")

    label: Annotated[str, Field(min_length=1, description='Lower-case label, e.g. "positive"/"negative".')]
    score: Annotated[float, Field(ge=0.0, le=1.0, description="Softmax probability of `label`.")]
    model: Annotated[str, Field(description="Model name from the model manifest.")]
    model_version: Annotated[str, Field(description="Model version from the model manifest.")]
    truncated: Annotated[bool, Field(description="Text exceeded the model window; head+tail were kept.")]


class Language(BaseModel):
    model_config = ConfigDict(**_OUTPUT_CONFIG, title="Language")

    code: Annotated[str, Field(min_length=1, description='Detected ISO 639 language code, e.g. "en", "ar", "zh".')]
    confidence: Annotated[float, Field(ge=0.0, le=1.0, description="Detector probability of `code`.")]
    reliable: Annotated[bool, Field(description=(
        "Enough text to trust the detection (Latin script: at least STREAMNLP_LANGUAGE_MIN_LETTERS letters; "
        "other scripts: any length). Only reliable detections can skip sentiment."
    ))]


#: Why `sentiment` is null. Values are stable; new ones may come in minor versions.
SentimentSkippedReason = Literal["unsupported_language"]


class Toxicity(BaseModel):
    model_config = ConfigDict(**_OUTPUT_CONFIG, title="Toxicity")

    label: Annotated[str, Field(min_length=1, description='"offensive" or "clean".')]
    score: Annotated[float, Field(ge=0.0, le=1.0, description=(
        "Probability of `label` (so P(offensive) is `score` for an offensive text and 1 - `score` for a clean one)."
    ))]
    model: Annotated[str, Field(description="Model name from the model manifest.")]
    model_version: Annotated[str, Field(description="Model version from the model manifest.")]


#: Why `toxicity` is null. Values are stable; new ones may come in minor versions.
ToxicitySkippedReason = Literal["unsupported_language", "disabled"]


class Processing(BaseModel):
    model_config = ConfigDict(**_OUTPUT_CONFIG, title="Processing")

    worker: Annotated[str, Field(description="Worker instance id (hostname/pid).")]
    batch_size: Annotated[int, Field(ge=1, description="Rows in the inference batch this event was part of.")]
    inference_ms: Annotated[float, Field(ge=0.0, description="Wall time of that batch's inference.")]
    ingested_at: Annotated[datetime, Field(description="When the worker received the record (UTC).")]
    enriched_at: Annotated[datetime, Field(description="When enrichment finished (UTC).")]


class EnrichedEvent(_EventCore):
    """Output on ``texts.enriched``: the input fields plus enrichment results.

    ``schema_version`` here is the *output* contract version, not the input's.
    No text-length limit is enforced on parse, so consumers need no worker
    settings to read the output.
    """

    model_config = ConfigDict(
        **_OUTPUT_CONFIG,
        title="EnrichedEvent",
        json_schema_extra={
            "$id": "https://streamnlp.dev/schemas/enriched_event.schema.json",
            "description": (
                "Output event on topic `texts.enriched`. Consumers must ignore unknown fields; "
                "minor schema versions only add fields."
            ),
        },
    )

    schema_version: SchemaVersion = ENRICHED_EVENT_SCHEMA_VERSION
    sentiment: Annotated[
        Sentiment | None,
        Field(description=(
            "The sentiment model's label; null when the model was not run on this text, see "
            "`sentiment_skipped_reason` (since 1.2; always an object in 1.0/1.1)."
        )),
    ]
    sentiment_skipped_reason: Annotated[
        SentimentSkippedReason | None,
        Field(description=(
            '"unsupported_language": the text was reliably detected in a language the sentiment model does not '
            "handle (see `language`); null when `sentiment` is set. (since 1.2)"
        )),
    ] = None
    language: Annotated[
        Language | None,
        Field(description="Detected language of `text`, published whether or not sentiment was scored. (since 1.2)"),
    ] = None
    toxicity: Annotated[
        Toxicity | None,
        Field(description=(
            "The offensive-language model's label, scored in the same micro-batch as sentiment; null when it was not "
            "run on this text, see `toxicity_skipped_reason`. (since 1.3)"
        )),
    ] = None
    toxicity_skipped_reason: Annotated[
        ToxicitySkippedReason | None,
        Field(description=(
            '"unsupported_language": reliably detected in a language the toxicity model does not handle (see '
            '`language`); "disabled": toxicity is off on this worker (STREAMNLP_TOXICITY_ENABLED=false); null when '
            "`toxicity` is set. (since 1.3)"
        )),
    ] = None
    summary: Annotated[
        str | None,
        Field(description="Always null here: summaries are published on `texts.summaries`, keyed by the same id."),
    ] = None
    summary_status: Annotated[
        Literal["none", "pending", "disabled"],
        Field(description=(
            '"pending": a summary for this id will follow on `texts.summaries`; '
            '"none": text below the summary threshold; "disabled": summarizer off on this worker. (since 1.1)'
        )),
    ] = "none"
    processing: Processing

    @classmethod
    def from_text_event(
        cls,
        event: TextEvent,
        *,
        sentiment: Sentiment | None,
        processing: Processing,
        summary: str | None = None,
        language: Language | None = None,
        sentiment_skipped_reason: SentimentSkippedReason | None = None,
        toxicity: Toxicity | None = None,
        toxicity_skipped_reason: ToxicitySkippedReason | None = None,
    ) -> EnrichedEvent:
        """Build the output for ``event`` (input fields copied, version reset)."""
        data = {name: getattr(event, name) for name in _EventCore.model_fields if name != "schema_version"}
        return cls(**data, sentiment=sentiment, processing=processing, summary=summary, language=language,
                   sentiment_skipped_reason=sentiment_skipped_reason, toxicity=toxicity,
                   toxicity_skipped_reason=toxicity_skipped_reason)


# --------------------------------------------------------------------------- #
# Dead letters
# --------------------------------------------------------------------------- #


class ErrorCode(str, enum.Enum):  # noqa: UP042 - StrEnum would change what str(code) returns
    """Why a record went to the DLQ. Values are stable: alert and dashboard on them.

    ================================  ==================================================
    ``empty_payload``                 record value is null (tombstone) or zero bytes
    ``payload_too_large``             raw value exceeds the hard byte limit; not parsed
    ``invalid_utf8``                  value bytes are not valid UTF-8
    ``invalid_json``                  value is UTF-8 but not valid JSON
    ``not_an_object``                 valid JSON, but not a JSON object (array, string...)
    ``missing_field``                 a required field (``id``/``text``) is absent
    ``wrong_type``                    a field has the wrong JSON type (incl. null)
    ``empty_text``                    ``text`` is empty or whitespace-only
    ``text_too_long``                 ``text`` exceeds the max characters setting
    ``unsupported_schema_version``    ``schema_version`` has an unknown major version
    ``invalid_field``                 any other validation failure (catch-all)
    ``inference_error``               the model failed on this event
    ``summarization_error``           generating this event's summary failed (the
                                      request from ``texts.summarize`` is dead-lettered;
                                      its sentiment was already published)
    ``output_too_large``              the record's output (enriched event, summary or
                                      summary request), serialized with its key and
                                      headers, is over the producer's size limit, or
                                      the broker refused it as too large
    ``output_rejected``               the broker refused the record's output for another
                                      reason of the record itself (e.g. a corrupt-record
                                      error), even when sent alone
    ================================  ==================================================

    A missing Kafka key is *not* an error: keys are optional, ``id`` comes
    from the value.  New codes may be added in minor schema versions; DLQ
    consumers should treat an unknown code like ``invalid_field``.
    """

    empty_payload = "empty_payload"
    payload_too_large = "payload_too_large"
    invalid_utf8 = "invalid_utf8"
    invalid_json = "invalid_json"
    not_an_object = "not_an_object"
    missing_field = "missing_field"
    wrong_type = "wrong_type"
    empty_text = "empty_text"
    text_too_long = "text_too_long"
    unsupported_schema_version = "unsupported_schema_version"
    invalid_field = "invalid_field"
    inference_error = "inference_error"
    summarization_error = "summarization_error"
    output_too_large = "output_too_large"
    output_rejected = "output_rejected"

    def __str__(self) -> str:  # f"{code}" -> "invalid_json"
        return self.value


class DeadLetter(BaseModel):
    """A rejected record on ``texts.dlq``; enough to diagnose and replay it.

    Payload: when the raw value is at most the cap (default 256 KiB),
    ``payload_b64`` holds it byte-exact.  Above the cap ``payload_b64`` is null,
    ``payload_truncated`` is true and ``payload_head_b64`` holds the first
    1 KiB.  ``payload_size`` and ``payload_sha256`` are always set (for a null
    record value: ``payload_null`` true, size 0, sha256 of b"").

    Headers: values that decode as UTF-8 are in ``headers``; other values are
    base64-encoded in ``headers_b64`` (a key appears in exactly one of them).

    Size: a dead letter always fits under the producer's record limit. When the
    record's headers would not fit, they are dropped (``headers_dropped``: both
    maps empty and no Kafka headers on the letter); when even that is not enough
    the payload keeps only its head and the key is dropped (``key_dropped``).
    ``reason`` says what was dropped and how large it was.
    """

    model_config = ConfigDict(
        **_OUTPUT_CONFIG,
        title="DeadLetter",
        json_schema_extra={
            "$id": "https://streamnlp.dev/schemas/dead_letter.schema.json",
            "description": "Rejected input on topic `texts.dlq`. Consumers must ignore unknown fields.",
        },
    )

    HEAD_BYTES: ClassVar[int] = 1024

    schema_version: SchemaVersion = DEAD_LETTER_SCHEMA_VERSION
    error_code: ErrorCode
    reason: Annotated[
        str, Field(description="What is wrong and how to fix it. Never contains the text body.")
    ]
    event_id: Annotated[str | None, Field(description="The event's id, if it could be read.")] = None
    source_topic: str
    source_partition: Annotated[int, Field(ge=0)]
    source_offset: Annotated[int, Field(ge=0)]
    source_timestamp_ms: Annotated[int | None, Field(description="Kafka record timestamp, if known.")] = None
    source_key_b64: Annotated[str | None, Field(description="Record key, base64; null if no key.")] = None
    headers: Annotated[dict[str, str], Field(description="UTF-8 record headers.")] = Field(default_factory=dict)
    headers_b64: Annotated[
        dict[str, str], Field(description="Record headers whose values are not UTF-8, base64.")
    ] = Field(default_factory=dict)
    failed_at: datetime
    worker: str
    payload_null: Annotated[bool, Field(description="The record value was null (tombstone).")] = False
    payload_b64: Annotated[
        str | None, Field(description="Byte-exact raw value, base64; null if null or above the cap.")
    ] = None
    payload_truncated: Annotated[bool, Field(description="Value was above the cap and is not included.")] = False
    payload_size: Annotated[int, Field(ge=0, description="Raw value size in bytes.")]
    payload_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the raw value.")]
    payload_head_b64: Annotated[
        str | None, Field(description="First 1 KiB of the value, base64; only when truncated.")
    ] = None
    headers_dropped: Annotated[
        bool,
        Field(description="The record's headers were too large for a dead letter: not kept here, nor as Kafka headers."),
    ] = False
    key_dropped: Annotated[
        bool, Field(description="The record's key was too large for a dead letter: source_key_b64 is null.")
    ] = False


# --------------------------------------------------------------------------- #
# JSON helpers
# --------------------------------------------------------------------------- #


def to_jsonable(model: BaseModel) -> dict[str, Any]:
    """``model.model_dump(mode="json")``: plain dict of JSON types."""
    return model.model_dump(mode="json")


def to_json_bytes(model: BaseModel) -> bytes:
    """Serialise a model to compact UTF-8 JSON bytes (orjson when available)."""
    if _orjson is not None:
        return _orjson.dumps(model.model_dump(mode="json"))
    return model.model_dump_json().encode("utf-8")
