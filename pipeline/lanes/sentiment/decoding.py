"""Raw Kafka record value -> ``TextEvent``, or an ``InvalidEvent`` to dead-letter.

Pure logic: no Kafka, Faust or model imports. The enricher catches ``InvalidEvent`` and turns
it into a dead letter with :func:`pipeline.deadletter.dead_letter_record`, the one builder.

Checks run cheapest-first and each failure has one precise
:class:`~schemas.events.ErrorCode`:

1. null / zero-byte value            -> ``empty_payload``
2. more than ``max_payload_bytes``   -> ``payload_too_large`` (never parsed)
3. not UTF-8                         -> ``invalid_utf8``
4. not JSON                          -> ``invalid_json``
5. not a JSON object                 -> ``not_an_object``
6. model validation                  -> ``missing_field`` / ``wrong_type`` /
   ``empty_text`` / ``text_too_long`` / ``unsupported_schema_version`` /
   ``invalid_field``

Reasons say what is wrong and how to fix it, and never quote the text body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from pipeline.deadletter import MAX_REASON_CHARS, InvalidEvent
from pipeline.limits import DEFAULT_MAX_PAYLOAD_BYTES
from schemas.events import (
    DEFAULT_MAX_TEXT_CHARS,
    MAX_ID_CHARS,
    MAX_TEXT_CHARS_CONTEXT_KEY,
    ErrorCode,
    TextEvent,
    json_type_name,
)

__all__ = ["InvalidEvent", "decode_text_event"]


_UTF8_BOM = b"\xef\xbb\xbf"

# Which code wins when one record has several problems (lower index wins).
_PRIORITY = [
    ErrorCode.missing_field,
    ErrorCode.wrong_type,
    ErrorCode.unsupported_schema_version,
    ErrorCode.empty_text,
    ErrorCode.text_too_long,
    ErrorCode.invalid_field,
]

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "list_type": "an array",
    "datetime_type": "an ISO-8601 string or a Unix epoch number",
}


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


def _lookup(obj: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            obj = obj[part]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


def _classify(err: Mapping[str, Any], obj: Mapping[str, Any]) -> tuple[ErrorCode, str]:
    """Map one pydantic error to (code, human reason)."""
    etype: str = err["type"]
    loc: tuple[Any, ...] = tuple(err.get("loc", ()))
    field = _field_path(loc)

    if etype == "missing":
        return ErrorCode.missing_field, f"required field '{field}' is missing"
    if etype == "empty_text":
        return ErrorCode.empty_text, "field 'text' is empty or whitespace-only; send the text to analyse"
    if etype == "text_too_long":
        ctx = err.get("ctx") or {}
        return (
            ErrorCode.text_too_long,
            f"field 'text' has {ctx.get('length')} characters, the limit is {ctx.get('limit')}; "
            "split the text into several events",
        )
    if etype == "unsupported_schema_version":
        return ErrorCode.unsupported_schema_version, err["msg"] + "; send schema_version \"1.x\" or omit it"
    if etype == "metadata_value_type":
        return ErrorCode.wrong_type, err["msg"] + "; flatten nested values or encode them as a JSON string"
    if etype in _EXPECTED:
        got = json_type_name(_lookup(obj, loc))
        return ErrorCode.wrong_type, f"field '{field}' must be {_EXPECTED[etype]}, got {got}"
    if loc == ("timestamp",):
        return (
            ErrorCode.invalid_field,
            "field 'timestamp' must be an ISO-8601 date-time (e.g. \"2024-05-01T12:00:00Z\") "
            "or a Unix epoch number; omit it if unknown",
        )
    if etype == "string_too_long" and loc == ("id",):
        return ErrorCode.invalid_field, f"field 'id' must be at most {MAX_ID_CHARS} characters"
    if etype in ("string_too_short", "blank_id") and loc == ("id",):
        return ErrorCode.invalid_field, "field 'id' must be a non-empty string"
    if etype == "string_too_short" and loc == ("text",):
        return ErrorCode.empty_text, "field 'text' is empty or whitespace-only; send the text to analyse"
    # Catch-all: pydantic's own message is safe (it never quotes long input).
    return ErrorCode.invalid_field, f"field '{field}': {err['msg']}"


def _readable_id(obj: Mapping[str, Any]) -> str | None:
    value = obj.get("id")
    if isinstance(value, str) and value.strip() and len(value) <= MAX_ID_CHARS:
        return value
    return None


def decode_text_event(
    raw: bytes | bytearray | memoryview | None,
    *,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> TextEvent:
    """Decode and validate one record value. Raises :class:`InvalidEvent`."""
    if raw is None:
        raise InvalidEvent(
            ErrorCode.empty_payload, "record value is null (tombstone); send a JSON object with 'id' and 'text'"
        )
    if isinstance(raw, str):  # tolerate already-decoded values
        raw = raw.encode("utf-8", "surrogatepass")
    data = bytes(raw)
    if not data:
        raise InvalidEvent(ErrorCode.empty_payload, "record value is empty; send a JSON object with 'id' and 'text'")
    if len(data) > max_payload_bytes:
        raise InvalidEvent(
            ErrorCode.payload_too_large,
            f"record value is {len(data)} bytes, the limit is {max_payload_bytes}; "
            "send shorter texts (split long documents into several events)",
        )

    if data.startswith(_UTF8_BOM):  # tolerated: some producers prepend one
        data = data[len(_UTF8_BOM) :]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(
            ErrorCode.invalid_utf8,
            f"record value is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "encode the JSON as UTF-8",
        ) from None

    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(
            ErrorCode.invalid_json,
            f"record value is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "send one JSON object per record",
        ) from None

    if not isinstance(obj, dict):
        raise InvalidEvent(
            ErrorCode.not_an_object,
            f"record value must be a JSON object with 'id' and 'text', got {json_type_name(obj)}; "
            "send one event per record",
        )

    try:
        return TextEvent.model_validate(obj, context={MAX_TEXT_CHARS_CONTEXT_KEY: max_text_chars})
    except ValidationError as exc:
        problems = [_classify(err, obj) for err in exc.errors(include_url=False, include_input=False)]
        problems.sort(key=lambda p: _PRIORITY.index(p[0]))
        code = problems[0][0]
        reason = "; ".join(dict.fromkeys(r for _, r in problems))  # dedupe, keep order
        raise InvalidEvent(code, _clip(reason), _readable_id(obj)) from None


def _clip(text: str, limit: int = MAX_REASON_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
