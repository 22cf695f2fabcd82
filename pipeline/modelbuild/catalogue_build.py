"""Build one catalogue entry with its recipe (`streamnlp models build NAME`).

Recipes whose source is a pip package locate it themselves: `recipe(out_dir, **build_args)`.
Recipes whose source is a hub id or a local directory take it first:
`recipe(source, out_dir, **build_args)`. Online-only entries are checked for hub access
before any heavy import, so an offline machine gets one clear line instead of a stack of
retries and a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipeline.catalogue import CatalogueEntry
from pipeline.modelbuild.base import ModelBuildError, is_built
from pipeline.modelbuild.progress import ProgressFn

HUB_PROBE_TIMEOUT_S = 5.0
_TRUTHY = ("1", "true", "yes", "on")


def resolve_recipe(spec: str) -> Callable[..., Any]:
    module_name, _, func_name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise ModelBuildError(f"catalogue recipe {spec!r} cannot be loaded: {exc}") from exc


def hub_problem(environ: dict[str, str] | None = None, timeout_s: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """Why the Hugging Face hub cannot be used from here (None: it probably can)."""
    env = os.environ if environ is None else environ
    if env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY:
        return "HF_HUB_OFFLINE is set"
    if any(env.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # only the proxy can tell; let the hub client try
    endpoint = urlparse(env.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"{host}:{port} is unreachable ({exc.strerror or type(exc).__name__})"


def stale_recipe(entry: CatalogueEntry, model_dir: Path) -> str | None:
    """Why a built model is older than its recipe, or None.

    A recipe module names the version it writes (`RECIPE_VERSION`); its manifests carry
    "<version>+<params hash>". Without this check a pulled recipe change (the summarizer's int8
    moved to 8-bit MatMulNBits in 1.2.0) would leave `make demo` running the old build.
    A model the catalogue now builds with another recipe function (a default switched to a distilled
    student) is stale too. Export recipes ("export+<hash>") and unversioned manifests are never
    called stale by version.
    """
    module_name = entry.recipe.partition(":")[0]
    try:
        expected = getattr(importlib.import_module(module_name), "RECIPE_VERSION", None)
    except ImportError:
        return None
    try:
        manifest = json.loads((Path(model_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    built, built_recipe = str(manifest.get("version", "")), str(manifest.get("recipe") or "")
    if built_recipe and built_recipe.partition(":")[2] != entry.recipe.partition(":")[2]:
        # Compared by function name: the modules moved in the restructure, the recipes did not.
        return f"built by {built_recipe}, the catalogue now builds it with {entry.recipe}"
    head, plus, _ = built.partition("+")
    if not expected or not plus or not head[:1].isdigit() or head == expected:
        return None
    return f"built by recipe {head}, the recipe is now {expected}"


def build_entry(
    entry: CatalogueEntry,
    cache_dir: Path,
    *,
    force: bool = False,
    source_override: Path | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Build `entry` into `cache_dir/<name>` (skipped when already built, unless `force`). Returns the path."""
    out_dir = Path(cache_dir) / entry.name
    if is_built(out_dir) and not force:
        stale = stale_recipe(entry, out_dir)
        if stale is None:
            return out_dir
        if progress is not None:
            progress(f"{entry.name}: {stale}; rebuilding", 0, 1)
    takes_source = entry.source.kind != "package"
    if source_override is not None and not takes_source:
        raise ModelBuildError(f"{entry.name} is built from the {entry.source.package} package; --source does not apply")
    source: str | None = None
    if source_override is not None:
        source = str(Path(source_override).expanduser())
    elif entry.source.kind == "local":
        source = str(entry.source.path)
    elif entry.source.kind == "huggingface":
        problem = hub_problem()
        if problem:
            raise ModelBuildError(
                f"{entry.name} is online-only (source hf:{entry.source.hf_id}) and {problem}; build it on a machine "
                "that reaches the Hugging Face hub, or pass --source DIR with a local copy (safetensors)"
            )
        source = str(entry.source.hf_id)
    recipe = resolve_recipe(entry.recipe)
    kwargs = dict(entry.build_args)
    parameters = inspect.signature(recipe).parameters
    any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if "progress" in parameters or any_keyword:
        kwargs.setdefault("progress", progress)
    if entry.source.sha256 and ("sha256" in parameters or any_keyword):  # pinned source hashes, checked by the recipe
        kwargs.setdefault("sha256", dict(entry.source.sha256))
    if "name" in parameters or any_keyword:  # export recipes name the manifest after the source otherwise
        kwargs.setdefault("name", entry.name)
    if takes_source:
        recipe(source, out_dir, **kwargs)
    else:
        recipe(out_dir, **kwargs)
    return out_dir
