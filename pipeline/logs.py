"""structlog setup: JSON lines when stderr is not a TTY, readable console otherwise.

Text bodies stay out of logs unless `STREAMNLP_LOG_TEXT_BODIES=true` (a debugging
switch). Two layers, both in `RedactTextBodies`, the last processor before rendering:

* by name: values of body-carrying keys (`text`, `payload`, ...) become a
  placeholder with their length, so a log call may pass a body and still be safe;
* by content: the bodies of the batch being processed are registered with
  `mark_sensitive()`, and any log value that quotes one (typically an exception
  message from model code, possibly clipped) has it cut out.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, MutableMapping
from contextvars import ContextVar
from typing import Any, Literal

import structlog

LogFormat = Literal["auto", "json", "console"]

#: Log keys whose values are text bodies (or derived from them) and are redacted by name.
BODY_KEYS = frozenset({"text", "texts", "body", "raw", "payload", "value", "prompt", "summary"})
#: Content scrubbing ignores shorter bodies: they are too generic to find reliably and say little.
MIN_SCRUB_CHARS = 8
#: A quoted body is recognised from this many leading characters (messages often clip it).
SCRUB_PREFIX_CHARS = 24
_KEEP = frozenset({"level", "timestamp", "logger"})

_sensitive: ContextVar[tuple[str, ...]] = ContextVar("streamnlp_sensitive_texts", default=())


def mark_sensitive(texts: Iterable[str]) -> None:
    """Declare the bodies the current task is handling; its later log lines are scrubbed of them.

    Replaces the previous declaration (one batch at a time). Context-local, so
    concurrent agents do not see each other's bodies.
    """
    _sensitive.set(tuple(t for t in texts if len(t) >= MIN_SCRUB_CHARS))


def _placeholder(value: Any) -> str:
    size = len(value) if isinstance(value, (str, bytes, bytearray, list, tuple)) else None
    return "<redacted text body>" if size is None else f"<redacted text body: {size} long>"


def scrub(value: str, body: str) -> str:
    """`value` with every quote of `body` (whole, or clipped to a prefix) replaced by a placeholder."""
    head = body[:SCRUB_PREFIX_CHARS]
    start = value.find(head)
    while start != -1:
        end = start + len(head)
        while end - start < len(body) and end < len(value) and value[end] == body[end - start]:
            end += 1
        marker = _placeholder(body)
        value = value[:start] + marker + value[end:]
        start = value.find(head, start + len(marker))
    return value


class RedactTextBodies:
    """structlog processor: see the module docstring. `allow=True` turns it into a no-op."""

    def __init__(self, allow: bool = False) -> None:
        self.allow = allow

    def __call__(self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if self.allow:
            return event_dict
        bodies = _sensitive.get()
        for key, value in list(event_dict.items()):
            if key in BODY_KEYS and value is not None:
                event_dict[key] = _placeholder(value)
            elif bodies and isinstance(value, str) and key not in _KEEP:
                for body in bodies:
                    value = scrub(value, body)
                event_dict[key] = value
        return event_dict


class RepeatedMessageFilter(logging.Filter):
    """Lets a library's repeated log message through once per `window_s`, then a summary.

    While a broker is unreachable aiokafka logs the same connection error for every
    request (about a hundred ERROR lines a second), which buries everything else and
    fills disks. Messages are grouped by logger, level and format string (so retries to
    different hosts count as one kind); the first of a window is emitted, the rest are
    counted and the next emitted one says how many were suppressed. Hand-written because
    stdlib logging has no rate limiter and this is the only place that needs one.
    """

    def __init__(self, window_s: float = 10.0, *, max_keys: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._seen: OrderedDict[tuple[str, int, str], list[float | int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.window_s:
            entry[1] += 1
            return False
        suppressed = int(entry[1]) if entry is not None else 0
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} similar messages suppressed in the last {self.window_s:g}s]"
        return True


def configure_logging(level: str = "INFO", fmt: LogFormat = "auto", *, log_text_bodies: bool = False) -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        # Last, so it also sees rendered exceptions and stdlib (Faust, aiokafka) messages.
        RedactTextBodies(allow=log_text_bodies),
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Faust, aiokafka and mode log through stdlib logging; route them through the
    # same renderer so an operator gets one format on one stream.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processors=[
        structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer], foreign_pre_chain=shared))
    handler.addFilter(RepeatedMessageFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
