"""What every model build shares: the error type, staged builds installed atomically, manifests.

Imports nothing else of the package, so every recipe module can import it (the recipes used
to import each other through one 700-line module, held together by import order).
Every recipe writes the layout the runtime loader reads (docs/architecture.md) into a
temporary sibling directory and renames it into place at the end, so a half-built model is
never picked up (manifest.json present == build complete).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.errors import StreamnlpError

#: What a sentiment classifier build installs (besides manifest.json).
MODEL_FILES = ("model.onnx", "model_int8.onnx", "tokenizer.json", "config.json")


class ModelBuildError(StreamnlpError, RuntimeError):
    """A build or export step failed; the message says why and what to do."""


# --------------------------------------------------------------------------- helpers


def require_build_dependencies() -> None:
    """Fail fast (before any work) when the `build` extra is not installed."""
    import importlib.util

    missing = [
        mod
        for mod in ("torch", "transformers", "optimum.exporters.onnx", "optimum.onnxruntime", "onnx")
        if _find_spec(importlib.util, mod) is None
    ]
    if missing:
        raise ModelBuildError(
            f"model building needs {', '.join(missing)} (the build extra); run: pip install -e '.[build]'"
        )


def _find_spec(util, mod: str):
    try:
        return util.find_spec(mod)
    except (ImportError, ValueError):
        return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _params_hash(params: dict[str, Any]) -> str:
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def _pkg_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _make_tmp_dir(out_dir: Path) -> Path:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes 0700; the installed model dir must be readable by the worker
    return tmp


@contextmanager
def staged_build(out_dir: Path) -> Iterator[Path]:
    """A scratch model dir beside `out_dir`, removed if the build fails, so a half-built model is never installed."""
    tmp = _make_tmp_dir(out_dir)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def install_build(tmp_dir: Path, out_dir: Path, manifest: dict) -> dict:
    """Write manifest.json last (its presence means "build complete"), then rename into place."""
    _write_json(tmp_dir / "manifest.json", manifest)
    _atomic_install(tmp_dir, out_dir)
    return manifest


def _atomic_install(tmp_dir: Path, out_dir: Path) -> None:
    """Rename a finished build into place (replacing any previous build)."""
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-{int(time.time())}"
        os.replace(out_dir, old)
        os.replace(tmp_dir, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, out_dir)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _is_hf_id(source: str) -> bool:
    """True for hub ids like "org/name"; paths that exist, or look like paths, are local."""
    if Path(source).expanduser().exists():
        return False
    return not source.startswith(("/", ".", "~")) and source.count("/") <= 1


def is_built(model_dir: Path) -> bool:
    """A model directory is complete when its manifest exists (written last, installed atomically)."""
    return (Path(model_dir) / "manifest.json").is_file()
