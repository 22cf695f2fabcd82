"""Summary lane contracts.

=====================  ==================  ===================================
topic                  model               direction
=====================  ==================  ===================================
``texts.summarize``    ``SummaryRequest``  worker -> worker (internal queue)
``texts.summaries``    ``SummaryEvent``    worker -> consumers, key = event id
=====================  ==================  ===================================

Long texts are enriched with sentiment at once (``summary_status: "pending"``
on ``texts.enriched``); their summary follows separately, so a backlog of slow
generation never delays sentiment. Downstream joins the two topics by key.
Same compatibility policy as :mod:`schemas.events` (minor versions only add
fields; unknown fields are ignored).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import MAX_ID_CHARS, SchemaVersion

SUMMARY_REQUEST_SCHEMA_VERSION = "1.0"
SUMMARY_EVENT_SCHEMA_VERSION = "1.0"

_CONFIG = ConfigDict(extra="ignore", protected_namespaces=(), json_schema_serialization_defaults_required=True)

SummaryMethod = Literal["abstractive", "extractive"]
FallbackReason = Literal["unfaithful", "degenerate", "backlog", "generation_error", "disabled"]


class SummaryRequest(BaseModel):
    """What the sentiment lane hands the summary lane (internal topic)."""

    model_config = ConfigDict(**_CONFIG, title="SummaryRequest")

    schema_version: SchemaVersion = SUMMARY_REQUEST_SCHEMA_VERSION
    id: Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
    text: Annotated[str, Field(min_length=1)]
    source: str | None = None
    lang: str | None = None
    requested_at: datetime


class Faithfulness(BaseModel):
    model_config = ConfigDict(**_CONFIG, title="Faithfulness")

    score: Annotated[float, Field(ge=0.0, le=1.0, description="Faithfulness of the published summary (extractive = 1).")]
    threshold: Annotated[float, Field(ge=0.0, le=1.0, description="Abstractive summaries below this are replaced.")]
    candidate_score: Annotated[
        float | None, Field(description="Score of the model's candidate summary (null if none was generated).")
    ] = None
    unsupported: Annotated[
        list[str],
        Field(description="Spans of the model's candidate not supported by the source (numbers, dates, names, rare words)."),
    ] = Field(default_factory=list)


class SummaryModel(BaseModel):
    model_config = ConfigDict(**_CONFIG, title="SummaryModel")

    name: str
    version: str
    precision: str


class SummaryProcessing(BaseModel):
    model_config = ConfigDict(**_CONFIG, title="SummaryProcessing")

    worker: str
    batch_size: Annotated[int, Field(ge=1)]
    generation_ms: Annotated[float, Field(ge=0.0, description="Wall time of the batch's generation (0 if none).")]
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    prompt_truncated: bool = False
    requested_at: datetime
    summarized_at: datetime


class SummaryEvent(BaseModel):
    """Output on ``texts.summaries``, keyed by the event id of the text it summarises."""

    model_config = ConfigDict(
        **_CONFIG,
        title="SummaryEvent",
        json_schema_extra={
            "$id": "https://streamnlp.dev/schemas/summary_event.schema.json",
            "description": "Summary of a long text on topic `texts.summaries`; join with `texts.enriched` by id.",
        },
    )

    schema_version: SchemaVersion = SUMMARY_EVENT_SCHEMA_VERSION
    id: Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
    source: str | None = None
    summary: Annotated[str, Field(min_length=1)]
    method: SummaryMethod
    fallback_reason: Annotated[
        FallbackReason | None, Field(description="Why the extractive summary was published instead (null if abstractive).")
    ] = None
    degenerate_reason: str | None = None
    faithfulness: Faithfulness
    model: Annotated[SummaryModel | None, Field(description="The generator; null when no model ran.")] = None
    processing: SummaryProcessing
