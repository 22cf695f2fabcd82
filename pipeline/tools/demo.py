"""`streamnlp demo`: embedded broker + a real worker process + sample events, end to end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from pipeline.dashboard.url import dashboard_url
from pipeline.errors import StreamnlpError
from pipeline.kafka.broker import EmbeddedBroker, EmbeddedBrokerConfig, free_port
from pipeline.kafka.clients import TopicFollower, ensure_topics, jsonl_records, produce
from pipeline.settings import Settings
from pipeline.tools.console import format_dead_letter, format_enriched, format_summary
from pipeline.tools.processes import WorkerProcess
from pipeline.tools.samples import DEFAULT_SAMPLES, sample_lines


@dataclass(frozen=True)
class DemoConfig:
    count: int | None = None  # None: send the sample file once and keep following
    samples: Path = DEFAULT_SAMPLES
    timeout_s: float = 300.0
    log_dir: Path = Path(".streamnlp")


@dataclass
class DemoTally:
    produced: int = 0
    enriched: int = 0
    dead_lettered: int = 0
    elapsed_s: float = 0.0
    gold_labelled: int = 0
    gold_matched: int = 0
    sentiment_skipped: int = 0  # language gate: sentiment null, not counted against the gold labels
    summaries_pending: set[str] = field(default_factory=set)
    summaries: int = 0
    abstractive: int = 0

    @property
    def complete(self) -> bool:
        """Main lane: every produced record enriched or dead-lettered; summary lane: every pending summary in."""
        return (self.produced > 0 and self.enriched + self.dead_lettered >= self.produced
                and not self.summaries_pending)

    def as_json(self) -> str:
        return orjson.dumps({
            "produced": self.produced, "enriched": self.enriched, "dead_lettered": self.dead_lettered,
            "sentiment_skipped": self.sentiment_skipped,
            "summaries": self.summaries, "summaries_abstractive": self.abstractive,
            "elapsed_s": round(self.elapsed_s, 2),
        }).decode()


async def _run(
    settings: Settings, config: DemoConfig, worker: WorkerProcess, say: Callable[[str], None]
) -> DemoTally:
    tally = DemoTally()
    started = time.monotonic()
    tally.produced = len(await produce(settings, settings.input_topic, jsonl_records(sample_lines(config.samples, config.count))))
    say(f"produced {tally.produced} events to '{settings.input_topic}'; waiting for the worker (first group join takes a few seconds)")
    seen_ids: set[bytes] = set()
    seen_dead: set[tuple[int, int]] = set()
    deadline = started + config.timeout_s
    topics = [settings.output_topic, settings.dlq_topic]
    if settings.summarizer_mode != "off":
        topics.append(settings.summaries_topic)
    seen_summaries: set[str] = set()
    async with TopicFollower(settings, topics) as follower:
        while config.count is None or not tally.complete:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"timed out after {config.timeout_s:.0f}s: "
                    f"{tally.enriched + tally.dead_lettered}/{tally.produced} events accounted for, "
                    f"{len(tally.summaries_pending)} summaries pending"
                )
            if not worker.alive():
                raise RuntimeError(f"the worker exited with code {worker.returncode}")
            for record in await follower.poll(0.5):
                if record.topic == settings.output_topic:
                    if record.key not in seen_ids:
                        seen_ids.add(record.key or b"")
                        tally.enriched += 1
                        event = orjson.loads(record.value or b"{}")
                        gold = (event.get("metadata") or {}).get("gold_label")
                        if event.get("sentiment") is None:
                            tally.sentiment_skipped += 1
                        elif gold:
                            tally.gold_labelled += 1
                            tally.gold_matched += event["sentiment"].get("label") == gold
                        if event.get("summary_status") == "pending" and event["id"] not in seen_summaries:
                            tally.summaries_pending.add(event["id"])
                        say(format_enriched(event))
                    continue
                if record.topic == settings.summaries_topic:
                    summary = orjson.loads(record.value or b"{}")
                    if summary.get("id") not in seen_summaries:
                        seen_summaries.add(summary.get("id"))
                        tally.summaries_pending.discard(summary.get("id"))
                        tally.summaries += 1
                        tally.abstractive += summary.get("method") == "abstractive"
                        say(format_summary(summary))
                    continue
                letter = orjson.loads(record.value or b"{}")
                where = (int(letter.get("source_partition", -1)), int(letter.get("source_offset", -1)))
                if where not in seen_dead:
                    seen_dead.add(where)
                    tally.dead_lettered += 1
                    say(format_dead_letter(letter))
    tally.elapsed_s = time.monotonic() - started
    return tally


def run_demo(settings: Settings, config: DemoConfig, say: Callable[[str], None] = print) -> DemoTally:
    config.log_dir.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(EmbeddedBrokerConfig(log_path=config.log_dir / "broker.log"))
    with broker:
        demo_settings = settings.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
        say(f"embedded Kafka broker (Tansu) on {broker.bootstrap_servers}")
        asyncio.run(ensure_topics(demo_settings))
        worker_log = config.log_dir / "demo-worker.log"
        worker_settings = demo_settings.model_copy(update={"web_port": free_port()})
        worker = WorkerProcess(worker_settings, worker_log).start()
        say(f"worker pid {worker.pid} started (logs: {worker_log})")
        if worker_settings.dashboard_enabled:
            token_hint = " (add ?token=<STREAMNLP_DASHBOARD_TOKEN>)" if worker_settings.dashboard_token else ""
            say(f"live dashboard: {dashboard_url(worker_settings)}{token_hint} (while the demo runs)")
        try:
            tally = asyncio.run(_run(demo_settings, config, worker, say))
        except (TimeoutError, RuntimeError) as exc:
            raise DemoFailed(f"{exc}\n--- last worker log lines ({worker_log}) ---\n{worker.log_tail(15)}") from None
        finally:
            code = worker.terminate(timeout_s=40)
            say(f"worker stopped (exit code {code})")
    return tally


class DemoFailed(StreamnlpError, RuntimeError):
    pass

