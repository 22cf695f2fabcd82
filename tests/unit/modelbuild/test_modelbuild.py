"""Model build recipes: export layout, manifest, atomic install, offline failures, data split."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tomllib

import pytest

from pipeline.modelbuild import (
    ModelBuildError,
    StderrProgress,
    build_default_models,
    export_sequence_classifier,
    is_built,
    sha256_file,
)
from pipeline.modelbuild import sentiment as sentiment_recipe
from tests.fixtures_models import tiny_distilbert_hf
from tests.paths import REPO

REPO_ROOT = REPO


def test_export_layout_and_manifest(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert names == {"model.onnx", "model_int8.onnx", "tokenizer.json", "config.json", "manifest.json"}
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    assert manifest["name"] == "tiny-distilbert"
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["held_out"]["accuracy_fp32"] is None
    assert manifest["source"]["kind"] == "local-directory"
    for name, digest in manifest["files"].items():
        assert sha256_file(tiny_model_dir / name) == digest
    assert (tiny_model_dir / "model_int8.onnx").stat().st_size < (tiny_model_dir / "model.onnx").stat().st_size
    # no half-built leftovers next to the installed model
    assert not [p for p in tiny_model_dir.parent.iterdir() if ".building-" in p.name]


def test_export_replaces_existing_atomically(tmp_path):
    hf = tiny_distilbert_hf(tmp_path / "hf")
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old build")
    export_sequence_classifier(hf, out, quantize=False, name="t", version="2")
    assert not (out / "stale.txt").exists()
    assert not (out / "model_int8.onnx").exists()
    assert json.loads((out / "manifest.json").read_text())["version"] == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "model"]


def test_export_failure_leaves_nothing(tmp_path):
    src = tmp_path / "not-a-model"
    src.mkdir()
    with pytest.raises(ModelBuildError, match="config.json"):
        export_sequence_classifier(src, tmp_path / "out")
    with pytest.raises(ModelBuildError, match="does not exist"):
        export_sequence_classifier(tmp_path / "missing", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-model"]


def test_hub_id_offline_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelBuildError, match="online-only"):
        export_sequence_classifier("distilbert-base-uncased-finetuned-sst-2-english", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_build_default_models_skips_built(tmp_path, monkeypatch):
    from pipeline.modelbuild import summarizer as summarizer_recipe
    from pipeline.modelbuild import toxicity as toxicity_recipe

    target = tmp_path / sentiment_recipe.DEFAULT_MODEL_NAME
    summarizer = tmp_path / summarizer_recipe.SUMMARIZER_MODEL_NAME
    toxicity = tmp_path / toxicity_recipe.TOXICITY_MODEL_NAME
    for path in (target, summarizer, toxicity):
        path.mkdir()
        assert not is_built(path)
        (path / "manifest.json").write_text("{}")

    def boom(*a, **k):
        raise AssertionError("must not rebuild a built model")

    monkeypatch.setattr(sentiment_recipe, "build_sentiment_minilm", boom)
    monkeypatch.setattr(summarizer_recipe, "build_summarizer_smollm2", boom)
    monkeypatch.setattr(toxicity_recipe, "build_toxicity_linear", boom)
    assert build_default_models(tmp_path) == [target, summarizer, toxicity]

    calls = []
    monkeypatch.setattr(sentiment_recipe, "build_sentiment_minilm", lambda out, **k: calls.append(out))
    monkeypatch.setattr(summarizer_recipe, "build_summarizer_smollm2", lambda out, **k: calls.append(out))
    # The toxicity recipe gets the catalogue's pinned hashes of its source files.
    monkeypatch.setattr(toxicity_recipe, "build_toxicity_linear", lambda out, **k: calls.append((out, sorted(k["sha256"]))))
    build_default_models(tmp_path, force=True)
    assert calls == [target, summarizer, (toxicity, ["model.joblib", "vectorizer.joblib"])]


def test_data_split_deterministic_and_stratified():
    from pipeline.modelbuild.data import load_rotten_tomatoes, stratified_split

    examples = load_rotten_tomatoes()
    assert len(examples) == 12808
    train, held = stratified_split(examples, seed=13)
    train2, held2 = stratified_split(examples, seed=13)
    assert [e.text for e in held] == [e.text for e in held2]
    assert not {e.text for e in held} & {e.text for e in train}
    assert 0.09 < len(held) / len(examples) < 0.11
    pos_all = sum(e.label for e in examples) / len(examples)
    pos_held = sum(e.label for e in held) / len(held)
    assert abs(pos_all - pos_held) < 0.01
    assert [e.text for e in stratified_split(examples, seed=14)[1]] != [e.text for e in held]


def test_stderr_progress_line_has_percent_and_eta():
    buf = io.StringIO()
    p = StderrProgress(stream=buf)
    for i in range(0, 11):
        p("train", i, 10)
    out = buf.getvalue()
    assert "[train]" in out and "100.0%" in out and "ETA" in out


def test_modelbuild_import_is_torch_free():
    code = (
        "import sys, pipeline.modelbuild, pipeline.inference; "
        "print(sorted(m for m in ('torch','transformers','optimum') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_catalogue_entries():
    data = tomllib.loads((REPO_ROOT / "models" / "catalogue.toml").read_text())
    models = data["models"]
    assert set(models) >= {"sentiment-minilm-rt", "distilbert-sst2"}
    assert models["sentiment-minilm-rt"]["default"] is True
    assert models["sentiment-minilm-rt"]["offline"] is True
    assert models["distilbert-sst2"]["offline"] is False
    for entry in models.values():
        for key in ("task", "source", "recipe", "licence", "quantization"):
            assert key in entry
        module, func = entry["recipe"].split(":")
        assert hasattr(__import__(module, fromlist=[func]), func)
