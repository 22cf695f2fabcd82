"""The at-least-once batch core every lane's agent runs on: take a micro-batch, process it,
publish its outputs, wait for the broker's acks, then commit.

Faust's `take_events` acks a batch's events (making their offsets committable) when the agent
body returns control, so the body only returns after every output and dead letter of the
batch has been acknowledged by the broker. Cancellation (shutdown) waits for the batch in
flight; if it cannot be published the process exits without acking, so the batch is consumed
again after a restart instead of being lost.

Publishing tells two kinds of failure apart. One that is a property of the record (its output
is over the producer's size limit, or the broker refuses it even when sent alone:
`RECORD_REFUSALS`) dead-letters that record's input and the batch moves on; retrying or
restarting could never get it through. Anything else (broker down, timeouts) is retried, then
the worker exits without committing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import CorruptRecordException, MessageSizeTooLargeError, RecordListTooLargeError

from pipeline.deadletter import (
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_PAYLOAD_CAP_BYTES,
    Outgoing,
    RawRecord,
    fit_letter,
    refused_output_letter,
    smallest_letter,
)
from pipeline.logs import get_logger
from schemas.events import DeadLetter, ErrorCode

log = get_logger("streamnlp.batches")


def elapsed_ms(start: float) -> float:
    """Milliseconds since a `time.perf_counter()` reading (batch, inference and publish timings)."""
    return (time.perf_counter() - start) * 1000.0


PUBLISH_ATTEMPTS = 3
SHUTDOWN_GRACE_S = 30.0
# Exit code for "batch not handled, offsets deliberately left uncommitted" (EX_SOFTWARE):
# take_events acks a batch even when the agent body raises, so failing hard is the
# only way to keep at-least-once; the orchestrator restarts the worker.
EXIT_PUBLISH_FAILED = 70

# Errors that are a property of the record, not of the broker's or network's state: sending
# the same record again can never succeed, so it is dead-lettered instead of retried.
# - MessageSizeTooLargeError: raised synchronously by aiokafka's send() (wrapped by Faust in
#   ProducerSendError) when the record is over max_request_size; or returned by the broker when
#   the topic's max.message.bytes is lower than ours.
# - RecordListTooLargeError: the broker's "batch larger than a log segment".
# - CorruptRecordException: the broker's CRC/validation refusal (also what older brokers answer
#   for a keyless record on a compacted topic).
# A broker refusal fails the whole producer batch of a partition, so a record is only
# dead-lettered after it is refused *alone* (`_Entry.alone`); its batch-mates are re-sent.
# Deliberately not here: UnknownError (UNKNOWN_SERVER_ERROR, and what aiokafka 0.14 turns
# unknown codes such as INVALID_RECORD into) and InvalidTimestampError are what a broker
# fault or a skewed worker clock produce for *every* record: dead-lettering on them would
# empty a healthy stream into the DLQ, so they take the retry-then-exit path.
# RecordTooLargeError is a consumer (fetch) error, never a produce one.
RECORD_REFUSALS: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError, RecordListTooLargeError, CorruptRecordException,
)
_TOO_LARGE: tuple[type[Exception], ...] = (MessageSizeTooLargeError, RecordListTooLargeError)


def kafka_timestamp(event: faust.EventT) -> float | None:
    """The input record's Kafka timestamp in seconds (None when the broker or a test stub has none)."""
    return getattr(event.message, "timestamp", None)


def error_code(item: Outgoing) -> str:
    code = getattr(item.value, "error_code", "unknown")
    return str(getattr(code, "value", code))


def raw_record(event: faust.EventT) -> RawRecord:
    """What the enrichment code needs of a Faust event; headers normalised to (str, bytes) pairs."""
    message = event.message
    raw_headers: Any = message.headers or ()
    pairs = tuple(raw_headers.items()) if isinstance(raw_headers, dict) else tuple(raw_headers)
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((str(k), bytes(v) if v is not None else b"") for k, v in pairs),
    )


async def run_batches(
    stream: faust.StreamT,
    process: Callable[[Sequence[faust.EventT]], Awaitable[None]],
    *,
    max_batch: int,
    max_wait_s: float,
) -> None:
    """Feed micro-batches to `process`; never let a batch be acked unless `process` completed.

    `take_events` acks a batch when the body returns *or raises*, so a failure
    here exits the process instead (offsets stay uncommitted, the batch is
    consumed again after restart), and a shutdown waits for the batch in flight.
    """
    # take_events is on faust.Stream, not on the StreamT protocol Faust types agents with.
    async for events in stream.take_events(max_batch, within=max_wait_s):  # type: ignore[attr-defined]
        batch = asyncio.ensure_future(_process_then_commit(stream, events, process))
        try:
            await asyncio.shield(batch)
        except asyncio.CancelledError:
            await _finish_before_exit(batch)
            raise
        except Exception as exc:  # any failure exits without acking: see docstring
            log.critical("batch_failed_unexpectedly", error=repr(exc), size=len(events), exc_info=True)
            os._exit(EXIT_PUBLISH_FAILED)


async def _process_then_commit(
    stream: faust.StreamT, events: Sequence[faust.EventT], process: Callable[[Sequence[faust.EventT]], Awaitable[None]]
) -> None:
    """Process a batch, then ack and commit its offsets before the next batch starts.

    Faust would otherwise commit on a 2.8 s timer, so a kill -9 redid every batch
    published since the last tick (hundreds of events at full speed); committing
    here bounds the redone work to the one batch in flight (tests/fault). Part of the
    shielded future, so a shutdown that waits for the batch also waits for its commit.
    """
    await process(events)
    for event in events:
        await stream.ack(event)  # take_events acks them again on resume: a no-op for acked events
    consumer = stream.app.consumer
    try:
        # commit() returns False without committing when it only waited for a commit already
        # in flight (the timer's or the other agent's), which may predate these acks.
        if not await consumer.commit():
            await consumer.commit()
    except Exception as exc:  # noqa: BLE001 - offsets stay acked; Faust's timer commits them later
        log.warning("batch_commit_failed", error=repr(exc))


async def _finish_before_exit(batch: asyncio.Future[None]) -> None:
    log.info("shutdown_waiting_for_batch")
    try:
        await asyncio.wait_for(asyncio.shield(batch), timeout=SHUTDOWN_GRACE_S)
    except BaseException as exc:  # noqa: BLE001 - any failure here must not let the batch be acked
        log.critical("batch_unfinished_at_shutdown", error=repr(exc))
        os._exit(EXIT_PUBLISH_FAILED)


def record_refusal(exc: BaseException) -> Exception | None:
    """The `RECORD_REFUSALS` error behind `exc` (Faust wraps send()'s errors in ProducerSendError), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, RECORD_REFUSALS):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


@dataclass(frozen=True)
class DeadLetterRoute:
    """Where `publish_all` sends the dead letter of a record that cannot be published, and its limits."""

    topic: faust.TopicT
    worker: str
    payload_cap_bytes: int = DEFAULT_PAYLOAD_CAP_BYTES
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES  # the producer's max_request_size


@dataclass
class Published:
    """What `publish_all` did besides sending `pending` as given."""

    refused: list[Outgoing] = field(default_factory=list)  # records replaced by a dead letter
    dead_letters: list[Outgoing] = field(default_factory=list)  # those dead letters (acknowledged)

    def kept(self, items: Sequence[Outgoing]) -> list[Outgoing]:
        """`items` minus the refused ones."""
        refused = {id(item) for item in self.refused}
        return [item for item in items if id(item) not in refused]


@dataclass
class _Entry:
    topic: faust.TopicT
    item: Outgoing
    alone: bool = False  # sent on its own (after a batch-level refusal): a refusal is then its own
    refused: Outgoing | None = None  # the record this dead letter replaces


async def publish_all(
    pending: list[tuple[faust.TopicT, Outgoing]], dead_letters: DeadLetterRoute | None = None,
) -> Published:
    """Send every record and wait for the broker's acks.

    With `dead_letters`, a record that is a problem in itself (over the record limit, or
    refused by the broker when sent alone) is replaced by a dead letter for its input;
    other failures are retried, then the process exits without acking (EXIT_PUBLISH_FAILED).
    Without it (records that have no input of their own), every failure takes that path.
    """
    result = Published()
    queue: list[_Entry] = []
    for topic, item in pending:
        if dead_letters is not None and item.size > dead_letters.max_record_bytes:
            queue.append(_too_large(item, dead_letters))
        else:
            queue.append(_Entry(topic, item))
    failures = 0
    while queue:
        outcomes = await _send_round(queue)
        again: list[_Entry] = []
        failed: list[tuple[_Entry, _Failure]] = []
        for entry, outcome in zip(queue, outcomes, strict=True):
            if outcome is None:
                if entry.refused is not None:
                    result.refused.append(entry.refused)
                    result.dead_letters.append(entry.item)
                continue
            follow_up = _after_refusal(entry, outcome, dead_letters)
            if follow_up is not None:
                again.append(follow_up)
            else:
                failed.append((entry, outcome))
        if failed:
            failures += 1
            log.warning("publish_failed", attempt=failures, failed=len(failed), error=repr(failed[0][1].error))
            if failures >= PUBLISH_ATTEMPTS:
                # Offsets of this batch must not be committed: stop hard so it is re-consumed.
                log.critical("publish_gave_up", failed=len(failed), exit_code=EXIT_PUBLISH_FAILED)
                os._exit(EXIT_PUBLISH_FAILED)
            await asyncio.sleep(0.5 * failures)
        queue = again + [entry for entry, _ in failed]
    return result


@dataclass(frozen=True)
class _Failure:
    error: BaseException
    own: bool  # about this record alone: raised by send() itself, or the record was sent alone


async def _send_round(queue: Sequence[_Entry]) -> list[_Failure | None]:
    """Send `queue`: together, then each `alone` entry after the previous one's ack. None = acknowledged."""
    outcomes: list[_Failure | None] = [None] * len(queue)
    waiting: list[tuple[int, Awaitable[Any]]] = []
    for i, entry in enumerate(queue):
        if entry.alone:
            continue
        try:
            waiting.append((i, await _send(entry)))
        except Exception as exc:  # noqa: BLE001 - per record: send() refuses an oversized record synchronously
            outcomes[i] = _Failure(exc, own=True)
    acks = await asyncio.gather(*(future for _, future in waiting), return_exceptions=True)
    for (i, _), ack in zip(waiting, acks, strict=True):
        if isinstance(ack, BaseException):
            outcomes[i] = _Failure(ack, own=False)
    for i, entry in enumerate(queue):
        if entry.alone:
            try:
                await (await _send(entry))
            except Exception as exc:  # noqa: BLE001 - classified by the caller
                outcomes[i] = _Failure(exc, own=True)
    return outcomes


async def _send(entry: _Entry) -> Awaitable[Any]:
    item = entry.item
    return await entry.topic.send(key=item.key, value=item.encoded, headers=list(item.headers), force=True)


def _too_large(item: Outgoing, route: DeadLetterRoute) -> _Entry:
    """The dead letter replacing `item`, which is over the record limit (never sent)."""
    if isinstance(item.value, DeadLetter):  # a letter built elsewhere without the limit: fit it
        return _Entry(route.topic, fit_letter(item, route.max_record_bytes))
    what = _describe(item)
    headers = sum(len(k) + len(v) for k, v in item.headers)
    reason = (f"the {what} for this record is {item.size} bytes serialized (value {len(item.encoded)}, headers "
              f"{headers}), over the producer's record limit of {route.max_record_bytes} bytes "
              "(STREAMNLP_PRODUCER_MAX_REQUEST_BYTES); shrink its metadata or headers, or raise the limit together "
              "with the topics' max.message.bytes")
    letter = refused_output_letter(item, ErrorCode.output_too_large, reason, worker=route.worker,
                                   payload_cap_bytes=route.payload_cap_bytes, max_record_bytes=route.max_record_bytes)
    if letter is None:  # no input to dead-letter: send it and let the producer's refusal stop the worker
        return _Entry(route.topic, item)
    log.warning("output_too_large", what=what, size=item.size, limit=route.max_record_bytes,
                event_id=letter.value.event_id)  # type: ignore[attr-defined]
    return _Entry(route.topic, letter, alone=False, refused=item)


def _after_refusal(entry: _Entry, failure: _Failure, route: DeadLetterRoute | None) -> _Entry | None:
    """What to send next for a record whose send failed; None: retry it as it is (transient)."""
    refusal = record_refusal(failure.error)
    if route is None or refusal is None:
        return None
    if not failure.own:
        # The broker refuses a whole partition batch: only a refusal of the record alone is its own.
        return _Entry(entry.topic, entry.item, alone=True, refused=entry.refused)
    item = entry.item
    if isinstance(item.value, DeadLetter):
        letter: DeadLetter = item.value
        if letter.payload_b64 is None and not item.headers and letter.source_key_b64 is None:
            log.critical("dead_letter_refused", error=repr(refusal), event_id=letter.event_id,
                         fix="check the dead-letter topic's configuration (max.message.bytes, cleanup.policy)")
            return None  # nothing left to drop: a broker or topic problem, not this record's
        return _Entry(entry.topic, smallest_letter(item, route.max_record_bytes), alone=True, refused=entry.refused)
    code = ErrorCode.output_too_large if isinstance(refusal, _TOO_LARGE) else ErrorCode.output_rejected
    reason = (f"the {_describe(item)} for this record was refused ({type(refusal).__name__}: "
              f"{str(refusal)[:200]}) when sent on its own, {item.size} bytes serialized; "
              + ("raise the topic's max.message.bytes or shrink the record" if code is ErrorCode.output_too_large
                 else "check the topic's configuration against this record"))
    letter_out = refused_output_letter(item, code, reason, worker=route.worker,
                                       payload_cap_bytes=route.payload_cap_bytes,
                                       max_record_bytes=route.max_record_bytes)
    if letter_out is None:
        return None
    log.warning("output_refused", error=repr(refusal), event_id=letter_out.value.event_id)  # type: ignore[attr-defined]
    return _Entry(route.topic, letter_out, alone=True, refused=item)


def _describe(item: Outgoing) -> str:
    return {"EnrichedEvent": "enriched event", "SummaryRequest": "summary request", "SummaryEvent": "summary"}.get(
        type(item.value).__name__, type(item.value).__name__)
