"""Consumer lag of this worker's assigned partitions, read from Faust's consumer.

lag = highwater (end offset) - committed offset (the next offset the group will read).
The committed offset includes records this worker has fetched but not finished, so the
lag counts what is buffered in memory and in flight too: it is what a restart would
re-read plus what is still waiting in Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any

from pipeline.logs import get_logger

log = get_logger("streamnlp.lag")

LAG_TIMEOUT_S = 5.0


def committed_offsets(consumer: Any) -> Mapping[Any, int | None]:
    """Faust's own record of the group's committed offsets (seeded from the broker on assignment).

    Faust has no public accessor; reading its bookkeeping avoids one OffsetFetch round trip
    to the group coordinator per refresh.
    """
    return getattr(consumer, "_committed_offset", {})


async def partition_lag(
    consumer: Any, topics: Collection[str], *, timeout_s: float = LAG_TIMEOUT_S,
) -> dict[tuple[str, int], int] | None:
    """{(topic, partition): lag} for the assigned partitions of `topics`; None when the consumer cannot answer now."""
    try:
        assigned = [tp for tp in consumer.assignment() if tp.topic in topics]
        if not assigned:
            return {}
        # end_offsets asks the broker: the fetcher's highwater goes stale for a partition paused by backpressure.
        highwaters = await asyncio.wait_for(consumer.highwaters(*assigned), timeout_s)
        committed = committed_offsets(consumer)
        # A group that never committed on a partition starts at its earliest offset (auto_offset_reset=earliest).
        never = [tp for tp in assigned if not committed.get(tp)]
        earliest = await asyncio.wait_for(consumer.earliest_offsets(*never), timeout_s) if never else {}
    except Exception as exc:  # noqa: BLE001 - during a rebalance or shutdown the consumer cannot answer; try next time
        log.debug("lag_unavailable", error=repr(exc))
        return None
    lag: dict[tuple[str, int], int] = {}
    for tp in assigned:
        end = _max_known(highwaters.get(tp), _fetched_highwater(consumer, tp))
        start = committed.get(tp) or earliest.get(tp) or 0
        if end is not None:
            lag[(tp.topic, tp.partition)] = max(0, int(end) - int(start))
    return lag


def _fetched_highwater(consumer: Any, tp: Any) -> int | None:
    """The highwater mark the last fetch response reported (no broker round trip)."""
    try:
        value = consumer.highwater(tp)
    except Exception:  # noqa: BLE001 - not fetched yet, or a consumer without the method
        return None
    return int(value) if isinstance(value, int) and value >= 0 else None


def _max_known(*values: int | None) -> int | None:
    # ListOffsets can lag behind (the embedded Tansu broker answers it with the last batch's base
    # offset + 1), while the fetch highwater goes stale for paused partitions: take the larger.
    known = [v for v in values if v is not None]
    return max(known) if known else None
