"""Plain aiokafka clients for the CLI's produce/tail/demo and for tests.

The worker itself goes through Faust; these are the "outside world" a producer
or downstream consumer would be, kept small and explicit.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import RecordMetadata, TopicPartition

from pipeline.kafka.security import client_security, ssl_context
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


def check_reachable(target: Settings | str, timeout_s: float = 5.0) -> None:
    """Fail fast with a fix-it message when no bootstrap server accepts TCP (and, for SSL/SASL_SSL, TLS).

    Kafka clients retry a failed TLS handshake forever, logging; a wrong CA would
    leave a worker silently stuck, so the handshake is tried once here, up front.
    `target` may be a bare bootstrap string (TCP only) for callers without Settings.
    """
    bootstrap_servers = target if isinstance(target, str) else target.bootstrap_servers
    context = None if isinstance(target, str) else ssl_context(target)
    errors = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
                if context is not None:
                    _check_tls(context, sock, host, server)
                return
        except OSError as exc:
            errors.append(f"{server}: {exc.strerror or exc}")
    raise ConfigError(
        f"cannot reach Kafka at {bootstrap_servers} ({'; '.join(errors)}); "
        "check KAFKA_BOOTSTRAP_SERVERS or start a broker with `streamnlp broker`"
    )


def _check_tls(context: ssl.SSLContext, sock: socket.socket, host: str, server: str) -> None:
    try:
        with context.wrap_socket(sock, server_hostname=host):
            return
    except ssl.SSLCertVerificationError as exc:
        hint = ("set STREAMNLP_SSL_CAFILE to the CA that signed the broker's certificate"
                if "hostname" not in (exc.verify_message or "").lower()
                else "connect by a name the certificate lists, or set STREAMNLP_SSL_CHECK_HOSTNAME=false")
        raise ConfigError(f"TLS handshake with {server} failed: certificate verify failed "
                          f"({exc.verify_message}); {hint}") from None
    except (ssl.SSLError, ConnectionError) as exc:
        raise ConfigError(f"TLS handshake with {server} failed ({exc}); is that a TLS listener? "
                          "check STREAMNLP_SECURITY_PROTOCOL and the port") from None


COMPACTED = {"cleanup.policy": "compact"}


def worker_topics(settings: Settings) -> dict[str, dict[str, str]]:
    """Every topic a worker with these settings reads or writes -> the configs it is created with."""
    topics: dict[str, dict[str, str]] = {settings.input_topic: {}, settings.output_topic: {}, settings.dlq_topic: {}}
    if settings.summarizer_mode != "off":
        topics |= {settings.summary_requests_topic: {}, settings.summaries_topic: {}}
    if settings.windows_enabled:
        # The state topic keeps the last value per key (pipeline/lanes/windows/state.py).
        topics |= {settings.windows_route_topic: {}, settings.windows_topic: {}, settings.windows_state_topic: COMPACTED}
    return topics


async def ensure_topics(
    settings: Settings, topics: Iterable[str] | None = None, topic_configs: dict[str, str] | None = None,
) -> None:
    """Create the missing ones of `topics` (default: every topic of the worker, `worker_topics`) with the
    configured partitions and replication.

    `topic_configs` apply to topics created here (e.g. {"cleanup.policy": "compact"}); existing topics are
    left as they are. A topic the cluster refuses to create is a ConfigError saying what to fix.
    """
    wanted = worker_topics(settings) if topics is None else {name: dict(topic_configs or {}) for name in topics}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **client_security(settings))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if missing:
            try:
                await admin.create_topics([
                    NewTopic(name, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication,
                             topic_configs=wanted[name])
                    for name in missing
                ])
            except TopicAlreadyExistsError:
                pass  # another worker or the demo created one of them first; the others were created
            except KafkaError as exc:
                raise ConfigError(
                    f"cannot create topics {', '.join(missing)} ({type(exc).__name__}: {exc}); create them "
                    f"({settings.topic_partitions} partitions, replication {settings.topic_replication}) or let the "
                    "worker's principal create topics, and check STREAMNLP_TOPIC_PARTITIONS / STREAMNLP_TOPIC_REPLICATION"
                ) from None
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
    results = await send_all(settings, ((topic, record) for record in records))
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def send_all(
    settings: Settings, items: Iterable[tuple[str, OutRecord]]
) -> list[RecordMetadata | BaseException]:
    """Send (topic, record) pairs with acks=all; per record, its metadata or the exception that failed it."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5,
                                **client_security(settings))
    try:
        await producer.start()
        futures: list[asyncio.Future[RecordMetadata]] = []
        for topic, record in items:
            try:
                futures.append(await producer.send(topic, record.value, key=record.key, headers=list(record.headers)))
            except KafkaError as exc:  # refused before queueing (too large, unknown topic...): that record failed
                failed: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
                failed.set_exception(exc)
                futures.append(failed)
        return list(await asyncio.gather(*futures, return_exceptions=True))
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
            **client_security(settings),
        )

    async def start(self) -> TopicFollower:
        consumer = self._consumer
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()  # else aiokafka warns about an unclosed client on top of the real error
            raise
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

    async def __aenter__(self) -> TopicFollower:
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


async def read_to_end(
    settings: Settings, topic: str, *, stall_timeout_s: float = 30.0, partitions: Sequence[int] | None = None,
) -> AsyncIterator[InRecord]:
    """Yield every record of `topic` (all partitions, or `partitions`) up to its end offsets when reading starts.

    Records produced meanwhile are not read, so this always ends: it is a snapshot for tools
    (dead-letter inspect/replay) and for restoring a state partition, not a follower.
    ConfigError if the topic does not exist (checked when no partitions are named: the caller
    that names them has created the topic); TimeoutError if no record arrives for
    `stall_timeout_s` while some are due.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms, auto_offset_reset="earliest", **client_security(settings),
    )
    try:
        await consumer.start()
        if partitions is None:
            if topic not in await consumer.topics():
                raise ConfigError(f"topic {topic!r} does not exist on {settings.bootstrap_servers}")
            partitions = sorted(consumer.partitions_for_topic(topic) or ())
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        listed = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(*assigned)
        remaining = {tp for tp in assigned if await consumer.position(tp) < listed[tp]}
        consumer.pause(*(set(assigned) - remaining))
        # The end of a partition is the high watermark of its first fetch, not ListOffsets alone:
        # the embedded broker (Tansu 0.6) answers ListOffsets with its last batch's base offset + 1.
        end: dict[TopicPartition, int] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + stall_timeout_s
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=1000)
            for tp, records in batch.items():
                bound = end.setdefault(tp, max(listed[tp], consumer.highwater(tp) or 0))
                for r in records:
                    if r.offset < bound:
                        yield InRecord(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)
            for tp in list(remaining):
                if tp in end and await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
                    consumer.pause(tp)
            if batch:
                deadline = loop.time() + stall_timeout_s
            elif loop.time() > deadline:
                raise TimeoutError(f"reading {topic!r} stalled: no record for {stall_timeout_s:.0f}s before its end offsets")
    finally:
        await consumer.stop()
