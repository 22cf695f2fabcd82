"""Model loading never runs code: no pickle-based weights, no trust_remote_code, in builds and at runtime."""

from __future__ import annotations

import ast
import fnmatch
import json
from pathlib import Path

import pytest

from pipeline.modelbuild import ModelBuildError, export_causal_lm, export_sequence_classifier
from pipeline.modelbuild.weights import HUB_ALLOW_PATTERNS, LOADER_KWARGS, PICKLE_SUFFIXES, require_safe_weights
from tests.fixtures_models import tiny_distilbert_hf
from tests.paths import REPO

PIPELINE = REPO / "pipeline"
LOADERS = {"main_export"}


def hf_dir_with(tmp_path: Path, *files: str) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "distilbert"}))
    for name in files:
        (src / name).write_bytes(b"\x80\x04 pretend pickle")
    return src


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.pt", "weights.pth", "model.pkl", "last.ckpt"])
def test_builds_refuse_pickle_weights(tmp_path: Path, weights: str) -> None:
    src = hf_dir_with(tmp_path, weights)
    with pytest.raises(ModelBuildError, match=f"pickle.*{weights}.*safetensors or GGUF"):
        export_sequence_classifier(src, tmp_path / "out")
    with pytest.raises(ModelBuildError, match="pickle"):
        export_causal_lm(src, tmp_path / "out-llm")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out-llm").exists()


def test_pickles_next_to_safetensors_are_refused_too(tmp_path: Path) -> None:
    """A directory with both is ambiguous about what a loader picks: the operator removes the pickle."""
    hf = tiny_distilbert_hf(tmp_path / "hf")
    require_safe_weights(hf)  # the test fixture itself is safetensors
    (hf / "training_args.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ModelBuildError, match="training_args.bin"):
        export_sequence_classifier(hf, tmp_path / "out")


def test_a_directory_without_safe_weights_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelBuildError, match=r"no \*\.safetensors or \*\.gguf"):
        require_safe_weights(hf_dir_with(tmp_path))


def test_hub_downloads_never_fetch_pickles_or_code() -> None:
    for name in ("pytorch_model.bin", "model.pt", "optimizer.pth", "x.pkl", "y.ckpt", "modeling_custom.py"):
        assert not any(fnmatch.fnmatch(name, pattern) for pattern in HUB_ALLOW_PATTERNS), name
    assert any(fnmatch.fnmatch("model.safetensors", pattern) for pattern in HUB_ALLOW_PATTERNS)
    assert {".bin", ".pt", ".pth", ".pkl", ".ckpt"} <= PICKLE_SUFFIXES


def _loader_calls() -> list[tuple[Path, ast.Call]]:
    """transformers Auto*.from_pretrained(...) and optimum main_export(...) calls in pipeline/."""
    calls = []
    for path in sorted(PIPELINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in LOADERS:
                calls.append((path, node))
            elif (isinstance(func, ast.Attribute) and func.attr == "from_pretrained"
                  and isinstance(func.value, ast.Name) and func.value.id.startswith("Auto")):
                calls.append((path, node))
    return calls


def test_every_loader_call_passes_trust_remote_code_false() -> None:
    assert LOADER_KWARGS == {"trust_remote_code": False}
    calls = _loader_calls()
    assert len(calls) >= 8, "the scan finds the build's loader calls"
    for path, call in calls:
        explicit = [kw for kw in call.keywords if kw.arg == "trust_remote_code"]
        spread = [kw for kw in call.keywords if kw.arg is None and isinstance(kw.value, ast.Name)
                  and kw.value.id == "LOADER_KWARGS"]
        where = f"{path.relative_to(PIPELINE.parent)}:{call.lineno}"
        assert explicit or spread, f"{where} does not pass trust_remote_code=False"
        for kw in explicit:
            assert isinstance(kw.value, ast.Constant) and kw.value.value is False, where


def test_runtime_loaders_read_only_onnx(tmp_path: Path) -> None:
    from pipeline.inference.sentiment import ClassifierConfig, ModelLoadError, SentimentClassifier

    model_dir = hf_dir_with(tmp_path, "pytorch_model.bin")
    (model_dir / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelLoadError):
        SentimentClassifier.load(model_dir, ClassifierConfig())
    unsafe = {"pickle", "torch", "transformers", "joblib", "dill", "cloudpickle"}
    for path in (PIPELINE / "inference").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not {n.split(".")[0] for n in names} & unsafe, f"{path} imports {names}"
