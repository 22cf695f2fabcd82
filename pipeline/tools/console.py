"""How the console commands print records: `streamnlp demo` and `streamnlp tail`, one line per
enriched event, summary or dead letter.

The followed topics are shared: any producer may write to them, so `tail` shows a record that is
not JSON, or JSON of another shape, as it is instead of ending the command.
"""

from __future__ import annotations

import orjson


def format_enriched(event: dict) -> str:
    sentiment = event.get("sentiment")
    text = " ".join(str(event.get("text", "")).split())
    if len(text) > 90:
        text = text[:87] + "..."
    language = event.get("language") or {}
    if sentiment is None:  # language gate: say why instead of a label
        verdict = f"{'-':>8} {language.get('code', '?'):>4}"
        flag = f" [{event.get('sentiment_skipped_reason') or 'no sentiment'}]"
    else:
        verdict = f"{sentiment.get('label', '?'):>8} {sentiment.get('score', 0):.2f}"
        flag = " [truncated]" if sentiment.get("truncated") else ""
    toxicity = event.get("toxicity")
    # "offensive 0.97" / "clean"; "-" when it was not scored (gated, or off on the worker); after the id, so a line
    # still starts "<label> <score>  <id>"
    toxic = "-" if not isinstance(toxicity, dict) else (
        f"offensive {toxicity.get('score', 0):.2f}" if toxicity.get("label") == "offensive" else str(toxicity.get("label")))
    return f"{verdict}  {event.get('id')}  ({event.get('source') or '-'}) toxicity: {toxic}{flag}  {text}"


def format_summary(summary: dict) -> str:
    method = summary.get("method", "?")
    faith = (summary.get("faithfulness") or {})
    note = ""
    if method == "extractive" and summary.get("fallback_reason"):
        note = f", fallback: {summary['fallback_reason']}"
        if summary.get("degenerate_reason"):
            note += f" ({summary['degenerate_reason']})"
        elif faith.get("unsupported"):
            note += f" {faith['unsupported'][:4]}"
    return (f"{'SUMMARY':>8}       {summary.get('id')}  [{method}, faithfulness {faith.get('score', 0):.2f}{note}]"
            f"\n{'':>15}{summary.get('summary')}")


def format_dead_letter(letter: dict) -> str:
    return (f"{'DEAD':>8}       offset {letter.get('source_partition')}:{letter.get('source_offset')}"
            f"  {letter.get('error_code')}: {letter.get('reason')}")


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
