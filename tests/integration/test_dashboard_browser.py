"""The live dashboard end to end: a real worker on the broker, the page in headless Chromium.

Events go through the broker while the page is open; the page must show them without a reload
(chart points grow, a freshly produced id appears in the latest-events list). A screenshot of the
page with data is saved to test-artifacts/dashboard.png. Needs the Debian packages `chromium` and
`chromium-driver` (installed by .ci/run) and selenium (dev extra).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pipeline.kafka.broker import free_port
from pipeline.kafka.clients import OutRecord, ensure_topics, produce
from tests.harness import WorkerProcess, unique_settings
from tests.paths import ARTIFACTS
from tests.scrape import get, poll_until

pytestmark = [pytest.mark.integration, pytest.mark.needs_model]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--window-size=1440,1300"]
SCREENSHOT = ARTIFACTS / "dashboard.png"
TEXTS = {
    "positive": ["A wonderful, moving film with great performances.", "Loved every minute, the cast is superb.",
                 "Fast shipping and the battery lasts for days. Excellent!"],
    "negative": ["Dull, overlong and badly acted. A waste of time.", "The app crashes every time I open it.",
                 "Terrible support, nobody answered my ticket for a week."],
}


LONG_TEXT = (
    "The city council approved the new riverside park on Tuesday after two years of debate. The park will open "
    "next spring with a playground, a small cafe and six kilometres of cycle paths along the water. Residents "
    "who spoke at the meeting welcomed the plan, although several asked for more parking near the north "
    "entrance. The council said the project will cost four million euros, paid mostly from a regional grant, "
    "and that construction starts in March. A public survey on the name of the park opens next week."
)


def _events(prefix: str, sources: list[str], count: int) -> list[dict]:
    out = []
    for i in range(count):
        tone = "positive" if i % 3 else "negative"
        texts = TEXTS[tone]
        out.append({"id": f"{prefix}-{i:03d}", "text": texts[i % len(texts)], "source": sources[i % len(sources)]})
    return out


def _produce(settings, events: list[dict]) -> None:
    records = [OutRecord(key=e["id"].encode(), value=orjson.dumps(e)) for e in events]
    asyncio.run(produce(settings, settings.input_topic, records))


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.fail("headless Chromium is needed: apt-get install chromium chromium-driver (.ci/run does)")
    options = Options()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    # An explicit driver path: selenium must not try to download one (no network in CI).
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _point_count(driver: webdriver.Chrome) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, "#sentiment-chart circle.point"))


def _row_shown(event_id: str):
    def shown(driver: webdriver.Chrome) -> bool:
        return bool(driver.find_elements(By.CSS_SELECTOR, f'#events tr[data-id="{event_id}"]'))
    return shown


def test_dashboard_updates_live_in_headless_chromium(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path, browser: webdriver.Chrome,
) -> None:
    port = free_port()
    token = uuid.uuid4().hex
    settings = unique_settings(
        kafka_bootstrap, tmp_path, model_dir=default_model_dir, web_port=port,
        summarizer_mode="extractive",  # summaries on the page without loading the LLM
        dashboard_token=token, dashboard_show_text=True, dashboard_bucket_s=1.0,
    )
    base = f"http://127.0.0.1:{port}"
    asyncio.run(ensure_topics(settings))
    asyncio.run(ensure_topics(settings, [settings.windows_topic]))
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        async def check_http() -> None:
            async with aiohttp.ClientSession() as session:
                await poll_until(lambda: get(session, f"{base}/healthz"), lambda r: r[0] == 200,
                                 timeout_s=120, what="/healthz 200", worker=worker)
                # The token: nothing of the dashboard without it.
                for path in ("/dashboard", "/dashboard/state", "/dashboard/events"):
                    status, _ = await get(session, f"{base}{path}")
                    assert status == 401, f"{path} answered {status} without a token"
                    status, _ = await get(session, f"{base}{path}?token=wrong")
                    assert status == 401, f"{path} answered {status} with a wrong token"
                async with session.get(f"{base}/dashboard/state",
                                       headers={"Authorization": f"Bearer {token}"}) as response:
                    assert response.status == 200 and "events" in await response.json()

        asyncio.run(check_http())

        browser.get(f"{base}/dashboard?token={token}")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda d: d.find_element(By.ID, "status").text == "live")

        first = _events("dash-a", ["app-store", "support", "reviews"], 24)
        _produce(settings, first)
        # All of them (they arrive partition by partition), so later growth can only come from the next batch.
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '#events tr[data-id^="dash-a-"]')) == len(first))
        wait.until(lambda d: _point_count(d) >= 1)
        # Toxicity is scored in the same batch: every row has a toxicity cell with a label.
        cells = browser.find_elements(By.CSS_SELECTOR, f'#events tr[data-id="{first[0]["id"]}"] td')
        assert cells[3].text.split()[0] in {"clean", "offensive"}, [c.text for c in cells]
        points_before = _point_count(browser)
        browser.execute_script("window.__marker = arguments[0];", token)

        # The next events must land in a later time bucket: wait (on the page's own clock) until the
        # newest bucket has ended, so chart growth is certain instead of depending on timing.
        wait.until(lambda d: d.execute_script(
            "const ts = Object.values(state.series).flat().map(p => p.t);"
            "return Date.now() / 1000 >= Math.max(...ts) + state.config.bucket_s;"))
        second = _events(f"dash-b-{uuid.uuid4().hex[:6]}", ["app-store", "support", "reviews", "forum"], 12)
        long_id = second[0]["id"] + "-long"
        second.insert(0, {"id": long_id, "text": LONG_TEXT, "source": "news"})  # gets a summary (extractive mode)
        _produce(settings, second)
        fresh = second[-1]["id"]
        wait.until(_row_shown(fresh))
        # Its summary comes on another topic, later: the row is updated in place.
        wait.until(lambda d: "extractive" in d.find_element(By.CSS_SELECTOR, f'#events tr[data-id="{long_id}"]').text)
        wait.until(lambda d: _point_count(d) > points_before)
        assert browser.execute_script("return window.__marker;") == token, "the page was reloaded"

        # An alerting window, written straight to the windows topic: the dashboard reads that topic by
        # name, so this checks the page's alert path without waiting for a real spike to close a window.
        alert = {"source": "support", "window_start": "2026-11-29T10:00:00Z", "window_end": "2026-11-29T10:01:00Z",
                 "alert": True, "alert_reason": "negative share 0.80 is 0.55 above the trailing mean 0.25 (test)",
                 "negative_share": 0.8, "mean_score": -0.6, "total": 20, "most_negative_ids": [first[0]["id"]]}
        asyncio.run(produce(settings, settings.windows_topic, [OutRecord(key=b"support", value=orjson.dumps(alert))]))
        wait.until(lambda d: "(test)" in d.find_element(By.ID, "alerts").text)

        # Throughput samples arrive every 2 s; wait for a drawn line before the screenshot.
        wait.until(lambda d: len((d.find_element(By.CSS_SELECTOR, '#throughput-chart polyline[data-series="enriched"]')
                                  .get_attribute("points") or "").split()) >= 3
                   if d.find_elements(By.CSS_SELECTOR, '#throughput-chart polyline[data-series="enriched"]') else False)
        row = browser.find_element(By.CSS_SELECTOR, f'#events tr[data-id="{fresh}"]')
        assert second[-1]["text"] in row.text  # dashboard_show_text=true
        assert "forum" in browser.find_element(By.ID, "sentiment-legend").text
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT)), "screenshot not written"
        assert SCREENSHOT.stat().st_size > 10_000
    finally:
        assert worker.terminate() == 0, worker.log_tail()
