"""Each lane against the embedded broker: the same texts in, results consumed, times measured.

A Kafka lane is one or more consumer processes (the real worker, or the naive loop) on fresh
topics. `drain` produces a backlog of N events and times until the last result is consumed;
`paced` sends events open-loop at a fixed rate and measures each one's latency from its send
to its result being consumed (end to end, the broker and both clients included).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from pipeline.errors import StreamnlpError
from pipeline.kafka.clients import TopicFollower, ensure_topics
from pipeline.settings import Settings
from pipeline.tools.benchmark.meter import ProcessMeter, percentiles
from pipeline.tools.processes import WorkerProcess

WARM_TIMEOUT_S = 180.0  # model load + first group join on a loaded 2-core box


class LaneError(StreamnlpError, RuntimeError):
    """A lane could not run (a process died, results went missing); the message says which and why."""


def run_bare(settings: Settings, texts: Sequence[str], batch_size: int, *, load: float, seconds: float) -> dict[str, Any]:
    """The bare lane in a child process (its own CPU time and peak RSS); paced at `load` x its throughput."""
    args = {"settings": _child_settings(settings), "texts": list(texts), "batch_size": batch_size,
            "load": load, "seconds": seconds}
    done = subprocess.run([sys.executable, "-m", "pipeline.tools.benchmark.children", "bare"], input=json.dumps(args),
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise LaneError(f"bare lane failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child_settings(settings: Settings) -> dict[str, Any]:
    return {"model_dir": str(settings.model_dir), "model_precision": settings.model_precision,
            "max_tokens": settings.max_tokens, "inference_batch_size": settings.inference_batch_size,
            "inference_threads": settings.inference_threads}


def lane_settings(base: Settings, tag: str, data_dir: Path) -> Settings:
    """`base` with fresh topics and group, so every lane starts empty and nothing leaks between lanes.

    The pipeline lane measures the enrichment worker: windowed aggregates (a second produce and
    consume of every result, on the same two cores as the broker) and the dashboard (web_port=0)
    are off; their cost is measured separately in docs/performance.md.
    """
    return base.model_copy(update=dict(
        input_topic=f"bench-{tag}-in", output_topic=f"bench-{tag}-out", dlq_topic=f"bench-{tag}-dlq",
        summary_requests_topic=f"bench-{tag}-summarize", summaries_topic=f"bench-{tag}-summaries",
        consumer_group=f"bench-{tag}", data_dir=data_dir / tag, web_port=0, windows_enabled=False,
    ))


@dataclass
class Collector:
    """Follows result topics from the start; records when each key's first result arrived."""

    settings: Settings
    topics: list[str]
    methods_topic: str | None = None  # summaries: also record each key's (method, fallback_reason)
    arrivals: dict[str, dict[str, float]] = field(default_factory=dict)  # topic -> key -> time.time()
    methods: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    _task: asyncio.Task | None = None
    _follower: TopicFollower | None = None

    async def __aenter__(self) -> Collector:
        self._follower = await TopicFollower(self.settings, self.topics).start()
        for topic in self.topics:
            self.arrivals[topic] = {}
        self._task = asyncio.ensure_future(self._run())
        return self

    async def _run(self) -> None:
        assert self._follower is not None
        while True:
            records = await self._follower.poll(0.2, max_records=5000)
            now = time.time()
            for record in records:
                key = (record.key or b"").decode()
                self.arrivals[record.topic].setdefault(key, now)
                if record.topic == self.methods_topic and key not in self.methods:
                    summary = orjson.loads(record.value or b"{}")
                    self.methods[key] = (str(summary.get("method")), summary.get("fallback_reason"))

    async def wait_for(self, topic: str, keys: Sequence[str], timeout_s: float, alive: Callable[[], bool] | None = None) -> None:
        seen = self.arrivals[topic]
        deadline = time.monotonic() + timeout_s
        while any(k not in seen for k in keys):
            if self._task is not None and self._task.done():
                self._task.result()  # the follower failed: raise its error
            if alive is not None and not alive():
                raise LaneError("a consumer process exited during the lane")
            if time.monotonic() > deadline:
                missing = sum(1 for k in keys if k not in seen)
                raise LaneError(f"{missing} of {len(keys)} results on {topic} missing after {timeout_s:.0f}s")
            await asyncio.sleep(0.05)  # polling a dict the follower task fills; no event to wait on

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        if self._follower is not None:
            await self._follower.stop()


def event_bytes(event_id: str, text: str) -> bytes:
    return orjson.dumps({"id": event_id, "text": text, "source": "bench"})


class KafkaLane:
    """Consumer processes on fresh topics plus a producer and a collector, for drain and paced runs."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        self._stack = AsyncExitStack()
        self.producer: AIOKafkaProducer | None = None
        self.collector: Collector | None = None
        self.pids: list[int] = []
        self._stoppers: list[Any] = []
        self._alive: list[Any] = []
        self._round = 0

    async def __aenter__(self) -> KafkaLane:
        s = self.settings
        await ensure_topics(s, [s.input_topic, s.output_topic, s.dlq_topic, s.summary_requests_topic, s.summaries_topic])
        self.producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all", linger_ms=5)
        await self.producer.start()
        self._stack.push_async_callback(self.producer.stop)
        self.collector = await self._stack.enter_async_context(
            Collector(s, [s.output_topic, s.summaries_topic], methods_topic=s.summaries_topic))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for stop in reversed(self._stoppers):
            stop()
        await self._stack.aclose()

    # ------------------------------------------------------------------ processes
    def add_process(self, pid: int, alive: Any, stop: Any) -> None:
        self.pids.append(pid)
        self._alive.append(alive)
        self._stoppers.append(stop)

    def alive(self) -> bool:
        return all(check() for check in self._alive)

    async def warm(self, partitions: int) -> None:
        """One event per input partition answered: every consumer has joined and loaded its model."""
        keys = [f"warm{self._round}-{p}" for p in range(partitions)]
        self._round += 1
        assert self.producer is not None and self.collector is not None
        for p, key in enumerate(keys):
            await self.producer.send(self.settings.input_topic, event_bytes(key, "warming up, a fine film"),
                                     key=key.encode(), partition=p)
        await self.producer.flush()
        await self.collector.wait_for(self.settings.output_topic, keys, WARM_TIMEOUT_S, self.alive)

    # ------------------------------------------------------------------ runs
    async def drain(self, texts: Sequence[str], timeout_s: float) -> dict[str, Any]:
        """A backlog of len(texts) events -> events/s until the last result, CPU s/1k and peak RSS of the consumers."""
        assert self.producer is not None and self.collector is not None
        tag = f"d{self._round}"
        self._round += 1
        keys = [f"{tag}-{i}" for i in range(len(texts))]
        payloads = [event_bytes(k, t) for k, t in zip(keys, texts, strict=True)]
        meter = ProcessMeter(self.pids).start()
        sent: dict[str, float] = {}
        t0 = time.time()
        for key, payload in zip(keys, payloads, strict=True):
            sent[key] = time.time()
            await self.producer.send(self.settings.input_topic, payload, key=key.encode())
        await self.producer.flush()
        await self.collector.wait_for(self.settings.output_topic, keys, timeout_s, self.alive)
        meter.stop()
        seen = self.collector.arrivals[self.settings.output_topic]
        seconds = max(seen[k] for k in keys) - t0
        return {
            "events": len(keys), "seconds": round(seconds, 3), "events_per_s": round(len(keys) / seconds, 1),
            "cpu_s_per_1k": round(meter.cpu_s / len(keys) * 1000, 3), "peak_rss_mib": round(meter.peak_rss / 2**20, 1),
            "consumers": len(self.pids),
            "drain_latency": percentiles((seen[k] - sent[k]) * 1000 for k in keys),
        }

    async def paced(self, texts: Sequence[str], rate: float, timeout_s: float,
                    long_texts: Sequence[str] = ()) -> dict[str, Any]:
        """`texts` sent open-loop at `rate`/s; `long_texts` (summary lane) all at the start. Latencies per event."""
        assert self.producer is not None and self.collector is not None
        tag = f"p{self._round}"
        self._round += 1
        producer, topic = self.producer, self.settings.input_topic
        long_keys = [f"{tag}-long-{i}" for i in range(len(long_texts))]
        keys = [f"{tag}-{i}" for i in range(len(texts))]
        sent: dict[str, float] = {}
        start = time.time()
        for key, text in zip(long_keys, long_texts, strict=True):
            sent[key] = time.time()
            await producer.send(topic, event_bytes(key, text), key=key.encode())
        for i, (key, text) in enumerate(zip(keys, texts, strict=True)):
            delay = start + i / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[key] = time.time()
            await producer.send(topic, event_bytes(key, text), key=key.encode())
        await producer.flush()
        await self.collector.wait_for(self.settings.output_topic, keys + long_keys, timeout_s, self.alive)
        out = self.collector.arrivals[self.settings.output_topic]
        result: dict[str, Any] = {"offered_rate": round(rate, 1), "events": len(keys),
                                  "latency": percentiles((out[k] - sent[k]) * 1000 for k in keys)}
        if long_keys:
            await self.collector.wait_for(self.settings.summaries_topic, long_keys, timeout_s, self.alive)
            summaries = self.collector.arrivals[self.settings.summaries_topic]
            last = max(summaries[k] for k in long_keys)
            methods = [self.collector.methods.get(k, ("unknown", None)) for k in long_keys]
            reasons: dict[str, int] = {}
            for method, reason in methods:
                if method != "abstractive":
                    reasons[reason or "unknown"] = reasons.get(reason or "unknown", 0) + 1
            result["summaries"] = {
                "docs": len(long_keys), "seconds": round(last - start, 2),
                "docs_per_s": round(len(long_keys) / (last - start), 2),
                "summary_latency": percentiles((summaries[k] - sent[k]) * 1000 for k in long_keys),
                "abstractive": sum(1 for method, _ in methods if method == "abstractive"),
                "fallback_share": round(sum(reasons.values()) / len(long_keys), 3),
                "fallback_reasons": reasons,
            }
        return result


def start_worker(lane: KafkaLane, log_path: Path, extra_env: dict[str, str] | None = None) -> WorkerProcess:
    worker = WorkerProcess(lane.settings, log_path, dict(extra_env or {})).start()
    lane.add_process(worker.pid, worker.alive, worker.terminate)
    return worker


async def start_naive(lane: KafkaLane, log_path: Path) -> subprocess.Popen[str]:
    """The naive consumer loop in a child process; returns once its model is loaded ("ready")."""
    s = lane.settings
    threads = s.inference_threads or len(os.sched_getaffinity(0))  # the worker's ORT default: one per core
    args = {"bootstrap": s.bootstrap_servers, "input_topic": s.input_topic, "output_topic": s.output_topic,
            "group": s.consumer_group, "model_dir": str(s.model_dir), "threads": threads,
            "fetch_max_wait_ms": s.fetch_max_wait_ms}
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.tools.benchmark.children", "naive", json.dumps(args)],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True)
    log.close()

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    lane.add_process(proc.pid, lambda: proc.poll() is None, stop)
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)  # until the model is loaded (or the child died)
    if line.strip() != "ready":
        stop()
        tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:])
        hint = "; it needs the build extra (torch, transformers): pip install -c constraints.txt -e '.[build]'" \
            if "ModuleNotFoundError" in tail else ""
        raise LaneError(f"naive lane did not start (exit {proc.returncode}): {tail}{hint}; or run with --no-naive")
    return proc
