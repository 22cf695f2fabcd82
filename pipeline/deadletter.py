"""The one dead-letter builder, and the size rules that keep every published record publishable.

Every record a worker publishes is an :class:`Outgoing` that remembers the input record
it came from (``source``). A failure that belongs to one record (it does not decode, the
model fails on it, its output is too large or the broker refuses it) becomes one
``DeadLetter`` for that input, built here, and the rest of the batch moves on.

Sizes, checked together at startup (``pipeline/settings.py``)::

    input value     <= max_payload_bytes                       else payload_too_large (decoding)
    enriched output ~= input value + what enrichment adds      checked per record before sending:
                       (+ the input's headers)                  over the limit -> output_too_large
    dead letter     <= base64(payload cap) + LETTER_OVERHEAD_BYTES, headers and key dropped to fit
    every record    <= max_record_bytes (the producer's max_request_size)

Pure logic: no Kafka I/O (aiokafka is used only for its record-size arithmetic).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import BaseModel

from pipeline.errors import StreamnlpError
from pipeline.limits import (
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_PAYLOAD_CAP_BYTES,
    LETTER_OVERHEAD_BYTES,
    OUTPUT_HEADROOM_BYTES,
    letter_budget,
)
from pipeline.logs import get_logger
from schemas.events import DeadLetter, ErrorCode, to_json_bytes

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "DEFAULT_PAYLOAD_CAP_BYTES",
    "LETTER_OVERHEAD_BYTES",
    "MAX_REASON_CHARS",
    "OUTPUT_HEADROOM_BYTES",
    "InvalidEvent",
    "Outgoing",
    "RawRecord",
    "dead_letter_record",
    "fit_letter",
    "letter_budget",
    "make_dead_letter",
    "record_size",
    "refused_output_letter",
    "smallest_letter",
]

log = get_logger("streamnlp.deadletter")

#: Upper bound on ``DeadLetter.reason`` length (before a note on what was dropped to fit).
MAX_REASON_CHARS = 1000

Headers = tuple[tuple[str, bytes], ...]


class InvalidEvent(StreamnlpError):
    """Why one record is dead-lettered (it cannot become a ``TextEvent``, or it failed later).

    ``code`` is the stable machine-readable reason, ``reason`` the human one,
    ``event_id`` the event's id when it could be read.
    """

    def __init__(self, code: ErrorCode, reason: str, event_id: str | None = None) -> None:
        super().__init__(f"{code.value}: {reason}")
        self.code = ErrorCode(code)
        self.reason = reason
        self.event_id = event_id

    def __repr__(self) -> str:
        return f"InvalidEvent(code={self.code.value!r}, reason={self.reason!r}, event_id={self.event_id!r})"


@dataclass(frozen=True)
class RawRecord:
    """What the worker needs of a consumed Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


@dataclass(frozen=True)
class Outgoing:
    """A record to publish: key, a model serialised as JSON, headers, and the input it came from.

    ``source`` is where a failure of this record's own (too large, refused by the broker)
    is dead-lettered; None for records without one input (window aggregates).
    """

    key: bytes | None
    value: BaseModel
    headers: Headers
    source: RawRecord | None = None

    @cached_property
    def encoded(self) -> bytes:
        """The value's JSON bytes, serialised once: measured, then sent."""
        return to_json_bytes(self.value)

    @cached_property
    def size(self) -> int:
        return record_size(self.key, self.encoded, self.headers)


def record_size(key: bytes | None, value: bytes | None, headers: Headers | list[tuple[str, bytes]] = ()) -> int:
    """Bytes the producer counts for one record (key, value, headers and record overhead).

    aiokafka's own estimate: `send()` raises MessageSizeTooLargeError exactly when this is
    above its max_request_size, so a record that passes this check is never refused for
    its size by the producer.
    """
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers)))


def _clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _split_headers(headers: Mapping[str, Any] | Any | None) -> tuple[dict[str, str], dict[str, str]]:
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    if not headers:
        return text, binary
    items = headers.items() if isinstance(headers, Mapping) else headers  # also accept [(k, v), ...]
    for key, value in items:
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        if value is None:
            value = b""
        if isinstance(value, str):
            text[key] = value
            continue
        value = bytes(value)
        try:
            text[key] = value.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = _b64(value)
    return text, binary


def make_dead_letter(
    raw: bytes | bytearray | memoryview | str | None,
    error: InvalidEvent,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None = None,
    headers: Mapping[str, bytes] | Any | None = None,
    worker: str,
    payload_cap_bytes: int = DEFAULT_PAYLOAD_CAP_BYTES,
    timestamp_ms: int | None = None,
    failed_at: datetime | None = None,
) -> DeadLetter:
    """The ``DeadLetter`` model for a rejected value (no size fitting: see :func:`dead_letter_record`).

    The raw value is embedded byte-exact (base64) when it is at most
    ``payload_cap_bytes``; otherwise only its size, SHA-256 and first 1 KiB.
    Header values that are not UTF-8 go to ``headers_b64``.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    data = b"" if raw is None else bytes(raw)
    truncated = raw is not None and len(data) > payload_cap_bytes
    text_headers, binary_headers = _split_headers(headers)
    return DeadLetter(
        error_code=error.code,
        reason=_clip(error.reason),
        event_id=error.event_id,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        source_timestamp_ms=timestamp_ms,
        source_key_b64=None if key is None else _b64(bytes(key)),
        headers=text_headers,
        headers_b64=binary_headers,
        failed_at=failed_at or datetime.now(UTC),
        worker=worker,
        payload_null=raw is None,
        payload_b64=None if (raw is None or truncated) else _b64(data),
        payload_truncated=truncated,
        payload_size=len(data),
        payload_sha256=hashlib.sha256(data).hexdigest(),
        payload_head_b64=_b64(data[: DeadLetter.HEAD_BYTES]) if truncated else None,
    )


def dead_letter_record(
    record: RawRecord,
    error: InvalidEvent,
    *,
    worker: str,
    payload_cap_bytes: int = DEFAULT_PAYLOAD_CAP_BYTES,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Outgoing:
    """The DLQ record for `record`: keyed by the event id when known, input headers kept when they fit.

    Never larger than `max_record_bytes` (see :func:`fit_letter`), so a dead letter is
    never itself refused for its size.
    """
    letter = make_dead_letter(
        record.value, error, topic=record.topic, partition=record.partition, offset=record.offset,
        key=record.key, headers=record.headers, worker=worker, payload_cap_bytes=payload_cap_bytes,
    )
    key = error.event_id.encode() if error.event_id else record.key
    out = fit_letter(Outgoing(key=key, value=letter, headers=record.headers, source=record), max_record_bytes)
    letter = out.value  # type: ignore[assignment]
    # `payload` is a body key: logs show a placeholder unless STREAMNLP_LOG_TEXT_BODIES=true.
    log.debug("dead_lettered", error_code=letter.error_code.value, event_id=letter.event_id, reason=letter.reason,
              source=f"{record.topic}:{record.partition}:{record.offset}",
              payload=None if record.value is None else _payload_text(record.value[: 4 * 1024])[:1024])
    return out


def _payload_text(value: bytes) -> str:
    return bytes(value).decode("utf-8", "replace")


def _headers_bytes(headers: Headers) -> int:
    return sum(len(k.encode("utf-8", "surrogatepass")) + len(v) for k, v in headers)


def _without_headers(out: Outgoing, limit: int) -> Outgoing:
    letter: DeadLetter = out.value  # type: ignore[assignment]
    note = (f"; the record's headers ({_headers_bytes(out.headers)} bytes) were dropped from this dead letter "
            f"to fit the {limit}-byte record limit")
    return replace(out, headers=(), value=letter.model_copy(update={
        "headers": {}, "headers_b64": {}, "headers_dropped": True, "reason": _clip(letter.reason) + note,
    }))


def _without_key_and_payload(out: Outgoing, limit: int, *, keep_payload: bool) -> Outgoing:
    letter: DeadLetter = out.value  # type: ignore[assignment]
    update: dict[str, Any] = {}
    dropped: list[str] = []
    if letter.source_key_b64 is not None:
        update.update(source_key_b64=None, key_dropped=True)
        dropped.append(f"its key ({len(base64.b64decode(letter.source_key_b64))} bytes)")
    if not keep_payload and letter.payload_b64 is not None:
        data = base64.b64decode(letter.payload_b64)
        update.update(payload_b64=None, payload_truncated=True, payload_head_b64=_b64(data[: DeadLetter.HEAD_BYTES]))
        dropped.append(f"its payload beyond the first {DeadLetter.HEAD_BYTES} bytes")
    if dropped:
        update["reason"] = letter.reason + f"; {' and '.join(dropped)} dropped to fit the {limit}-byte record limit"
    # The letter's Kafka key is the event id, or none: never an oversized input key.
    return replace(out, key=letter.event_id.encode() if letter.event_id else None, value=letter.model_copy(update=update))


def fit_letter(out: Outgoing, max_record_bytes: int) -> Outgoing:
    """`out` (a dead letter) shrunk until it fits: headers dropped, then the key, then the payload's tail.

    The last step leaves a letter of at most LETTER_OVERHEAD_BYTES, which the settings keep
    below any configured limit.
    """
    if out.size <= max_record_bytes:
        return out
    out = _without_headers(out, max_record_bytes)
    if out.size <= max_record_bytes:
        return out
    out = _without_key_and_payload(out, max_record_bytes, keep_payload=True)
    if out.size <= max_record_bytes:
        return out
    return _without_key_and_payload(out, max_record_bytes, keep_payload=False)


def smallest_letter(out: Outgoing, max_record_bytes: int) -> Outgoing:
    """`out` without headers, key or payload tail: for a letter the broker refused as it was."""
    letter: DeadLetter = out.value  # type: ignore[assignment]
    if not letter.headers_dropped and (out.headers or letter.headers or letter.headers_b64):
        out = _without_headers(out, max_record_bytes)
    return _without_key_and_payload(out, max_record_bytes, keep_payload=False)


def refused_output_letter(
    item: Outgoing, code: ErrorCode, reason: str, *, worker: str, payload_cap_bytes: int, max_record_bytes: int,
) -> Outgoing | None:
    """The dead letter for the input behind `item`, an output that cannot be published (None: no input)."""
    if item.source is None:
        return None
    event_id = getattr(item.value, "id", None)
    error = InvalidEvent(code, reason, event_id if isinstance(event_id, str) else None)
    return dead_letter_record(item.source, error, worker=worker, payload_cap_bytes=payload_cap_bytes,
                              max_record_bytes=max_record_bytes)
