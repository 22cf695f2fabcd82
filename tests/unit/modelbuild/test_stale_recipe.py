"""A built model older than its recipe is rebuilt by `models build` (no --force needed)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.catalogue import load_catalogue
from pipeline.modelbuild.catalogue_build import stale_recipe
from pipeline.modelbuild.summarizer import RECIPE_VERSION, SUMMARIZER_RECIPE_VERSION


def _built(tmp_path: Path, version: str) -> Path:
    (tmp_path / "manifest.json").write_text(json.dumps({"version": version}), encoding="utf-8")
    return tmp_path


def test_a_model_built_by_an_older_recipe_is_stale(tmp_path: Path) -> None:
    entry = load_catalogue().entries["summarizer-smollm2-135m"]
    assert RECIPE_VERSION == SUMMARIZER_RECIPE_VERSION
    assert stale_recipe(entry, _built(tmp_path, f"{RECIPE_VERSION}+2e5f13e2")) is None
    reason = stale_recipe(entry, _built(tmp_path, "1.1.0+f7775ac8"))
    assert reason is not None and "1.1.0" in reason and RECIPE_VERSION in reason


def test_exports_and_unversioned_manifests_are_never_stale(tmp_path: Path) -> None:
    entry = load_catalogue().entries["summarizer-smollm2-135m"]
    assert stale_recipe(entry, _built(tmp_path, "export+1234abcd")) is None
    assert stale_recipe(entry, _built(tmp_path, "building")) is None


def test_every_default_recipe_names_its_version() -> None:
    import importlib

    for entry in load_catalogue().entries.values():
        if entry.default:
            module = importlib.import_module(entry.recipe.partition(":")[0])
            assert getattr(module, "RECIPE_VERSION", None), entry.recipe
