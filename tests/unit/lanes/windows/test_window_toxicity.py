"""Offensive share in the windows: counted per source and window, its own spike alert, old state still readable."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import orjson
import pytest

from pipeline.lanes.windows import logic as windows
from pipeline.lanes.windows.agent import RouteItem, WindowAgentConfig, WindowAggregator, route_item
from pipeline.lanes.windows.state import PartitionedState
from pipeline.runtime.metrics import WorkerMetrics
from tests.paths import REPO

SCHEMA = json.loads((REPO / "schemas" / "sentiment_window.schema.json").read_text())
SCHEMA_V1_0 = json.loads((REPO / "tests" / "fixtures" / "sentiment_window_v1_0.schema.json").read_text())


class FakeTopic:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, *, key: bytes | None, value: bytes, **_: Any) -> asyncio.Future:
        self.sent.append(orjson.loads(value))
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def _empty(partition: int) -> dict:
    return {}


def _agg() -> tuple[WindowAggregator, FakeTopic]:
    topic = FakeTopic()
    spike = windows.SpikeConfig(threshold=0.3, min_count=2, trailing=3)
    cfg = WindowAgentConfig(worker="w1", window=windows.WindowConfig(size_s=10.0, grace_s=0.0), spike=spike,
                            offensive_spike=windows.SpikeConfig(threshold=0.2, min_count=2, trailing=3))
    agg = WindowAggregator(config=cfg, state=PartitionedState(None, _empty), windows_topic=topic, metrics=WorkerMetrics())
    return agg, topic


def _item(event_id: str, t: float, toxicity: str | None) -> bytes:
    return RouteItem(id=event_id, source="forum", t=t, label="positive", score=0.9,
                     toxicity=toxicity).model_dump_json().encode()


def test_route_item_reads_the_toxicity_label() -> None:
    value = orjson.dumps({"id": "e1", "sentiment": {"label": "positive", "score": 0.8},
                          "toxicity": {"label": "offensive", "score": 0.97}})
    assert route_item(value, kafka_ts_s=5.0).toxicity == "offensive"
    assert route_item(orjson.dumps({"id": "e2", "toxicity": None}), kafka_ts_s=5.0).toxicity is None


def test_offensive_share_per_window_and_its_spike_alert() -> None:
    async def scenario() -> None:
        agg, topic = _agg()
        # Three calm windows (1 of 4 offensive), then one where 3 of 4 are; sentiment stays positive.
        for w in range(4):
            labels = ["offensive", "clean", "clean", "clean"] if w < 3 else ["offensive", "offensive", "offensive", "clean"]
            for i, label in enumerate(labels):
                await agg.handle(0, _item(f"w{w}-{i}", w * 10 + i, label))
            await agg.handle(0, _item(f"w{w}-gated", w * 10 + 5, None))  # gated: not in the share
        await agg.handle(0, _item("closer", 45.0, "clean"))
        assert len(topic.sent) == 4
        for window in topic.sent:
            jsonschema.validate(window, SCHEMA, format_checker=jsonschema.FormatChecker())
            jsonschema.validate(window, SCHEMA_V1_0, format_checker=jsonschema.FormatChecker())  # 1.1 only adds
        calm, spiking = topic.sent[2], topic.sent[3]
        assert (calm["toxicity_scored"], calm["offensive"], calm["offensive_share"]) == (4, 1, 0.25)
        assert calm["alert"] is False and calm["alert_kinds"] == []
        assert spiking["offensive_share"] == 0.75 and spiking["baseline_offensive_share"] == 0.25
        assert spiking["alert"] is True and spiking["alert_kinds"] == ["offensive_share"]
        assert spiking["alert_reason"].startswith("offensive share 0.75 is 0.50 above the trailing mean 0.25")
        assert spiking["negative_share"] == 0.0 and spiking["schema_version"] == "1.1"
    asyncio.run(scenario())


def test_windows_without_toxicity_publish_a_null_share_and_old_accumulators_still_close() -> None:
    acc = windows.new_acc("a", 0.0, 10.0)
    for key in ("toxicity_scored", "offensive"):  # saved by a version before toxicity
        del acc[key]
    windows.add_event(acc, event_id="x", label="negative", score=0.9, event_time_s=1.0, top_k=5)
    figures, history = windows.close_offensive(acc, [], windows.SpikeConfig())
    assert (figures.scored, figures.offensive, figures.share, figures.spike.alert) == (0, 0, None, False)
    assert history == []
    other = windows.new_acc("a", 0.0, 10.0)
    windows.add_event(other, event_id="y", label=None, score=None, event_time_s=2.0, top_k=5, toxicity="offensive")
    windows.merge(acc, other, 5)
    assert windows.offensive_share(acc) == pytest.approx(1.0)
