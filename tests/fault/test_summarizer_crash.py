"""kill -9 of the summary generation process mid-batch: every request still comes out, the worker lives on,
and the next request is summarised by a restarted generation process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import psutil
import pytest

from pipeline.kafka.clients import TopicFollower, ensure_topics
from pipeline.tools.processes import WorkerProcess
from pipeline.tools.samples import labelled_samples
from tests.fault.report import FaultRecord
from tests.fault.workload import fault_settings, log_events, produce_events, start_worker, stop_worker, wait_for_log

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.needs_model, pytest.mark.timeout(600)]

LONG = 8  # two generation batches of 4
SHORT = 40


def _events(prefix: str, count: int, *, long: bool, start: int = 0) -> list[dict]:
    pool = [e for e in labelled_samples() if (len(e["text"]) >= 400) == long]
    return [dict(pool[(start + i) % len(pool)], id=f"{prefix}-{start + i:03d}") for i in range(count)]


def _child_pids(worker: WorkerProcess, event: str) -> list[int]:
    return [int(e["pid"]) for e in log_events(worker) if e.get("event") == event]


class Outputs:
    """Enriched events, summaries and dead letters of one test's topics, by event id."""

    def __init__(self, follower: TopicFollower, topics: dict[str, str]) -> None:
        self.follower = follower
        self.kind_of = {topic: kind for kind, topic in topics.items()}
        self.seen: dict[str, dict[str, list[dict]]] = {kind: {} for kind in topics}

    async def poll(self) -> None:
        for record in await self.follower.poll(0.3):
            value = orjson.loads(record.value or b"{}")
            kind = self.kind_of[record.topic]
            key = value.get("event_id") if kind == "dead" else value["id"]
            self.seen[kind].setdefault(str(key), []).append(value)

    async def wait(self, condition: Callable[[], bool], *, timeout_s: float, what: str, worker: WorkerProcess) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert worker.alive(), f"{what}: worker exited with {worker.returncode}\n{worker.log_tail()}"
            assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f}s\n{worker.log_tail()}"
            await self.poll()

    def answered(self, ids: list[str]) -> bool:
        return all(i in self.seen["summary"] or i in self.seen["dead"] for i in ids)


async def _generating(pid: int, worker: WorkerProcess, timeout_s: float = 240.0) -> None:
    """Until the generation process has spent CPU since this call: it is inside a batch (the model was loaded
    before the worker joined its group, so new CPU time is generation)."""
    child = psutil.Process(pid)
    base = sum(child.cpu_times()[:2])
    deadline = time.monotonic() + timeout_s
    while sum(child.cpu_times()[:2]) - base < 0.3:
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, f"the generation process never started generating\n{worker.log_tail()}"
        await asyncio.sleep(0.05)  # polling interval of an observed condition (CPU time), not a synchronisation delay


async def test_kill_9_of_the_generation_process_mid_batch_loses_nothing_and_it_is_restarted(
    kafka_bootstrap: str, default_model_dir: Path, summarizer_model_dir: Path, tmp_path: Path,
    reliability_record: FaultRecord,
) -> None:
    settings = fault_settings(kafka_bootstrap, tmp_path, default_model_dir, summarizer_mode="abstractive",
                              summarizer_model_dir=summarizer_model_dir, summarizer_isolation="process",
                              summarizer_batch_size=4, summarizer_concurrency=1, summary_backlog_max=1000)
    await ensure_topics(settings)
    reliability_record.fault = "kill -9 of the summary generation process mid-batch"
    worker = start_worker(settings, tmp_path, "gen-w1")
    topics = {"enriched": settings.output_topic, "summary": settings.summaries_topic, "dead": settings.dlq_topic}
    try:
        await wait_for_log(worker, lambda events: any(e.get("event") == "partitions_assigned" for e in events),
                           timeout_s=240, what="worker started (both models loaded, group joined)")
        (first_pid,) = _child_pids(worker, "summarizer_process_started")
        assert psutil.Process(first_pid).ppid() == worker.pid

        longs, shorts = _events("long", LONG, long=True), _events("short", SHORT, long=False)
        await produce_events(settings, longs + shorts)
        async with TopicFollower(settings, list(topics.values())) as follower:
            out = Outputs(follower, topics)
            await _generating(first_pid, worker)
            os.kill(first_pid, signal.SIGKILL)
            killed_at = time.monotonic()
            long_ids = [e["id"] for e in longs]
            await out.wait(lambda: out.answered(long_ids), timeout_s=240, what="every summary request answered",
                           worker=worker)
            answered_s = time.monotonic() - killed_at

            # A request after the crash: generated by a fresh process (a summary with a model is a generated one).
            (later,) = _events("later", 1, long=True, start=LONG)
            await produce_events(settings, [later])
            await out.wait(lambda: later["id"] in out.seen["summary"], timeout_s=240, what="the later summary",
                           worker=worker)
            ids = long_ids + [e["id"] for e in shorts] + [later["id"]]
            await out.wait(lambda: all(i in out.seen["enriched"] for i in ids), timeout_s=120,
                           what="every event enriched", worker=worker)
        assert worker.alive(), worker.log_tail()
        restarted = _child_pids(worker, "summarizer_process_restarted")
    finally:
        rc = await stop_worker(worker)

    crashes = [e for e in log_events(worker) if e.get("event") == "summary_generator_crashed"]
    summaries = {i: seen[0] for i, seen in out.seen["summary"].items()}
    fallback = sorted(i for i in long_ids if summaries.get(i, {}).get("fallback_reason") == "generation_error")
    lost = [i for i in long_ids if i not in summaries and i not in out.seen["dead"]]
    reliability_record.injected = (f"SIGKILL to the generation process (pid {first_pid}) 0.3 CPU-s into a batch of "
                                   f"{LONG} long texts ({SHORT} short ones with them)")
    reliability_record.inputs = LONG + SHORT + 1
    reliability_record.enriched = len(out.seen["enriched"])
    reliability_record.dead_lettered = len(out.seen["dead"])
    reliability_record.lost = len(lost)
    reliability_record.output_records = sum(len(seen) for kind in out.seen.values() for seen in kind.values())
    reliability_record.duplicates = sum(len(seen) - 1 for kind in out.seen.values() for seen in kind.values())
    reliability_record.recover_s = round(answered_s, 1)
    reliability_record.recover_what = "kill -> every summary request of the batch answered (summary or dead letter)"
    reliability_record.notes = (f"{len(fallback)} extractive summaries with fallback_reason generation_error, "
                                f"{len(out.seen['dead'])} dead letters; generation process restarted "
                                f"(pid {restarted[0] if restarted else '?'}); worker exit {rc}")
    reliability_record.observed = {"crash_log": [c.get("error") for c in crashes], "restarted_pids": restarted,
                                   "methods": {i: (s["method"], s["fallback_reason"]) for i, s in summaries.items()}}

    assert not lost, f"summary requests lost: {lost}"
    assert crashes and "during generation (killed by SIGKILL)" in crashes[0]["error"], crashes
    assert 1 <= len(fallback) <= 4, "the killed batch (at most 4 requests) falls back to extractive summaries"
    assert not out.seen["dead"], "a crash of the generation process dead-letters nothing"
    assert restarted and restarted[0] != first_pid and not psutil.pid_exists(first_pid)
    assert summaries[later["id"]]["model"] is not None, "the later request was generated by the restarted process"
    assert summaries[later["id"]]["method"] in ("abstractive", "extractive")
    assert rc == 0, worker.log_tail()
