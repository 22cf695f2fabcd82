"""Run one measurement in a fresh (spawned) process, forwarding its progress to the parent.

A fresh interpreter per model gives each one a clean peak-RSS reading and keeps one model's
ONNX arenas from slowing the next. Spawn, not fork: the parent may hold threads (and fork
would copy the previous model's memory into the child).
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from pipeline.errors import StreamnlpError

__all__ = ["IsolatedRunError", "run_isolated"]

Work = Callable[[Any, Callable[[int, int], None]], dict[str, Any]]


class IsolatedRunError(StreamnlpError, RuntimeError):
    """The measurement failed in its process; the message is the child's error."""


def _child(work: Work, job: Any, conn: Connection) -> None:
    def progress(done: int, total: int) -> None:
        conn.send(("progress", done, total))

    try:
        conn.send(("result", work(job, progress)))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent as one message
        conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    finally:
        conn.close()


def run_isolated(work: Work, job: Any, progress: Callable[[int, int], None], *, timeout_s: float = 3600.0) -> dict:
    """`work(job, progress)` in a child process; returns its result or raises IsolatedRunError."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(work, job, child), daemon=True)
    process.start()
    child.close()
    try:
        while True:
            if not parent.poll(timeout_s):
                raise IsolatedRunError(f"no word from the measurement process for {timeout_s:.0f}s")
            try:
                message = parent.recv()
            except EOFError:
                process.join(5)
                raise IsolatedRunError(f"the measurement process died (exit code {process.exitcode})") from None
            if message[0] == "progress":
                progress(message[1], message[2])
            elif message[0] == "result":
                return message[1]
            else:
                raise IsolatedRunError(message[1])
    finally:
        parent.close()
        process.join(10)
        if process.is_alive():
            process.kill()
