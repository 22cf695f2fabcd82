"""Byte bounds on the worker's record buffers; Faust bounds them by record count only.

Two places hold records between the fetcher and the broker's acknowledgement of their outputs:

* each agent's **stream buffer** (a Faust channel queue): `ByteBoundedQueue` makes "full" and
  Faust's pause/resume thresholds (80% / 40%) count bytes as well as records, so a run of large
  records pauses fetching as early as a run of many small ones;
* each **micro-batch** taken from it (`take_events`): `byte_budget_stream` closes a batch once its
  records reach `batch_max_bytes`.

Either bound may be passed by one record (a record larger than the whole budget still gets
through, alone). `worst_case_record_bytes` adds these to the consumer's fetch buffers: the bound
docs/operations.md states.

Hand-written rather than a library: Faust exposes the queue class and the stream class as its
extension points but has no byte limit for either.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import EventT
from mode.utils.queues import ThrowableQueue

from pipeline.deadletter import OUTPUT_HEADROOM_BYTES
from pipeline.settings import Settings


def record_bytes(item: Any) -> int:
    """Key + value bytes of a Faust event (or message); 0 for anything else a channel may carry."""
    message = getattr(item, "message", item)
    size = 0
    for sized, raw in (("serialized_key_size", "key"), ("serialized_value_size", "value")):
        n = getattr(message, sized, None)
        if n is None or n < 0:  # unknown (or -1 for null): measure the bytes when there are any
            value = getattr(message, raw, None)
            n = len(value) if isinstance(value, (bytes, bytearray, memoryview, str)) else 0
        size += n
    return size


class ByteBoundedQueue(ThrowableQueue):
    """An agent's stream buffer bounded by `maxsize` records *and* `max_bytes` bytes."""

    def __init__(self, *args: Any, max_bytes: int, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        super().__init__(*args, **kwargs)

    def _put(self, item: Any) -> None:  # asyncio.Queue's storage hooks: every put and get passes here
        super()._put(item)
        self.bytes += record_bytes(item)

    def _get(self) -> Any:
        item = super()._get()
        self.bytes -= record_bytes(item)
        return item

    def clear(self) -> None:
        super().clear()
        self.bytes = 0

    def qsize(self) -> int:
        # Faust compares qsize() with maxsize ("full") and with 80% / 40% of it (pause / resume
        # fetching the partition). Bytes expressed in the same unit put both bounds under that logic.
        count = super().qsize()
        if not count or not self.maxsize:
            return count
        return max(count, math.ceil(self.bytes * self.maxsize / self.max_bytes))


class _BatchGate:
    """Holds the stream back while the batch being filled has reached its byte budget."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.pending = 0  # bytes let through and not yet handed out in a batch
        self._taken = asyncio.Event()

    async def admit(self, size: int) -> None:
        while self.pending and self.pending + size > self.max_bytes:
            # take_events' `within` timeout hands the batch out; taken() then frees the budget.
            self._taken.clear()
            await self._taken.wait()
        self.pending += size

    def taken(self, size: int) -> None:
        self.pending = max(0, self.pending - size)
        self._taken.set()


def byte_budget_stream(batch_max_bytes: int) -> type[faust.Stream]:
    """A Faust Stream class (the `Stream` setting) whose take_events also closes a batch at `batch_max_bytes`."""

    class ByteBudgetStream(faust.Stream):
        async def take_events(self, max_: int, within: Any) -> AsyncIterator[Sequence[EventT]]:  # type: ignore[override]
            if not within:  # without a timeout a held-back batch would never be handed out
                async for events in super().take_events(max_, within):
                    yield events
                return
            gate = _BatchGate(batch_max_bytes)

            async def hold_back(value: Any) -> Any:
                # Runs before take_events' own processor (added after this one), for the same event.
                await gate.admit(record_bytes(self.current_event))
                return value

            self.add_processor(hold_back)
            try:
                async for events in super().take_events(max_, within):
                    size = sum(record_bytes(event) for event in events)
                    yield events
                    gate.taken(size)
            finally:
                self._processors.remove(hold_back)

    return ByteBudgetStream


@dataclass(frozen=True)
class MemoryBound:
    """Worst-case bytes of records a worker holds, by where they are held."""

    agents: int
    partitions: int
    largest_record: int
    stream_buffers: int
    batches: int
    outputs: int
    fetcher: int

    @property
    def total(self) -> int:
        return self.stream_buffers + self.batches + self.outputs + self.fetcher


def consumed_topic_count(settings: Settings) -> int:
    """Topics with an agent: input, and summary requests / enriched (windows router) / route when on."""
    return 1 + (settings.summarizer_mode != "off") + 2 * settings.windows_enabled


def worst_case_record_bytes(settings: Settings, *, largest_record: int | None = None) -> MemoryBound:
    """Records in memory at most, for one worker that holds every partition of its topics.

    Per agent: its stream buffer (stream_buffer_max_bytes, passed by at most one record), the batch
    in hand (batch_max_bytes, likewise) and that batch's outputs (each at most its input plus the
    enrichment headroom). The fetcher keeps at most one fetched chunk per partition
    (consumer_max_partition_fetch_bytes, or one record if larger) and decodes one response
    (consumer_fetch_max_bytes) at a time. `largest_record` defaults to the producer's limit, which
    the topics' max.message.bytes should match.
    """
    record = settings.producer_max_request_bytes if largest_record is None else largest_record
    agents = consumed_topic_count(settings)
    partitions = agents * settings.topic_partitions
    batch = settings.batch_max_bytes + record
    return MemoryBound(
        agents=agents, partitions=partitions, largest_record=record,
        stream_buffers=agents * (settings.stream_buffer_max_bytes + record),
        batches=agents * batch,
        outputs=agents * (batch + settings.batch_max_size * OUTPUT_HEADROOM_BYTES),
        fetcher=partitions * max(settings.consumer_max_partition_fetch_bytes, record) + settings.consumer_fetch_max_bytes,
    )
