"""Model build recipes: export layout, manifest, atomic install, offline failures, data split."""

from __future__ import annotations

import importlib
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


def _manifest(path, recipe, version):
    path.mkdir(exist_ok=True)
    (path / "manifest.json").write_text(json.dumps({"recipe": recipe, "version": version}))


def test_build_default_models_skips_built(tmp_path, monkeypatch):
    from pipeline.catalogue import load_catalogue
    from pipeline.modelbuild import summarizer as summarizer_recipe

    catalogue = load_catalogue()
    defaults = [catalogue.defaults(task)[0] for task in ("sentiment", "summarization", "toxicity")]
    target, summarizer, toxicity = (tmp_path / e.name for e in defaults)
    for path, entry in zip((target, summarizer, toxicity), defaults, strict=True):
        path.mkdir()
        assert not is_built(path)
        module = importlib.import_module(entry.recipe.partition(":")[0])
        _manifest(path, entry.recipe, f"{getattr(module, 'RECIPE_VERSION', '1.0.0')}+0")

    def boom(*a, **k):
        raise AssertionError("must not rebuild a built, current model")

    recipes = [(importlib.import_module(e.recipe.partition(":")[0]), e.recipe.partition(":")[2]) for e in defaults]
    for module, func in recipes:
        monkeypatch.setattr(module, func, boom)
    assert build_default_models(tmp_path) == [target, summarizer, toxicity]

    calls = []
    for module, func in recipes:
        monkeypatch.setattr(module, func, lambda out, **k: calls.append((out, sorted(k.get("sha256") or ()))))
    build_default_models(tmp_path, force=True)
    # The toxicity recipe gets the catalogue's pinned hashes of its source files.
    assert calls == [(target, []), (summarizer, []), (toxicity, ["model.joblib", "vectorizer.joblib"])]
    assert summarizer.name == summarizer_recipe.SUMMARIZER_MODEL_NAME


def test_build_default_models_rebuilds_a_model_the_catalogue_builds_another_way(tmp_path, monkeypatch):
    """A default switched to another recipe function is rebuilt by a bare `models build` (and so `make demo`)."""
    from pipeline.catalogue import load_catalogue

    catalogue = load_catalogue()
    defaults = [catalogue.defaults(task)[0] for task in ("sentiment", "summarization", "toxicity")]
    calls = []
    for entry in defaults:
        module = importlib.import_module(entry.recipe.partition(":")[0])
        version = f"{getattr(module, 'RECIPE_VERSION', '1.0.0')}+0"
        recipe = "pipeline.modelbuild.elsewhere:an_older_recipe" if entry.task == "sentiment" else entry.recipe
        _manifest(tmp_path / entry.name, recipe, version)
        monkeypatch.setattr(module, entry.recipe.partition(":")[2], lambda out, **k: calls.append(out.name))
    build_default_models(tmp_path)
    assert calls == [defaults[0].name]


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
