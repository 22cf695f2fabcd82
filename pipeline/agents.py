"""The sentiment agent: micro-batches from Kafka through the enricher and back out.

Delivery is at-least-once. Faust's `take_events` acks a batch's events (making
their offsets committable) when the agent body returns control, so the body only
returns after every enriched record and dead letter of the batch has been
acknowledged by the broker. Cancellation (shutdown) waits for the batch in
flight; if it cannot be published the process exits without acking, so the
batch is consumed again after a restart instead of being lost.

Publishing tells two kinds of failure apart. One that is a property of the record
(its output is over the producer's size limit, or the broker refuses it even when
sent alone: `RECORD_REFUSALS`) dead-letters that record's input and the batch moves
on; retrying or restarting could never get it through. Anything else (broker down,
timeouts) is retried, then the worker exits without committing.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Sequence

import faust
from aiokafka.errors import CorruptRecordException, MessageSizeTooLargeError, RecordListTooLargeError

from pipeline.deadletter import (
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_PAYLOAD_CAP_BYTES,
    fit_letter,
    refused_output_letter,
    smallest_letter,
)
from pipeline.enrichment import BatchEnricher, Classifier, Outgoing, RawRecord, Scored, elapsed_ms, score_texts
from pipeline.language import LanguageGate
from pipeline.logs import get_logger
from pipeline.metrics import WorkerMetrics
from pipeline.shadow import ShadowItem, ShadowScorer
from schemas.events import DeadLetter, EnrichedEvent, ErrorCode

log = get_logger("streamnlp.agent")

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


@dataclass
class AgentStats:
    consumed: int = 0
    enriched: int = 0
    dead_lettered: int = 0
    sentiment_skipped: int = 0
    summary_requests: int = 0
    batches: int = 0
    inference_ms_total: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def snapshot(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "enriched": self.enriched,
            "dead_lettered": self.dead_lettered,
            "sentiment_skipped": self.sentiment_skipped,
            "summary_requests": self.summary_requests,
            "batches": self.batches,
            "mean_batch": round(self.consumed / self.batches, 1) if self.batches else 0.0,
            "inference_ms_total": round(self.inference_ms_total, 1),
            "uptime_s": round(time.monotonic() - self.started, 1),
        }


def kafka_timestamp(event: faust.EventT) -> float | None:
    """The input record's Kafka timestamp in seconds (None when the broker or a test stub has none)."""
    return getattr(event.message, "timestamp", None)


def error_code(item: Outgoing) -> str:
    code = getattr(item.value, "error_code", "unknown")
    return str(getattr(code, "value", code))


def raw_record(event: faust.EventT) -> RawRecord:
    """What the enrichment code needs of a Faust event; headers normalised to (str, bytes) pairs."""
    message = event.message
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = tuple(headers.items())
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple((str(k), bytes(v) if v is not None else b"") for k, v in headers),
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
    async for events in stream.take_events(max_batch, within=max_wait_s):
        batch = asyncio.ensure_future(_process_then_commit(stream, events, process))
        try:
            await asyncio.shield(batch)
        except asyncio.CancelledError:
            await _finish_before_exit(batch)
            raise
        except Exception as exc:  # noqa: BLE001 - see docstring
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
        for entry, outcome in zip(queue, outcomes):
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
    for (i, _), ack in zip(waiting, acks):
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


class SentimentAgent:
    """Owns one batch at a time: decode, classify off the loop, publish, await acks."""

    def __init__(
        self,
        *,
        enricher: BatchEnricher,
        classifier: Classifier,
        output_topic: faust.TopicT,
        dlq_topic: faust.TopicT,
        executor: ThreadPoolExecutor,
        requests_topic: faust.TopicT | None = None,
        metrics: WorkerMetrics | None = None,
        gate: LanguageGate | None = None,
        shadow: ShadowScorer | None = None,
    ) -> None:
        self.enricher = enricher
        self.classifier = classifier
        self.gate = gate
        self.shadow = shadow
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic
        self.requests_topic = requests_topic
        self.executor = executor
        self.stats = AgentStats()
        config = enricher.config
        self.dead_letters = DeadLetterRoute(dlq_topic, worker=config.worker, payload_cap_bytes=config.dlq_payload_cap_bytes,
                                            max_record_bytes=config.max_record_bytes)
        # A private registry when none is given: tests and tools need not care about metrics.
        self.metrics = metrics if metrics is not None else WorkerMetrics()

    async def run(self, stream: faust.StreamT, *, max_batch: int, max_wait_s: float) -> None:
        await run_batches(stream, self.process, max_batch=max_batch, max_wait_s=max_wait_s)

    async def process(self, events: Sequence[faust.EventT]) -> None:
        ingested_at = datetime.now(timezone.utc)
        started = time.perf_counter()
        records = [raw_record(event) for event in events]
        # Pairs with batch_done: a batch_started without its batch_done is the batch in flight
        # (what to look for when a worker seems stuck; the SIGTERM fault test waits for it).
        log.debug("batch_started", size=len(records))
        self.metrics.events_consumed(len(records))
        self.metrics.batch("sentiment", len(records))
        valid, dead = self.enricher.split(records)
        enriched: list[Outgoing] = []
        inference_ms = 0.0
        if valid:
            loop = asyncio.get_running_loop()
            texts = [item.event.text for item in valid]
            t0 = time.perf_counter()
            try:
                scored = await loop.run_in_executor(self.executor, self._score, texts)
                inference_ms = elapsed_ms(t0)
                self.metrics.inference(self.classifier.info.name, inference_ms / 1000.0)
                enriched = self._package(valid, scored, batch_size=len(records), inference_ms=inference_ms,
                                         ingested_at=ingested_at)
            except Exception:
                log.exception("batch_inference_failed", size=len(valid))
                enriched, failed = await self._classify_one_by_one(valid, ingested_at, len(records))
                dead.extend(failed)
                inference_ms = elapsed_ms(t0)
        t_pub = time.perf_counter()
        enriched_ids = {item.key for item in enriched}
        requests = [r for r in self.enricher.summary_requests(valid) if r.key in enriched_ids]
        pending = [(self.output_topic, item) for item in enriched] + [(self.dlq_topic, item) for item in dead]
        if self.requests_topic is not None:
            pending += [(self.requests_topic, item) for item in requests]
            self.stats.summary_requests += len(requests)
        published = await publish_all(pending, self.dead_letters)
        enriched = published.kept(enriched)
        dead = dead + published.dead_letters
        self._observe_enriched(enriched)
        self.metrics.events_enriched(len(enriched))
        self.metrics.dead_lettered("sentiment", (error_code(item) for item in dead))
        self.metrics.end_to_end("sentiment", (kafka_timestamp(event) for event in events))
        self.stats.consumed += len(records)
        self.stats.enriched += len(enriched)
        self.stats.dead_lettered += len(dead)
        self.stats.batches += 1
        self.stats.inference_ms_total += inference_ms
        log.debug(
            "batch_done", size=len(records), enriched=len(enriched), dead_lettered=len(dead),
            inference_ms=round(inference_ms, 1), publish_ms=round(elapsed_ms(t_pub), 1),
            total_ms=round(elapsed_ms(started), 1),
        )

    def _score(self, texts: Sequence[str]) -> Scored:
        return score_texts(self.classifier, self.gate, texts)

    def _package(self, valid: Sequence[Any], scored: Scored, *, batch_size: int, inference_ms: float,
                 ingested_at: datetime) -> list[Outgoing]:
        return self.enricher.package(
            valid, scored.predictions, self.classifier.info, languages=scored.languages,
            batch_size=batch_size, inference_ms=inference_ms, ingested_at=ingested_at,
        )

    def _observe_enriched(self, enriched: Sequence[Outgoing]) -> None:
        """After the acks: language and skip counters, and the shadow model's sample (never raises into the batch)."""
        try:
            self._count_and_shadow([item.value for item in enriched if isinstance(item.value, EnrichedEvent)])
        except Exception as exc:  # noqa: BLE001 - the batch is published; bookkeeping must not fail it
            log.warning("enriched_bookkeeping_failed", error=repr(exc))

    def _count_and_shadow(self, events: list[EnrichedEvent]) -> None:
        skipped = [e.sentiment_skipped_reason for e in events if e.sentiment is None and e.sentiment_skipped_reason]
        for reason in set(skipped):
            self.metrics.sentiment_skipped(reason, skipped.count(reason))
        self.stats.sentiment_skipped += len(skipped)
        self.metrics.languages_detected(
            (e.language.code if e.language.reliable else "und") for e in events if e.language is not None)
        if self.shadow is not None:
            self.shadow.offer([ShadowItem(e.id, e.text, e.sentiment.label) for e in events if e.sentiment is not None])

    async def _classify_one_by_one(self, valid: Sequence[Any], ingested_at: datetime, batch_size: int) -> tuple[list[Outgoing], list[Outgoing]]:
        """Isolate the event that broke the batch so the rest still gets enriched."""
        loop = asyncio.get_running_loop()
        enriched: list[Outgoing] = []
        failed: list[Outgoing] = []
        for item in valid:
            t0 = time.perf_counter()
            try:
                scored = await loop.run_in_executor(self.executor, self._score, [item.event.text])
            except Exception as exc:  # noqa: BLE001 - recorded in the dead letter
                failed.append(self.enricher.inference_failed(item, exc))
                continue
            self.metrics.inference(self.classifier.info.name, elapsed_ms(t0) / 1000.0)
            enriched.extend(self._package([item], scored, batch_size=batch_size, inference_ms=elapsed_ms(t0),
                                          ingested_at=ingested_at))
        return enriched, failed
