"""SummaryAgent batch logic with in-memory topics and a scripted generator."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest

from tests.doubles import (
    Generated,
    MemoryTopic,
    ScriptedGenerator,
    summary_agent,
    summary_request_events,
)

BUS_SOURCE = (
    "Metro Transit will launch three new bus routes on June 2, connecting the Eastgate neighborhood to the "
    "hospital and the central station. The routes will run every 12 minutes during rush hour. Fares stay at $2.50."
)


class RendezvousGenerator(ScriptedGenerator):
    """Each summarize() call waits until `parties` calls are inside at once: it only returns if
    the agent really runs its chunks in parallel (a serial agent times out the barrier)."""

    def __init__(self, outputs: dict[str, str], parties: int, fail_on: str | None = None) -> None:
        import threading

        super().__init__(outputs)
        self.barrier = threading.Barrier(parties, timeout=10)
        self.fail_on = fail_on
        self.batches: list[list[str]] = []

    def summarize(self, texts: Sequence[str], *, time_budget_s: float | None = None) -> list[Generated]:
        self.batches.append(list(texts))
        self.barrier.wait()
        if self.fail_on and any(t.startswith(self.fail_on) for t in texts):
            raise RuntimeError("ORT failed")
        return super().summarize(texts, time_budget_s=time_budget_s)


def _published(topic: MemoryTopic) -> list[dict]:
    return [orjson.loads(value) for _, value, _ in topic.records]


async def test_faithful_candidate_is_published_as_abstractive() -> None:
    out = MemoryTopic()
    gen = ScriptedGenerator({BUS_SOURCE[:20]: "Metro Transit will launch three new bus routes on June 2."})
    await summary_agent(gen, out=out).process(summary_request_events([BUS_SOURCE]))  # type: ignore[arg-type]
    (summary,) = _published(out)
    assert summary["method"] == "abstractive" and summary["fallback_reason"] is None
    assert summary["faithfulness"]["score"] >= 0.75
    assert summary["model"]["name"] == "tiny-llm"
    assert summary["id"] == "r0" and out.records[0][0] == b"r0"


async def test_the_33_bus_routes_hallucination_is_replaced_by_extractive() -> None:
    out = MemoryTopic()
    gen = ScriptedGenerator({BUS_SOURCE[:20]: "Metro Transit will launch 33 bus routes on June 2."})
    await summary_agent(gen, out=out).process(summary_request_events([BUS_SOURCE]))  # type: ignore[arg-type]
    (summary,) = _published(out)
    assert summary["method"] == "extractive" and summary["fallback_reason"] == "unfaithful"
    assert "33" in summary["faithfulness"]["unsupported"]
    assert summary["summary"] in BUS_SOURCE or all(s.strip() in BUS_SOURCE for s in summary["summary"].split(". "))


async def test_backlog_over_bound_sheds_to_extractive_without_running_the_model() -> None:
    out = MemoryTopic()
    gen = ScriptedGenerator({})
    await summary_agent(gen, backlog=50, out=out).process(summary_request_events([BUS_SOURCE]))  # type: ignore[arg-type]
    (summary,) = _published(out)
    assert gen.calls == 0
    assert summary["method"] == "extractive" and summary["fallback_reason"] == "backlog"
    assert summary["model"] is None


async def test_generation_error_dead_letters_the_requests() -> None:
    out, dlq = MemoryTopic(), MemoryTopic()
    agent = summary_agent(ScriptedGenerator(RuntimeError("ORT failed")), out=out, dlq=dlq)
    await agent.process(summary_request_events([BUS_SOURCE, BUS_SOURCE + " More."]))  # type: ignore[arg-type]
    assert out.records == []
    letters = _published(dlq)
    assert [letter["error_code"] for letter in letters] == ["summarization_error"] * 2
    assert {letter["event_id"] for letter in letters} == {"r0", "r1"}
    assert letters[0]["source_topic"] == "texts.summarize"


async def test_a_crashed_generation_process_publishes_extractive_summaries_not_dead_letters() -> None:
    from pipeline.inference.process import GeneratorCrashed

    out, dlq = MemoryTopic(), MemoryTopic()
    agent = summary_agent(ScriptedGenerator(GeneratorCrashed("the summarizer process (pid 7) died during generation "
                                                             "(killed by SIGKILL)")), out=out, dlq=dlq)
    await agent.process(summary_request_events([BUS_SOURCE, BUS_SOURCE + " More."]))  # type: ignore[arg-type]
    assert dlq.records == []
    summaries = _published(out)
    assert [s["id"] for s in summaries] == ["r0", "r1"]
    assert all(s["method"] == "extractive" and s["fallback_reason"] == "generation_error" for s in summaries)
    assert all(s["model"] is None and s["summary"] for s in summaries)
    assert agent.stats.fallbacks == {"generation_error": 2}


async def test_extractive_mode_never_needs_a_model() -> None:
    out = MemoryTopic()
    await summary_agent(None, mode="extractive", out=out).process(summary_request_events([BUS_SOURCE]))  # type: ignore[arg-type]
    (summary,) = _published(out)
    assert summary["method"] == "extractive" and summary["faithfulness"]["score"] == 1.0


def test_abstractive_mode_without_generator_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        summary_agent(None, mode="abstractive")


def test_a_sentence_cut_by_the_token_cap_is_dropped() -> None:
    from pipeline.lanes.summary.text import complete_sentences

    assert complete_sentences("The room smelled of smoke. The pool advertised on the") == "The room smelled of smoke."
    assert complete_sentences("It costs $2.50 a ride. Fares") == "It costs $2.50 a ride."
    assert complete_sentences("no sentence end at all") == ""
    assert complete_sentences('He said "stop." Then') == 'He said "stop."'


async def test_concurrency_splits_the_batch_into_parallel_generations_and_isolates_a_failing_chunk() -> None:
    texts = [f"Source number {i}. " + BUS_SOURCE for i in range(4)]
    generator = RendezvousGenerator({t[:20]: t.split(". ", 1)[1].split(". ")[0] + "." for t in texts},
                                    parties=2, fail_on="Source number 3")
    out, dlq = MemoryTopic(), MemoryTopic()
    agent = summary_agent(generator, out=out, dlq=dlq, concurrency=2)
    await agent.process(summary_request_events(texts))  # type: ignore[arg-type]
    assert sorted(len(b) for b in generator.batches) == [2, 2]
    # the chunk with r2, r3 failed: only its requests are dead-lettered, r0 and r1 are published
    assert sorted(s["id"] for s in _published(out)) == ["r0", "r1"]
    assert sorted(d["event_id"] for d in _published(dlq)) == ["r2", "r3"]


@pytest.mark.parametrize("mode", ["abstractive", "extractive"])
async def test_a_request_blank_after_cleaning_is_dead_lettered_and_the_batch_goes_on(mode: str) -> None:
    # Before: the extractive fallback of "   " is "", SummaryEvent refused it and the batch
    # raised (exit 70, re-consumed, for ever); in abstractive mode the model was fed it too.
    gen = ScriptedGenerator({BUS_SOURCE[:20]: "Metro Transit will launch three new bus routes on June 2."})
    out, dlq = MemoryTopic(), MemoryTopic()
    agent = summary_agent(gen if mode == "abstractive" else None, mode=mode, out=out, dlq=dlq)
    await agent.process(summary_request_events([" \n\t " * 120, BUS_SOURCE, "\u200b\u2060\x00\ufeff" * 120]))  # type: ignore[arg-type]
    assert [s["id"] for s in _published(out)] == ["r1"]
    letters = _published(dlq)
    assert sorted(letter["event_id"] for letter in letters) == ["r0", "r2"]
    assert {letter["error_code"] for letter in letters} == {"empty_text"}
    assert all(letter["source_topic"] == "texts.summarize" and "after cleaning" in letter["reason"] for letter in letters)
    assert agent.stats.snapshot()["summary_dead_lettered"] == 2


async def test_a_summary_that_cannot_be_built_dead_letters_only_its_request(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.lanes.summary.agent as agent_module

    real_decide = agent_module.decide

    def decide(source: str, *args: object, **kwargs: object) -> object:
        if source.startswith("BOOM"):
            raise ValueError("policy bug")
        return real_decide(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(agent_module, "decide", decide)
    out, dlq = MemoryTopic(), MemoryTopic()
    await summary_agent(None, mode="extractive", out=out, dlq=dlq).process(  # type: ignore[arg-type]
        summary_request_events([BUS_SOURCE, "BOOM. " + BUS_SOURCE]))
    assert [s["id"] for s in _published(out)] == ["r0"]
    (letter,) = _published(dlq)
    assert letter["event_id"] == "r1" and letter["error_code"] == "summarization_error"
    assert "ValueError: policy bug" in letter["reason"]
