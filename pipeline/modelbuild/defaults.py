"""The default models: what `make models` / `streamnlp models build` builds when nothing is named."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.catalogue import Task
from pipeline.modelbuild.base import ModelBuildError
from pipeline.modelbuild.progress import ProgressFn

#: What `make models` builds, in this order: the sentiment model first (the worker cannot start without it).
DEFAULT_TASKS: tuple[Task, ...] = ("sentiment", "summarization", "toxicity")


def build_default_models(
    cache_dir: Path, *, force: bool = False, progress: ProgressFn | None = None
) -> list[Path]:
    """Build the default (offline) models into `cache_dir` unless built and current. Returns their paths.

    Every default goes through its catalogue entry, so the pinned source hashes reach the recipe and a
    model built by an older recipe (or by another recipe function, when the catalogue switches a
    default) is rebuilt: `make demo` after a pull runs what the catalogue says, not what was built once.
    """
    from pipeline.catalogue import load_catalogue
    from pipeline.modelbuild.catalogue_build import build_entry

    catalogue = load_catalogue()
    paths = []
    for task in DEFAULT_TASKS:
        entries = catalogue.defaults(task)
        if len(entries) != 1:
            raise ModelBuildError(f"models/catalogue.toml marks {len(entries)} {task} models as default; mark exactly one "
                                  "(default = true)")
        paths.append(build_entry(entries[0], Path(cache_dir), force=force, progress=progress))
    return paths


def iter_catalogue(path: Path | None = None) -> Iterable[dict[str, Any]]:
    """Entries of models/catalogue.toml as plain dicts (validated by pipeline.catalogue, the one loader)."""
    from pipeline.catalogue import load_catalogue

    for entry in load_catalogue(path).entries.values():
        yield entry.model_dump()
