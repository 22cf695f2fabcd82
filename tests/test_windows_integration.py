"""Windowed sentiment end to end: real broker, real worker process, events with controlled timestamps.

Event times are set far in the past, so windows are closed by event time (a later
event in the same partition), never by the wall clock (idle flush is off). The
router reads the enriched partitions independently, so a source's events reach the
aggregator out of event-time order: the grace period covers the whole span of the
test's events, and only the far-later "closer" events close windows. Every
wait is on something observable: the internal route topic (an event reached the
aggregator's input) and the aggregator's state topic (an event was counted).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.demo import labelled_samples
from pipeline.kafka_io import OutRecord, TopicFollower, ensure_topics, produce
from pipeline.settings import Settings
from pipeline.window_state import ensure_state_topic
from tests.harness import WorkerProcess, unique_settings

pytestmark = [pytest.mark.integration, pytest.mark.needs_model]

SIZE_S = 10
T0 = 1_700_000_000  # a multiple of SIZE_S: windows [T0, T0+10), [T0+10, T0+20), ...
GRACE_S = 40  # more than the span of the test's events (3 windows)
CLOSER_T = T0 + 1000


def _settings(kafka_bootstrap: str, tmp_path: Path, model_dir: Path) -> Settings:
    return unique_settings(
        kafka_bootstrap, tmp_path, model_dir=model_dir, summarizer_mode="off",
        window_size_s=SIZE_S, window_grace_s=GRACE_S, window_idle_flush_s=0, window_alert_min_count=1000,
    )


def _events(plan: dict[tuple[str | None, int], int], tag: str) -> list[dict]:
    """`plan`: (source or None, window index) -> number of events, spread over the window's seconds."""
    texts = [e["text"] for e in labelled_samples()]
    out = []
    for (source, window), count in plan.items():
        for i in range(count):
            event: dict[str, Any] = {
                "id": f"{tag}-{source or 'none'}-{window}-{i}", "text": texts[len(out) % len(texts)],
                "timestamp": T0 + window * SIZE_S + (i % SIZE_S),
            }
            if source is not None:
                event["source"] = source
            out.append(event)
    return out


def _closers(sources: list[str | None], tag: str) -> list[dict]:
    """One far-later event per source: moves the watermark of that source's partition past every window."""
    return [dict({"source": s} if s else {}, id=f"{tag}-closer-{s or 'none'}", text="A fine closing remark.",
                 timestamp=CLOSER_T) for s in sources]


async def _produce(settings: Settings, events: list[dict]) -> None:
    await produce(settings, settings.input_topic,
                  [OutRecord(key=e["id"].encode(), value=orjson.dumps(e)) for e in events])


async def _wait_routed(settings: Settings, ids: set[str], worker: WorkerProcess, timeout_s: float = 180) -> None:
    """Until every id has reached the aggregator's input (the internal route topic)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    async with TopicFollower(settings, [settings.windows_route_topic]) as follower:
        while not ids <= seen:
            assert time.monotonic() < deadline, f"routed {len(seen & ids)}/{len(ids)}\n{worker.log_tail()}"
            assert worker.alive(), worker.log_tail()
            for record in await follower.poll(0.5):
                if record.value and record.value.startswith(b'{"id"'):
                    seen.add(orjson.loads(record.value)["id"])


async def _wait_counted(settings: Settings, source: str, window_start: int, count: int, worker: WorkerProcess,
                        timeout_s: float = 120) -> None:
    """Until the state topic holds the window of `source` with `count` labelled or skipped events."""
    changelog = settings.windows_state_topic
    await ensure_state_topic(settings, changelog)  # the worker creates it at its first event; we may be first
    deadline = time.monotonic() + timeout_s
    latest = None
    async with TopicFollower(settings, [changelog]) as follower:
        while True:
            for record in await follower.poll(0.5):
                if record.value is None or record.key is None:
                    continue
                value = orjson.loads(record.value)
                if isinstance(value, dict) and value.get("source") == source and value.get("start") == window_start:
                    latest = sum(value["counts"].values()) + value["skipped"]
            if latest == count:
                return
            assert time.monotonic() < deadline, f"counted {latest}/{count}\n{worker.log_tail()}"
            assert worker.alive(), worker.log_tail()


async def _windows(settings: Settings, expected: int, worker: WorkerProcess, timeout_s: float = 120) -> list[dict]:
    windows: list[dict] = []
    deadline = time.monotonic() + timeout_s
    async with TopicFollower(settings, [settings.windows_topic]) as follower:
        while len(windows) < expected:
            assert time.monotonic() < deadline, f"{len(windows)}/{expected} windows: {windows}\n{worker.log_tail()}"
            assert worker.alive(), worker.log_tail()
            for record in await follower.poll(0.5):
                window = orjson.loads(record.value)
                assert record.key == window["source"].encode()
                windows.append(window)
    return windows


async def _labels(settings: Settings, ids: set[str], timeout_s: float = 60) -> dict[str, str | None]:
    """Event id -> sentiment label as the worker published it (None: sentiment skipped)."""
    out: dict[str, str | None] = {}
    deadline = time.monotonic() + timeout_s
    async with TopicFollower(settings, [settings.output_topic]) as follower:
        while not ids <= out.keys():
            assert time.monotonic() < deadline, f"{len(ids - out.keys())} enriched events missing"
            for record in await follower.poll(0.5):
                event = orjson.loads(record.value)
                out[event["id"]] = event["sentiment"]["label"] if event["sentiment"] else None
    return out


def _window_index(window: dict) -> int:
    from datetime import datetime

    return (int(datetime.fromisoformat(window["window_start"]).timestamp()) - T0) // SIZE_S


async def test_windows_count_events_by_source_and_event_time(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path, default_model_dir)
    await ensure_topics(settings)
    plan = {("alpha", 0): 5, ("alpha", 1): 3, ("alpha", 2): 4, ("beta", 0): 2, ("beta", 1): 6, ("beta", 2): 1,
            (None, 1): 3}
    events = _events(plan, "cnt")
    await _produce(settings, events)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        # Closers only after every counted event reached the aggregator, or they could overtake one
        # (the router reads the enriched partitions independently) and make it late.
        await _wait_routed(settings, {e["id"] for e in events}, worker)
        await _produce(settings, _closers(["alpha", "beta", None], "cnt"))
        windows = await _windows(settings, len(plan), worker)
    finally:
        assert worker.terminate() == 0, worker.log_tail()

    labels = await _labels(settings, {e["id"] for e in events})
    got = {(w["source"], _window_index(w)): w for w in windows}
    assert len(got) == len(windows) == len(plan), "one window per (source, window), published once"
    expected: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for e in events:
        expected[(e.get("source", "unknown"), (e["timestamp"] - T0) // SIZE_S)][labels[e["id"]] or "(skipped)"] += 1
    for (source, index), count in plan.items():
        window = got[(source or "unknown", index)]
        counts = expected[(source or "unknown", index)]
        skipped = counts.pop("(skipped)", 0)
        assert window["total"] == count
        assert window["skipped"] == skipped
        assert window["counts"] == dict(counts)
        assert window["window_end"] > window["window_start"]
        negatives = window["counts"].get("negative", 0)
        assert window["negative_share"] == pytest.approx(negatives / max(1, count - skipped))
        assert len(window["most_negative_ids"]) == min(negatives, 5)
        assert window["alert"] is False  # alert_min_count is above every window here


async def test_restart_mid_window_loses_nothing(kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path) -> None:
    settings = _settings(kafka_bootstrap, tmp_path, default_model_dir)
    await ensure_topics(settings)
    first = _events({("alpha", 0): 6}, "r1")
    second = _events({("alpha", 0): 5}, "r2")
    await _produce(settings, first)
    worker = WorkerProcess(settings, tmp_path / "worker-1.log").start()
    try:
        await _wait_counted(settings, "alpha", T0, len(first), worker)
    finally:
        assert worker.terminate() == 0, worker.log_tail()

    await _produce(settings, second)
    worker = WorkerProcess(settings, tmp_path / "worker-2.log").start()
    try:
        await _wait_routed(settings, {e["id"] for e in second}, worker)
        await _produce(settings, _closers(["alpha"], "r"))
        windows = await _windows(settings, 1, worker)
    finally:
        assert worker.terminate() == 0, worker.log_tail()

    (window,) = windows
    assert window["source"] == "alpha" and _window_index(window) == 0
    assert window["total"] == len(first) + len(second), "the restarted worker resumed the window from its state topic"
    assert sum(window["counts"].values()) + window["skipped"] == len(first) + len(second)
