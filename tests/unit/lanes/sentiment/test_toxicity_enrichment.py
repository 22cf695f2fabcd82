"""Toxicity in the sentiment lane's micro-batch: labels on every event, the setting that turns it off, the gate."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import orjson
import pytest

from pipeline.inference.language import LanguageGate
from pipeline.lanes.sentiment.agent import SentimentAgent
from pipeline.lanes.sentiment.enrichment import BatchEnricher, EnricherConfig
from tests.doubles import LengthClassifier, MemoryTopic, WordToxicity, text_events
from tests.paths import REPO

SCHEMA = json.loads((REPO / "schemas" / "enriched_event.schema.json").read_text())
ARABIC = "الخدمة ممتازة والتوصيل سريع جدا يا غبي"
SPANISH = "El servicio fue excelente y la comida deliciosa, volveremos pronto."


class _CountingClassifier(LengthClassifier):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict(self, texts):  # type: ignore[no-untyped-def]
        self.seen.extend(texts)
        return super().predict(texts)


def _agent(toxicity: WordToxicity | None, gate: LanguageGate | None = None,
           classifier: LengthClassifier | None = None) -> tuple[SentimentAgent, MemoryTopic]:
    out = MemoryTopic()
    agent = SentimentAgent(
        enricher=BatchEnricher(EnricherConfig(worker="test")), classifier=classifier or LengthClassifier(),
        output_topic=out, dlq_topic=MemoryTopic(), executor=ThreadPoolExecutor(max_workers=1),  # type: ignore[arg-type]
        gate=gate, toxicity=toxicity,
    )
    return agent, out


def _published(out: MemoryTopic) -> dict[str, dict]:
    events = [orjson.loads(value) for _, value, _ in out.records]
    for event in events:
        jsonschema.validate(event, SCHEMA, format_checker=jsonschema.FormatChecker())
    return {event["id"]: event for event in events}


async def test_every_event_gets_a_toxicity_label_in_the_same_batch() -> None:
    toxicity = WordToxicity()
    agent, out = _agent(toxicity)
    await agent.process(text_events(["what a lovely film", "you absolute idiot", "fine"]))  # type: ignore[arg-type]
    events = _published(out)
    assert toxicity.seen == ["what a lovely film", "you absolute idiot", "fine"], "one call for the whole batch"
    assert events["e1"]["toxicity"] == {"label": "offensive", "score": 0.9, "model": "stub-toxicity",
                                        "model_version": "0.1"}
    assert events["e0"]["toxicity"]["label"] == "clean" and events["e0"]["toxicity_skipped_reason"] is None
    assert all(e["sentiment"] is not None and e["schema_version"] == "1.3" for e in events.values())
    assert agent.stats.snapshot()["offensive"] == 1


async def test_toxicity_off_publishes_null_with_reason_disabled() -> None:
    agent, out = _agent(None)
    await agent.process(text_events(["you absolute idiot"]))  # type: ignore[arg-type]
    event = _published(out)["e0"]
    assert event["toxicity"] is None and event["toxicity_skipped_reason"] == "disabled"
    assert event["sentiment"]["label"] == "positive"


async def test_the_language_gate_keeps_non_english_text_from_the_toxicity_model() -> None:
    toxicity, classifier = WordToxicity(), _CountingClassifier()
    agent, out = _agent(toxicity, LanguageGate(), classifier)
    await agent.process(text_events([ARABIC, SPANISH, "idiot"]))  # type: ignore[arg-type]
    events = _published(out)
    assert toxicity.seen == ["idiot"] and classifier.seen == ["idiot"]
    for gated in ("e0", "e1"):
        assert events[gated]["toxicity"] is None
        assert events[gated]["toxicity_skipped_reason"] == "unsupported_language"
        assert events[gated]["sentiment_skipped_reason"] == "unsupported_language"
    # Too short to detect reliably: scored, like sentiment.
    assert events["e2"]["toxicity"]["label"] == "offensive"


async def test_the_gate_follows_the_toxicity_models_own_languages() -> None:
    """A toxicity model that handles Spanish scores it while the English-only sentiment model is gated."""
    toxicity = WordToxicity(languages=("en", "es"))
    agent, out = _agent(toxicity, LanguageGate())
    await agent.process(text_events([SPANISH]))  # type: ignore[arg-type]
    event = _published(out)["e0"]
    assert event["sentiment"] is None and event["toxicity"]["label"] == "clean"


class _BrokenToxicity(WordToxicity):
    def predict(self, texts):  # type: ignore[no-untyped-def]
        if any("poison" in t for t in texts):
            raise ValueError("graph failed")
        return super().predict(texts)


async def test_a_toxicity_failure_dead_letters_only_the_event_that_caused_it() -> None:
    out, dlq = MemoryTopic(), MemoryTopic()
    agent = SentimentAgent(
        enricher=BatchEnricher(EnricherConfig(worker="test")), classifier=LengthClassifier(), output_topic=out,
        dlq_topic=dlq, executor=ThreadPoolExecutor(max_workers=1), toxicity=_BrokenToxicity(),  # type: ignore[arg-type]
    )
    await agent.process(text_events(["fine", "poison pill", "idiot"]))  # type: ignore[arg-type]
    assert sorted(k for k, _, _ in out.records) == [b"e0", b"e2"]
    letter = orjson.loads(dlq.records[0][1])
    assert letter["error_code"] == "inference_error" and letter["event_id"] == "e1"


@pytest.mark.parametrize("enabled", [True, False])
def test_the_setting_decides_whether_a_toxicity_model_is_loaded(enabled: bool, tmp_path, monkeypatch) -> None:
    from pipeline.inference.sentiment import ModelLoadError
    from pipeline.service.worker import load_toxicity
    from pipeline.settings import load_settings

    monkeypatch.setenv("STREAMNLP_TOXICITY_ENABLED", str(enabled).lower())
    monkeypatch.setenv("STREAMNLP_TOXICITY_MODEL_DIR", str(tmp_path / "missing"))
    if enabled:
        with pytest.raises(ModelLoadError, match="STREAMNLP_TOXICITY_ENABLED=false"):
            load_toxicity(load_settings())
    else:
        assert load_toxicity(load_settings()) is None
