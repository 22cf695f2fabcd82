"""The bare and naive lanes, each in its own process so CPU time and peak RSS are its own.

    python -m pipeline.tools.benchmark.children bare  < json args     -> one JSON line on stdout, then exits
    python -m pipeline.tools.benchmark.children naive '<json args>'   -> "ready" on stdout, then consumes until SIGTERM

The naive lane is written the way most tutorials do it, on purpose: an aiokafka consumer with
auto-commit, the stdlib json module, and a transformers text-classification pipeline called once
per message (PyTorch fp32, the same weights and thread count as the ONNX model).
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any


def run_bare(args: dict[str, Any]) -> dict[str, Any]:
    """Batched ONNX inference of the texts, as the worker loads the model; no Kafka, no decoding."""
    from pipeline.service.worker import load_classifier
    from pipeline.settings import Settings
    from pipeline.tools.benchmark.meter import percentiles

    classifier = load_classifier(Settings(**args["settings"]))
    texts: list[str] = args["texts"]
    batch = int(args["batch_size"])
    classifier.predict(texts[:batch])  # warm-up: first runs allocate ORT's buffers
    cpu0, t0 = time.process_time(), time.perf_counter()
    latencies: list[float] = []
    batch_ms: list[float] = []
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        t = time.perf_counter()
        classifier.predict(chunk)
        ms = (time.perf_counter() - t) * 1000
        latencies.extend([ms] * len(chunk))  # every event of a batch waits for the whole batch
        if len(chunk) == batch:
            batch_ms.append(ms)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    batch_ms.sort()
    rate = len(texts) / wall * float(args["load"])
    paced = paced_micro_batches(classifier, texts[: max(1, int(rate * float(args["seconds"])))], rate, batch)
    return {
        "events": len(texts), "seconds": round(wall, 3), "events_per_s": round(len(texts) / wall, 1),
        "cpu_s_per_1k": round(cpu / len(texts) * 1000, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "latency": percentiles(latencies), "batch_size": batch,
        "batch_ms_p50": round(batch_ms[len(batch_ms) // 2], 1) if batch_ms else None,
        "paced": {"offered_rate": round(rate, 1), "events": len(paced), "latency": percentiles(paced)},
    }


def paced_micro_batches(classifier: Any, texts: list[str], rate: float, max_batch: int) -> list[float]:
    """Latency (ms) of texts arriving at `rate`/s, each call taking every text arrived so far (up to
    `max_batch`): the best a micro-batcher can do with no broker, no clients and no waiting for a batch."""
    start = time.perf_counter()
    arrival = [start + i / rate for i in range(len(texts))]
    latencies: list[float] = []
    done = 0
    while done < len(texts):
        now = time.perf_counter()
        if arrival[done] > now:
            time.sleep(arrival[done] - now)
            now = time.perf_counter()
        end = done
        while end < len(texts) and end - done < max_batch and arrival[end] <= now:
            end += 1
        classifier.predict(texts[done:end])
        finished = time.perf_counter()
        latencies.extend((finished - arrival[i]) * 1000 for i in range(done, end))
        done = end
    return latencies


async def run_naive(args: dict[str, Any]) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from pipeline.tools.benchmark.hf_weights import load_torch_classifier

    hf_logging.set_verbosity_error()
    model, tokenizer = load_torch_classifier(Path(args["model_dir"]), int(args["threads"]))
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    classify("warm up")
    consumer = AIOKafkaConsumer(
        args["input_topic"], bootstrap_servers=args["bootstrap"], group_id=args["group"],
        enable_auto_commit=True, auto_offset_reset="earliest",
        fetch_max_wait_ms=int(args["fetch_max_wait_ms"]),  # the worker's value: the broker holds fetches this long
    )
    producer = AIOKafkaProducer(bootstrap_servers=args["bootstrap"])
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)

    async def consume() -> None:
        async for message in consumer:
            event = json.loads(message.value)
            result = classify(event["text"], truncation=True, max_length=256)[0]
            event["sentiment"] = {"label": result["label"], "score": result["score"]}
            await producer.send(args["output_topic"], json.dumps(event).encode(), key=message.key)

    task = asyncio.ensure_future(consume())
    await stop.wait()
    task.cancel()
    await producer.stop()
    await consumer.stop()


def main(argv: list[str]) -> int:
    lane = argv[0]
    args = json.loads(argv[1] if len(argv) > 1 else sys.stdin.read())  # bare: the texts come on stdin (too long for argv)
    if lane == "bare":
        print(json.dumps(run_bare(args)), flush=True)
    elif lane == "naive":
        asyncio.run(run_naive(args))
    else:
        print(f"unknown lane {lane!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
