"""The default models: what `make models` / `streamnlp models build` builds when nothing is named."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.modelbuild import sentiment, summarizer, toxicity
from pipeline.modelbuild.base import is_built
from pipeline.modelbuild.progress import ProgressFn


def build_default_models(
    cache_dir: Path, *, force: bool = False, progress: ProgressFn | None = None
) -> list[Path]:
    """Build the default (offline) models into `cache_dir` unless already built. Returns their paths."""
    cache_dir = Path(cache_dir)
    target = cache_dir / sentiment.DEFAULT_MODEL_NAME
    if force or not is_built(target):
        sentiment.build_sentiment_minilm(target, progress=progress)
    summary_target = cache_dir / summarizer.SUMMARIZER_MODEL_NAME
    if force or not is_built(summary_target):
        summarizer.build_summarizer_smollm2(summary_target, progress=progress)
    toxicity_target = cache_dir / toxicity.TOXICITY_MODEL_NAME
    if force or not is_built(toxicity_target):
        # Through the catalogue: the hashes its source files must have are pinned there.
        from pipeline.catalogue import load_catalogue
        from pipeline.modelbuild.catalogue_build import build_entry

        build_entry(load_catalogue().get(toxicity.TOXICITY_MODEL_NAME), cache_dir, force=force, progress=progress)
    return [target, summary_target, toxicity_target]


def iter_catalogue(path: Path | None = None) -> Iterable[dict[str, Any]]:
    """Entries of models/catalogue.toml as plain dicts (validated by pipeline.catalogue, the one loader)."""
    from pipeline.catalogue import load_catalogue

    for entry in load_catalogue(path).entries.values():
        yield entry.model_dump()
