"""Inputs, a ledger of what came out, and waiting on observed outputs with deadlines.

The tests never sleep to synchronise: they poll the output and dead-letter
topics into a `Ledger` and wait for a condition on it (or on a worker's exit)
until a deadline, failing with the workers' log tails.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from pipeline.kafka.clients import InRecord, OutRecord
from pipeline.settings import Settings
from pipeline.tools.processes import WorkerProcess
from pipeline.tools.samples import labelled_samples
from tests.harness import unique_settings

Coord = tuple[int, int]  # (input partition, input offset): identifies one input record


def fault_settings(bootstrap: str, tmp_path: Path, model_dir: Path, **overrides: object) -> Settings:
    """Fresh topics/group per test. The summary lane is off: these tests are about the main
    lane's delivery guarantees, and a 135M LLM on the same 2 cores would only slow them."""
    values: dict[str, object] = dict(model_dir=model_dir, summarizer_mode="off", session_timeout_s=6.0)
    values.update(overrides)
    return unique_settings(bootstrap, tmp_path, **values)


def start_worker(settings: Settings, tmp_path: Path, name: str, **extra_env: str) -> WorkerProcess:
    # An explicit name makes `processing.worker` say which process produced each output.
    env = {"STREAMNLP_WORKER_NAME": name, **extra_env}
    return WorkerProcess(settings, tmp_path / f"{name}.log", extra_env=env).start()


def make_events(count: int, prefix: str, *, empty_every: int = 0) -> list[dict]:
    """Labelled sample events with unique ids; every `empty_every`-th has an empty text
    (a dead letter that still carries its id), so the DLQ path is exercised too."""
    samples = labelled_samples()
    events = []
    for i in range(count):
        event = dict(samples[i % len(samples)], id=f"{prefix}-{i:05d}")
        if empty_every and i % empty_every == empty_every - 1:
            event["text"] = "   "
        events.append(event)
    return events


@dataclass(frozen=True)
class Produced:
    key: str  # event id (unique within a test) or a case name
    partition: int
    offset: int

    @property
    def coord(self) -> Coord:
        return (self.partition, self.offset)


async def produce_raw(
    settings: Settings, records: Sequence[OutRecord], names: Sequence[str], *, max_request_size: int = 1_048_576
) -> list[Produced]:
    """Send records (acks=all) and return where each landed."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5, max_request_size=max_request_size
    )
    await producer.start()
    try:
        futures = [
            await producer.send(settings.input_topic, r.value, key=r.key, headers=list(r.headers)) for r in records
        ]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [Produced(name, m.partition, m.offset) for name, m in zip(names, metadata, strict=True)]


async def produce_events(settings: Settings, events: Sequence[dict]) -> list[Produced]:
    records = [OutRecord(key=e["id"].encode(), value=orjson.dumps(e)) for e in events]
    return await produce_raw(settings, records, [e["id"] for e in events])


@dataclass(frozen=True)
class Seen:
    kind: str  # "enriched" | "dead"
    worker: str
    at: float  # wall-clock time the worker sent it (the record's CreateTime): compare with time.time()
    value: dict
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class Ledger:
    """Every output and dead letter, attributed to the input record it came from."""

    produced: list[Produced]
    # Which input an enriched event came from; default: its id (unique in most tests).
    attribute: Callable[[dict], Coord] | None = None
    by_coord: dict[Coord, list[Seen]] = field(default_factory=lambda: defaultdict(list))
    _id_to_coord: dict[str, Coord] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._id_to_coord = {p.key: p.coord for p in self.produced}

    def add_produced(self, more: Iterable[Produced]) -> None:
        for p in more:
            self.produced.append(p)
            self._id_to_coord[p.key] = p.coord

    def add(self, record: InRecord, kind: str) -> None:
        value = orjson.loads(record.value)
        if kind == "enriched":
            coord = self.attribute(value) if self.attribute else self._id_to_coord[value["id"]]
            worker = value["processing"]["worker"]
        else:
            coord = (value["source_partition"], value["source_offset"])
            worker = value["worker"]
        self.by_coord[coord].append(Seen(kind, worker, record.timestamp_ms / 1000.0, value, record.key, tuple(record.headers)))

    # --- what the tests assert on ---------------------------------------------------
    @property
    def inputs(self) -> int:
        return len(self.produced)

    @property
    def accounted(self) -> int:
        return sum(1 for p in self.produced if self.by_coord.get(p.coord))

    def missing(self) -> list[Produced]:
        return [p for p in self.produced if not self.by_coord.get(p.coord)]

    @property
    def output_records(self) -> int:
        return sum(len(seen) for seen in self.by_coord.values())

    def duplicated(self) -> dict[Coord, list[Seen]]:
        return {coord: seen for coord, seen in self.by_coord.items() if len(seen) > 1}

    @property
    def duplicates(self) -> int:
        return sum(len(seen) - 1 for seen in self.by_coord.values())

    def count(self, kind: str) -> int:
        return sum(1 for seen in self.by_coord.values() if seen and seen[0].kind == kind)

    def workers(self) -> set[str]:
        return {s.worker for seen in self.by_coord.values() for s in seen}

    def coords_by(self, worker: str) -> set[Coord]:
        return {coord for coord, seen in self.by_coord.items() if any(s.worker == worker for s in seen)}

    def first_at(self, worker: str, after: float = 0.0) -> float | None:
        """When `worker` first sent an output at or after wall-clock time `after`."""
        times = [s.at for seen in self.by_coord.values() for s in seen if s.worker == worker and s.at >= after]
        return min(times) if times else None

    def summary(self) -> dict[str, int]:
        return {"inputs": self.inputs, "enriched": self.count("enriched"), "dead_lettered": self.count("dead"),
                "lost": len(self.missing()), "output_records": self.output_records, "duplicates": self.duplicates}


class Watcher:
    """Reads the output and DLQ topics (no consumer group) into a Ledger; waits for conditions with deadlines."""

    def __init__(self, settings: Settings, ledger: Ledger, workers: Sequence[WorkerProcess] = ()) -> None:
        self.settings = settings
        self.ledger = ledger
        self.workers = list(workers)  # their logs go into failure messages
        self._consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                                          fetch_max_wait_ms=settings.fetch_max_wait_ms, auto_offset_reset="earliest")
        self._partitions: list[TopicPartition] = []

    async def __aenter__(self) -> Watcher:
        await self._consumer.start()
        await self._consumer.topics()  # fresh metadata: the topics were just created (ensure_topics)
        for topic in (self.settings.output_topic, self.settings.dlq_topic):
            ids = self._consumer.partitions_for_topic(topic)
            assert ids, f"topic {topic} does not exist"
            self._partitions += [TopicPartition(topic, p) for p in sorted(ids)]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_s: float = 0.3) -> int:
        batches = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=2000)
        count = 0
        for records in batches.values():
            for r in records:
                record = InRecord(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)
                self.ledger.add(record, "enriched" if r.topic == self.settings.output_topic else "dead")
                count += 1
        return count

    async def wait_until(
        self, condition: Callable[[], bool], *, timeout_s: float, what: str,
        alive: Sequence[WorkerProcess] = (),
    ) -> float:
        """Poll until `condition()`; fail if it takes longer than `timeout_s` or a worker in `alive` exits.
        Returns the seconds waited."""
        start = time.monotonic()
        while not condition():
            for worker in alive:
                if not worker.alive():
                    raise AssertionError(f"{what}: worker exited with {worker.returncode}\n{self.logs()}")
            if time.monotonic() - start > timeout_s:
                raise AssertionError(f"{what}: not within {timeout_s:.0f}s ({self.ledger.summary()})\n{self.logs()}")
            await self.poll()
        return time.monotonic() - start

    async def drain(self, *, timeout_s: float, alive: Sequence[WorkerProcess] = ()) -> float:
        return await self.wait_until(lambda: self.ledger.accounted >= self.ledger.inputs, timeout_s=timeout_s,
                                     what=f"all {self.ledger.inputs} inputs accounted for", alive=alive)

    async def settle(self, timeout_s: float = 60.0) -> None:
        """Read everything the topics hold right now, so late duplicates on other partitions are counted too."""
        end = await self._consumer.end_offsets(self._partitions)

        async def behind() -> bool:
            positions = [await self._consumer.position(tp) for tp in self._partitions]
            return any(position < end[tp] for position, tp in zip(positions, self._partitions, strict=True))

        deadline = time.monotonic() + timeout_s
        while await behind():
            assert time.monotonic() < deadline, f"could not read the output topics to their end\n{self.logs()}"
            await self.poll()

    def logs(self, lines: int = 25) -> str:
        return "\n".join(f"--- {w.log_path.name} (rc={w.returncode}) ---\n{w.log_tail(lines)}" for w in self.workers)


def log_events(worker: WorkerProcess) -> list[dict]:
    """The worker's structured log lines, in order (Faust's plain-text lines skipped)."""
    events = []
    for line in worker.log_path.read_text(errors="replace").splitlines():
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


async def wait_for_log(worker: WorkerProcess, condition: Callable[[list[dict]], bool], *, timeout_s: float,
                       what: str) -> None:
    """Wait until the worker's own log shows `condition` (it is alive and polled every 50 ms)."""
    deadline = time.monotonic() + timeout_s
    while not condition(log_events(worker)):
        if not worker.alive():
            raise AssertionError(f"{what}: worker exited with {worker.returncode}\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f}s\n{worker.log_tail()}")
        await asyncio.sleep(0.05)  # polling interval of an observed condition, not a synchronisation delay


async def committed_offsets(settings: Settings) -> dict[int, int]:
    """The consumer group's committed offset per input partition (absent = nothing committed).

    Asks through a group consumer that never subscribes, so it does not join the group
    (the admin client's OffsetFetch does not decode against the embedded broker).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=settings.consumer_group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(settings.input_topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(settings.input_topic) or set()
        out = {}
        for partition in sorted(partitions):
            offset = await consumer.committed(TopicPartition(settings.input_topic, partition))
            if offset is not None and offset >= 0:
                out[partition] = offset
        return out
    finally:
        await consumer.stop()


async def wait_exit(worker: WorkerProcess, timeout_s: float) -> int | None:
    """The worker's exit code once it exits, None if it is still running after `timeout_s`.

    Polls instead of Popen.wait(): a blocking wait would freeze this event loop, and with
    it the test's TCP proxy, so a worker shutting down through the proxy could never finish.
    """
    assert worker.process is not None
    deadline = time.monotonic() + timeout_s
    while worker.process.poll() is None:
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.05)  # polling interval of an observed condition (the exit)
    return worker.process.returncode


async def stop_worker(worker: WorkerProcess, timeout_s: float = 90.0) -> int:
    """SIGTERM and wait for the exit without blocking the event loop; SIGKILL (-9) if it hangs."""
    assert worker.process is not None
    if worker.process.poll() is None:
        worker.process.terminate()
    code = await wait_exit(worker, timeout_s)
    return code if code is not None else worker.kill()


__all__ = ["Coord", "Ledger", "Produced", "Watcher", "committed_offsets", "fault_settings", "log_events",
           "make_events", "produce_events", "produce_raw", "start_worker", "stop_worker", "wait_exit", "wait_for_log"]
