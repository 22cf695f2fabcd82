"""What the bench measures of a process and of a set of latencies, and its progress line."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import psutil


def percentiles(values_ms: Iterable[float]) -> dict[str, float | None]:
    """p50/p95/p99 (nearest rank) and the count; None when there is nothing to measure."""
    ordered = sorted(values_ms)
    if not ordered:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None}

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 1)

    return {"n": len(ordered), "p50_ms": rank(0.50), "p95_ms": rank(0.95), "p99_ms": rank(0.99)}


def peak_rss_bytes(pid: int) -> int:
    """The process's high-water resident set (VmHWM): its peak since start, not the current RSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return psutil.Process(pid).memory_info().rss  # not Linux: the current RSS is the best there is


def _family(pid: int) -> list[psutil.Process]:
    """A process and its live children: a worker's summary generation processes are part of its cost."""
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def _family_peak_rss(pid: int) -> int:
    total = 0
    for member in _family(pid):
        try:
            total += peak_rss_bytes(member.pid)
        except (FileNotFoundError, psutil.NoSuchProcess):  # exited since it was listed
            continue
    return total


@dataclass
class ProcessMeter:
    """CPU seconds of some processes (e.g. workers) and their children between `start()` and `stop()`, and
    their peak RSS (per process: its own plus its children's peaks; the largest such sum)."""

    pids: Sequence[int]
    _cpu_start: float = 0.0
    cpu_s: float = 0.0
    peak_rss: int = 0

    def _cpu(self) -> float:
        total = 0.0
        for pid in self.pids:
            for member in _family(pid):
                try:
                    times = member.cpu_times()
                except psutil.NoSuchProcess:  # exited since it was listed
                    continue
                total += times.user + times.system
        return total

    def start(self) -> ProcessMeter:
        self._cpu_start = self._cpu()
        return self

    def stop(self) -> ProcessMeter:
        self.cpu_s = self._cpu() - self._cpu_start
        self.peak_rss = max(_family_peak_rss(pid) for pid in self.pids)
        return self


@dataclass
class StepProgress:
    """One line per bench step on stderr: step i/n, elapsed, and an ETA from the steps' expected durations."""

    expected_s: dict[str, float]
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    _started: float = field(default_factory=time.monotonic)
    _done: list[str] = field(default_factory=list)
    _spent: float = 0.0

    def step(self, name: str, detail: str = "") -> None:
        """Announce that `name` starts now (the previous step is finished)."""
        elapsed = time.monotonic() - self._started
        done_expected = sum(self.expected_s.get(n, 0.0) for n in self._done)
        left_expected = sum(v for n, v in self.expected_s.items() if n not in self._done)
        # Scale the plan by how fast the finished steps went compared with their estimates
        # (once there is enough behind us to tell; the first seconds say nothing).
        speed = elapsed / done_expected if done_expected >= 20 else 1.0
        index = len(self._done) + 1
        self.stream.write(f"[bench {index}/{len(self.expected_s)}] {name} {detail}  elapsed {elapsed:.0f}s"
                          f"  ETA {left_expected * speed:.0f}s\n")
        self.stream.flush()
        self._done.append(name)

    def finish(self) -> None:
        self.stream.write(f"[bench] done in {time.monotonic() - self._started:.0f}s\n")
        self.stream.flush()
