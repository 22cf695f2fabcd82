"""Measure the micro-batch defaults end to end: embedded broker, real worker process, real model.

For each (batch_max_size, batch_max_wait_ms):
  * backlog: N events already in the topic -> drain rate (events/s) once the worker has joined;
  * paced:   events produced at a fixed rate -> end-to-end latency p50/p99 (produce ack -> consumed output).

Usage: .venv/bin/python scripts/measure_batching.py [--events 2000] [--rate 100] [--out docs/batching.json]
All configurations run in one invocation on the same machine, so compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.kafka.broker import EmbeddedBroker
from pipeline.kafka.clients import OutRecord, TopicFollower, ensure_topics, produce
from pipeline.settings import Settings
from pipeline.tools.processes import WorkerProcess
from pipeline.tools.samples import labelled_samples

REPO = Path(__file__).resolve().parent.parent
GRID = [(8, 10), (32, 10), (32, 50), (64, 50), (128, 50), (128, 100)]


def events(prefix: str, n: int, pool: list[dict]) -> list[OutRecord]:
    recs = []
    for i in range(n):
        e = dict(pool[i % len(pool)], id=f"{prefix}-{i}")
        recs.append(OutRecord(key=e["id"].encode(), value=orjson.dumps(e)))
    return recs


async def wait_outputs(settings: Settings, expected: set[str], timeout_s: float, arrivals: dict[str, float]) -> None:
    deadline = time.monotonic() + timeout_s
    async with TopicFollower(settings, [settings.output_topic]) as follower:
        while not expected.issubset(arrivals):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(expected - set(arrivals))} outputs missing")
            for record in await follower.poll(0.2):
                arrivals.setdefault(record.key.decode(), time.monotonic())


async def run_config(bootstrap: str, size: int, wait_ms: int, n: int, rate: float, model_dir: Path, tmp: Path) -> dict:
    tag = f"b{size}w{wait_ms}-{int(time.time() * 1000) % 100000}"
    settings = Settings(
        bootstrap_servers=bootstrap, input_topic=f"in-{tag}", output_topic=f"out-{tag}", dlq_topic=f"dlq-{tag}",
        consumer_group=f"g-{tag}", batch_max_size=size, batch_max_wait_ms=wait_ms, model_dir=model_dir,
        data_dir=tmp / tag, web_port=0, topic_partitions=4,
    )
    await ensure_topics(settings)
    pool = labelled_samples()
    # Warm-up record: the drain clock starts when the worker has joined and answered it.
    await produce(settings, settings.input_topic, events(f"warm-{tag}", 1, pool))
    worker = WorkerProcess(settings, tmp / f"{tag}.log").start()
    try:
        arrivals: dict[str, float] = {}
        await wait_outputs(settings, {f"warm-{tag}-0"}, 120, arrivals)
        backlog = events(f"bk-{tag}", n, pool)
        await produce(settings, settings.input_topic, backlog)
        t0 = time.monotonic()
        await wait_outputs(settings, {r.key.decode() for r in backlog}, 300, arrivals)
        drain_s = max(arrivals[r.key.decode()] for r in backlog) - t0

        paced = events(f"lat-{tag}", int(rate * 10), pool)
        sent_at: dict[str, float] = {}

        async def pace() -> None:
            start = time.monotonic()
            for i, record in enumerate(paced):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await produce_one(settings, record)
                sent_at[record.key.decode()] = time.monotonic()

        await asyncio.gather(pace(), wait_outputs(settings, {r.key.decode() for r in paced}, 120, arrivals))
        lat = sorted((arrivals[k] - sent_at[k]) * 1000 for k in sent_at)
    finally:
        worker.terminate()
    return {
        "batch_max_size": size, "batch_max_wait_ms": wait_ms,
        "drain_events_per_s": round(n / drain_s, 1),
        "paced_rate": rate,
        "latency_ms_p50": round(statistics.median(lat), 1),
        "latency_ms_p99": round(lat[int(len(lat) * 0.99) - 1], 1),
    }


_producer = None


async def produce_one(settings: Settings, record: OutRecord) -> None:
    """Paced sends reuse one producer; each send waits for its ack, like a synchronous client."""
    global _producer
    from aiokafka import AIOKafkaProducer

    if _producer is None:
        _producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
        await _producer.start()
    await (await _producer.send(settings.input_topic, record.value, key=record.key))


async def main_async(args: argparse.Namespace) -> list[dict]:
    global _producer
    results = []
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        for index, (size, wait_ms) in enumerate(GRID, 1):
            t = time.monotonic()
            result = await run_config(broker.bootstrap_servers, size, wait_ms, args.events, args.rate,
                                      args.model_dir, Path(tmp))
            results.append(result)
            left = (time.monotonic() - t) * (len(GRID) - index)
            print(f"[{index}/{len(GRID)}] {json.dumps(result)}  (~{left:.0f}s left)", file=sys.stderr, flush=True)
            if _producer is not None:
                await _producer.stop()
                _producer = None
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="paced events/s for the latency run")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "cache" / "sentiment-minilm-rt")
    parser.add_argument("--grid", default=",".join(f"{s}x{w}" for s, w in GRID),
                        help="comma-separated SIZExWAIT_MS pairs, e.g. 64x10,128x50")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "batching.json")
    args = parser.parse_args()
    GRID[:] = [tuple(int(v) for v in pair.split("x")) for pair in args.grid.split(",")]
    results = asyncio.run(main_async(args))
    args.out.write_text(json.dumps({"events": args.events, "results": results}, indent=2) + "\n")
    print(f"| batch_max_size | batch_max_wait_ms | drain ev/s | p50 ms @ {args.rate:g} ev/s | p99 ms |")
    print("|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['batch_max_size']} | {r['batch_max_wait_ms']} | {r['drain_events_per_s']} | "
              f"{r['latency_ms_p50']} | {r['latency_ms_p99']} |")


if __name__ == "__main__":
    main()
