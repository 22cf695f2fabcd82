"""Windowed sentiment aggregates on ``texts.sentiment.windows`` (key = source).

One record per (source, tumbling window of event time) once the window has
closed. Same compatibility policy as :mod:`schemas.events` (minor versions only
add fields; consumers ignore unknown fields).

``mean_score`` is the mean *signed* score of the labelled events: +p for a
"positive" label with probability p, -p for "negative", 0 for any other label.
-1 is a window of confidently negative texts, +1 of confidently positive ones.

Since 1.1 a window also carries the offensive share of the events scored for
toxicity, and `alert` fires when either the negative or the offensive share
jumps above its trailing baseline (`alert_kinds` says which).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import MAX_ID_CHARS, SchemaVersion

# 1.1 added the toxicity figures (toxicity_scored, offensive, offensive_share, baseline_offensive_share) and
# alert_kinds; `alert` is true when either share spiked
SENTIMENT_WINDOW_SCHEMA_VERSION = "1.1"

_CONFIG = ConfigDict(extra="ignore", protected_namespaces=(), json_schema_serialization_defaults_required=True)


class SentimentWindow(BaseModel):
    """Sentiment figures of one source over one closed tumbling window."""

    model_config = ConfigDict(
        **_CONFIG,
        title="SentimentWindow",
        json_schema_extra={
            "$id": "https://streamnlp.dev/schemas/sentiment_window.schema.json",
            "description": (
                "A closed window of sentiment per source on topic `texts.sentiment.windows`, keyed by source. "
                "Consumers must ignore unknown fields."
            ),
        },
    )

    schema_version: SchemaVersion = SENTIMENT_WINDOW_SCHEMA_VERSION
    source: Annotated[str, Field(min_length=1, description='Event `source`; "unknown" for events without one.')]
    window_start: Annotated[datetime, Field(description="Inclusive start of the window (UTC, epoch-aligned).")]
    window_end: Annotated[datetime, Field(description="Exclusive end of the window (UTC).")]
    counts: Annotated[dict[str, int], Field(description="Labelled events per sentiment label.")]
    skipped: Annotated[int, Field(ge=0, description="Events without sentiment (e.g. an unsupported language).")]
    total: Annotated[int, Field(ge=0, description="All events of the window: sum of `counts` plus `skipped`.")]
    mean_score: Annotated[
        float | None,
        Field(ge=-1.0, le=1.0, description=(
            "Mean signed score of the labelled events (+p positive, -p negative, 0 other labels); "
            "null when no event was labelled."
        )),
    ]
    negative_share: Annotated[
        float, Field(ge=0.0, le=1.0, description="Negative events over labelled events (0 when none was labelled).")
    ]
    most_negative_ids: Annotated[
        list[Annotated[str, Field(max_length=MAX_ID_CHARS)]],
        Field(description="Ids of the most negative events, most negative first (bounded, default 5)."),
    ]
    alert: Annotated[bool, Field(description=(
        "The negative share (or, since 1.1, the offensive share) jumped more than its alert threshold above the "
        "trailing mean of the source's previous windows (only windows with enough labelled events alert)."
    ))]
    alert_kinds: Annotated[
        list[Literal["negative_share", "offensive_share"]],
        Field(description="Which shares spiked; empty when `alert` is false. (since 1.1)"),
    ] = Field(default_factory=list)
    alert_reason: Annotated[str | None, Field(description="Why `alert` is true; null otherwise.")] = None
    baseline_negative_share: Annotated[
        float | None,
        Field(ge=0.0, le=1.0, description="Trailing mean negative share the window was compared with; null without history."),
    ] = None
    toxicity_scored: Annotated[int, Field(ge=0, description=(
        "Events scored for toxicity (0 when toxicity is off or every event was gated). (since 1.1)"))] = 0
    offensive: Annotated[int, Field(ge=0, description="Of those, events labelled offensive. (since 1.1)")] = 0
    offensive_share: Annotated[
        float | None,
        Field(ge=0.0, le=1.0, description="`offensive` over `toxicity_scored`; null when none was scored. (since 1.1)"),
    ] = None
    baseline_offensive_share: Annotated[
        float | None,
        Field(ge=0.0, le=1.0, description=(
            "Trailing mean offensive share the window was compared with; null without history. (since 1.1)")),
    ] = None
    worker: Annotated[str, Field(description="Worker instance that closed the window.")]
    closed_at: Annotated[datetime, Field(description="When the window was closed (UTC, wall clock).")]
