"""Runs inside a container on the test network, where the broker's advertised name resolves: reads the
output and dead-letter topics from the beginning until the expected numbers of distinct events have
arrived (or the deadline passes), then prints one JSON summary on stdout.

    python collect.py BOOTSTRAP --enriched N --dead-lettered M [--timeout S] [--topic NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient


async def collect(args: argparse.Namespace) -> dict:
    output, dlq = os.environ.get("STREAMNLP_OUTPUT_TOPIC", "texts.enriched"), os.environ.get("STREAMNLP_DLQ_TOPIC", "texts.dlq")
    # No consumer group: every partition, no group join to wait for.
    consumer = AIOKafkaConsumer(output, dlq, bootstrap_servers=args.bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    enriched: dict[str, dict] = {}
    copies = 0
    dead: dict[tuple[int, int], str] = {}  # (input partition, offset) -> error code
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.timeout
        while (len(enriched) < args.enriched or len(dead) < args.dead_lettered) and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    value = json.loads(record.value)
                    if tp.topic == output:
                        copies += 1
                        enriched[value["id"]] = {"worker": value["processing"]["worker"],
                                                 "sentiment": value["sentiment"] is not None}
                    else:
                        dead[(value["source_partition"], value["source_offset"])] = value["error_code"]
    finally:
        await consumer.stop()
    topics: dict[str, int] = {}
    if args.topic:
        admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
        await admin.start()
        try:
            for described in await admin.describe_topics(args.topic):
                topics[described["topic"]] = len(described["partitions"]) if described["error_code"] == 0 else -1
        finally:
            await admin.close()
    return {"enriched": enriched, "enriched_records": copies, "dead_lettered": sorted(dead.values()), "topics": topics}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("--enriched", type=int, required=True)
    parser.add_argument("--dead-lettered", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=240)
    parser.add_argument("--topic", action="append", default=[], help="also report this topic's partition count")
    print(json.dumps(asyncio.run(collect(parser.parse_args()))))


if __name__ == "__main__":
    main()
