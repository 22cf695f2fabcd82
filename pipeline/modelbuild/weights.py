"""Builds load weights that cannot run code: safetensors or GGUF, never pickle, never remote code.

`.bin` / `.pt` / `.pth` / `.pkl` / `.ckpt` files are Python pickles: loading one
can execute arbitrary code, and `trust_remote_code=True` runs a model repository's
own Python. Every build path therefore checks its source directory with
`require_safe_weights()` before loading, passes `LOADER_KWARGS` (trust_remote_code
explicitly False) to every transformers / optimum loader, and fetches hub models
with `HUB_ALLOW_PATTERNS` only. The runtime loaders read only ONNX + tokenizer.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.modelbuild.base import ModelBuildError

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})
SAFE_SUFFIXES = frozenset({".safetensors", ".gguf"})
#: Keyword arguments for every transformers / optimum loader call (explicit, never the default).
LOADER_KWARGS: dict[str, Any] = {"trust_remote_code": False}
#: What a hub download may fetch: configs, tokenizers and safetensors weights, no pickles, no code.
HUB_ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja"]


def pickle_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in Path(model_dir).rglob("*") if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def require_safe_weights(model_dir: Path) -> None:
    """ModelBuildError unless `model_dir` holds safetensors/GGUF weights and no pickle files."""

    model_dir = Path(model_dir)
    pickles = pickle_files(model_dir)
    if pickles:
        names = ", ".join(str(p.relative_to(model_dir)) for p in pickles[:5])
        raise ModelBuildError(
            f"{model_dir} contains pickle-based files ({names}); loading them can execute code, so builds refuse "
            "them. Provide safetensors or GGUF weights (e.g. save_pretrained(..., safe_serialization=True)) "
            "and remove the pickle files."
        )
    if not any(p.is_file() and p.suffix.lower() in SAFE_SUFFIXES for p in model_dir.rglob("*")):
        raise ModelBuildError(f"{model_dir} has no *.safetensors or *.gguf weights; builds load only those formats")


def fetch_hub_model(repo_id: str) -> Path:
    """Download a hub model's configs, tokenizer and safetensors weights (network); returns the local dir."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, allow_patterns=HUB_ALLOW_PATTERNS))
