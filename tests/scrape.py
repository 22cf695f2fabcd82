"""Test helpers for a worker's web endpoints: scrape /metrics, poll until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from pipeline.tools.processes import WorkerProcess

T = TypeVar("T")


@dataclass(frozen=True)
class Samples:
    """One scrape: sample name + labels -> value."""

    values: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def get(self, name: str, **labels: str) -> float | None:
        return self.values.get((name, frozenset(labels.items())))

    def total(self, name: str, **labels: str) -> float:
        """Sum over every series of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.values.items() if n == name and wanted <= ls)

    def labelsets(self, name: str) -> list[dict[str, str]]:
        return [dict(ls) for (n, ls) in self.values if n == name]


def parse(text: str) -> Samples:
    values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Samples(values)


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    """(status, body); (0, error) while nothing listens yet."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
            return response.status, await response.text()
    except (TimeoutError, aiohttp.ClientError) as exc:
        return 0, repr(exc)


async def scrape(session: aiohttp.ClientSession, base_url: str) -> Samples:
    status, body = await get(session, f"{base_url}/metrics")
    assert status == 200, f"/metrics answered {status}: {body[:500]}"
    return parse(body)


async def poll_until(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, timeout_s: float, what: str,
    worker: WorkerProcess | None = None, interval_s: float = 0.5,
) -> T:
    """Call `probe` until `done(result)`; fail with the last result (and the worker's log) at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if done(result):
            return result
        if worker is not None and not worker.alive():
            raise AssertionError(f"worker exited ({worker.returncode}) while waiting for {what}:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            tail = f"\n--- worker log ---\n{worker.log_tail()}" if worker else ""
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}; last: {str(result)[:800]}{tail}")
        await asyncio.sleep(interval_s)  # polling interval, not synchronisation: the condition decides
