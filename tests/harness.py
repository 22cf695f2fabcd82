"""Test harness: a real worker process against a real broker, and a collector of its outputs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from pipeline.kafka_io import InRecord, ensure_topics, follow
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def unique_settings(bootstrap: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings with topic and group names no other test uses, so tests can share one broker."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, object] = dict(
        bootstrap_servers=bootstrap,
        input_topic=f"texts-{tag}",
        output_topic=f"texts-{tag}.enriched",
        dlq_topic=f"texts-{tag}.dlq",
        consumer_group=f"streamnlp-{tag}",
        topic_partitions=4,
        data_dir=tmp_path / "faust-data",
        web_port=0,
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMNLP_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["KAFKA_BOOTSTRAP_SERVERS"] = settings.bootstrap_servers
    for name in ("input_topic", "output_topic", "dlq_topic", "consumer_group", "topic_partitions",
                 "data_dir", "web_port", "model_dir", "batch_max_size", "batch_max_wait_ms", "max_text_chars"):
        env[f"STREAMNLP_{name.upper()}"] = str(getattr(settings, name))
    env["STREAMNLP_LOG_FORMAT"] = "json"
    return env


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pipeline.cli", "worker"], env=worker_env(self.settings),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
            )
        finally:
            log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout_s: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(timeout=30)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Collected:
    enriched: list[InRecord] = field(default_factory=list)
    dead: list[InRecord] = field(default_factory=list)

    def enriched_ids(self) -> list[str]:
        return [orjson.loads(r.value)["id"] for r in self.enriched]

    def accounted(self) -> int:
        dead_offsets = {(orjson.loads(r.value)["source_partition"], orjson.loads(r.value)["source_offset"]) for r in self.dead}
        return len(set(self.enriched_ids())) + len(dead_offsets)


async def collect_until(
    settings: Settings, expected: int, *, timeout_s: float, worker: WorkerProcess | None = None,
    collected: Collected | None = None, stop_at: int | None = None,
) -> Collected:
    """Read output and DLQ topics until `expected` inputs are accounted for (or `stop_at` records seen)."""
    collected = collected or Collected()
    deadline = time.monotonic() + timeout_s
    stream = follow(settings, [settings.output_topic, settings.dlq_topic]).__aiter__()
    try:
        while collected.accounted() < expected:
            if stop_at is not None and len(collected.enriched) + len(collected.dead) >= stop_at:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out: {collected.accounted()}/{expected} accounted for"
                    + (f"\n--- worker log ---\n{worker.log_tail()}" if worker else "")
                )
            if worker is not None and not worker.alive():
                raise AssertionError(f"worker exited early with {worker.process.returncode}:\n{worker.log_tail()}")
            try:
                record = await asyncio.wait_for(stream.__anext__(), timeout=min(remaining, 1.0))
            except asyncio.TimeoutError:
                continue
            (collected.enriched if record.topic == settings.output_topic else collected.dead).append(record)
    finally:
        await stream.aclose()
    return collected


def create_topics(settings: Settings) -> None:
    asyncio.run(ensure_topics(settings))
