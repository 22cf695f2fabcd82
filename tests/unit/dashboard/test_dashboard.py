"""Dashboard logic without a broker or browser: hub bucketing and bounds, text hiding, token check, fan-out."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from prometheus_client import CollectorRegistry

from pipeline.dashboard.broadcast import Broadcaster
from pipeline.dashboard.feed import DEFAULT_WINDOWS_TOPIC, FeedConfig, sample_metrics
from pipeline.dashboard.hub import OTHER_SOURCE, Hub, HubConfig, StatsSample, signed_score
from pipeline.dashboard.url import dashboard_url
from pipeline.dashboard.views import PAGE_PATH, authorized, page_html, sse_message
from pipeline.runtime.metrics import WorkerMetrics
from pipeline.settings import Settings

T0 = 1_800_000_000.0  # a bucket boundary for every width used here


def enriched(event_id: str, label: str | None = "positive", score: float = 0.9, source: str | None = "app",
             text: str = "secret body text", summary_status: str | None = None) -> dict:
    return {"id": event_id, "text": text, "source": source,
            "sentiment": None if label is None else {"label": label, "score": score},
            "sentiment_skipped_reason": None if label else "unsupported_language",
            "language": {"code": "en"}, "summary_status": summary_status}


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def points(hub: Hub, source: str) -> list[dict]:
    return hub.snapshot()["series"][source]


def test_signed_score_convention_matches_the_windows() -> None:
    assert signed_score("positive", 0.8) == 0.8
    assert signed_score("negative", 0.8) == -0.8
    assert signed_score("neutral", 0.8) == 0.0
    assert signed_score(None, None) is None


def test_events_fall_into_time_buckets_per_source() -> None:
    hub = Hub(HubConfig(bucket_s=10))
    hub.enriched(enriched("a", "positive", 0.8), ms(T0 + 1))
    hub.enriched(enriched("b", "negative", 0.4), ms(T0 + 9.9))
    hub.enriched(enriched("c", "positive", 1.0), ms(T0 + 10))
    hub.enriched(enriched("d", "negative", 0.5, source="web"), ms(T0 + 2))
    hub.enriched(enriched("e", None, source="web"), ms(T0 + 3))
    app = points(hub, "app")
    assert [(p["t"], p["n"], p["mean"]) for p in app] == [(T0, 2, pytest.approx(0.2)), (T0 + 10, 1, 1.0)]
    web = points(hub, "web")
    assert web == [{"source": "web", "t": T0, "n": 1, "skipped": 1, "mean": -0.5, "positive": 0, "negative": 1,
                    "offensive": 0, "toxicity_scored": 0, "offensive_share": None}]


def test_an_update_carries_the_bucket_it_changed() -> None:
    hub = Hub(HubConfig(bucket_s=5))
    hub.enriched(enriched("a", "positive", 0.6), ms(T0))
    updates = hub.enriched(enriched("b", "negative", 0.2), ms(T0 + 4))
    assert [u["type"] for u in updates] == ["event", "point"]
    assert updates[1]["data"] == {"source": "app", "t": T0, "n": 2, "skipped": 0, "mean": 0.2, "positive": 1, "negative": 1,
                                  "offensive": 0, "toxicity_scored": 0, "offensive_share": None}
    assert updates[0]["data"]["id"] == "b" and updates[0]["data"]["label"] == "negative"


def test_toxicity_labels_rows_and_the_offensive_share_per_bucket() -> None:
    hub = Hub(HubConfig(bucket_s=10))
    for i, label in enumerate(["offensive", "clean", "clean", None]):
        event = enriched(f"t{i}")
        event["toxicity"] = None if label is None else {"label": label, "score": 0.93}
        event["toxicity_skipped_reason"] = "unsupported_language" if label is None else None
        updates = hub.enriched(event, ms(T0 + i))
    point = points(hub, "app")[0]
    assert (point["offensive"], point["toxicity_scored"], point["offensive_share"]) == (1, 3, 0.3333)
    rows = {row["id"]: row for row in hub.snapshot()["events"]}
    assert rows["t0"]["toxicity"] == "offensive" and rows["t0"]["toxicity_score"] == 0.93
    assert rows["t3"]["toxicity"] is None and rows["t3"]["toxicity_skipped_reason"] == "unsupported_language"
    assert updates[0]["data"]["toxicity_skipped_reason"] == "unsupported_language"
    assert hub.totals["offensive"] == 1
    alert = hub.window({"source": "app", "alert": True, "alert_kinds": ["offensive_share"], "offensive_share": 0.8,
                        "alert_reason": "offensive share 0.80 is 0.60 above the trailing mean 0.20"})
    assert alert[0]["data"]["kinds"] == ["offensive_share"] and alert[0]["data"]["offensive_share"] == 0.8


def test_buckets_per_source_are_bounded_and_late_events_ignored() -> None:
    hub = Hub(HubConfig(bucket_s=1, buckets=5))
    for i in range(20):
        hub.enriched(enriched(f"e{i}"), ms(T0 + i))
    assert [p["t"] for p in points(hub, "app")] == [T0 + 15, T0 + 16, T0 + 17, T0 + 18, T0 + 19]
    assert hub.enriched(enriched("late"), ms(T0 + 2))[1:] == []  # listed, but older than anything drawn
    # Out of order inside the horizon: inserted in time order.
    hub2 = Hub(HubConfig(bucket_s=1, buckets=5))
    for second in (3, 1, 2):
        hub2.enriched(enriched(f"x{second}"), ms(T0 + second))
    assert [p["t"] for p in points(hub2, "app")] == [T0 + 1, T0 + 2, T0 + 3]


def test_sources_beyond_the_cap_share_the_other_series() -> None:
    hub = Hub(HubConfig(max_sources=2))
    for i, source in enumerate(["a", "b", "c", "d", None]):
        hub.enriched(enriched(f"e{i}", source=source), ms(T0))
    series = hub.snapshot()["series"]
    assert set(series) == {"a", "b", OTHER_SOURCE}
    assert series[OTHER_SOURCE][0]["n"] == 3
    # The event list keeps the real source name.
    assert [e["source"] for e in hub.snapshot()["events"]] == ["a", "b", "c", "d", "unknown"]


def test_event_list_alerts_and_samples_are_bounded() -> None:
    hub = Hub(HubConfig(events=3, alerts=2, samples=4))
    for i in range(10):
        hub.enriched(enriched(f"e{i}"), ms(T0 + i))
        hub.window({"source": "app", "alert": True, "alert_reason": f"spike {i}"})
        hub.stats(StatsSample(T0 + i, consumed_total=i * 10, enriched_total=i * 9, dead_lettered_total=i, lag=5))
    snap = hub.snapshot()
    assert [e["id"] for e in snap["events"]] == ["e7", "e8", "e9"]
    assert [a["reason"] for a in snap["alerts"]] == ["spike 8", "spike 9"]
    assert len(snap["stats"]) == 4
    assert snap["stats"][-1] == {"t": T0 + 9, "consumed_per_s": 10.0, "enriched_per_s": 9.0,
                                 "dead_lettered_per_s": 1.0, "lag": 5}
    assert snap["totals"]["events"] == 10 and snap["totals"]["alerts"] == 10


def test_redelivered_events_are_not_counted_twice() -> None:
    hub = Hub()
    assert hub.enriched(enriched("dup"), ms(T0))
    assert hub.enriched(enriched("dup"), ms(T0 + 1)) == []
    assert points(hub, "app")[0]["n"] == 1 and hub.totals["duplicates"] == 1


def test_text_bodies_and_summaries_hidden_by_default() -> None:
    hub = Hub(HubConfig(show_text=False))
    hub.enriched(enriched("long", text="a very private review", summary_status="pending"), ms(T0))
    updates = hub.summary({"id": "long", "summary": "private summary", "method": "abstractive",
                           "faithfulness": {"score": 0.9}})
    blob = orjson.dumps(hub.snapshot()) + orjson.dumps(updates)
    assert b"private" not in blob
    row = hub.snapshot()["events"][0]
    assert row["summary_method"] == "abstractive" and row["faithfulness"] == 0.9 and row["summary_status"] == "done"


def test_text_bodies_shown_when_enabled_and_clipped() -> None:
    hub = Hub(HubConfig(show_text=True, text_chars=20))
    hub.enriched(enriched("long", text="word " * 50), ms(T0))
    hub.summary({"id": "long", "summary": "short summary", "method": "extractive"})
    row = hub.snapshot()["events"][0]
    assert len(row["text"]) == 20 and row["text"].endswith("…")
    assert row["summary"] == "short summary"


def test_a_summary_that_overtakes_its_event_is_attached_later() -> None:
    hub = Hub()
    assert hub.summary({"id": "s1", "method": "extractive"}) == []
    hub.enriched(enriched("s1", summary_status="pending"), ms(T0))
    assert hub.snapshot()["events"][0]["summary_method"] == "extractive"


def test_malformed_records_are_ignored_not_raised() -> None:
    hub = Hub()
    assert hub.enriched({"no": "id"}, ms(T0)) == []
    updates = hub.enriched({"id": "x", "sentiment": "weird", "language": 3, "source": 7}, ms(T0))
    assert updates[0]["data"]["label"] is None and updates[0]["data"]["source"] == "unknown"
    assert hub.window({"alert": "yes"}) == []  # only a real true alerts
    assert hub.summary({"summary": "no id"}) == []


def test_rates_survive_a_counter_reset() -> None:
    hub = Hub()
    assert hub.stats(StatsSample(T0, 100, 100, 0, 0)) == []  # the first reading only sets the baseline
    (update,) = hub.stats(StatsSample(T0 + 2, 10, 10, 0, 3))
    assert update["data"]["consumed_per_s"] == 5.0


@pytest.mark.parametrize(("expected", "header", "query", "ok"), [
    (None, None, None, True),
    ("s3cret", None, None, False),
    ("s3cret", "Bearer s3cret", None, True),
    ("s3cret", "bearer s3cret", None, True),
    ("s3cret", "Bearer wrong", None, False),
    ("s3cret", "Basic s3cret", None, False),
    ("s3cret", None, "s3cret", True),
    ("s3cret", None, "s3cre", False),
    ("s3cret", None, "", False),
    ("s3cret", "Bearer wrong", "s3cret", False),  # a wrong header is not rescued by the query
])
def test_token_check(expected, header, query, ok) -> None:
    assert authorized(expected, header, query) is ok


def test_sse_message_is_one_data_line() -> None:
    msg = sse_message("event", {"text": "two\nlines"})
    assert msg.startswith(b"event: event\ndata: ") and msg.endswith(b"\n\n") and msg.count(b"\n") == 3


def test_page_is_self_contained() -> None:
    page = PAGE_PATH.read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert ".innerHTML" not in page and "insertAdjacentHTML" not in page  # event data goes in via textContent only
    assert b'nonce="abc"' in page_html("abc")


async def test_broadcaster_fans_out_and_drops_a_slow_subscriber() -> None:
    broadcaster = Broadcaster(queue_batches=2)
    fast, slow = broadcaster.subscribe(), broadcaster.subscribe()
    broadcaster.publish([{"type": "event", "data": 1}])
    assert await fast.next() == [{"type": "event", "data": 1}]
    broadcaster.publish([{"type": "event", "data": 2}])
    broadcaster.publish([{"type": "event", "data": 3}])  # slow now holds 3 batches > 2: dropped
    assert slow.closed and broadcaster.subscribers == 1
    assert await slow.next() is None
    assert await fast.next() == [{"type": "event", "data": 2}]
    broadcaster.close()  # pending updates of a closed stream are dropped: the page reconnects to a snapshot
    assert await asyncio.wait_for(fast.next(), 1) is None


async def test_close_ends_every_stream() -> None:
    broadcaster = Broadcaster()
    sub = broadcaster.subscribe()
    broadcaster.close()
    assert await asyncio.wait_for(sub.next(), 1) is None
    late = broadcaster.subscribe()
    assert await asyncio.wait_for(late.next(), 1) is None


def test_metrics_sample_reads_the_worker_registry() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.events_consumed(12)
    metrics.events_enriched(10)
    metrics.dead_lettered("sentiment", ["invalid_json", "empty_text"])
    metrics.dead_lettered("summary", ["summarization_error"])
    metrics.consumer_lag({("texts", 0): 4, ("texts", 1): 3})
    sample = sample_metrics(metrics.registry, at_s=T0)
    assert (sample.consumed_total, sample.enriched_total, sample.dead_lettered_total, sample.lag) == (12, 10, 2, 7)


def test_feed_topics_from_settings() -> None:
    settings = Settings(summarizer_mode="off")
    config = FeedConfig.from_settings(settings)
    assert config.topics[0] == settings.output_topic and settings.summaries_topic not in config.topics
    assert config.topics[-1] == getattr(settings, "windows_topic", DEFAULT_WINDOWS_TOPIC)


def test_dashboard_defaults_are_safe() -> None:
    settings = Settings()
    assert settings.web_host == "127.0.0.1" and settings.dashboard_token is None and settings.dashboard_show_text is False
    assert dashboard_url(settings.model_copy(update={"web_port": 7000})) == "http://127.0.0.1:7000/dashboard"
    assert dashboard_url(settings.model_copy(update={"web_port": 7000, "web_host": "0.0.0.0"})) == "http://127.0.0.1:7000/dashboard"


def test_dashboard_token_is_secret_and_empty_means_unset(monkeypatch) -> None:
    monkeypatch.setenv("STREAMNLP_DASHBOARD_TOKEN", "")
    assert Settings().dashboard_token is None
    monkeypatch.setenv("STREAMNLP_DASHBOARD_TOKEN", "tok-123")
    settings = Settings()
    assert settings.dashboard_token.get_secret_value() == "tok-123" and "tok-123" not in repr(settings)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                                ("0.0.0.0", False), ("10.0.0.5", False), ("worker-1", False)])
def test_loopback_binds(host, loopback) -> None:
    from pipeline.dashboard.service import _loopback

    assert _loopback(host) is loopback
