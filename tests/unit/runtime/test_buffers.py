"""Record buffers are bounded by bytes as well as records (pipeline/runtime/buffers.py), and the worst case
per worker that docs/operations.md states is the one the settings give."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from mode.utils.queues import FlowControlEvent

from pipeline.runtime.buffers import ByteBoundedQueue, record_bytes, worst_case_record_bytes
from pipeline.settings import Settings
from tests.harness import REPO


@dataclass
class _Message:
    key: bytes | None
    value: bytes | None
    serialized_key_size: int | None = None
    serialized_value_size: int | None = None


@dataclass
class _Event:
    message: _Message


def event(value_bytes: int, key: bytes = b"k") -> _Event:
    return _Event(_Message(key, b"x" * value_bytes, len(key), value_bytes))


def queue(maxsize: int, max_bytes: int) -> ByteBoundedQueue:
    return ByteBoundedQueue(maxsize=maxsize, max_bytes=max_bytes, flow_control=FlowControlEvent(initially_suspended=False))


def test_record_bytes_are_key_plus_value() -> None:
    assert record_bytes(event(100, b"abc")) == 103
    assert record_bytes(_Event(_Message(None, b"12345"))) == 5, "sizes measured when the record has none"
    assert record_bytes(object()) == 0


def test_small_records_count_as_records_large_ones_as_bytes() -> None:
    q = queue(maxsize=100, max_bytes=10_000)
    for _ in range(5):
        q.put_nowait(event(9))  # 50 bytes in all: the record count rules
    assert (q.qsize(), q.bytes) == (5, 50)
    big = queue(maxsize=100, max_bytes=10_000)
    for _ in range(3):
        big.put_nowait(event(2_999))  # 9,000 of 10,000 bytes: 90% "full" with 3 records
    assert big.qsize() == 90 and not big.full()
    big.put_nowait(event(2_999))
    assert big.full() and big.bytes == 12_000
    big.get_nowait()
    assert big.bytes == 9_000 and not big.full()
    big.clear()
    assert (big.qsize(), big.bytes) == (0, 0)


def test_bytes_pause_fetching_at_80_percent_and_resume_at_40() -> None:
    q = queue(maxsize=1_000, max_bytes=10_000)
    calls: list[str] = []

    def put(size: int) -> None:
        q.put_nowait_enhanced(event(size - 1), on_pressure_high=lambda: calls.append("pause"),
                              on_pressure_drop=lambda: calls.append("resume"))

    for _ in range(8):  # 8 records of 1,000 bytes: 80% of the bytes, 0.8% of the records
        put(1_000)
    assert calls == []
    put(1_000)  # the first put that finds the buffer at 80%
    assert calls == ["pause"]
    for _ in range(5):
        q.get_nowait()
    assert calls == ["pause"], "still above 40%"
    q.get_nowait()  # 3,000 bytes left: 30%
    assert calls == ["pause", "resume"]


def test_a_record_larger_than_the_budget_still_fits_an_empty_buffer() -> None:
    q = queue(maxsize=100, max_bytes=1_000)
    assert not q.full()
    q.put_nowait(event(5_000))
    assert q.full() and q.qsize() == math.ceil(5_001 * 100 / 1_000)


async def test_the_workers_streams_close_batches_at_the_byte_budget(tmp_path: Path) -> None:
    """The worker's Faust app (no broker: an in-memory channel): 20 KB records, 64 KiB per batch."""
    from pipeline.service.app import create_app
    from tests.doubles import LengthClassifier

    settings = Settings(bootstrap_servers="127.0.0.1:1", web_port=0, summarizer_mode="off", windows_enabled=False,
                        data_dir=tmp_path, batch_max_bytes=65_536, stream_buffer_max_bytes=1_000_000)
    app, _ = create_app(settings, LengthClassifier())
    app.flow_control.resume()  # what the consumer does once partitions are assigned
    channel = app.channel(value_type=bytes)
    stream = app.stream(channel)  # subscribes to the channel: the stream's buffer is its own queue
    buffer = stream.channel.queue
    assert isinstance(buffer, ByteBoundedQueue) and buffer.max_bytes == 1_000_000
    for _ in range(10):
        await channel.send(value=b"x" * 20_000)
    assert buffer.bytes == 200_000 and buffer.qsize() == math.ceil(200_000 * 1024 / 1_000_000)
    batches: list[int] = []
    async for events in stream.take_events(100, within=0.05):
        batches.append(len(events))
        if sum(batches) == 10:
            break
    assert batches == [3, 3, 3, 1], "by bytes: 3 records of 20,000 fit 65,536; by count 100 would take all 10"
    assert buffer.bytes == 0


def test_the_docs_state_the_worst_case_the_defaults_give() -> None:
    bound = worst_case_record_bytes(Settings(web_port=0))
    assert bound.agents == 4 and bound.partitions == 16
    mib = bound.total / 2**20
    operations = (REPO / "docs" / "operations.md").read_text()  # "Memory bound, by bytes as well as records"
    assert re.search(rf"\*\*{mib:.0f} MiB\*\*", operations), f"docs/operations.md should state the worst case {mib:.0f} MiB"
    lean = worst_case_record_bytes(Settings(web_port=0, summarizer_mode="off", windows_enabled=False))
    assert lean.agents == 1 and lean.total < bound.total / 3


def test_fetch_sizes_that_cannot_hold_a_record_fail_fast() -> None:
    from pipeline.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="STREAMNLP_CONSUMER_MAX_PARTITION_FETCH_BYTES=65536 is below "
                                          "STREAMNLP_PRODUCER_MAX_REQUEST_BYTES=1048576"):
        load_settings(consumer_max_partition_fetch_bytes=65_536)
    with pytest.raises(ConfigError, match="STREAMNLP_CONSUMER_FETCH_MAX_BYTES=524288 is below"):
        load_settings(consumer_fetch_max_bytes=524_288)
