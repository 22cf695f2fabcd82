"""Faust's Kafka transport with a configurable consumer fetch wait.

Faust hard-codes `fetch_max_wait_ms=1500` for its worker consumer. Real Kafka
answers a fetch as soon as data arrives, so the value rarely matters there;
brokers that hold multi-partition fetches for the full wait (the embedded Tansu
does, measured ~215 ms per fetch at 500 ms and the full wait at Faust's 1.5 s)
turn it into pure end-to-end latency. Faust offers no setting for it, hence
this small subclass instead of a fork.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport


def transport_with_fetch_wait(fetch_max_wait_ms: int, fetch_max_bytes: int | None = None) -> type[Transport]:
    class _ConsumerThread(AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # aiokafka reads these when the consumer starts and builds its Fetcher.
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            if fetch_max_bytes is not None:  # no Faust setting either (aiokafka's default: 50 MB a response)
                consumer._fetch_max_bytes = fetch_max_bytes
            return consumer

    class _Consumer(Consumer):
        def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
            return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class _Transport(Transport):
        Consumer = _Consumer

    return _Transport


class StreamnlpApp(faust.App):
    """faust.App whose consumer transport honours `fetch_max_wait_ms` and `fetch_max_bytes`, and whose
    agent buffers are bounded by `stream_buffer_max_bytes` as well as by record count (pipeline/runtime/buffers.py)."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 100, fetch_max_bytes: int | None = None,
                 stream_buffer_max_bytes: int | None = None, **kwargs: Any) -> None:
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._fetch_max_bytes = fetch_max_bytes
        self._stream_buffer_max_bytes = stream_buffer_max_bytes
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return transport_with_fetch_wait(self._fetch_max_wait_ms, self._fetch_max_bytes)(self.conf.broker_consumer, self)

    def FlowControlQueue(self, maxsize: int | None = None, *, clear_on_resume: bool = False) -> Any:  # Faust's name
        if self._stream_buffer_max_bytes is None:
            return super().FlowControlQueue(maxsize, clear_on_resume=clear_on_resume)
        from pipeline.runtime.buffers import ByteBoundedQueue

        return ByteBoundedQueue(maxsize=maxsize, max_bytes=self._stream_buffer_max_bytes,
                                flow_control=self.flow_control, clear_on_resume=clear_on_resume)
