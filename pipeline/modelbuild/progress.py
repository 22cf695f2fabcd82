"""Build progress reporting: `progress(stage, done, total)` callables."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

ProgressFn = Callable[[str, int, int], None]


def _fmt_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class StderrProgress:
    """Default progress: one updating line on stderr (`\\r`), percentage and ETA per stage.

    When the stream is not a TTY (CI logs), prints a plain line at most every 10% instead.
    """

    def __init__(self, stream: TextIO | None = None, min_interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.min_interval = min_interval
        self._stage: str | None = None
        self._stage_start = 0.0
        self._build_start = time.monotonic()
        self._last_print = 0.0
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self._stage:
            if self._stage is not None and self._tty:
                self.stream.write("\n")
            self._stage, self._stage_start, self._last_decile = stage, now, -1
        total = max(total, 1)
        frac = min(max(done / total, 0.0), 1.0)
        elapsed = now - self._stage_start
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        eta_s = _fmt_seconds(eta) if frac > 0 else "?"
        line = (
            f"[{stage}] {frac * 100:5.1f}% {done}/{total}  elapsed {_fmt_seconds(elapsed)}"
            f"  ETA {eta_s}  (total {_fmt_seconds(now - self._build_start)})"
        )
        finished = done >= total
        if self._tty:
            if finished or now - self._last_print >= self.min_interval:
                self.stream.write("\r" + line.ljust(96))
                if finished:
                    self.stream.write("\n")
                    self._stage = None
                self.stream.flush()
                self._last_print = now
        else:
            decile = int(frac * 10)
            if decile != self._last_decile or finished:
                self.stream.write(line + "\n")
                self.stream.flush()
                self._last_decile = decile
            if finished:
                self._stage = None


def null_progress(stage: str, done: int, total: int) -> None:  # the ProgressFn signature, arguments unused
    return None
