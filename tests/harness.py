"""Test harness: a real worker process against a real broker, a collector of its outputs, the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from pipeline.kafka.clients import InRecord, TopicFollower
from pipeline.settings import Settings
from pipeline.tools.processes import WorkerProcess
from pipeline.tools.samples import labelled_samples
from tests.paths import REPO


def unique_settings(bootstrap: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings with topic and group names no other test uses, so tests can share one broker."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, object] = dict(
        bootstrap_servers=bootstrap,
        input_topic=f"texts-{tag}",
        output_topic=f"texts-{tag}.enriched",
        dlq_topic=f"texts-{tag}.dlq",
        summaries_topic=f"texts-{tag}.summaries",
        summary_requests_topic=f"texts-{tag}.summarize",
        windows_topic=f"texts-{tag}.windows",
        consumer_group=f"streamnlp-{tag}",
        topic_partitions=4,
        data_dir=tmp_path / "faust-data",
        web_port=0,
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


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
    async with TopicFollower(settings, [settings.output_topic, settings.dlq_topic]) as follower:
        while collected.accounted() < expected:
            if stop_at is not None and len(collected.enriched) + len(collected.dead) >= stop_at:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out: {collected.accounted()}/{expected} accounted for"
                    + (f"\n--- worker log ---\n{worker.log_tail()}" if worker else "")
                )
            if worker is not None and not worker.alive():
                raise AssertionError(f"worker exited early with {worker.returncode}:\n{worker.log_tail()}")
            for record in await follower.poll(0.5):
                (collected.enriched if record.topic == settings.output_topic else collected.dead).append(record)
    return collected


def valid_samples(count: int) -> list[dict]:
    """`count` labelled sample events with unique ids (the samples repeat)."""
    samples = labelled_samples()
    assert len(samples) >= 100, "samples/events.jsonl should carry at least 100 labelled events"
    out = []
    for i in range(count):
        event = dict(samples[i % len(samples)])
        event["id"] = f"{event['id']}-{i:04d}"
        out.append(event)
    return out


def cli_env() -> dict[str, str]:
    """This environment without the project's settings: a CLI subprocess sees only what a test passes it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("STREAMNLP_") and k != "KAFKA_BOOTSTRAP_SERVERS"}


def run_cli(args: list[str], env_extra: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`streamnlp ARGS` in a fresh interpreter, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "pipeline.tools.cli", *args], env={**cli_env(), **env_extra}, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
