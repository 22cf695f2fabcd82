"""Windowed sentiment aggregates: pure logic (no Kafka, no Faust).

Tumbling, epoch-aligned windows of event time per source. An accumulator
(`WindowAcc`) is a small JSON-able dict so the agent can keep it in a Faust
table with a changelog; everything here is plain functions over it.

Scores: an event's sentiment arrives as (label, probability of that label).
The window's `mean_score` is the mean *signed* score: +p for "positive", -p for
"negative", 0 for any other label, so -1 = confidently negative, +1 = confidently
positive, and opposing events cancel out instead of averaging to "confident".

Toxicity: each event may also carry a toxicity label; the window counts the events
scored for toxicity and the offensive ones, and `offensive_share` (offensive over
scored) gets its own spike rule and trailing history, so a burst of abuse alerts
even when sentiment does not move. Accumulators saved before toxicity existed lack
those keys and count as zero.

Event times from the future: the watermark only moves forward, so one event
stamped 2099 would make every later event late for good (and a window near
year 9999 cannot even be published: its end is past `datetime.max`). An event
time more than a tolerance ahead of the wall clock is therefore not trusted:
the event is counted in the window of its Kafka record timestamp (the wall
clock when that one is missing or in the future too) and moves the watermark
only that far (`place_event`). The wall clock is always a parameter here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

UNKNOWN_SOURCE = "unknown"
NEGATIVE = "negative"
POSITIVE = "positive"
OFFENSIVE = "offensive"
DEFAULT_TOP_K = 5
DEFAULT_FUTURE_TOLERANCE_S = 300.0
#: Earlier event times are raised to this: one day (the largest window size setting) after
#: datetime.min, so every window start is a datetime that can be published.
EARLIEST_EVENT_TIME_S = datetime(1, 1, 2, tzinfo=UTC).timestamp()

#: JSON-able accumulator; see `new_acc` for the keys.
WindowAcc = dict[str, Any]


@dataclass(frozen=True)
class WindowConfig:
    size_s: float = 60.0
    grace_s: float = 10.0
    top_k: int = DEFAULT_TOP_K


@dataclass(frozen=True)
class SpikeConfig:
    threshold: float = 0.3   # negative share minus the trailing mean above this alerts
    min_count: int = 10      # windows with fewer scored events never alert (1-event windows are noise)
    trailing: int = 5        # how many previous closed windows of the source make the baseline


@dataclass(frozen=True)
class Spike:
    alert: bool
    baseline: float | None   # trailing mean negative share; None when there is no history yet
    reason: str | None


def source_key(source: str | None) -> str:
    return source if source else UNKNOWN_SOURCE


def window_start(event_time_s: float, size_s: float) -> float:
    """Start of the tumbling window holding `event_time_s` (epoch-aligned: starts are multiples of size)."""
    return math.floor(event_time_s / size_s) * size_s


def place_event(event_time_s: float, kafka_time_s: float | None, *, now_s: float, tolerance_s: float) -> tuple[float, bool]:
    """The time an event is windowed by (and that moves the watermark), and whether its own time was in the future.

    An event time more than `tolerance_s` ahead of `now_s` (or not a number) is replaced by the
    record's Kafka timestamp, or by `now_s` when that one is missing or in the future too. Times
    before `EARLIEST_EVENT_TIME_S` are raised to it (such an event is late in practice).
    """
    latest = now_s + tolerance_s
    if event_time_s <= latest:  # False for NaN
        return max(event_time_s, EARLIEST_EVENT_TIME_S), False
    if kafka_time_s is not None and EARLIEST_EVENT_TIME_S <= kafka_time_s <= latest:
        return kafka_time_s, True
    return now_s, True


def max_watermark(config: WindowConfig, *, now_s: float, tolerance_s: float) -> float:
    """The highest watermark a partition can have at `now_s`.

    Event times are capped at now + tolerance, and an idle flush raises the watermark to the
    flushed windows' end + grace.
    """
    return window_start(now_s + tolerance_s, config.size_s) + config.size_s + config.grace_s


def clamp_watermark(watermark: float, config: WindowConfig, *, now_s: float, tolerance_s: float) -> float:
    """A loaded watermark, or `now_s` when it is higher than any this rule allows.

    Such a watermark was saved by a version without the rule (or by a clock far ahead).
    Clamped to the wall clock, not to `max_watermark`: that would still make the next
    `tolerance_s` of events late. The windows closed before the bad event ended before now,
    so none of them reopens.
    """
    return watermark if watermark <= max_watermark(config, now_s=now_s, tolerance_s=tolerance_s) else now_s


def is_future_window(acc: WindowAcc, *, now_s: float, tolerance_s: float) -> bool:
    """A window that only an event from the future can have opened (saved by a version without the cap)."""
    return acc["start"] > now_s + tolerance_s


def window_bounds(acc: WindowAcc) -> tuple[datetime, datetime]:
    """The window's start and end as UTC datetimes (what SentimentWindow publishes)."""
    return datetime.fromtimestamp(acc["start"], UTC), datetime.fromtimestamp(acc["end"], UTC)


def signed_score(label: str, score: float) -> float:
    if label == POSITIVE:
        return score
    if label == NEGATIVE:
        return -score
    return 0.0


def new_acc(source: str, start: float, size_s: float) -> WindowAcc:
    return {
        "source": source,
        "start": start,
        "end": start + size_s,
        "counts": {},          # label -> events
        "skipped": 0,          # events without sentiment (language gate): counted, not labelled
        "signed_sum": 0.0,     # sum of signed scores of the labelled events
        "negatives": [],       # [[signed score, id], ...] most negative first, at most top_k
        "max_event_time": start,
        "origins": {},         # origin partition -> highest origin offset counted (replays are skipped)
        "toxicity_scored": 0,  # events with a toxicity label
        "offensive": 0,        # of those, labelled offensive
    }


def add_event(
    acc: WindowAcc, *, event_id: str, label: str | None, score: float | None, event_time_s: float, top_k: int,
    toxicity: str | None = None,
) -> None:
    """Count one event (label None = sentiment skipped; toxicity None = not scored for toxicity)."""
    acc["max_event_time"] = max(acc["max_event_time"], event_time_s)
    if toxicity is not None:
        acc["toxicity_scored"] = acc.get("toxicity_scored", 0) + 1
        acc["offensive"] = acc.get("offensive", 0) + (toxicity == OFFENSIVE)
    if label is None or score is None:
        acc["skipped"] += 1
        return
    acc["counts"][label] = acc["counts"].get(label, 0) + 1
    signed = signed_score(label, score)
    acc["signed_sum"] += signed
    if label == NEGATIVE:
        negatives = acc["negatives"]
        negatives.append([signed, event_id])
        # Bounded: only the K most negative ids are kept (ties: the smaller id, for determinism).
        negatives.sort(key=lambda pair: (pair[0], pair[1]))
        del negatives[top_k:]


def merge(into: WindowAcc, other: WindowAcc, top_k: int) -> None:
    """Add `other`'s events to `into` (re-homing a future window's events into a current one)."""
    for label, count in other["counts"].items():
        into["counts"][label] = into["counts"].get(label, 0) + count
    into["skipped"] += other["skipped"]
    into["signed_sum"] += other["signed_sum"]
    for key in ("toxicity_scored", "offensive"):
        into[key] = into.get(key, 0) + other.get(key, 0)
    negatives = into["negatives"] + [list(pair) for pair in other["negatives"]]
    negatives.sort(key=lambda pair: (pair[0], pair[1]))
    into["negatives"] = negatives[:top_k]
    # The other window's event times are the untrusted ones: they do not raise this one's.
    for partition, offset in other["origins"].items():
        # Later events of that origin partition have higher offsets than both windows' (offset order).
        into["origins"][partition] = max(into["origins"].get(partition, -1), offset)


def scored_total(acc: WindowAcc) -> int:
    return sum(acc["counts"].values())


def mean_score(acc: WindowAcc) -> float | None:
    total = scored_total(acc)
    return acc["signed_sum"] / total if total else None


def negative_share(acc: WindowAcc) -> float:
    """Negative events over labelled events (skipped ones excluded); 0 when nothing was labelled."""
    total = scored_total(acc)
    return acc["counts"].get(NEGATIVE, 0) / total if total else 0.0


def offensive_share(acc: WindowAcc) -> float | None:
    """Offensive events over events scored for toxicity; None when none was (toxicity off, or gated)."""
    scored = acc.get("toxicity_scored", 0)
    return acc.get("offensive", 0) / scored if scored else None


def most_negative_ids(acc: WindowAcc) -> list[str]:
    return [event_id for _, event_id in acc["negatives"]]


def is_closed(window_end: float, grace_s: float, watermark: float) -> bool:
    """A window closes once the watermark (latest event time seen) is past its end plus the grace period."""
    return window_end + grace_s <= watermark


def is_late(event_time_s: float, config: WindowConfig, watermark: float) -> bool:
    """The event's window has already closed: it can no longer be counted."""
    start = window_start(event_time_s, config.size_s)
    return is_closed(start + config.size_s, config.grace_s, watermark)


def closable(accs: Iterable[WindowAcc], grace_s: float, watermark: float) -> list[WindowAcc]:
    """Accumulators whose window is closed, oldest first."""
    return sorted((a for a in accs if is_closed(a["end"], grace_s, watermark)), key=lambda a: (a["start"], a["source"]))


def detect_spike(negative_share_now: float, scored: int, history: Sequence[float], config: SpikeConfig,
                 what: str = "negative share") -> Spike:
    """Alert when this window's share exceeds the mean of the previous `trailing` shares by > threshold.

    `history` is the shares of the source's previous closed windows, oldest first; `what` names
    the share in the reason (the negative share, or the offensive share).
    """
    recent = list(history)[-config.trailing:] if config.trailing > 0 else []
    baseline = sum(recent) / len(recent) if recent else None
    if baseline is None:
        return Spike(False, None, None)
    jump = negative_share_now - baseline
    if scored < config.min_count:
        return Spike(False, baseline, None)
    if jump > config.threshold:
        return Spike(True, baseline, (
            f"{what} {negative_share_now:.2f} is {jump:.2f} above the trailing mean {baseline:.2f} "
            f"of {len(recent)} window(s) (threshold {config.threshold:.2f})"
        ))
    return Spike(False, baseline, None)


def push_history(history: list[float], share: float, trailing: int) -> list[float]:
    """The source's trailing negative shares after a window closed (bounded to `trailing`)."""
    return (list(history) + [share])[-max(trailing, 1):]


@dataclass(frozen=True)
class ClosedWindow:
    """A closed window's figures, ready for the SentimentWindow schema."""

    source: str
    start: float
    end: float
    counts: dict[str, int]
    skipped: int
    total: int
    mean_score: float | None
    negative_share: float
    most_negative_ids: list[str]
    spike: Spike


@dataclass(frozen=True)
class OffensiveFigures:
    """A closed window's toxicity figures and their spike (its own threshold and history)."""

    scored: int
    offensive: int
    share: float | None
    spike: Spike


def close_offensive(acc: WindowAcc, history: Sequence[float], spike: SpikeConfig) -> tuple[OffensiveFigures, list[float]]:
    """Toxicity figures of a closed window and the source's new trailing offensive shares.

    Same rule as `close`: only windows with at least `min_count` toxicity-scored events alert
    or enter the history.
    """
    scored = acc.get("toxicity_scored", 0)
    share = offensive_share(acc)
    figures = OffensiveFigures(
        scored=scored, offensive=acc.get("offensive", 0), share=share,
        spike=detect_spike(share or 0.0, scored, history, spike, what="offensive share"),
    )
    new_history = push_history(list(history), share or 0.0, spike.trailing) if scored >= spike.min_count else list(history)
    return figures, new_history


def close(acc: WindowAcc, history: Sequence[float], spike: SpikeConfig) -> tuple[ClosedWindow, list[float]]:
    """Figures of a closed window and the source's new trailing history.

    Only windows with at least `min_count` labelled events enter the history: a
    baseline made of near-empty windows would be as noisy as the windows it judges.
    """
    scored = scored_total(acc)
    share = negative_share(acc)
    result = ClosedWindow(
        source=acc["source"], start=acc["start"], end=acc["end"], counts=dict(sorted(acc["counts"].items())),
        skipped=acc["skipped"], total=scored + acc["skipped"], mean_score=mean_score(acc), negative_share=share,
        most_negative_ids=most_negative_ids(acc), spike=detect_spike(share, scored, history, spike),
    )
    new_history = push_history(list(history), share, spike.trailing) if scored >= spike.min_count else list(history)
    return result, new_history
