"""Summary generation in child processes at a lower CPU priority, behind the summary agent's `Generator` protocol.

Why: in the worker process, the decode loop's Python steps (argmax, detokenising, the stop
search) hold the GIL between ONNX runs, and its ONNX thread competes for the cores at the same
priority as sentiment's. With 8 summaries in flight on 2 cores sentiment p99 went from 157 ms to
1,287 ms. A child process has its own GIL, and the OS can be told that its threads matter less:
sentiment's threads run whenever they are runnable; generation gets what they leave.

How: the child is `python -m pipeline.inference.process FD`, started with `subprocess`, and the two
talk over a socket pair with `multiprocessing.connection` (both standard library): pickled, framed
messages both ways, so an exception raised in the child (`ModelLoadError`, a tokenizer error)
arrives as itself, and the child's death is end-of-file on the parent's end. Not fork: the worker
is multi-threaded (ONNX Runtime pools, the asyncio loop, Kafka clients) and forking a threaded
process can deadlock the child. Not `multiprocessing`'s spawn start method either: it re-runs the
parent's `__main__` script in the child (a script without a main guard runs twice, one read from
stdin cannot start a child at all, and whatever the script imports - torch in an evaluation
script - loads in the child too) and starts a resource-tracker process the worker does not need.
`python -m` starts a clean interpreter that imports this module and what it needs (onnxruntime,
tokenizers, numpy; never torch).

The child loads the model at normal priority (a restart should not crawl), then demotes every
one of its threads (ONNX Runtime's pool threads exist by then): SCHED_IDLE by default, which
runs only when nothing else wants the core, or nice 19. A child that dies (killed, OOM) fails
its call with `GeneratorCrashed`; the next call starts a fresh one.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import StreamnlpError
from pipeline.inference.sentiment import ModelInfo, ModelLoadError
from pipeline.inference.summarizer import GeneratedSummary, Summarizer, SummarizerConfig
from pipeline.logs import get_logger

__all__ = ["GeneratorCrashed", "Priority", "SummarizerProcess", "lower_priority"]

log = get_logger("streamnlp.summarizer_process")

Priority = Literal["idle", "nice"]

#: How long a child may take to exit after its pipe closes before it is killed.
_EXIT_GRACE_S = 5.0
#: Model load in the child: interpreter start, imports, ONNX session; minutes only on a badly overloaded box.
_LOAD_TIMEOUT_S = 300.0


class GeneratorCrashed(StreamnlpError):
    """The generation process died during a call (killed, out of memory) or could not be restarted.

    Transient by nature: the call's texts were not summarised, the next call gets a fresh process.
    """


# ---------------------------------------------------------------------------- the child


def _thread_ids() -> list[int]:
    """Every thread of this process (Linux: scheduling policy and nice value are per thread)."""
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # no /proc (macOS): the calls below then act on the process
        return [0]


def lower_priority(priority: Priority) -> str:
    """Demote every thread of this process; returns what was applied ("idle", "nice 19", or why nothing)."""
    tids = _thread_ids()
    if priority == "idle":
        policy = getattr(os, "SCHED_IDLE", None)
        if policy is not None and hasattr(os, "sched_setscheduler"):
            try:
                for tid in tids:
                    os.sched_setscheduler(tid, policy, os.sched_param(0))
                return "idle"
            except OSError as exc:  # a seccomp profile may forbid it: nice 19 is the next best
                log.warning("sched_idle_unavailable", error=str(exc), fallback="nice 19")
    try:
        for tid in tids:
            os.setpriority(os.PRIO_PROCESS, tid, 19)
        return "nice 19"
    except OSError as exc:
        return f"unchanged ({exc})"


def _portable(exc: BaseException) -> BaseException:
    """`exc` itself if it is ModelLoadError or a builtin with text arguments, else a RuntimeError with its text.

    Only classes the parent surely has cross the pipe as objects: it never has to rebuild a class it
    does not know (and nothing in inference/ imports a pickler by hand).
    """
    ours_or_builtin = type(exc) is ModelLoadError or type(exc).__module__ == "builtins"
    if ours_or_builtin and all(isinstance(a, str) for a in exc.args):
        return exc  # a TypeError from the tokenizer arrives as a TypeError
    return RuntimeError(f"{type(exc).__name__}: {exc}")


def _serve(conn: Connection) -> None:
    """The child: receive (model_dir, config, priority), load, report ("ready", info, priority) or
    ("error", exc), then answer calls until EOF."""
    # Ctrl-C in a terminal signals the whole process group: the parent decides when the child stops
    # (it closes the pipe), so an interrupt never fails a batch half-way through.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        model_dir, config, priority = conn.recv()
    except (EOFError, OSError):
        return
    try:
        summarizer = Summarizer.load(model_dir, config)
    except BaseException as exc:  # noqa: BLE001 - every load failure must reach the parent
        conn.send(("error", _portable(exc)))
        return
    applied = lower_priority(priority)
    conn.send(("ready", summarizer.info, applied))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe or died: nothing left to serve
            return
        _, texts, budget = request
        try:
            reply: tuple[str, Any] = ("ok", summarizer.summarize(texts, time_budget_s=budget))
        except Exception as exc:  # noqa: BLE001 - a generation error is the caller's to handle
            reply = ("error", _portable(exc))
        try:
            conn.send(reply)
        except OSError:
            return


# ---------------------------------------------------------------------------- the parent


class _Child:
    """One generation process and its end of the pipe; used by one caller at a time."""

    def __init__(self, model_dir: Path, config: SummarizerConfig, priority: Priority) -> None:
        self.model_dir = model_dir
        self.config = config
        self.priority = priority
        self.process: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self.info: ModelInfo | None = None
        self.applied = ""

    @property
    def alive(self) -> bool:
        return self.process is not None and self.conn is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        """Spawn and wait for the model to load. Raises ModelLoadError with the child's own reason."""
        parent_end, child_end = multiprocessing.Pipe()  # a socket pair of Connections
        process = subprocess.Popen([sys.executable, "-m", __name__, str(child_end.fileno())],
                                   pass_fds=(child_end.fileno(),), stdin=subprocess.DEVNULL)
        child_end.close()  # only the child holds it now: its death is EOF on parent_end (and ours is EOF on its)
        self.process, self.conn = process, parent_end
        try:
            parent_end.send((self.model_dir, self.config, self.priority))
        except OSError:
            pass  # it died at once: the receive below reports how
        try:
            message = self._receive(_LOAD_TIMEOUT_S, during="model load")
        except GeneratorCrashed as exc:
            raise ModelLoadError(f"{exc}; its output above says why") from exc
        if message[0] == "error":
            self.stop()
            error = message[1]
            if isinstance(error, ModelLoadError):
                raise error
            raise ModelLoadError(f"the summarizer process could not load {self.model_dir}: "
                                 f"{type(error).__name__}: {error}") from error
        _, self.info, self.applied = message

    def call(self, texts: list[str], budget: float | None) -> list[GeneratedSummary]:
        assert self.conn is not None
        try:
            self.conn.send(("summarize", texts, budget))
        except OSError as exc:  # broken pipe: it died since the last call
            raise self._crashed("before the call") from exc
        kind, payload = self._receive(None, during="generation")
        if kind == "error":
            raise payload
        return payload

    def _receive(self, timeout_s: float | None, *, during: str) -> tuple[Any, ...]:
        """The child's next message; GeneratorCrashed if it dies (or, with a timeout, stays silent) first."""
        assert self.conn is not None and self.process is not None
        if not wait([self.conn], timeout_s):  # the child's death makes the pipe readable too (EOF)
            self.process.kill()
            raise self._crashed(f"during {during} (no answer within {timeout_s:.0f}s)")
        try:
            return self.conn.recv()
        except (EOFError, OSError) as exc:  # its end closed: it exited or was killed
            raise self._crashed(f"during {during}") from exc

    def _crashed(self, when: str) -> GeneratorCrashed:
        pid = self.pid
        self.stop()
        code = self.process.returncode if self.process is not None else None
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        return GeneratorCrashed(f"the summarizer process (pid {pid}) died {when} ({how})")

    def stop(self) -> None:
        """Close the pipe (the child exits on EOF); kill it if it does not exit in time."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.process is not None:
            try:
                self.process.wait(_EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class SummarizerProcess:
    """`Summarizer.summarize` served by `processes` child processes at a lower CPU priority.

    `start()` loads the model in every child and raises the child's `ModelLoadError` if it cannot.
    Thread-safe: each call takes an idle child (waiting for one if all are busy). A call whose child
    dies raises `GeneratorCrashed`; that child is restarted by the next call that takes it.
    """

    def __init__(self, model_dir: Path, config: SummarizerConfig | None = None, *, processes: int = 1,
                 priority: Priority = "idle") -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.model_dir = Path(model_dir)
        self.config = config or SummarizerConfig()
        self.priority = priority
        self._children = [_Child(self.model_dir, self.config, priority) for _ in range(processes)]
        self._idle: queue.SimpleQueue[_Child] = queue.SimpleQueue()
        self._info: ModelInfo | None = None
        self._lock = threading.Lock()
        self.restarts = 0

    def start(self) -> SummarizerProcess:
        try:
            for child in self._children:
                child.start()
                log.info("summarizer_process_started", pid=child.pid, priority=child.applied)
        except BaseException:
            self.close()
            raise
        self._info = self._children[0].info
        for child in self._children:
            self._idle.put(child)
        return self

    @property
    def info(self) -> ModelInfo:
        if self._info is None:
            raise RuntimeError("SummarizerProcess.start() has not loaded the model yet")
        return self._info

    @property
    def pids(self) -> list[int]:
        """The live children's process ids (for operators and tests)."""
        return [c.pid for c in self._children if c.alive and c.pid is not None]

    def summarize(self, texts: Sequence[str], *, time_budget_s: float | None = None) -> list[GeneratedSummary]:
        if isinstance(texts, str):
            raise TypeError("summarize() takes a sequence of strings, not a single string")
        if not texts:
            return []
        child = self._idle.get()
        try:
            if not child.alive:
                self._restart(child)
            return child.call(list(texts), time_budget_s)
        finally:
            self._idle.put(child)

    def _restart(self, child: _Child) -> None:
        child.stop()
        try:
            child.start()
        except ModelLoadError as exc:
            raise GeneratorCrashed(f"restarting the summarizer process failed: {exc}") from exc
        with self._lock:
            self.restarts += 1
        log.warning("summarizer_process_restarted", pid=child.pid, priority=child.applied, restarts=self.restarts)

    def close(self) -> None:
        for child in self._children:
            child.stop()

    def __enter__(self) -> SummarizerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SummarizerProcess({self.model_dir}, processes={len(self._children)}, priority={self.priority})"


if __name__ == "__main__":  # the child: python -m pipeline.inference.process FD
    # FD is the child's end of the parent's multiprocessing.Pipe() (a socket pair); wrapping it again gives
    # the same framing and pickling the parent's Connection speaks.
    _serve(Connection(int(sys.argv[1])))
