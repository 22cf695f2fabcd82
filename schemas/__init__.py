"""streamnlp event contracts. See :mod:`schemas.events`."""

from schemas.events import (
    DEAD_LETTER_SCHEMA_VERSION,
    DEFAULT_MAX_TEXT_CHARS,
    ENRICHED_EVENT_SCHEMA_VERSION,
    SCHEMA_VERSION,
    TEXT_EVENT_SCHEMA_VERSION,
    DeadLetter,
    EnrichedEvent,
    ErrorCode,
    Processing,
    Sentiment,
    TextEvent,
    to_json_bytes,
    to_jsonable,
)
from schemas.windows import SENTIMENT_WINDOW_SCHEMA_VERSION, SentimentWindow

__all__ = [
    "DEAD_LETTER_SCHEMA_VERSION",
    "DEFAULT_MAX_TEXT_CHARS",
    "ENRICHED_EVENT_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "SENTIMENT_WINDOW_SCHEMA_VERSION",
    "TEXT_EVENT_SCHEMA_VERSION",
    "DeadLetter",
    "EnrichedEvent",
    "ErrorCode",
    "Processing",
    "Sentiment",
    "SentimentWindow",
    "TextEvent",
    "to_json_bytes",
    "to_jsonable",
]
