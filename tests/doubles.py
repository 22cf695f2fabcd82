"""Stand-ins shared by several tests: models, Faust events and topics held in memory.

Test modules import their doubles from here, never from each other (tests/unit/test_test_layout.py):
a test module that imports another drags that module's tests and fixtures along and breaks when it moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.lanes.summary.agent import SummaryAgent, SummaryAgentConfig
from pipeline.lanes.summary.policy import SummaryPolicy
from schemas.events import to_json_bytes
from schemas.summaries import SummaryRequest

# --- sentiment model -------------------------------------------------------------------------


@dataclass(frozen=True)
class StubPrediction:
    label: str
    score: float
    truncated: bool


@dataclass(frozen=True)
class StubModelInfo:
    name: str = "stub-model"
    version: str = "9.9"


class LengthClassifier:
    """Deterministic stand-in: long texts are 'positive'."""

    info = StubModelInfo()

    def predict(self, texts: Sequence[str]) -> list[StubPrediction]:
        return [StubPrediction("positive" if len(t) > 10 else "negative", 0.75, len(t) > 50) for t in texts]


class PoisonAwareClassifier:
    """Fails any batch containing the word 'poison', like a model choking on one input."""

    info = StubModelInfo()

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, texts: Sequence[str]) -> list[StubPrediction]:
        self.calls.append(len(texts))
        if any("poison" in t for t in texts):
            raise ValueError("kernel failed")
        return [StubPrediction("positive", 0.9, False) for _ in texts]


@dataclass(frozen=True)
class StubToxicityPrediction:
    label: str
    score: float


class WordToxicity:
    """Toxicity stand-in: a text with a word from `words` is offensive; records what it was asked to score."""

    info = StubModelInfo(name="stub-toxicity", version="0.1")

    def __init__(self, words: Sequence[str] = ("idiot", "moron"), languages: Sequence[str] = ("en",)) -> None:
        self.words = tuple(words)
        self.languages = frozenset(languages)
        self.seen: list[str] = []

    def predict(self, texts: Sequence[str]) -> list[StubToxicityPrediction]:
        self.seen.extend(texts)
        return [StubToxicityPrediction("offensive", 0.9) if any(w in t.lower() for w in self.words)
                else StubToxicityPrediction("clean", 0.8) for t in texts]


# --- Faust events and topics -----------------------------------------------------------------


@dataclass
class FakeMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class FakeEvent:
    message: FakeMessage


def text_events(texts: list[str]) -> list[FakeEvent]:
    """One input event per text, ids e0, e1, ... in order."""
    return [FakeEvent(FakeMessage("texts", 0, i, None, orjson.dumps({"id": f"e{i}", "text": t}), [("trace", b"x")]))
            for i, t in enumerate(texts)]


class MemoryTopic:
    """A Faust topic's `send`, kept in memory; the first `fail_first` sends fail like an unreachable broker."""

    def __init__(self, fail_first: int = 0) -> None:
        self.records: list[tuple[bytes | None, bytes, list]] = []
        self.fail_first = fail_first

    async def send(self, *, key: Any, value: bytes, headers: list, force: bool) -> asyncio.Future:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        if self.fail_first > 0:
            self.fail_first -= 1
            future.set_exception(ConnectionError("broker unavailable"))
        else:
            self.records.append((key, value, headers))
            future.set_result(None)
        return future


# --- summarizer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    text: str
    prompt_tokens: int = 100
    new_tokens: int = 20
    prompt_truncated: bool = False
    stop_reason: str = "eos"


@dataclass(frozen=True)
class StubGeneratorInfo:
    name: str = "tiny-llm"
    version: str = "0.1"
    precision: str = "int8"


class ScriptedGenerator:
    """Answers each text with `outputs[text[:20]]`, or raises `outputs` when it is an exception."""

    info = StubGeneratorInfo()

    def __init__(self, outputs: dict[str, str] | Exception) -> None:
        self.outputs = outputs
        self.calls = 0

    def summarize(self, texts: Sequence[str], *, time_budget_s: float | None = None) -> list[Generated]:
        self.calls += 1
        if isinstance(self.outputs, Exception):
            raise self.outputs
        return [Generated(self.outputs[t[:20]]) for t in texts]


def summary_request_events(texts: list[str]) -> list[FakeEvent]:
    now = datetime.now(UTC)
    return [FakeEvent(FakeMessage("texts.summarize", 0, i, f"r{i}".encode(),
                                  to_json_bytes(SummaryRequest(id=f"r{i}", text=t, source="news", requested_at=now))))
            for i, t in enumerate(texts)]


def summary_agent(generator: ScriptedGenerator | None, *, mode: str = "abstractive", backlog: int = 0,
                  out: MemoryTopic | None = None, dlq: MemoryTopic | None = None, concurrency: int = 1) -> SummaryAgent:
    """A real SummaryAgent on in-memory topics."""
    return SummaryAgent(
        config=SummaryAgentConfig(worker="w", mode=mode, backlog_max=10, concurrency=concurrency),  # type: ignore[arg-type]
        generator=generator, policy=SummaryPolicy(faithfulness_threshold=0.75),
        summaries_topic=out or MemoryTopic(), dlq_topic=dlq or MemoryTopic(),  # type: ignore[arg-type]
        executor=ThreadPoolExecutor(max_workers=concurrency), backlog=lambda events: backlog,
    )
