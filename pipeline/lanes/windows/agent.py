"""Windowed sentiment aggregates: texts.enriched -> per-source tumbling windows -> texts.sentiment.windows.

Two agents:

* the router reads `texts.enriched` (keyed by event id) and re-publishes a
  compact item (id, source, event time, label, score) keyed by source to an
  internal topic, so every event of a source lands in one partition;
* the aggregator reads that topic one event at a time and keeps the open
  windows in a partitioned state store with a changelog topic
  (pipeline/lanes/windows/state.py), so a restarted (or rebalanced) worker restores
  them instead of losing half a window.

Not Faust tables: neither windowed nor plain ones. A windowed table
(`Table.tumbling`) closes windows on a wall-clock timer, runs `on_window_close`
outside any event (where a table cannot be modified, so the closed window stays
in the changelog and comes back after a restart), and knows no grace period
separate from expiry; and any table makes Faust re-seek every stream after its
recovery, which duplicates sentiment output at every start (window_state.py).

Windows close by *event time*: each partition keeps a watermark (the latest
event time it has seen); a window closes once `end + grace <= watermark`. A
partition that goes quiet would never close its last windows, so a timer sends
a "tick" record into it after `idle_flush_s` without events; the tick is
processed in order with the events and flushes the partition's open windows.

Event times more than `future_tolerance_s` ahead of the aggregator's wall clock
are not trusted (pipeline/lanes/windows/logic.py `place_event`): such an event is counted
in the window of its `texts.enriched` record's Kafka timestamp and counted in
`streamnlp_window_future_events_total`. When a partition's state is loaded,
a watermark above what this rule allows is clamped and windows from the
future (both saved by a version without the rule) are merged into the window
of the wall clock.

State keys (p = partition of the route topic; each lives in state partition p):
  `w|<p>|<source>|<start ms>`  the window's accumulator (pipeline.lanes.windows.logic.WindowAcc)
  `s|<p>`                      the partition's watermark when it last closed windows
  `h|<p>|<source>`             the source's trailing negative shares (spike baseline)
  `o|<p>|<source>`             the source's trailing offensive shares (toxicity spike baseline)

Delivery: at-least-once like the rest of the worker. State writes are flushed
before input offsets are committed; records replayed after a crash are
recognised by their origin (enriched partition and offset: each accumulator
remembers the highest offset it counted per enriched partition) and not
counted twice, even when the router re-publishes them. A crash between
publishing a closed window and deleting it republishes that window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from pydantic import BaseModel

from pipeline.deadletter import Outgoing
from pipeline.lanes.windows import logic as windows
from pipeline.lanes.windows.state import PartitionedState
from pipeline.logs import get_logger
from pipeline.runtime.batches import kafka_timestamp, publish_all, run_batches
from pipeline.runtime.metrics import WorkerMetrics
from pipeline.settings import Settings
from schemas.windows import SentimentWindow

log = get_logger("streamnlp.windows")

TICK = b'{"tick":true}'


@dataclass(frozen=True)
class WindowAgentConfig:
    worker: str
    window: windows.WindowConfig = windows.WindowConfig()
    spike: windows.SpikeConfig = windows.SpikeConfig()
    offensive_spike: windows.SpikeConfig = windows.SpikeConfig(threshold=0.2)
    idle_flush_s: float = 120.0   # 0 = never flush on idle
    future_tolerance_s: float = windows.DEFAULT_FUTURE_TOLERANCE_S


class RouteItem(BaseModel):
    """The internal record: what a window needs of one enriched event."""

    id: str
    source: str
    t: float                 # event time, epoch seconds
    kt: float | None = None  # Kafka timestamp of the texts.enriched record: the time of an event from the future
    origin: tuple[int, int] | None = None  # (partition, offset) on texts.enriched: replays are recognised by it
    label: str | None = None  # None: sentiment skipped (language gate)
    score: float | None = None
    toxicity: str | None = None  # toxicity label; None: not scored (off, or gated)


def event_time(obj: dict[str, Any], kafka_ts_s: float | None) -> float:
    """The event's `timestamp` field, else the Kafka record timestamp, else now."""
    raw = obj.get("timestamp")
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp()
        except ValueError:
            pass
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw) / 1000.0 if raw > 2e10 else float(raw)
    return kafka_ts_s if kafka_ts_s is not None else time.time()


def route_item(value: bytes | None, kafka_ts_s: float | None, origin: tuple[int, int] | None = None) -> RouteItem | None:
    """An enriched event's window item; None for a record that is not an enriched event."""
    try:
        obj = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        return None
    source = obj.get("source")
    sentiment = obj.get("sentiment")
    label = score = None
    if isinstance(sentiment, dict) and isinstance(sentiment.get("label"), str):
        label = sentiment["label"]
        raw_score = sentiment.get("score")
        score = float(raw_score) if isinstance(raw_score, (int, float)) else 0.0
    toxicity = obj.get("toxicity")
    toxic_label = toxicity["label"] if isinstance(toxicity, dict) and isinstance(toxicity.get("label"), str) else None
    return RouteItem(
        id=obj["id"], source=windows.source_key(source if isinstance(source, str) else None),
        t=event_time(obj, kafka_ts_s), kt=kafka_ts_s, label=label, score=score, origin=origin, toxicity=toxic_label,
    )


@dataclass
class WindowStats:
    routed: int = 0
    unreadable: int = 0
    counted: int = 0
    late: int = 0
    future: int = 0
    replayed: int = 0
    closed: int = 0
    alerts: int = 0
    idle_flushes: int = 0

    def snapshot(self) -> dict[str, int]:
        return {f"windows_{k}": v for k, v in self.__dict__.items()}


class WindowRouter:
    """texts.enriched -> internal topic keyed by source (in batches: it keeps no state)."""

    def __init__(self, route_topic: faust.TopicT, stats: WindowStats) -> None:
        self.route_topic = route_topic
        self.stats = stats

    async def run(self, stream: faust.StreamT, *, max_batch: int, max_wait_s: float) -> None:
        await run_batches(stream, self.process, max_batch=max_batch, max_wait_s=max_wait_s)

    async def process(self, events: Sequence[faust.EventT]) -> None:
        pending = []
        for event in events:
            message = event.message
            item = route_item(message.value, kafka_timestamp(event), (message.partition, message.offset))
            if item is None:
                self.stats.unreadable += 1
                continue
            pending.append((self.route_topic, Outgoing(key=item.source.encode(), value=item, headers=())))
        await publish_all(pending)
        self.stats.routed += len(pending)


def _acc_key(partition: int, source: str, start: float) -> str:
    return f"w|{partition}|{source}|{round(start * 1000)}"


def _acc_prefix(partition: int) -> str:
    return f"w|{partition}|"


def _state_key(partition: int) -> str:
    return f"s|{partition}"


def _history_key(partition: int, source: str) -> str:
    return f"h|{partition}|{source}"


def _offensive_history_key(partition: int, source: str) -> str:
    return f"o|{partition}|{source}"


@dataclass
class WindowAggregator:
    """Owns the window state: counts items, closes windows, publishes them."""

    config: WindowAgentConfig
    state: PartitionedState
    windows_topic: faust.TopicT
    metrics: WorkerMetrics
    stats: WindowStats = field(default_factory=WindowStats)
    clock: Callable[[], float] = time.time  # the wall clock event times are checked against
    monotonic: Callable[[], float] = time.monotonic  # idle time
    # In memory only (rebuilt lazily after a restart): earliest end+grace of a partition's open
    # windows, so most events skip the scan; and when a partition last saw a real event.
    _next_due: dict[int, float] = field(default_factory=dict)
    _last_seen: dict[int, float] = field(default_factory=dict)
    # The watermark lives in memory and is saved only when it closes windows: that is when it
    # matters after a restart (an event of a deleted window must count as late, not reopen it).
    # A lower watermark after a restart only closes the open windows a little later.
    _watermarks: dict[int, float | None] = field(default_factory=dict)

    async def run(self, stream: faust.StreamT) -> None:
        # One event at a time: closing depends on the watermark after each event.
        async for event in stream.events():
            await self.handle(event.message.partition, event.message.value)

    async def handle(self, partition: int, value: bytes | None) -> None:
        await self.state.ensure(partition)
        now = self.clock()
        # Loaded before a tick too: a flush must not publish a window from the future.
        watermark = await self._watermark(partition, now)
        if value == TICK:
            await self._idle_flush(partition, watermark)
            return
        self._last_seen[partition] = self.monotonic()
        try:
            item = RouteItem.model_validate_json(value or b"")
        except ValueError:
            self.stats.unreadable += 1
            return
        t, future = windows.place_event(item.t, item.kt, now_s=now, tolerance_s=self.config.future_tolerance_s)
        if future:
            self.stats.future += 1
            self.metrics.window_future_event()
            log.debug("window_future_event", source=item.source, event_time=item.t, counted_at=t)
            item = item.model_copy(update={"t": t})
        if watermark is not None and windows.is_late(t, self.config.window, watermark):
            self.stats.late += 1
            self.metrics.window_late_event()
            log.debug("window_late_event", source=item.source, event_time=t, watermark=watermark)
        else:
            await self._count(partition, item)
        if watermark is None or t > watermark:
            self._watermarks[partition] = t
            await self._close_due(partition, t)

    async def _watermark(self, partition: int, now: float) -> float | None:
        if partition not in self._watermarks:
            self._watermarks[partition] = await self._load(partition, now)
        return self._watermarks[partition]

    async def _load(self, partition: int, now: float) -> float | None:
        """The partition's saved watermark, after undoing what events from the future did to its state."""
        tolerance, config = self.config.future_tolerance_s, self.config.window
        saved = self.state.get(_state_key(partition))
        watermark = saved.get("wm") if isinstance(saved, dict) else None
        if not isinstance(watermark, (int, float)):
            watermark = None
        if watermark is not None:
            clamped = windows.clamp_watermark(watermark, config, now_s=now, tolerance_s=tolerance)
            if clamped != watermark:
                log.warning("window_watermark_clamped", partition=partition, saved=watermark, clamped_to=clamped)
                watermark = clamped
                await self.state.set(_state_key(partition), {"wm": watermark})
        future = [a for a in self.open_windows(partition) if windows.is_future_window(a, now_s=now, tolerance_s=tolerance)]
        if future:
            start = windows.window_start(now, config.size_s)
            for acc in future:
                key = _acc_key(partition, acc["source"], start)
                into = self.state.get(key) or windows.new_acc(acc["source"], start, config.size_s)
                windows.merge(into, acc, config.top_k)
                await self.state.set(key, into)
                await self.state.delete(_acc_key(partition, acc["source"], acc["start"]))
                moved = windows.scored_total(acc) + acc["skipped"]
                self.stats.future += moved
                self.metrics.window_future_event(moved)
                log.warning("window_future_window_moved", partition=partition, source=acc["source"],
                            window_start=acc["start"], events=moved, moved_to=start)
            self._next_due.pop(partition, None)  # the merged windows may close earlier than the next due one
        return watermark

    async def _count(self, partition: int, item: RouteItem) -> None:
        size = self.config.window.size_s
        start = windows.window_start(item.t, size)
        key = _acc_key(partition, item.source, start)
        acc = self.state.get(key)
        if acc is None:
            acc = windows.new_acc(item.source, start, size)
            if partition in self._next_due:
                self._next_due[partition] = min(self._next_due[partition], acc["end"] + self.config.window.grace_s)
        # The router handles an enriched partition in offset order, so within one window a
        # replayed event has an origin offset at or below the highest one already counted.
        if item.origin is not None:
            origin_partition, origin_offset = str(item.origin[0]), item.origin[1]
            if origin_offset <= acc["origins"].get(origin_partition, -1):
                self.stats.replayed += 1
                return
            acc["origins"][origin_partition] = origin_offset
        windows.add_event(acc, event_id=item.id, label=item.label, score=item.score, event_time_s=item.t,
                          top_k=self.config.window.top_k, toxicity=item.toxicity)
        await self.state.set(key, acc)
        self.stats.counted += 1

    def open_windows(self, partition: int) -> list[windows.WindowAcc]:
        prefix = _acc_prefix(partition)
        return [acc for key, acc in self.state.items(partition) if key.startswith(prefix)]

    async def _close_due(self, partition: int, watermark: float) -> None:
        due = self._next_due.get(partition)
        if due is not None and watermark < due:
            return
        grace = self.config.window.grace_s
        open_accs = self.open_windows(partition)
        closing = windows.closable(open_accs, grace, watermark)
        for acc in closing:
            await self._publish(partition, acc)
        if closing:
            await self.state.set(_state_key(partition), {"wm": watermark})
        remaining = [a["end"] + grace for a in open_accs if not windows.is_closed(a["end"], grace, watermark)]
        self._next_due[partition] = min(remaining) if remaining else math.inf

    async def _idle_flush(self, partition: int, current: float | None) -> None:
        if not self.is_idle(partition):
            return
        open_accs = sorted(self.open_windows(partition), key=lambda a: (a["start"], a["source"]))
        if not open_accs:
            return
        for acc in open_accs:
            await self._publish(partition, acc)
        # Events of the flushed windows that still turn up are late now, or they would reopen them.
        flushed_to = max(a["end"] + self.config.window.grace_s for a in open_accs)
        watermark = flushed_to if current is None else max(current, flushed_to)
        self._watermarks[partition] = watermark
        await self.state.set(_state_key(partition), {"wm": watermark})
        self._next_due[partition] = math.inf
        self.stats.idle_flushes += 1
        log.info("windows_idle_flush", partition=partition, windows=len(open_accs))

    def is_idle(self, partition: int) -> bool:
        """No real event in the partition for idle_flush_s (the clock starts when first asked)."""
        if self.config.idle_flush_s <= 0:
            return False
        now = self.monotonic()
        last = self._last_seen.setdefault(partition, now)
        return now - last >= self.config.idle_flush_s

    async def _publish(self, partition: int, acc: windows.WindowAcc) -> None:
        source = acc["source"]
        history = self.state.get(_history_key(partition, source)) or []
        result, new_history = windows.close(acc, history, self.config.spike)
        offensive_history = self.state.get(_offensive_history_key(partition, source)) or []
        toxic, new_offensive_history = windows.close_offensive(acc, offensive_history, self.config.offensive_spike)
        kinds = [kind for kind, spike in (("negative_share", result.spike), ("offensive_share", toxic.spike)) if spike.alert]
        reasons = [spike.reason for spike in (result.spike, toxic.spike) if spike.alert and spike.reason]
        window_start, window_end = windows.window_bounds(acc)
        window = SentimentWindow(
            source=source,
            window_start=window_start,
            window_end=window_end,
            counts=result.counts,
            skipped=result.skipped,
            total=result.total,
            mean_score=None if result.mean_score is None else round(result.mean_score, 6),
            negative_share=round(result.negative_share, 6),
            most_negative_ids=result.most_negative_ids,
            alert=bool(kinds),
            alert_kinds=kinds,
            alert_reason="; ".join(reasons) or None,
            baseline_negative_share=None if result.spike.baseline is None else round(result.spike.baseline, 6),
            toxicity_scored=toxic.scored,
            offensive=toxic.offensive,
            offensive_share=None if toxic.share is None else round(toxic.share, 6),
            baseline_offensive_share=None if toxic.spike.baseline is None else round(toxic.spike.baseline, 6),
            worker=self.config.worker,
            closed_at=datetime.now(UTC),
        )
        # Published and acknowledged before the window leaves the state: a crash in between
        # republishes it (at-least-once) rather than losing it.
        await publish_all([(self.windows_topic, Outgoing(key=source.encode(), value=window, headers=()))])
        await self.state.delete(_acc_key(partition, source, acc["start"]))
        if new_history != history:
            await self.state.set(_history_key(partition, source), new_history)
        if new_offensive_history != offensive_history:
            await self.state.set(_offensive_history_key(partition, source), new_offensive_history)
        self.stats.closed += 1
        self.stats.alerts += int(window.alert)
        self.metrics.window_closed(window.alert)
        log.info("window_closed", source=source, window_start=window.window_start.isoformat(), total=window.total,
                 negative_share=window.negative_share, offensive_share=window.offensive_share, alert=window.alert,
                 alert_kinds=kinds)

    def revoke(self, partitions: Iterable[int]) -> None:
        """Forget partitions this worker no longer owns (their next owner restores them)."""
        for partition in list(partitions):
            self.state.revoke([partition])
            self._next_due.pop(partition, None)
            self._last_seen.pop(partition, None)
            self._watermarks.pop(partition, None)

    async def send_ticks(self, assignment: Any, route_topic: faust.TopicT) -> None:
        """A tick into each assigned route partition that is idle with open windows (the timer's job).

        The agent, not the timer, flushes: the tick is handled in order with the partition's
        events, so a flush never interleaves with counting an event.
        """
        for tp in assignment:
            if tp.topic != route_topic.get_topic_name() or not self.is_idle(tp.partition):
                continue
            await self.state.ensure(tp.partition)  # after a restart: windows restored but not yet seen
            if self.open_windows(tp.partition):
                await route_topic.send(key=None, value=TICK, partition=tp.partition, force=True)


def window_agents_config(settings: Settings) -> WindowAgentConfig:
    return WindowAgentConfig(
        worker=settings.worker_name,
        window=windows.WindowConfig(size_s=settings.window_size_s, grace_s=settings.window_grace_s),
        spike=windows.SpikeConfig(threshold=settings.window_alert_threshold, min_count=settings.window_alert_min_count,
                                  trailing=settings.window_trailing),
        offensive_spike=windows.SpikeConfig(threshold=settings.window_offensive_alert_threshold,
                                            min_count=settings.window_alert_min_count, trailing=settings.window_trailing),
        idle_flush_s=settings.window_idle_flush_s,
        future_tolerance_s=settings.window_future_tolerance_s,
    )
