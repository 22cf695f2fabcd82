"""How `streamnlp tail` prints one record: ours formatted, anything else raw.

The followed topics are shared: any producer may write to them, so a record that is not
JSON, or JSON of another shape, is shown as it is instead of ending the command.
"""

from __future__ import annotations

import orjson

from pipeline.tools.demo import format_dead_letter, format_enriched


def raw_line(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", "replace")


def tail_line(value: bytes | None, *, dead_letter: bool) -> str:
    """The formatted enriched event or dead letter; the raw value when it is not one."""
    try:
        record = orjson.loads(value or b"")
        if not isinstance(record, dict):
            return raw_line(value)
        return format_dead_letter(record) if dead_letter else format_enriched(record)
    except (ValueError, TypeError, AttributeError):  # not JSON (JSONDecodeError is a ValueError), or odd field types
        return raw_line(value)
