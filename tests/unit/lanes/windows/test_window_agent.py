"""pipeline.lanes.windows.agent without Kafka: routing, counting, closing by watermark, late events, replays, idle flush."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from pipeline.lanes.windows import logic as windows
from pipeline.lanes.windows.agent import TICK, RouteItem, WindowAgentConfig, WindowAggregator, route_item
from pipeline.lanes.windows.state import PartitionedState
from pipeline.runtime.metrics import WorkerMetrics


class FakeTopic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, dict[str, Any]]] = []

    async def send(self, *, key: bytes | None, value: bytes, **_: Any) -> asyncio.Future:
        self.sent.append((key, orjson.loads(value)))
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def _empty(partition: int) -> dict:
    return {}


def _agg(**config: Any) -> tuple[WindowAggregator, FakeTopic, PartitionedState]:
    topic, table = FakeTopic(), PartitionedState(None, _empty)
    cfg = WindowAgentConfig(worker="w1", window=windows.WindowConfig(size_s=10.0, grace_s=2.0),
                            spike=windows.SpikeConfig(threshold=0.3, min_count=2, trailing=3), **config)
    return WindowAggregator(config=cfg, state=table, windows_topic=topic, metrics=WorkerMetrics()), topic, table


def _item(event_id: str, t: float, label: str | None = "positive", score: float | None = 0.9, source: str = "a",
          origin: tuple[int, int] | None = None) -> bytes:
    return RouteItem(id=event_id, source=source, t=t, label=label, score=score, origin=origin).model_dump_json().encode()


def test_route_item_reads_enriched_events() -> None:
    value = orjson.dumps({"id": "e1", "source": "yelp", "timestamp": "2024-05-01T12:30:00Z",
                          "sentiment": {"label": "negative", "score": 0.8}})
    item = route_item(value, kafka_ts_s=5.0)
    assert item == RouteItem(id="e1", source="yelp", t=1714566600.0, kt=5.0, label="negative", score=0.8)
    skipped = route_item(orjson.dumps({"id": "e2", "sentiment": None}), kafka_ts_s=7.5, origin=(2, 9))
    assert skipped == RouteItem(id="e2", source="unknown", t=7.5, kt=7.5, label=None, score=None, origin=(2, 9))
    assert route_item(b"not json", 1.0) is None
    assert route_item(b"[1]", 1.0) is None


def test_windows_close_when_the_watermark_passes_end_plus_grace() -> None:
    async def scenario() -> None:
        agg, topic, table = _agg()
        await agg.handle(0, _item("a1", 100.0, "negative", 0.8))
        await agg.handle(0, _item("a2", 105.0))
        await agg.handle(0, _item("b1", 106.0, None, None, source="b"))
        await agg.handle(0, _item("a3", 111.0))     # window [110, 120) opens; [100,110) needs 112
        assert topic.sent == []
        await agg.handle(0, _item("a4", 109.0))     # within grace: still counted
        await agg.handle(0, _item("a5", 112.0))     # watermark 112 closes [100, 110) of a and b
        assert [(k, v["source"], v["total"]) for k, v in topic.sent] == [(b"a", "a", 3), (b"b", "b", 1)]
        a = topic.sent[0][1]
        assert a["counts"] == {"negative": 1, "positive": 2}
        assert a["negative_share"] == pytest.approx(1 / 3)
        assert a["most_negative_ids"] == ["a1"]
        assert a["window_start"].endswith("00:01:40Z") and a["window_end"].endswith("00:01:50Z")
        assert topic.sent[1][1]["skipped"] == 1 and topic.sent[1][1]["mean_score"] is None
        await agg.handle(0, _item("late", 101.0))  # its window has closed
        assert agg.stats.late == 1
        assert sorted(k for k, _ in table.items(0) if k.startswith("w|")) == ["w|0|a|110000"]
    asyncio.run(scenario())


def test_replayed_events_are_not_counted_twice() -> None:
    async def scenario() -> None:
        agg, topic, table = _agg()
        await agg.handle(0, _item("a1", 100.0, origin=(3, 5)))
        await agg.handle(0, _item("a2", 101.0, origin=(3, 6)))
        restarted = WindowAggregator(config=agg.config, state=table, windows_topic=topic, metrics=WorkerMetrics())
        await restarted.handle(0, _item("a2", 101.0, origin=(3, 6)))  # re-published by the router after a restart
        await restarted.handle(0, _item("b1", 102.0, origin=(1, 6)))  # same offset, another enriched partition
        await restarted.handle(0, _item("a3", 103.0, origin=(3, 7)))
        await restarted.handle(0, _item("x", 104.0))                  # no origin: always counted
        await restarted.handle(0, _item("z", 200.0, origin=(0, 0)))
        assert [v["total"] for _, v in topic.sent] == [5]
        assert restarted.stats.replayed == 1
    asyncio.run(scenario())


def test_spike_alert_against_trailing_windows() -> None:
    async def scenario() -> None:
        agg, topic, _ = _agg()
        offset = 0
        for start, labels in ((0, "pp"), (10, "pp"), (20, "nn")):
            for i, letter in enumerate(labels):
                label = "negative" if letter == "n" else "positive"
                await agg.handle(0, _item(f"e{offset}", start + i, label, 0.9))
                offset += 1
        await agg.handle(0, _item("closer", 100.0))
        alerts = [(v["alert"], v["baseline_negative_share"]) for _, v in topic.sent]
        assert alerts == [(False, None), (False, 0.0), (True, 0.0)]
    asyncio.run(scenario())


def test_tick_flushes_an_idle_partition() -> None:
    async def scenario() -> None:
        agg, topic, table = _agg(idle_flush_s=0.05)
        await agg.handle(1, _item("a1", 100.0))
        await agg.handle(1, TICK)                # not idle yet
        assert topic.sent == []
        await asyncio.sleep(0.06)
        assert agg.is_idle(1) and agg.open_windows(1)
        await agg.handle(1, TICK)
        assert [v["total"] for _, v in topic.sent] == [1]
        assert table.get("s|1")["wm"] == 112.0          # a straggler of the flushed window is late now
        await agg.handle(1, _item("a2", 105.0))
        assert agg.stats.late == 1 and len(topic.sent) == 1
    asyncio.run(scenario())


def test_state_restores_last_values_and_tombstones() -> None:
    async def scenario() -> None:
        writes: list[tuple[bytes, bytes | None, int]] = []

        class StateTopic:
            async def send(self, *, key: bytes, value: bytes | None, partition: int, **_: Any) -> None:
                writes.append((key, value, partition))

        async def replay(partition: int) -> dict:
            state: dict = {}
            for key, value, p in writes:
                if p == partition:
                    if value is None:
                        state.pop(key.decode(), None)
                    else:
                        state[key.decode()] = orjson.loads(value)
            return state

        first = PartitionedState(StateTopic(), replay)  # type: ignore[arg-type]
        await first.ensure(2)
        await first.set("w|2|a|0", {"n": 1})
        await first.set("w|2|a|0", {"n": 2})
        await first.set("w|2|b|0", {"n": 5})
        await first.delete("w|2|b|0")
        assert {p for _, _, p in writes} == {2}
        second = PartitionedState(StateTopic(), replay)  # type: ignore[arg-type]
        assert not second.restored(2)
        await second.ensure(2)
        assert list(second.items(2)) == [("w|2|a|0", {"n": 2})]
        second.revoke([2])
        assert not second.restored(2) and second.get("w|2|a|0") is None
    asyncio.run(scenario())


def test_after_a_restart_an_event_of_a_closed_window_is_late() -> None:
    async def scenario() -> None:
        agg, topic, table = _agg()
        await agg.handle(0, _item("a1", 100.0))
        await agg.handle(0, _item("a2", 113.0))     # closes [100, 110); the closing watermark is saved
        restarted = WindowAggregator(config=agg.config, state=table, windows_topic=topic, metrics=WorkerMetrics())
        await restarted.handle(0, _item("old", 101.0))
        assert restarted.stats.late == 1 and restarted.stats.counted == 0
        assert len(topic.sent) == 1
    asyncio.run(scenario())


# --- event times from the future: a fixed wall clock and idle clock, never the real ones ---

NOW = 1_800_000_000.0  # a multiple of the 10 s windows
YEAR_2099 = 4_070_908_800.0
YEAR_9999 = 253_402_300_770.0  # 9999-12-31T23:59:30Z


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _clocked(saved: dict[str, Any] | None = None, **config: Any) -> tuple[WindowAggregator, FakeTopic, Clock]:
    """An aggregator whose wall clock reads NOW, over a partition state an older version may have saved."""
    async def load(partition: int) -> dict:
        return {k: orjson.loads(orjson.dumps(v)) for k, v in (saved or {}).items()}

    topic, idle = FakeTopic(), Clock(0.0)
    cfg = WindowAgentConfig(worker="w1", window=windows.WindowConfig(size_s=10.0, grace_s=2.0),
                            spike=windows.SpikeConfig(threshold=0.3, min_count=2, trailing=3),
                            future_tolerance_s=300.0, **config)
    agg = WindowAggregator(config=cfg, state=PartitionedState(None, load), windows_topic=topic,
                           metrics=WorkerMetrics(), clock=Clock(NOW), monotonic=idle)
    return agg, topic, idle


def _timed(event_id: str, t: float, kt: float | None, origin: tuple[int, int] | None = None) -> bytes:
    return RouteItem(id=event_id, source="a", t=t, kt=kt, label="negative", score=0.5,
                     origin=origin).model_dump_json().encode()


def _future_metric(agg: WindowAggregator) -> float | None:
    return agg.metrics.registry.get_sample_value("streamnlp_window_future_events_total")


def _published(topic: FakeTopic) -> list[tuple[float, float, int]]:
    from datetime import datetime

    return [(datetime.fromisoformat(v["window_start"]).timestamp() - NOW,
             datetime.fromisoformat(v["window_end"]).timestamp() - NOW, v["total"]) for _, v in topic.sent]


def test_an_event_stamped_2099_counts_at_its_kafka_timestamp_and_later_events_are_not_late() -> None:
    async def scenario() -> None:
        agg, topic, _ = _clocked()
        await agg.handle(0, _timed("e1", NOW - 30, NOW - 30))
        await agg.handle(0, _timed("f2099", YEAR_2099, NOW - 25))   # counted in [NOW-30, NOW-20), its Kafka time
        await agg.handle(0, _timed("e2", NOW - 24, NOW - 24))
        await agg.handle(0, _timed("e3", NOW - 15, NOW - 15))
        await agg.handle(0, _timed("closer", NOW + 1, NOW + 1))     # within the tolerance: a real watermark
        assert _published(topic) == [(-30, -20, 3), (-20, -10, 1)]
        assert (agg.stats.late, agg.stats.future, _future_metric(agg)) == (0, 1, 1.0)
    asyncio.run(scenario())


def test_an_event_stamped_9999_12_31_is_flushed_in_a_publishable_window() -> None:
    async def scenario() -> None:
        agg, topic, idle = _clocked(idle_flush_s=60.0)
        enriched = orjson.dumps({"id": "f9999", "source": "a", "timestamp": "9999-12-31T23:59:30Z",
                                 "sentiment": {"label": "positive", "score": 0.9}})
        item = route_item(enriched, kafka_ts_s=NOW - 3, origin=(0, 1))
        assert item is not None and item.t == YEAR_9999 and item.kt == NOW - 3
        await agg.handle(0, item.model_dump_json().encode())
        await agg.handle(0, _timed("both-future", YEAR_9999, YEAR_2099))  # Kafka time in the future too: the clock
        await agg.handle(0, _timed("e1", NOW - 1, NOW - 1))
        await agg.handle(0, TICK)
        idle.t += 60.0
        await agg.handle(0, TICK)  # the idle flush that used to raise in _publish
        assert _published(topic) == [(-10, 0, 2), (0, 10, 1)]
        assert agg.stats.future == 2 and agg.stats.late == 0
        assert agg.state.get("s|0")["wm"] == NOW + 12  # the flushed windows' end + grace, not year 9999
    asyncio.run(scenario())


def _old_state() -> dict[str, Any]:
    """What a version without the rule saved after events stamped 2099 and 9999-12-31T23:59:30Z."""
    acc = windows.new_acc("a", windows.window_start(YEAR_9999, 10.0), 10.0)
    windows.add_event(acc, event_id="f1", label="negative", score=0.9, event_time_s=YEAR_9999, top_k=5)
    windows.add_event(acc, event_id="f2", label=None, score=None, event_time_s=YEAR_9999, top_k=5)
    acc["origins"] = {"0": 7}
    return {"s|0": {"wm": YEAR_2099}, f"w|0|a|{round(acc['start'] * 1000)}": acc}


def test_a_future_watermark_saved_by_an_older_version_is_clamped_on_load() -> None:
    async def scenario() -> None:
        agg, topic, _ = _clocked(_old_state())
        await agg.handle(0, _timed("e1", NOW - 5, NOW - 5, origin=(0, 8)))   # late for ever under the old watermark
        assert agg.stats.late == 0
        assert agg.state.get("s|0") == {"wm": NOW}                          # clamped, and saved clamped
        assert sorted(k for k, _ in agg.state.items(0) if k.startswith("w|")) == [
            f"w|0|a|{round((NOW - 10) * 1000)}", f"w|0|a|{round(NOW * 1000)}"]  # the 9999 window moved to now
        await agg.handle(0, _timed("e2", NOW + 3, NOW + 3, origin=(0, 9)))
        await agg.handle(0, _timed("closer", NOW + 20, NOW + 20, origin=(0, 10)))
        assert _published(topic) == [(-10, 0, 1), (0, 10, 3)]
        assert topic.sent[1][1]["most_negative_ids"] == ["f1", "e2"]
        assert (agg.stats.future, _future_metric(agg)) == (2, 2.0)
    asyncio.run(scenario())


def test_an_idle_flush_right_after_a_restart_never_publishes_a_future_window() -> None:
    async def scenario() -> None:
        agg, topic, idle = _clocked(_old_state(), idle_flush_s=60.0)
        await agg.handle(0, TICK)   # the first record after the restart: state loaded and fixed, idle clock started
        idle.t += 60.0
        await agg.handle(0, TICK)
        assert _published(topic) == [(0, 10, 2)]
        assert agg.state.get("s|0") == {"wm": NOW + 12}
    asyncio.run(scenario())
