"""pipeline.lanes.windows.logic: window assignment, accumulation, closing and spike detection (hand-computed cases)."""

from __future__ import annotations

import pytest

from pipeline.lanes.windows import logic as w


def _acc(events: list[tuple[str, str | None, float | None]], *, top_k: int = 5) -> w.WindowAcc:
    acc = w.new_acc("app", 120.0, 60.0)
    for i, (event_id, label, score) in enumerate(events):
        w.add_event(acc, event_id=event_id, label=label, score=score, event_time_s=120.0 + i, top_k=top_k)
    return acc


@pytest.mark.parametrize(("t", "size", "start"), [
    (0.0, 60.0, 0.0), (59.999, 60.0, 0.0), (60.0, 60.0, 60.0), (125.5, 60.0, 120.0),
    (1_700_000_007.0, 5.0, 1_700_000_005.0), (-1.0, 60.0, -60.0),
])
def test_window_start_is_epoch_aligned(t: float, size: float, start: float) -> None:
    assert w.window_start(t, size) == start


def test_source_key_defaults_to_unknown() -> None:
    assert w.source_key(None) == "unknown"
    assert w.source_key("") == "unknown"
    assert w.source_key("app-store") == "app-store"


def test_accumulator_counts_mean_share_and_skipped() -> None:
    acc = _acc([("a", "positive", 0.9), ("b", "negative", 0.8), ("c", "negative", 0.6), ("d", None, None)])
    assert acc["counts"] == {"positive": 1, "negative": 2}
    assert acc["skipped"] == 1
    # signed: +0.9 -0.8 -0.6 = -0.5 over 3 labelled events
    assert w.mean_score(acc) == pytest.approx(-0.5 / 3)
    assert w.negative_share(acc) == pytest.approx(2 / 3)
    assert w.most_negative_ids(acc) == ["b", "c"]
    assert acc["max_event_time"] == 123.0


def test_empty_or_all_skipped_window() -> None:
    acc = _acc([("x", None, None)])
    assert w.mean_score(acc) is None
    assert w.negative_share(acc) == 0.0
    assert w.scored_total(acc) == 0


def test_most_negative_ids_are_bounded_and_ordered() -> None:
    events = [(f"n{i}", "negative", 0.5 + i / 20) for i in range(8)]  # n7 is the most negative (0.85)
    acc = _acc(events, top_k=3)
    assert w.most_negative_ids(acc) == ["n7", "n6", "n5"]
    assert len(acc["negatives"]) == 3


def test_closing_rule_uses_end_plus_grace() -> None:
    # window [60, 120), grace 10: open until the watermark reaches 130
    assert not w.is_closed(120.0, 10.0, 129.9)
    assert w.is_closed(120.0, 10.0, 130.0)
    config = w.WindowConfig(size_s=60.0, grace_s=10.0)
    assert not w.is_late(119.0, config, watermark=129.0)   # within grace: still counted
    assert w.is_late(119.0, config, watermark=130.0)
    assert not w.is_late(130.0, config, watermark=130.0)


def test_closable_returns_closed_windows_oldest_first() -> None:
    a = w.new_acc("b", 0.0, 60.0)
    b = w.new_acc("a", 0.0, 60.0)
    c = w.new_acc("a", 60.0, 60.0)
    assert [(x["start"], x["source"]) for x in w.closable([c, a, b], 10.0, 75.0)] == [(0.0, "a"), (0.0, "b")]


def test_spike_against_trailing_mean() -> None:
    config = w.SpikeConfig(threshold=0.3, min_count=3, trailing=2)
    # trailing mean of the last two windows: (0.2 + 0.1) / 2 = 0.15; 0.5 - 0.15 = 0.35 > 0.3
    spike = w.detect_spike(0.5, 10, [0.9, 0.2, 0.1], config)
    assert spike.alert and spike.baseline == pytest.approx(0.15)
    assert "0.35" in (spike.reason or "")
    # 0.4 - 0.15 = 0.25: no alert
    assert not w.detect_spike(0.4, 10, [0.9, 0.2, 0.1], config).alert


def test_spike_needs_history_and_min_count() -> None:
    config = w.SpikeConfig(threshold=0.3, min_count=3, trailing=5)
    assert w.detect_spike(1.0, 10, [], config) == w.Spike(False, None, None)
    small = w.detect_spike(1.0, 2, [0.0], config)
    assert not small.alert and small.baseline == 0.0


def test_close_builds_result_and_history() -> None:
    spike = w.SpikeConfig(threshold=0.3, min_count=3, trailing=2)
    acc = _acc([("a", "negative", 0.9), ("b", "negative", 0.7), ("c", "positive", 0.6), ("d", None, None)])
    result, history = w.close(acc, [0.0, 0.1], spike)
    assert result.counts == {"negative": 2, "positive": 1}
    assert (result.total, result.skipped) == (4, 1)
    assert result.negative_share == pytest.approx(2 / 3)
    assert result.mean_score == pytest.approx((-0.9 - 0.7 + 0.6) / 3)
    assert result.most_negative_ids == ["a", "b"]
    assert result.spike.alert and result.spike.baseline == pytest.approx(0.05)
    assert history == [0.1, pytest.approx(2 / 3)]
    # below min_count: figures published, but the window does not enter the baseline
    small = _acc([("z", "negative", 0.9)])
    _, unchanged = w.close(small, history, spike)
    assert unchanged == history


# --- event times from the future (a fixed wall clock: nothing here reads the real one) ---

NOW = 1_800_000_000.0  # 2027-01-15
YEAR_2099 = 4_070_908_800.0
YEAR_9999_END = 253_402_300_770.0  # 9999-12-31T23:59:30Z: its 60 s window ends past datetime.max


def test_an_event_time_within_the_tolerance_is_kept() -> None:
    assert w.place_event(NOW + 300.0, NOW - 5, now_s=NOW, tolerance_s=300.0) == (NOW + 300.0, False)
    assert w.place_event(NOW - 86_400.0, None, now_s=NOW, tolerance_s=0.0) == (NOW - 86_400.0, False)


@pytest.mark.parametrize("future", [NOW + 300.5, YEAR_2099, YEAR_9999_END, 1e300, float("inf"), float("nan")])
def test_a_future_event_time_is_replaced_by_the_kafka_timestamp(future: float) -> None:
    assert w.place_event(future, NOW - 2.5, now_s=NOW, tolerance_s=300.0) == (NOW - 2.5, True)


def test_a_future_kafka_timestamp_or_none_falls_back_to_the_wall_clock() -> None:
    assert w.place_event(YEAR_2099, YEAR_2099, now_s=NOW, tolerance_s=300.0) == (NOW, True)
    assert w.place_event(YEAR_2099, None, now_s=NOW, tolerance_s=300.0) == (NOW, True)


def test_an_event_time_before_year_one_is_raised_to_a_publishable_one() -> None:
    t, future = w.place_event(-1e20, NOW, now_s=NOW, tolerance_s=300.0)
    assert (t, future) == (w.EARLIEST_EVENT_TIME_S, False)
    acc = w.new_acc("a", w.window_start(t, 86_400.0), 86_400.0)
    assert w.window_bounds(acc)[0].year == 1


def test_a_year_9999_event_lands_in_a_window_that_can_be_published() -> None:
    config = w.WindowConfig(size_s=60.0, grace_s=10.0)
    # Without the rule the window [9999-12-31T23:59, +60 s) ends past datetime.max.
    with pytest.raises((ValueError, OverflowError)):
        w.window_bounds(w.new_acc("a", w.window_start(YEAR_9999_END, 60.0), 60.0))
    t, future = w.place_event(YEAR_9999_END, NOW + 10.0, now_s=NOW, tolerance_s=300.0)
    assert future and t == NOW + 10.0
    start, end = w.window_bounds(w.new_acc("a", w.window_start(t, config.size_s), config.size_s))
    assert (start.timestamp(), end.timestamp()) == (NOW, NOW + 60.0)


def test_an_event_from_2099_does_not_make_later_events_late() -> None:
    """Watermark = the largest *placed* event time: ordinary events after a 2099 one are counted."""
    config = w.WindowConfig(size_s=60.0, grace_s=10.0)
    watermark = None
    for event_time, kafka_time in ((NOW - 30.0, NOW - 30.0), (YEAR_2099, NOW - 20.0), (NOW - 15.0, NOW - 15.0)):
        t, _ = w.place_event(event_time, kafka_time, now_s=NOW, tolerance_s=300.0)
        assert watermark is None or not w.is_late(t, config, watermark)
        watermark = t if watermark is None else max(watermark, t)
    assert watermark == NOW - 15.0


def test_a_saved_watermark_from_the_future_is_clamped_to_the_wall_clock() -> None:
    config = w.WindowConfig(size_s=60.0, grace_s=10.0)
    # The highest this rule can save: an idle flush of the window holding now + tolerance.
    ceiling = w.max_watermark(config, now_s=NOW, tolerance_s=300.0)
    assert ceiling == w.window_start(NOW + 300.0, 60.0) + 70.0
    assert w.clamp_watermark(ceiling, config, now_s=NOW, tolerance_s=300.0) == ceiling
    assert w.clamp_watermark(NOW - 100.0, config, now_s=NOW, tolerance_s=300.0) == NOW - 100.0
    for saved in (ceiling + 0.001, YEAR_2099 + 70.0, YEAR_9999_END, float("nan")):
        assert w.clamp_watermark(saved, config, now_s=NOW, tolerance_s=300.0) == NOW
    # Clamped to the clock, so the current window is open again.
    assert not w.is_late(NOW - 1.0, config, w.clamp_watermark(YEAR_2099, config, now_s=NOW, tolerance_s=300.0))


def test_future_windows_are_recognised_and_merged_into_a_current_one() -> None:
    future = w.new_acc("a", w.window_start(YEAR_2099, 60.0), 60.0)
    w.add_event(future, event_id="f1", label="negative", score=0.9, event_time_s=YEAR_2099, top_k=2)
    w.add_event(future, event_id="f2", label=None, score=None, event_time_s=YEAR_2099, top_k=2)
    future["origins"] = {"0": 40, "3": 7}
    current = _acc([("c1", "negative", 0.8), ("c2", "negative", 0.95), ("c3", "positive", 0.5)], top_k=2)
    current["origins"] = {"0": 41}
    assert w.is_future_window(future, now_s=NOW, tolerance_s=300.0)
    assert not w.is_future_window(current, now_s=NOW, tolerance_s=300.0)
    w.merge(current, future, top_k=2)
    assert current["counts"] == {"negative": 3, "positive": 1}
    assert current["skipped"] == 1
    assert current["signed_sum"] == pytest.approx(-0.8 - 0.95 + 0.5 - 0.9)
    assert w.most_negative_ids(current) == ["c2", "f1"]
    assert current["origins"] == {"0": 41, "3": 7}
    assert current["max_event_time"] == 122.0  # the future window's times are not trusted
