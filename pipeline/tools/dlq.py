"""The dead-letter topic as an operator sees it: a summary by error code, and replay.

Replay re-publishes the raw record a dead letter preserved, byte-exact, with its
original key and headers plus `streamnlp-replay-of: <dlq topic>/<partition>/<offset>`,
to the topic it was consumed from (the input topic, or the summary-request topic
for `summarization_error`), so after the cause is fixed the worker sees the same
record again. Letters whose payload was not kept byte-exact (above the cap, a
tombstone, or failing its own sha256) are reported and never replayed. Both
commands read the topic up to the end offsets taken at start, on all partitions.

Pure logic (filters, summaries, what to send) is separate from the two async
entry points that talk to Kafka, so it is unit-testable without a broker.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import ValidationError

from pipeline.kafka.clients import OutRecord, read_to_end, send_all
from pipeline.settings import Settings
from schemas.events import DeadLetter, ErrorCode

REPLAY_HEADER = "streamnlp-replay-of"
EXAMPLES = 3


@dataclass(frozen=True)
class DlqEntry:
    """One record of the dead-letter topic; `letter` is None when it is not a DeadLetter."""

    topic: str
    partition: int
    offset: int
    letter: DeadLetter | None

    @property
    def coordinates(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def label(self) -> str:
        """The event id when known, else the original key, else where it was consumed from."""
        letter = self.letter
        if letter is None:
            return self.coordinates
        if letter.event_id:
            return letter.event_id
        key = _original_key(letter)
        if key is not None:
            return key.decode("utf-8", "replace")
        return f"@{letter.source_topic}/{letter.source_partition}/{letter.source_offset}"


async def read_dead_letters(settings: Settings) -> AsyncIterator[DlqEntry]:
    async for record in read_to_end(settings, settings.dlq_topic):
        try:
            letter = DeadLetter.model_validate_json(record.value or b"")
        except ValidationError:
            letter = None  # not ours (or corrupted): reported, never replayed
        yield DlqEntry(record.topic, record.partition, record.offset, letter)


# --------------------------------------------------------------------------- inspect
@dataclass
class CodeSummary:
    error_code: str
    count: int = 0
    first_failed_at: datetime | None = None
    last_failed_at: datetime | None = None
    not_replayable: int = 0
    example_ids: list[str] = field(default_factory=list)
    example_reasons: list[str] = field(default_factory=list)

    def add(self, entry: DlqEntry) -> None:
        letter = entry.letter
        assert letter is not None
        self.count += 1
        if self.first_failed_at is None or letter.failed_at < self.first_failed_at:
            self.first_failed_at = letter.failed_at
        if self.last_failed_at is None or letter.failed_at > self.last_failed_at:
            self.last_failed_at = letter.failed_at
        if replay_blocker(letter) is not None:
            self.not_replayable += 1
        if len(self.example_ids) < EXAMPLES and entry.label not in self.example_ids:
            self.example_ids.append(entry.label)
        if len(self.example_reasons) < EXAMPLES and letter.reason not in self.example_reasons:
            self.example_reasons.append(letter.reason)


@dataclass
class DlqSummary:
    topic: str
    total: int = 0
    unreadable: int = 0
    by_code: dict[str, CodeSummary] = field(default_factory=dict)

    def add(self, entry: DlqEntry) -> None:
        self.total += 1
        if entry.letter is None:
            self.unreadable += 1
            return
        code = entry.letter.error_code.value
        self.by_code.setdefault(code, CodeSummary(code)).add(entry)

    def codes(self) -> list[CodeSummary]:
        return sorted(self.by_code.values(), key=lambda c: (-c.count, c.error_code))

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "total": self.total,
            "unreadable": self.unreadable,
            "error_codes": [
                {
                    "error_code": c.error_code,
                    "count": c.count,
                    "first_failed_at": _iso(c.first_failed_at),
                    "last_failed_at": _iso(c.last_failed_at),
                    "not_replayable": c.not_replayable,
                    "example_ids": c.example_ids,
                    "example_reasons": c.example_reasons,
                }
                for c in self.codes()
            ],
        }


def summarise(topic: str, entries: Iterable[DlqEntry]) -> DlqSummary:
    summary = DlqSummary(topic)
    for entry in entries:
        summary.add(entry)
    return summary


async def inspect(settings: Settings) -> DlqSummary:
    summary = DlqSummary(settings.dlq_topic)
    async for entry in read_dead_letters(settings):
        summary.add(entry)
    return summary


def format_summary(summary: DlqSummary) -> str:
    """A table by error code, then examples; what `streamnlp dlq inspect` prints."""
    lines = [f"{summary.topic}: {summary.total} records, {summary.unreadable} not dead letters "
             "(read up to the end offsets at start)"]
    codes = summary.codes()
    if not codes:
        return "\n".join(lines)
    rows = [("error_code", "count", "first failed (UTC)", "last failed (UTC)", "not replayable")]
    rows += [(c.error_code, str(c.count), _short(c.first_failed_at), _short(c.last_failed_at), str(c.not_replayable))
             for c in codes]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append("")
    for row in rows:
        lines.append("  ".join(cell.rjust(w) if cell.isdigit() else cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip())
    for c in codes:
        lines += ["", f"{c.error_code}: ids {', '.join(c.example_ids)}"]
        lines += [f"  - {reason}" for reason in c.example_reasons]
    return "\n".join(lines)


# --------------------------------------------------------------------------- replay
@dataclass(frozen=True)
class ReplayFilter:
    """Which dead letters to replay. Values of one option are alternatives (OR); options combine (AND).

    `since` is inclusive and `until` exclusive, both on the dead letter's `failed_at`.
    `ids` match the event id, or for letters whose id could not be read, the original key.
    """

    error_codes: frozenset[ErrorCode] = frozenset()
    ids: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:  # naive times are UTC, like everywhere else
                object.__setattr__(self, name, value.replace(tzinfo=UTC))
        if self.since and self.until and self.since >= self.until:
            raise ValueError(f"--since {self.since.isoformat()} is not before --until {self.until.isoformat()}")

    @property
    def selects_everything(self) -> bool:
        return not (self.error_codes or self.ids or self.since or self.until)

    def matches(self, letter: DeadLetter) -> bool:
        if self.error_codes and letter.error_code not in self.error_codes:
            return False
        if self.since is not None and letter.failed_at < self.since:
            return False
        if self.until is not None and letter.failed_at >= self.until:
            return False
        if self.ids:
            name: str | None
            if letter.event_id is not None:
                name = letter.event_id
            else:
                key = _original_key(letter)
                name = None if key is None else key.decode("utf-8", "replace")
            if name not in self.ids:
                return False
        return True


class Skip(str, Enum):  # noqa: UP042 - StrEnum would change what str(skip) returns
    """Why a selected dead letter is not replayed. Values are stable (JSON output)."""

    payload_truncated = "payload_truncated"      # above the cap: only its head was kept
    payload_null = "payload_null"                # a tombstone; replaying it can only fail again
    payload_corrupt = "payload_corrupt"          # base64 or sha256 does not check out
    unknown_source_topic = "unknown_source_topic"  # not consumed by this deployment; pass --topic
    not_a_dead_letter = "not_a_dead_letter"
    made_by_replay = "made_by_replay"            # a replayed record that failed again; its original letter is replayed


SKIP_HELP = {
    Skip.payload_truncated: "payload was above STREAMNLP_DLQ_PAYLOAD_CAP_BYTES, only its head is stored: re-send it from the producer",
    Skip.payload_null: "the record was a tombstone (null value): nothing to replay",
    Skip.payload_corrupt: "the stored payload does not match its sha256: refusing to replay corrupted bytes",
    Skip.unknown_source_topic: "consumed from a topic this deployment does not read: pass --topic to choose one",
    Skip.not_a_dead_letter: "the record is not a DeadLetter",
    Skip.made_by_replay: "a replay of another dead letter that failed again; that original letter is replayed "
                         "instead (pass --include-replays to replay this one too, e.g. when the original is gone)",
}


@dataclass(frozen=True)
class ReplayItem:
    entry: DlqEntry
    topic: str
    record: OutRecord


def replay_blocker(letter: DeadLetter) -> Skip | None:
    """Why this letter's payload cannot be re-published byte-exact, if it cannot."""
    if letter.payload_null:
        return Skip.payload_null
    if letter.payload_truncated or letter.payload_b64 is None:
        return Skip.payload_truncated
    return None if _payload(letter) is not None else Skip.payload_corrupt


def plan(entry: DlqEntry, targets: dict[str, str], topic_override: str | None = None) -> ReplayItem | Skip:
    """The record to publish for a selected dead letter, or why it is skipped.

    `targets` maps a source topic to where its letters go (input -> input, ...).
    """
    letter = entry.letter
    if letter is None:
        return Skip.not_a_dead_letter
    blocker = replay_blocker(letter)
    if blocker is not None:
        return blocker
    topic = topic_override or targets.get(letter.source_topic)
    if topic is None:
        return Skip.unknown_source_topic
    value = _payload(letter)
    assert value is not None
    headers = [(k, v.encode("utf-8")) for k, v in letter.headers.items() if k != REPLAY_HEADER]
    headers += [(k, base64.b64decode(v)) for k, v in letter.headers_b64.items() if k != REPLAY_HEADER]
    headers.append((REPLAY_HEADER, entry.coordinates.encode()))
    return ReplayItem(entry, topic, OutRecord(key=_original_key(letter), value=value, headers=tuple(headers)))


def made_by_replay(letter: DeadLetter) -> bool:
    """The dead-lettered record was itself re-published by `dlq replay` (it carries the replay marker)."""
    return REPLAY_HEADER in letter.headers or REPLAY_HEADER in letter.headers_b64


def replay_outcome(
    entry: DlqEntry, targets: dict[str, str], topic_override: str | None = None, *, include_replays: bool = False,
) -> ReplayItem | Skip:
    """`plan`, except that letters a replay made are skipped unless `include_replays`.

    Such a letter repeats one whose original is still on the topic: replaying both would send
    the input twice, and each `replay --all` while the cause persists would double the copies.
    """
    if not include_replays and entry.letter is not None and made_by_replay(entry.letter):
        return Skip.made_by_replay
    return plan(entry, targets, topic_override)


def replay_targets(settings: Settings) -> dict[str, str]:
    """Source topic -> replay topic: each letter goes back to the topic the worker consumed it from."""
    return {settings.input_topic: settings.input_topic, settings.summary_requests_topic: settings.summary_requests_topic}


@dataclass
class ReplayReport:
    dry_run: bool
    scanned: int = 0
    selected: int = 0
    planned: int = 0
    replayed: int = 0
    failed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "scanned": self.scanned, "selected": self.selected,
                "planned": self.planned, "replayed": self.replayed, "failed": self.failed, "skipped": dict(self.skipped),
                "errors": self.errors[:EXAMPLES]}


async def replay(
    settings: Settings,
    selection: ReplayFilter,
    *,
    dry_run: bool = False,
    topic_override: str | None = None,
    include_replays: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> ReplayReport:
    """Select, plan and (unless `dry_run`) publish with acks=all. `say` gets one line per selected letter.

    Letters that a replay made are skipped unless `include_replays` (see `replay_outcome`).
    """
    report = ReplayReport(dry_run=dry_run)
    targets = replay_targets(settings)
    items: list[ReplayItem] = []
    async for entry in read_dead_letters(settings):
        report.scanned += 1
        if entry.letter is None or not selection.matches(entry.letter):
            continue
        report.selected += 1
        outcome = replay_outcome(entry, targets, topic_override, include_replays=include_replays)
        if isinstance(outcome, Skip):
            report.skipped[outcome.value] += 1
            say(f"skip    {entry.coordinates}  {entry.letter.error_code.value}  {entry.label}: {SKIP_HELP[outcome]}")
            continue
        items.append(outcome)
        if dry_run:
            say(f"would replay {entry.coordinates}  {entry.letter.error_code.value}  {entry.label}  "
                f"({len(outcome.record.value or b'')} bytes) -> {outcome.topic}")
    report.planned = len(items)
    if dry_run or not items:
        return report
    # Selected letters are held in memory (each at most the payload cap) and sent with one producer.
    results = await send_all(settings, ((item.topic, item.record) for item in items))
    for item, result in zip(items, results, strict=True):
        if isinstance(result, BaseException):
            report.failed += 1
            report.errors.append(f"{item.entry.coordinates}: {type(result).__name__}: {result}")
        else:
            report.replayed += 1
            say(f"replayed {item.entry.coordinates}  {item.entry.label} -> {result.topic}/{result.partition}/{result.offset}")
    return report


def format_report(report: ReplayReport) -> str:
    verb = "would replay" if report.dry_run else "replayed"
    count = report.planned if report.dry_run else report.replayed
    skipped = ", ".join(f"{reason}: {n}" for reason, n in sorted(report.skipped.items())) or "none"
    line = (f"scanned {report.scanned}, selected {report.selected}, {verb} {count}, "
            f"skipped {sum(report.skipped.values())} ({skipped})")
    if report.failed:
        line += f", FAILED {report.failed} (first: {report.errors[0]})"
    return line


# --------------------------------------------------------------------------- helpers
def _original_key(letter: DeadLetter) -> bytes | None:
    return None if letter.source_key_b64 is None else base64.b64decode(letter.source_key_b64)


def _payload(letter: DeadLetter) -> bytes | None:
    """The stored payload if it is intact (decodes and matches its sha256)."""
    try:
        data = base64.b64decode(letter.payload_b64 or "", validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(data) != letter.payload_size or hashlib.sha256(data).hexdigest() != letter.payload_sha256:
        return None
    return data


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _short(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
