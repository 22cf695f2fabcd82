"""Text bodies never reach the logs unless STREAMNLP_LOG_TEXT_BODIES is on.

A fresh interpreter (structlog is configured once per process) runs the real
sentiment agent on a batch whose model fails while quoting its input, plus a
malformed record carrying the same text: the model-error path, the inference
dead-letter path and the decoding dead-letter path all log, at DEBUG.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.logs import RedactTextBodies, mark_sensitive, scrub
from tests.harness import REPO

SECRET = "Zanzibar quokka 7731 adored the final twist of this film"

SCRIPT = """
import asyncio, sys
from concurrent.futures import ThreadPoolExecutor
import orjson
from pipeline.lanes.sentiment.agent import SentimentAgent
from pipeline.lanes.sentiment.enrichment import BatchEnricher, EnricherConfig
from pipeline.logs import configure_logging
from tests.doubles import FakeEvent, FakeMessage, MemoryTopic, StubModelInfo

SECRET = {secret!r}

class QuotingClassifier:
    info = StubModelInfo()
    def predict(self, texts):
        raise ValueError(f"tokenizer rejected input {{texts[0]!r}}")

configure_logging("DEBUG", "json", log_text_bodies=sys.argv[1] == "on")
events = [
    FakeEvent(FakeMessage("texts", 0, 0, b"e1", orjson.dumps({{"id": "e1", "text": SECRET}}))),
    FakeEvent(FakeMessage("texts", 0, 1, b"e2", b'{{"id": "e2", "text": "' + SECRET.encode() + b'"')),
]
dlq = MemoryTopic()
agent = SentimentAgent(enricher=BatchEnricher(EnricherConfig(worker="w")), classifier=QuotingClassifier(),
                       output_topic=MemoryTopic(), dlq_topic=dlq, executor=ThreadPoolExecutor(1))
asyncio.run(agent.process(events))
assert len(dlq.records) == 2, dlq.records
"""


def run_agent(bodies: str) -> str:
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(secret=SECRET), bodies], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def test_text_bodies_are_redacted_by_default() -> None:
    logs = run_agent("off")
    assert "batch_inference_failed" in logs and logs.count('"event": "dead_lettered"') == 2, logs
    assert "<redacted text body" in logs
    assert SECRET not in logs and SECRET[:20] not in logs, logs


def test_text_bodies_appear_when_enabled() -> None:
    logs = run_agent("on")
    assert SECRET in logs


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"bad input '{SECRET}' here", "bad input '<redacted text body: 56 long>' here"),
        (f"clipped: {SECRET[:30]}", "clipped: <redacted text body: 56 long>"),
        (f"{SECRET} and again {SECRET}", "<redacted text body: 56 long> and again <redacted text body: 56 long>"),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_scrub_removes_whole_and_clipped_quotes(value: str, expected: str) -> None:
    assert scrub(value, SECRET) == expected


def test_processor_redacts_body_keys_and_registered_bodies() -> None:
    mark_sensitive([SECRET, "short"])
    event = {"event": "x", "text": "anything", "payload": b"raw", "error": f"ValueError('{SECRET}')", "n": 3}
    out = RedactTextBodies()(None, "info", dict(event))
    assert out["text"] == "<redacted text body: 8 long>" and out["payload"] == "<redacted text body: 3 long>"
    assert SECRET not in out["error"] and out["n"] == 3
    assert RedactTextBodies(allow=True)(None, "info", dict(event)) == event
    mark_sensitive([])


SUMMARY_SCRIPT = """
import asyncio, sys
from pipeline.logs import configure_logging
from tests.doubles import MemoryTopic, ScriptedGenerator, summary_agent, summary_request_events

SECRET = {secret!r} * 3

configure_logging("DEBUG", "json", log_text_bodies=sys.argv[1] == "on")
dlq = MemoryTopic()
agent = summary_agent(ScriptedGenerator(ValueError(f"prompt too long: {{SECRET!r}}")), dlq=dlq)
asyncio.run(agent.process(summary_request_events([SECRET])))
assert len(dlq.records) == 1, dlq.records
"""


def test_summary_lane_generation_errors_do_not_leak_the_prompt() -> None:
    result = subprocess.run([sys.executable, "-c", SUMMARY_SCRIPT.format(secret=SECRET), "off"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "summary_generation_failed" in result.stderr, result.stderr
    assert SECRET not in result.stderr and SECRET[:20] not in result.stderr, result.stderr


def test_repeated_library_messages_are_rate_limited_with_a_count() -> None:
    import logging

    from pipeline.logs import RepeatedMessageFilter

    now = [0.0]
    limiter = RepeatedMessageFilter(window_s=10, clock=lambda: now[0])

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, msg, args, None)

    assert limiter.filter(record("Unable connect to %s", "node 1"))
    assert not any(limiter.filter(record("Unable connect to %s", f"node {i}")) for i in range(99))
    assert limiter.filter(record("Another problem"))  # a different message is not held back
    now[0] = 10.5
    after = record("Unable connect to %s", "node 1")
    assert limiter.filter(after)
    assert "99 similar messages suppressed" in after.getMessage() and "node 1" in after.getMessage()
