"""Dashboard state: pure, in memory, bounded. No Kafka, no web server, no clock of its own.

The feed hands it decoded records (with their Kafka timestamps) and metric samples; every
call returns the updates to broadcast, and `snapshot()` is what a newly connected page
starts from. Every collection has a fixed cap, so memory does not grow with traffic:
`events` latest events, `buckets` time buckets per source for at most `max_sources`
sources (later sources share the "other" series), `alerts` alerts, `samples` metric samples.

Records are treated as plain JSON dicts (the page is a view, not a validator): a field
that is missing or of the wrong type shows as empty instead of breaking the feed.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.lanes.windows import logic as windows

OTHER_SOURCE = "other"

#: One message to every connected page: {"type": "event" | "summary" | "point" | "alert" | "stats", "data": {...}}
Update = dict[str, Any]


@dataclass(frozen=True)
class HubConfig:
    bucket_s: float = 10.0       # width of a sentiment-over-time bucket
    buckets: int = 90            # buckets kept per source (15 min at 10 s)
    max_sources: int = 8         # series drawn; more sources would make the chart unreadable anyway
    events: int = 50             # latest enriched events listed
    alerts: int = 50
    samples: int = 150           # throughput / lag samples (5 min at 2 s)
    seen_ids: int = 4096         # recent ids remembered to drop at-least-once duplicates
    show_text: bool = False      # text bodies and summaries on the page (off: ids, labels, scores only)
    text_chars: int = 280        # bodies are clipped: the page lists events, it is not a reader


@dataclass(frozen=True)
class StatsSample:
    """One reading of this worker's metrics (cumulative counters; the hub turns them into rates)."""

    at_s: float
    consumed_total: float
    enriched_total: float
    dead_lettered_total: float
    lag: float


@dataclass
class _Bucket:
    n: int = 0            # labelled events
    skipped: int = 0      # events without sentiment (language gate)
    signed_sum: float = 0.0
    positive: int = 0
    negative: int = 0
    toxicity_scored: int = 0  # events with a toxicity label
    offensive: int = 0

    def point(self, source: str, start: float) -> dict[str, Any]:
        return {"source": source, "t": start, "n": self.n, "skipped": self.skipped,
                "mean": round(self.signed_sum / self.n, 4) if self.n else None,
                "positive": self.positive, "negative": self.negative,
                "offensive": self.offensive, "toxicity_scored": self.toxicity_scored,
                "offensive_share": round(self.offensive / self.toxicity_scored, 4) if self.toxicity_scored else None}


def signed_score(label: str | None, score: float | None) -> float | None:
    """The window aggregates' signed score (pipeline.lanes.windows.logic); None for an event without sentiment."""
    if label is None or score is None:
        return None
    return windows.signed_score(label, score)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class Hub:
    def __init__(self, config: HubConfig = HubConfig()) -> None:
        self.config = config
        self._events: OrderedDict[str, dict[str, Any]] = OrderedDict()  # id -> row, oldest first
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._early_summaries: OrderedDict[str, dict[str, Any]] = OrderedDict()  # summary overtook its event
        self._series: dict[str, OrderedDict[float, _Bucket]] = {}
        self._alerts: deque[dict[str, Any]] = deque(maxlen=config.alerts)
        self._samples: deque[dict[str, Any]] = deque(maxlen=config.samples)
        self._last_sample: StatsSample | None = None
        self.totals = {"events": 0, "summaries": 0, "windows": 0, "alerts": 0, "duplicates": 0, "offensive": 0}

    # --- inputs ----------------------------------------------------------------------------
    def enriched(self, event: Mapping[str, Any], timestamp_ms: int) -> list[Update]:
        """An enriched event (texts.enriched) with its record's Kafka timestamp."""
        event_id = _str(event.get("id"))
        if event_id is None:
            return []
        if event_id in self._seen:  # at-least-once: a redelivered event must not count twice
            self.totals["duplicates"] += 1
            return []
        self._remember(event_id)
        self.totals["events"] += 1
        sentiment = event.get("sentiment") if isinstance(event.get("sentiment"), Mapping) else None
        label = _str(sentiment.get("label")) if sentiment else None
        score = _num(sentiment.get("score")) if sentiment else None
        scored = event.get("toxicity") if isinstance(event.get("toxicity"), Mapping) else None
        toxicity = _str(scored.get("label")) if scored else None
        toxicity_score = _num(scored.get("score")) if scored else None
        self.totals["offensive"] += toxicity == "offensive"
        detected = event.get("language")
        language: Mapping[str, Any] = detected if isinstance(detected, Mapping) else {}
        source = windows.source_key(_str(event.get("source")))
        row: dict[str, Any] = {
            "id": event_id, "source": source, "at": timestamp_ms,
            "label": label, "score": None if score is None else round(score, 4),
            "language": _str(language.get("code")),
            "skipped_reason": _str(event.get("sentiment_skipped_reason")),
            "toxicity": toxicity, "toxicity_score": None if toxicity_score is None else round(toxicity_score, 4),
            "toxicity_skipped_reason": _str(event.get("toxicity_skipped_reason")),
            "summary_status": _str(event.get("summary_status")),
        }
        if self.config.show_text:
            row["text"] = self._clip(event.get("text"))
        early = self._early_summaries.pop(event_id, None)
        if early is not None:
            row.update(early)
        self._events[event_id] = row
        while len(self._events) > self.config.events:
            self._events.popitem(last=False)
        updates: list[Update] = [{"type": "event", "data": row}]
        point = self._add_to_series(self._series_name(source), timestamp_ms / 1000.0, signed_score(label, score), label,
                                    toxicity)
        if point is not None:
            updates.append({"type": "point", "data": point})
        return updates

    def summary(self, summary: Mapping[str, Any]) -> list[Update]:
        """A summary (texts.summaries): attached to its event's row."""
        event_id = _str(summary.get("id"))
        if event_id is None:
            return []
        self.totals["summaries"] += 1
        scored = summary.get("faithfulness")
        faithfulness: Mapping[str, Any] = scored if isinstance(scored, Mapping) else {}
        fields: dict[str, Any] = {
            "summary_method": _str(summary.get("method")),
            "faithfulness": _num(faithfulness.get("score")),
            "summary_status": "done",
        }
        if self.config.show_text:
            fields["summary"] = self._clip(summary.get("summary"))
        row = self._events.get(event_id)
        if row is None:
            # The summary overtook its event (different topics), or the event already scrolled off.
            self._early_summaries[event_id] = fields
            while len(self._early_summaries) > self.config.events:
                self._early_summaries.popitem(last=False)
            return []
        row.update(fields)
        return [{"type": "summary", "data": {"id": event_id, **fields}}]

    def window(self, window: Mapping[str, Any]) -> list[Update]:
        """A closed sentiment window (texts.sentiment.windows); only alerting windows are shown."""
        self.totals["windows"] += 1
        if window.get("alert") is not True:
            return []
        self.totals["alerts"] += 1
        alert = {
            "source": windows.source_key(_str(window.get("source"))),
            "window_start": _str(window.get("window_start")), "window_end": _str(window.get("window_end")),
            "reason": _str(window.get("alert_reason")),
            "negative_share": _num(window.get("negative_share")), "mean_score": _num(window.get("mean_score")),
            "offensive_share": _num(window.get("offensive_share")),
            "kinds": [k for k in window.get("alert_kinds") or [] if isinstance(k, str)],
            "total": _num(window.get("total")),
            "most_negative_ids": [i for i in window.get("most_negative_ids") or [] if isinstance(i, str)][:5],
        }
        self._alerts.append(alert)
        return [{"type": "alert", "data": alert}]

    def stats(self, sample: StatsSample) -> list[Update]:
        """A metrics reading: rates since the previous one, and the lag."""
        previous, self._last_sample = self._last_sample, sample
        if previous is None or sample.at_s <= previous.at_s:
            return []
        dt = sample.at_s - previous.at_s

        def rate(now: float, before: float) -> float:
            # A counter never decreases; if it does the process restarted, and the new value is the increase.
            return round(max(0.0, now - before if now >= before else now) / dt, 2)

        row = {"t": round(sample.at_s, 3),
               "consumed_per_s": rate(sample.consumed_total, previous.consumed_total),
               "enriched_per_s": rate(sample.enriched_total, previous.enriched_total),
               "dead_lettered_per_s": rate(sample.dead_lettered_total, previous.dead_lettered_total),
               "lag": sample.lag}
        self._samples.append(row)
        return [{"type": "stats", "data": row}]

    # --- outputs ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs to draw itself; then it applies the updates."""
        return {
            "config": {"bucket_s": self.config.bucket_s, "show_text": self.config.show_text},
            "events": list(self._events.values()),  # oldest first, like the updates arrive
            "series": {source: [b.point(source, start) for start, b in buckets.items()]
                       for source, buckets in self._series.items()},
            "alerts": list(self._alerts),
            "stats": list(self._samples),
            "totals": dict(self.totals),
        }

    # --- internals -------------------------------------------------------------------------
    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        while len(self._seen) > self.config.seen_ids:
            self._seen.popitem(last=False)

    def _series_name(self, source: str) -> str:
        """The source's own series while there is room, else the shared "other" series."""
        if source in self._series or len(self._series) < self.config.max_sources:
            return source
        return OTHER_SOURCE

    def _series_for(self, source: str) -> OrderedDict[float, _Bucket] | None:
        series = self._series.get(source)
        if series is None:
            if len(self._series) >= self.config.max_sources + (source == OTHER_SOURCE):
                return None
            series = self._series[source] = OrderedDict()
        return series

    def _add_to_series(self, source: str, at_s: float, signed: float | None, label: str | None,
                       toxicity: str | None = None) -> dict[str, Any] | None:
        series = self._series_for(source)
        if series is None:
            return None
        start = math.floor(at_s / self.config.bucket_s) * self.config.bucket_s
        newest = next(reversed(series), None)
        horizon = (newest if newest is not None and newest > start else start) - (self.config.buckets - 1) * self.config.bucket_s
        if start < horizon:
            return None  # older than anything still drawn
        bucket = series.get(start)
        if bucket is None:
            bucket = series[start] = _Bucket()
            if newest is not None and start < newest:  # out of order: keep the buckets sorted by time
                for key in sorted(series):
                    series.move_to_end(key)
            while len(series) > self.config.buckets or next(iter(series)) < horizon:
                series.popitem(last=False)
        if signed is None:
            bucket.skipped += 1
        else:
            bucket.n += 1
            bucket.signed_sum += signed
            bucket.positive += label == "positive"
            bucket.negative += label == "negative"
        if toxicity is not None:
            bucket.toxicity_scored += 1
            bucket.offensive += toxicity == "offensive"
        return bucket.point(source, start)

    def _clip(self, text: Any) -> str | None:
        if not isinstance(text, str):
            return None
        text = " ".join(text.split())
        return text if len(text) <= self.config.text_chars else text[: self.config.text_chars - 1] + "…"
