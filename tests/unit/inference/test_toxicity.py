"""pipeline/inference/toxicity.py on the built toxicity-linear model: ONNX only, labels, order, batching."""

from __future__ import annotations

import json

import pytest

from pipeline.inference.sentiment import ModelLoadError
from pipeline.inference.toxicity import ToxicityClassifier, ToxicityConfig, built_precisions

pytestmark = pytest.mark.needs_model


def test_built_model_labels_the_obvious_cases(toxicity_model_dir) -> None:
    classifier = ToxicityClassifier.load(toxicity_model_dir)
    texts = ["What a lovely, gentle film.", "You are a fucking idiot.", "Ça va très bien, merci", ""]
    predictions = classifier.predict(texts)
    assert [p.label for p in predictions[:2]] == ["clean", "offensive"]
    for p in predictions:
        expected = p.offensive_probability if p.label == "offensive" else 1 - p.offensive_probability
        assert 0.5 <= p.score <= 1.0 and p.score == pytest.approx(expected, abs=1e-6)
    assert classifier.languages == frozenset({"en"})
    assert classifier.info.name == "toxicity-linear" and classifier.info.version.startswith("1.0.0+")
    assert built_precisions(toxicity_model_dir) == ["fp32"]
    manifest = json.loads((toxicity_model_dir / "manifest.json").read_text())
    assert manifest["agreement"]["decision_disagreements"] == 0 and manifest["agreement"]["n"] >= 1000


def test_batches_keep_order_and_threshold_moves_the_decision(toxicity_model_dir) -> None:
    texts = [f"review number {i} is fine" if i % 3 else f"shut up you idiot {i}" for i in range(700)]
    small = ToxicityClassifier.load(toxicity_model_dir, ToxicityConfig(batch_size=64)).predict(texts)
    whole = ToxicityClassifier.load(toxicity_model_dir, ToxicityConfig(batch_size=1024)).predict(texts)
    assert small == whole and len(small) == 700
    assert [p.label for p in small[:3]] == ["offensive", "clean", "clean"]
    dumb = ToxicityClassifier.load(toxicity_model_dir).predict(["what a dumb plot"])[0]  # P(offensive) ~0.9
    assert dumb.label == "offensive" and 0.5 < dumb.offensive_probability < 0.98
    strict = ToxicityClassifier.load(toxicity_model_dir, ToxicityConfig(threshold=0.98)).predict(["what a dumb plot"])[0]
    assert strict.label == "clean" and strict.offensive_probability == dumb.offensive_probability


def test_missing_or_broken_model_fails_with_the_fix(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="streamnlp models build toxicity-linear"):
        ToxicityClassifier.load(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"not onnx")
    (tmp_path / "config.json").write_text('{"labels": ["clean", "offensive"]}')
    with pytest.raises(ModelLoadError, match="cannot load"):
        ToxicityClassifier.load(tmp_path)
