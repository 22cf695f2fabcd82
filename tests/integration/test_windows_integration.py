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

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from pipeline.kafka.broker import free_port
from pipeline.kafka.clients import OutRecord, TopicFollower, ensure_topics, produce
from pipeline.kafka.security import client_security
from pipeline.lanes.windows import logic as windows
from pipeline.lanes.windows.state import ensure_state_topic
from pipeline.settings import Settings
from pipeline.tools.samples import labelled_samples
from tests.harness import WorkerProcess, unique_settings
from tests.scrape import scrape

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


# --- event times from the future (issue 12) ---------------------------------------------------
#
# These run near the wall clock (the rule is "ahead of the worker's clock"), so window starts are
# taken from the clock when the events are produced and the expected totals are computed per window:
# ordinary events by their stamp, an event from the future by the Kafka timestamp of its enriched
# record (read back from texts.enriched), the events of a restored future window by the window the
# worker moved them to (read back from the state topic).

FUTURE_GRACE_S = 60   # covers the router's reordering and the few seconds between the future events and the ordinary ones
CLOSER_AHEAD_S = 100  # the closer is stamped this far ahead of the clock: inside the default tolerance (300 s)
YEAR_2099 = "2099-01-01T00:00:00Z"
YEAR_9999 = "9999-12-31T23:59:30Z"  # its 10 s window would end past datetime.max
YEAR_2099_S = 4_070_908_800.0
YEAR_9999_S = 253_402_300_770.0


def _future_settings(kafka_bootstrap: str, tmp_path: Path, model_dir: Path) -> Settings:
    return unique_settings(
        kafka_bootstrap, tmp_path, model_dir=model_dir, summarizer_mode="off", web_port=free_port(),
        window_size_s=SIZE_S, window_grace_s=FUTURE_GRACE_S, window_idle_flush_s=0, window_alert_min_count=1000,
    )


def _start(t: float) -> int:
    return int(t // SIZE_S * SIZE_S)


def _event(event_id: str, timestamp: float | str, text: str = "The service was fine.") -> dict:
    return {"id": event_id, "source": "alpha", "text": text, "timestamp": timestamp}


def _ordinary(tag: str, now: float) -> tuple[list[dict], Counter]:
    """9 events in the two windows before the one holding `now` (5 + 4), and the expected totals."""
    texts = [e["text"] for e in labelled_samples()]
    first = _start(now) - 2 * SIZE_S
    events = [_event(f"{tag}-{i}", first + (i % 5) * 2 + (SIZE_S if i >= 5 else 0), texts[i % len(texts)])
              for i in range(9)]
    return events, Counter(_start(e["timestamp"]) for e in events)


def _log_errors(worker: WorkerProcess) -> list[str]:
    """Error lines of the worker's log (structured ones by level, plain Faust ones by their words)."""
    errors = []
    for line in worker.log_path.read_text(errors="replace").splitlines():
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            if "Traceback" in line or "Crashed" in line or "ERROR" in line:
                errors.append(line)
            continue
        if isinstance(value, dict) and value.get("level") in ("error", "critical", "exception"):
            errors.append(line)
    return errors


async def _enriched_kafka_times(settings: Settings, ids: set[str], timeout_s: float = 60) -> dict[str, float]:
    """Event id -> Kafka timestamp (s) of its texts.enriched record: where an event from the future is counted."""
    out: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    async with TopicFollower(settings, [settings.output_topic]) as follower:
        while not ids <= out.keys():
            assert time.monotonic() < deadline, f"{len(ids - out.keys())} enriched events missing"
            for record in await follower.poll(0.5):
                event_id = orjson.loads(record.value)["id"]
                if event_id in ids:
                    out[event_id] = record.timestamp_ms / 1000.0
    return out


async def _future_metric(settings: Settings) -> float:
    async with aiohttp.ClientSession() as session:
        return (await scrape(session, f"http://127.0.0.1:{settings.web_port}")).total("streamnlp_window_future_events_total")


def _by_start(windows: list[dict]) -> dict[int, dict]:
    from datetime import datetime

    got = {int(datetime.fromisoformat(w["window_start"]).timestamp()): w for w in windows}
    assert len(got) == len(windows), f"a window was published twice: {windows}"
    return got


async def test_an_event_stamped_2099_or_9999_does_not_disable_the_windows(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path
) -> None:
    settings = _future_settings(kafka_bootstrap, tmp_path, default_model_dir)
    await ensure_topics(settings)
    future = [_event("fut-2099", YEAR_2099), _event("fut-9999", YEAR_9999)]
    await _produce(settings, future)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        # The future events reach the aggregator first (one route partition per source, in order).
        await _wait_routed(settings, {e["id"] for e in future}, worker)
        now = time.time()
        ordinary, expected = _ordinary("ord", now)
        await _produce(settings, ordinary)
        await _wait_routed(settings, {e["id"] for e in ordinary}, worker)
        kafka_times = await _enriched_kafka_times(settings, {e["id"] for e in future})
        expected.update(_start(t) for t in kafka_times.values())
        await _produce(settings, [_event("closer", _start(now) + CLOSER_AHEAD_S)])
        published = _by_start(await _windows(settings, len(expected), worker))
        future_events = await _future_metric(settings)
    finally:
        assert worker.terminate() == 0, worker.log_tail()

    assert {start: w["total"] for start, w in published.items()} == dict(expected), (
        f"ordinary events in their windows, the future ones at their Kafka timestamps {kafka_times}")
    for w in published.values():
        assert sum(w["counts"].values()) + w["skipped"] == w["total"]
        assert w["window_end"] > w["window_start"]
    assert future_events == 2
    assert not _log_errors(worker), "\n".join(_log_errors(worker))


async def _seed_state(settings: Settings, records: list[tuple[int, str, dict]]) -> None:
    """Write state records (partition, key, value) the way a worker does: compacted topic, chosen partition."""
    await ensure_state_topic(settings, settings.windows_state_topic)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", **client_security(settings))
    await producer.start()
    try:
        for partition, key, value in records:
            await producer.send_and_wait(settings.windows_state_topic, orjson.dumps(value), key=key.encode(),
                                         partition=partition)
    finally:
        await producer.stop()


async def _clamped_watermark(settings: Settings, partition: int, worker: WorkerProcess, timeout_s: float = 180) -> float:
    """The watermark the worker saved for `partition` after loading it (the seeded one is year 2099)."""
    deadline = time.monotonic() + timeout_s
    async with TopicFollower(settings, [settings.windows_state_topic]) as follower:
        while True:
            for record in await follower.poll(0.5):
                if record.key == f"s|{partition}".encode() and record.value is not None:
                    watermark = orjson.loads(record.value)["wm"]
                    if watermark < time.time() + 1:
                        return watermark
            assert time.monotonic() < deadline, f"no clamped watermark saved\n{worker.log_tail()}"
            assert worker.alive(), worker.log_tail()


async def test_a_future_watermark_saved_by_an_older_version_is_clamped_on_load(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path
) -> None:
    settings = _future_settings(kafka_bootstrap, tmp_path, default_model_dir)
    await ensure_topics(settings)
    partitions = list(range(settings.topic_partitions))
    # The route partition the worker's producer (aiokafka's default partitioner) gives source "alpha".
    alpha = DefaultPartitioner()(b"alpha", partitions, partitions)
    # What a version without the rule saved after an event stamped 2099 closed every window, and
    # two events stamped 9999-12-31 opened one that could never be published.
    old = windows.new_acc("alpha", windows.window_start(YEAR_9999_S, SIZE_S), SIZE_S)
    windows.add_event(old, event_id="old-9999", label="negative", score=0.9, event_time_s=YEAR_9999_S, top_k=5)
    windows.add_event(old, event_id="old-9999-skipped", label=None, score=None, event_time_s=YEAR_9999_S, top_k=5)
    await _seed_state(settings, [(p, f"s|{p}", {"wm": YEAR_2099_S}) for p in partitions]
                      + [(alpha, f"w|{alpha}|alpha|{round(old['start'] * 1000)}", old)])

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        # A first event makes the worker load alpha's partition: its watermark is clamped to the clock.
        # No timestamp: it counts at its enriched record's Kafka time, a moment before the load.
        warm = {"id": "warm", "source": "alpha", "text": "The service was fine."}
        await _produce(settings, [warm])
        loaded_at = await _clamped_watermark(settings, alpha, worker)
        warm_at = (await _enriched_kafka_times(settings, {"warm"}))["warm"]
        now = time.time()
        ordinary, expected = _ordinary("ord", now)
        await _produce(settings, ordinary)
        await _wait_routed(settings, {e["id"] for e in ordinary}, worker)
        await _produce(settings, [_event("closer", _start(now) + CLOSER_AHEAD_S)])
        expected.update([_start(warm_at)] + [_start(loaded_at)] * 2)  # the old window moved to the clock's
        published = _by_start(await _windows(settings, len(expected), worker))
        future_events = await _future_metric(settings)
    finally:
        assert worker.terminate() == 0, worker.log_tail()

    assert {start: w["total"] for start, w in published.items()} == dict(expected), "no ordinary event was late"
    assert "old-9999" in published[_start(loaded_at)]["most_negative_ids"]
    assert future_events == 2  # the two events of the moved window
    assert not _log_errors(worker), "\n".join(_log_errors(worker))
