"""Export an existing Hugging Face sequence classifier (local dir or hub id) to the runtime layout."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from pipeline.modelbuild.base import (
    MODEL_FILES,
    ModelBuildError,
    _is_hf_id,
    _now_iso,
    _pkg_version,
    install_build,
    require_build_dependencies,
    sha256_file,
    staged_build,
)
from pipeline.modelbuild.progress import ProgressFn, null_progress
from pipeline.modelbuild.quantize import DEFAULT_QUANTIZATION, quantize_dynamic_int8
from pipeline.modelbuild.weights import LOADER_KWARGS, fetch_hub_model, require_safe_weights


def _finish_layout(onnx_dir: Path, hf_dir: Path | None) -> None:
    """Make sure tokenizer.json and config.json exist; drop extra files optimum writes."""
    if not (onnx_dir / "tokenizer.json").is_file():
        if hf_dir is None:
            raise ModelBuildError(f"no tokenizer.json in {onnx_dir}")
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(hf_dir), use_fast=True, local_files_only=True, **LOADER_KWARGS)
        tok.save_pretrained(str(onnx_dir))
    if not (onnx_dir / "tokenizer.json").is_file():
        raise ModelBuildError(f"{hf_dir} has no fast tokenizer (tokenizer.json) and none could be converted")
    cfg = json.loads((onnx_dir / "config.json").read_text(encoding="utf-8"))
    if not cfg.get("id2label"):
        raise ModelBuildError(f"{onnx_dir}/config.json has no id2label")


def export_sequence_classifier(
    source: str | Path,
    out_dir: Path,
    *,
    quantize: bool = True,
    name: str | None = None,
    version: str | None = None,
    quantization: str = DEFAULT_QUANTIZATION,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Export a DistilBERT/BERT sequence-classification model (local dir or HF hub id) to the runtime layout.

    HF ids need network access (and HF_HUB_OFFLINE unset); offline this fails with ModelBuildError.
    Returns the manifest (held-out accuracy is null: no evaluation data for arbitrary models).
    """
    require_build_dependencies()
    progress = progress or null_progress
    out_dir = Path(out_dir)
    src = str(source)
    t0 = time.monotonic()
    is_hub = _is_hf_id(src)
    if is_hub:
        if not src.replace("-", "").replace("_", "").replace(".", "").replace("/", "").isalnum():
            raise ModelBuildError(f"{src!r} is neither an existing directory nor a Hugging Face model id")
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise ModelBuildError(
                f"{src!r} is a Hugging Face hub id but HF_HUB_OFFLINE is set: this model is online-only. "
                "Unset HF_HUB_OFFLINE with network access, or pass a local model directory."
            )
        try:  # configs, tokenizer and safetensors only: a hub repo's pickles and code are never fetched
            src = str(fetch_hub_model(src))
        except Exception as exc:  # hub/network errors come in many types
            raise ModelBuildError(
                f"cannot fetch {src!r} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
                "This model needs network access; or download it and pass the local directory."
            ) from exc
    src_dir = Path(src).expanduser().resolve()
    if not src_dir.is_dir():
        raise ModelBuildError(f"source directory {src_dir} does not exist")
    if not (src_dir / "config.json").is_file():
        raise ModelBuildError(f"{src_dir} has no config.json: not a Hugging Face model directory")
    require_safe_weights(src_dir)
    src = str(src_dir)

    with staged_build(out_dir) as tmp:
        progress("export", 0, 2)
        onnx_dir = tmp / "onnx"
        from optimum.exporters.onnx import main_export

        try:
            main_export(src, output=str(onnx_dir), task="text-classification", local_files_only=True, **LOADER_KWARGS)
        except ModelBuildError:
            raise
        except Exception as exc:
            raise ModelBuildError(f"ONNX export of {source} failed: {exc}") from exc
        _finish_layout(onnx_dir, src_dir)
        for fname in ("model.onnx", "tokenizer.json", "config.json"):
            shutil.copy2(onnx_dir / fname, tmp / fname)
        shutil.rmtree(onnx_dir, ignore_errors=True)
        progress("export", 1, 2)
        qkind = None
        if quantize:
            qkind = quantize_dynamic_int8(tmp / "model.onnx", tmp / "model_int8.onnx", quantization)
        progress("export", 2, 2)

        files = [f for f in MODEL_FILES if (tmp / f).is_file()]
        hashes = {f: sha256_file(tmp / f) for f in files}
        cfg = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
        manifest = {
            "name": name or (src if is_hub else Path(src).name).rstrip("/").split("/")[-1],
            "version": version or f"export+{hashes['model.onnx'][:8]}",
            "task": "text-classification/sentiment",
            "labels": [str(cfg["id2label"][k]).lower() for k in sorted(cfg["id2label"], key=int)],
            "recipe": "pipeline.modelbuild.classifier_export:export_sequence_classifier",
            "source": {
                "model": str(source),
                "kind": "huggingface-hub" if is_hub else "local-directory",
                "model_type": cfg.get("model_type"),
                "toolchain": {p: _pkg_version(p) for p in ("torch", "transformers", "optimum", "optimum-onnx")},
            },
            "licence": "see the source model card",
            "files": hashes,
            "sizes_bytes": {f: (tmp / f).stat().st_size for f in files},
            "parameters": {"quantize": quantize, "quantization": qkind},
            "held_out": {"n": None, "accuracy_fp32": None, "accuracy_int8": None},
            "build_seconds": round(time.monotonic() - t0, 1),
            "created_at": _now_iso(),
        }
        return install_build(tmp, out_dir, manifest)
