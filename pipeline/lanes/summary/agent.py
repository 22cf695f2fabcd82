"""The summary agent: long texts from the internal topic -> summaries, never blocking sentiment.

It runs on its own executor and ONNX thread budget. Each batch: generate
candidates with the small LLM (or skip the model when the backlog is over its
bound, or in extractive mode), score each candidate's faithfulness against its
source, publish the abstractive summary when it passes and the extractive one
otherwise. A generation failure dead-letters the batch's requests (the events'
sentiment was already published); so does a request with nothing to summarise
(blank text) and one whose summary cannot be built or published: a request never
fails its batch. A crash of the generation process (GeneratorCrashed) is transient,
not the texts' fault: their extractive summaries are published instead
(fallback_reason generation_error). Same at-least-once rules as the sentiment agent: offsets are
committed only after every summary is acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import faust
from pydantic import ValidationError

from pipeline.deadletter import (
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_PAYLOAD_CAP_BYTES,
    InvalidEvent,
    Outgoing,
    dead_letter_record,
)
from pipeline.inference.process import GeneratorCrashed
from pipeline.lanes.summary.policy import SummaryDecision, SummaryPolicy, decide
from pipeline.lanes.summary.text import candidate_text
from pipeline.logs import get_logger, mark_sensitive
from pipeline.runtime.batches import (
    DeadLetterRoute,
    elapsed_ms,
    error_code,
    kafka_timestamp,
    publish_all,
    raw_record,
    run_batches,
)
from pipeline.runtime.metrics import WorkerMetrics
from schemas.events import ErrorCode, has_visible_char
from schemas.summaries import (
    Faithfulness,
    SummaryEvent,
    SummaryModel,
    SummaryProcessing,
    SummaryRequest,
)

log = get_logger("streamnlp.summary_agent")

SummarizerMode = Literal["abstractive", "extractive"]


class Generated(Protocol):
    text: str
    prompt_tokens: int
    new_tokens: int
    prompt_truncated: bool


class Generator(Protocol):
    """The part of the LLM summarizer the agent relies on: pipeline.inference.summarizer.Summarizer (in this
    process), or pipeline.inference.process.SummarizerProcess (in child processes at a lower CPU priority)."""

    @property
    def info(self) -> Any: ...

    def summarize(self, texts: Sequence[str], *, time_budget_s: float | None = None) -> Sequence[Generated]: ...


@dataclass(frozen=True)
class SummaryAgentConfig:
    worker: str
    mode: SummarizerMode = "abstractive"
    backlog_max: int = 200
    batch_time_budget_s: float = 30.0
    dlq_payload_cap_bytes: int = DEFAULT_PAYLOAD_CAP_BYTES
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES  # the producer's limit
    concurrency: int = 1  # generation chunks run in parallel (executor threads)


@dataclass
class SummaryStats:
    requests: int = 0
    abstractive: int = 0
    extractive: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    generation_ms_total: float = 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "summary_requests": self.requests, "abstractive": self.abstractive, "extractive": self.extractive,
            "fallbacks": dict(self.fallbacks), "summary_dead_lettered": self.dead_lettered,
            "generation_ms_total": round(self.generation_ms_total, 1),
        }


@dataclass
class _Request:
    event: faust.EventT
    request: SummaryRequest


class SummaryAgent:
    def __init__(
        self,
        *,
        config: SummaryAgentConfig,
        generator: Generator | None,
        policy: SummaryPolicy,
        summaries_topic: faust.TopicT,
        dlq_topic: faust.TopicT,
        executor: ThreadPoolExecutor,
        backlog: Callable[[Sequence[faust.EventT]], int] = lambda events: 0,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        if config.mode == "abstractive" and generator is None:
            raise ValueError("abstractive mode needs a generator")
        self.config = config
        self.generator = generator
        self.policy = policy
        self.summaries_topic = summaries_topic
        self.dlq_topic = dlq_topic
        self.executor = executor
        self.backlog = backlog
        self.stats = SummaryStats()
        self.metrics = metrics if metrics is not None else WorkerMetrics()
        self.dead_letters = DeadLetterRoute(dlq_topic, worker=config.worker, payload_cap_bytes=config.dlq_payload_cap_bytes,
                                            max_record_bytes=config.max_record_bytes)

    async def run(self, stream: faust.StreamT, *, max_batch: int, max_wait_s: float) -> None:
        await run_batches(stream, self.process, max_batch=max_batch, max_wait_s=max_wait_s)

    async def process(self, events: Sequence[faust.EventT]) -> None:
        requests: list[_Request] = []
        dead: list[Outgoing] = []
        for event in events:
            try:
                request = SummaryRequest.model_validate_json(event.message.value or b"")
            except ValidationError as exc:
                dead.append(self._dead_letter(event, ErrorCode.invalid_field, f"malformed summary request: {exc.errors()[0]['msg']}", None))
                continue
            if not has_visible_char(request.text):
                # Nothing to summarise, and no summary to publish (SummaryEvent.summary is non-empty):
                # the same rule as the input's empty_text check.
                dead.append(self._dead_letter(
                    event, ErrorCode.empty_text,
                    "summary request text is empty or whitespace-only after cleaning (only spaces, control or "
                    "zero-width characters); nothing to summarise. Send the text to summarise", request.id))
                continue
            requests.append(_Request(event, request))
        # Generation errors (tokenizer, ORT) may quote a prompt: this task's log lines never carry it.
        mark_sensitive(r.request.text for r in requests)
        self.stats.requests += len(requests)
        self.metrics.batch("summary", len(events))
        backlog = self.backlog(events)
        self.metrics.summary_backlog(backlog)
        forced: str | None = None
        if self.config.mode == "extractive":
            forced = "disabled"
        elif backlog > self.config.backlog_max:
            forced = "backlog"
            log.info("summary_backlog_fallback", backlog=backlog, bound=self.config.backlog_max, size=len(requests))

        generated: list[Generated | None] = [None] * len(requests)
        generation_ms = 0.0
        if requests and forced is None:
            t0 = time.perf_counter()
            requests, generated, failed = await self._generate(requests)
            dead.extend(failed)
            generation_ms = elapsed_ms(t0)
            if requests:
                self.metrics.inference(self.generator.info.name, generation_ms / 1000.0)  # type: ignore[union-attr]
            self.stats.generation_ms_total += generation_ms

        outgoing: list[Outgoing] = []
        for r, candidate in zip(requests, generated, strict=True):
            try:
                summary = self._summary_event(r.request, candidate, forced, batch_size=len(events),
                                              generation_ms=generation_ms)
            except Exception as exc:  # one request's failure is its own, never the batch's
                log.error("summary_build_failed", event_id=r.request.id, error=f"{type(exc).__name__}: {exc}",
                          exc_info=exc)
                dead.append(self._dead_letter(
                    r.event, ErrorCode.summarization_error,
                    f"building the summary failed ({type(exc).__name__}: {str(exc)[:200]}); "
                    "replay the request after fixing the summarizer", r.request.id))
                continue
            outgoing.append(Outgoing(key=summary.id.encode(), value=summary, headers=(), source=raw_record(r.event)))
        published = await publish_all([(self.summaries_topic, o) for o in outgoing] + [(self.dlq_topic, d) for d in dead],
                                      self.dead_letters)
        summaries: list[SummaryEvent] = [o.value for o in published.kept(outgoing)]  # type: ignore[misc]
        dead = dead + published.dead_letters
        self.metrics.dead_lettered("summary", (error_code(d) for d in dead))
        self.metrics.end_to_end("summary", (kafka_timestamp(event) for event in events))
        self.stats.dead_lettered += len(dead)
        for summary in summaries:
            self.metrics.summary_published(summary.method, summary.fallback_reason)
            if summary.method == "abstractive":
                self.stats.abstractive += 1
            else:
                self.stats.extractive += 1
                reason = summary.fallback_reason or "unknown"
                self.stats.fallbacks[reason] = self.stats.fallbacks.get(reason, 0) + 1
        log.debug("summary_batch_done", size=len(events), summaries=len(summaries), dead_lettered=len(dead),
                  generation_ms=round(generation_ms, 1), forced=forced)

    async def _generate(
        self, requests: list[_Request]
    ) -> tuple[list[_Request], list[Generated | None], list[Outgoing]]:
        """Summaries for `requests`, split into `concurrency` chunks that generate in parallel on
        the executor's threads. A chunk whose generation raises dead-letters its own requests
        (summarization_error); the others still publish. Returns (requests that got a summary,
        their summaries in the same order, dead letters)."""
        assert self.generator is not None
        generator = self.generator
        loop = asyncio.get_running_loop()
        parts = max(1, min(self.config.concurrency, len(requests)))
        size = -(-len(requests) // parts)
        chunks = [requests[i : i + size] for i in range(0, len(requests), size)]
        budget = self.config.batch_time_budget_s

        def run(chunk: list[_Request]) -> Sequence[Generated]:
            return generator.summarize([r.request.text for r in chunk], time_budget_s=budget)

        results = await asyncio.gather(
            *(loop.run_in_executor(self.executor, run, chunk) for chunk in chunks), return_exceptions=True
        )
        kept: list[_Request] = []
        generated: list[Generated | None] = []
        dead: list[Outgoing] = []
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):  # CancelledError / KeyboardInterrupt: not ours to record
                    raise result
                if isinstance(result, GeneratorCrashed):
                    # The generation process died (killed, OOM): a transient failure of the machine, not of
                    # these texts. Their extractive summaries (fallback_reason generation_error) serve the
                    # reader better than dead letters; the next batch gets a fresh process.
                    log.error("summary_generator_crashed", size=len(chunk), error=str(result))
                    kept.extend(chunk)
                    generated.extend([None] * len(chunk))
                    continue
                log.error("summary_generation_failed", size=len(chunk), error=f"{type(result).__name__}: {result}",
                          exc_info=result)
                dead.extend(
                    self._dead_letter(r.event, ErrorCode.summarization_error,
                                      f"summary generation failed ({type(result).__name__}: {str(result)[:200]}); "
                                      "replay the request after fixing the summarizer", r.request.id)
                    for r in chunk
                )
                continue
            kept.extend(chunk)
            generated.extend(result)
        return kept, generated, dead

    def _summary_event(
        self, request: SummaryRequest, candidate: Generated | None, forced: str | None, *, batch_size: int,
        generation_ms: float,
    ) -> SummaryEvent:
        decision: SummaryDecision = decide(request.text, candidate_text(candidate), self.policy, forced_reason=forced)
        reason = decision.fallback_reason
        degenerate = None
        if reason and reason.startswith("degenerate"):
            degenerate = reason.partition(":")[2] or None
            reason = "degenerate"
        model = None
        if candidate is not None and self.generator is not None:
            info = self.generator.info
            model = SummaryModel(name=info.name, version=info.version, precision=info.precision)
        return SummaryEvent(
            id=request.id,
            source=request.source,
            summary=decision.text,
            method=decision.method,
            fallback_reason=reason,
            degenerate_reason=degenerate,
            faithfulness=Faithfulness(
                score=decision.faithfulness,
                threshold=self.policy.faithfulness_threshold,
                candidate_score=decision.candidate_faithfulness,
                unsupported=list(decision.unsupported),
            ),
            model=model,
            processing=SummaryProcessing(
                worker=self.config.worker,
                batch_size=batch_size,
                generation_ms=round(generation_ms, 3),
                prompt_tokens=candidate.prompt_tokens if candidate is not None else None,
                new_tokens=candidate.new_tokens if candidate is not None else None,
                prompt_truncated=bool(candidate.prompt_truncated) if candidate is not None else False,
                requested_at=request.requested_at,
                summarized_at=datetime.now(UTC),
            ),
        )

    def _dead_letter(self, event: faust.EventT, code: ErrorCode, reason: str, event_id: str | None) -> Outgoing:
        return dead_letter_record(
            raw_record(event), InvalidEvent(code, reason, event_id),
            worker=self.config.worker, payload_cap_bytes=self.config.dlq_payload_cap_bytes,
            max_record_bytes=self.config.max_record_bytes,
        )


def consumer_backlog(app: faust.App) -> Callable[[Sequence[faust.EventT]], int]:
    """Records waiting behind this batch in its partitions (highwater - offset), summed."""

    def backlog(events: Sequence[faust.EventT]) -> int:
        last: dict[Any, int] = {}
        for event in events:
            tp = event.message.tp
            last[tp] = max(last.get(tp, -1), event.message.offset)
        total = 0
        for tp, offset in last.items():
            try:
                highwater = app.consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - unknown highwater means no evidence of backlog
                continue
            if highwater is not None:
                total += max(0, int(highwater) - offset - 1)
        return total

    return backlog
