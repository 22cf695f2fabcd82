"""Plain aiokafka clients for the CLI's produce/tail/demo and for tests.

The worker itself goes through Faust; these are the "outside world" a producer
or downstream consumer would be, kept small and explicit.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import dataclass
from typing import AsyncIterator, Iterable, Sequence

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import RecordMetadata, TopicPartition

from pipeline.settings import ConfigError, Settings


@dataclass(frozen=True)
class OutRecord:
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True)
class InRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp_ms: int


def check_reachable(bootstrap_servers: str, timeout_s: float = 5.0) -> None:
    """Fail fast with a fix-it message when no bootstrap server accepts TCP."""
    errors = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return
        except OSError as exc:
            errors.append(f"{server}: {exc.strerror or exc}")
    raise ConfigError(
        f"cannot reach Kafka at {bootstrap_servers} ({'; '.join(errors)}); "
        "check KAFKA_BOOTSTRAP_SERVERS or start a broker with `streamnlp broker`"
    )


async def ensure_topics(settings: Settings, topics: Iterable[str] | None = None) -> None:
    if topics is None:
        topics = [settings.input_topic, settings.output_topic, settings.dlq_topic]
        if settings.summarizer_mode != "off":
            topics += [settings.summary_requests_topic, settings.summaries_topic]
    names = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics([
                    NewTopic(name, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication)
                    for name in missing
                ])
            except TopicAlreadyExistsError:
                pass  # another worker or the demo created it first
    finally:
        await admin.close()


def jsonl_records(lines: Iterable[bytes]) -> Iterable[OutRecord]:
    """One record per non-blank line, byte-exact (malformed lines are the worker's to judge).

    The key is the event id when the line parses and has one, so the same id
    always lands on the same partition.
    """
    for line in lines:
        value = line.rstrip(b"\r\n")
        if not value.strip():
            continue
        key = None
        try:
            obj = orjson.loads(value)
            if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                key = obj["id"].encode()
        except orjson.JSONDecodeError:
            pass
        yield OutRecord(key=key, value=value, headers=(("trace-id", uuid.uuid4().hex.encode()),))


async def produce(settings: Settings, topic: str, records: Iterable[OutRecord]) -> list[RecordMetadata]:
    """Send every record and wait for the broker's acknowledgement of each; returns their metadata in order."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, record.value, key=record.key, headers=list(record.headers))
            for record in records
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


class TopicFollower:
    """Reads whole topics without joining a consumer group (no rebalance wait, no commits).

    `poll()` takes a timeout instead of being an async generator on purpose:
    cancelling a pending `__anext__` (as `asyncio.wait_for` does) finalizes an
    async generator, which would silently end the stream.
    """

    def __init__(self, settings: Settings, topics: Sequence[str], *, from_beginning: bool = True) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.from_beginning = from_beginning
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            auto_offset_reset="earliest" if from_beginning else "latest",
        )

    async def start(self) -> "TopicFollower":
        consumer = self._consumer
        await consumer.start()
        partitions: list[TopicPartition] = []
        for topic in self.topics:
            for _ in range(50):
                ids = consumer.partitions_for_topic(topic)
                if ids:
                    break
                await consumer._client.force_metadata_update()  # the topic may be created a moment later
                await asyncio.sleep(0.1)
            else:
                await consumer.stop()
                raise ConfigError(f"topic {topic!r} does not exist on {self.settings.bootstrap_servers}")
            partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
        consumer.assign(partitions)
        if self.from_beginning:
            await consumer.seek_to_beginning(*partitions)
        return self

    async def poll(self, timeout_s: float = 0.5, max_records: int = 1000) -> list[InRecord]:
        batch = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return [
            InRecord(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)
            for records in batch.values() for r in records
        ]

    async def stop(self) -> None:
        await self._consumer.stop()

    async def __aenter__(self) -> "TopicFollower":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def follow(
    settings: Settings, topics: Sequence[str], *, from_beginning: bool = True, idle_timeout_s: float | None = None
) -> AsyncIterator[InRecord]:
    """Yield records of `topics` forever (or until idle for `idle_timeout_s`). Do not cancel a pending step."""
    async with TopicFollower(settings, topics, from_beginning=from_beginning) as follower:
        idle = 0.0
        while True:
            records = await follower.poll(0.5)
            if not records:
                idle += 0.5
                if idle_timeout_s is not None and idle >= idle_timeout_s:
                    return
                continue
            idle = 0.0
            for record in records:
                yield record
