"""models/catalogue.toml: parsing, validation errors that name the entry, build dispatch, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.catalogue import CatalogueError, built_model, load_catalogue
from pipeline.modelbuild import DEFAULT_MODEL_NAME, SUMMARIZER_MODEL_NAME, ModelBuildError
from pipeline.modelbuild.catalogue_build import build_entry, hub_problem, resolve_recipe
from pipeline.tools.cli import main

ENTRY = """
[models.{name}]
task = "sentiment"
offline = {offline}
labels = ["negative", "positive"]
precisions = ["fp32", "int8"]
recipe = "tests.unit.test_catalogue:fake_recipe"
source = {source}
export = "optimum"
quantization = {{ int8 = "dynamic" }}
licence = "MIT"
{extra}
"""

CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = []


def fake_recipe(*args: Any, **kwargs: Any) -> dict:
    """A recipe that records its call and installs a finished (manifest-only) build."""
    CALLS.append((args, kwargs))
    out_dir = Path(args[-1])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.onnx").write_bytes(b"onnx")
    (out_dir / "manifest.json").write_text(json.dumps({"name": out_dir.name, "version": "9.9", "task": "sentiment"}))
    return {}


def _write(tmp_path: Path, *tables: str) -> Path:
    path = tmp_path / "catalogue.toml"
    path.write_text("\n".join(tables))
    return path


def _entry(name: str = "m", *, offline: str = "true", source: str = '{ kind = "package", package = "p==1" }',
           extra: str = "") -> str:
    return ENTRY.format(name=name, offline=offline, source=source, extra=extra)


def test_the_shipped_catalogue_is_valid_and_complete() -> None:
    catalogue = load_catalogue()
    assert set(catalogue.entries) >= {
        "sentiment-minilm-rt", "distilbert-sst2", "sentiment-twitter-roberta", "summarizer-smollm2-135m",
        "summarizer-smollm2-360m", "summarizer-qwen2.5-0.5b", "summarizer-distilbart-cnn",
    }
    # A bare `models build` builds exactly the catalogue's defaults, from packages alone.
    assert {e.name for e in catalogue.defaults()} == {DEFAULT_MODEL_NAME, SUMMARIZER_MODEL_NAME, "toxicity-linear"}
    assert all(e.offline for e in catalogue.defaults())
    hub_ids = {e.source.hf_id for e in catalogue.entries.values() if not e.offline}
    assert hub_ids == {
        "distilbert-base-uncased-finetuned-sst-2-english", "cardiffnlp/twitter-roberta-base-sentiment-latest",
        "HuggingFaceTB/SmolLM2-360M-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "sshleifer/distilbart-cnn-12-6",
    }
    for entry in catalogue.entries.values():
        assert callable(resolve_recipe(entry.recipe)), entry.name
        assert entry.licence


@pytest.mark.parametrize(("table", "fragment"), [
    (_entry("typo", extra='licence_url = "x"'), "[models.typo] licence_url: Extra inputs are not permitted"),
    (_entry("hub", source='{ kind = "huggingface", hf_id = "org/x" }'), "[models.hub] entry: offline = true contradicts"),
    (_entry("nohf", offline="false", source='{ kind = "huggingface" }'), "[models.nohf] source: source kind 'huggingface' needs hf_id"),
    (_entry("nolabels").replace('labels = ["negative", "positive"]\n', ""), "[models.nolabels] entry: a sentiment model needs labels"),
    (_entry("q", extra='precisions = ["fp32", "int8", "int4"]').replace('precisions = ["fp32", "int8"]\n', ""),
     "[models.q] entry: quantization has no recipe for precision(s) ['int4']"),
    (_entry("bad-task").replace('task = "sentiment"', 'task = "translation"'), "[models.bad-task] task:"),
    (_entry("online-default", offline="false", source='{ kind = "huggingface", hf_id = "o/x" }', extra="default = true"),
     "[models.online-default] entry: a default model must be offline-buildable"),
])
def test_validation_errors_name_the_entry(tmp_path: Path, table: str, fragment: str) -> None:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(_write(tmp_path, _entry("fine"), table))
    assert fragment in str(info.value)
    assert "[models.fine]" not in str(info.value)


def test_two_defaults_for_one_task_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="more than one default sentiment model: a, b"):
        load_catalogue(_write(tmp_path, _entry("a", extra="default = true"), _entry("b", extra="default = true")))


def test_broken_toml_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not valid TOML"):
        load_catalogue(_write(tmp_path, "[models.x\n"))
    with pytest.raises(CatalogueError, match="no model named 'nope'.*known: m"):
        load_catalogue(_write(tmp_path, _entry("m"))).get("nope")


def test_build_dispatch_by_source_kind(tmp_path: Path) -> None:
    catalogue = load_catalogue(_write(
        tmp_path, _entry("pkg"), _entry("loc", source=f'{{ kind = "local", path = "{tmp_path}" }}',
                                        extra='build_args = { quantize = false }'),
    ))
    CALLS.clear()
    out = build_entry(catalogue.get("pkg"), tmp_path / "cache")
    assert CALLS[-1][0] == (tmp_path / "cache" / "pkg",), "package recipes locate their source themselves"
    assert built_model(out) is not None and built_model(out).version == "9.9"
    build_entry(catalogue.get("loc"), tmp_path / "cache")
    args, kwargs = CALLS[-1]
    assert args == (str(tmp_path), tmp_path / "cache" / "loc") and kwargs["quantize"] is False
    assert kwargs["name"] == "loc", "the manifest is named after the catalogue entry"
    build_entry(catalogue.get("pkg"), tmp_path / "cache")
    assert len(CALLS) == 2, "an installed build is not rebuilt without force"


def test_online_only_entry_fails_fast_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_problem() == "HF_HUB_OFFLINE is set"
    entry = load_catalogue().get("distilbert-sst2")
    with pytest.raises(ModelBuildError, match="distilbert-sst2 is online-only .* HF_HUB_OFFLINE is set"):
        build_entry(entry, tmp_path)
    assert not (tmp_path / "distilbert-sst2").exists()


def test_unreachable_hub_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "unreachable" in (hub_problem({"HF_ENDPOINT": "http://127.0.0.1:9"}, timeout_s=1) or "")


def test_cli_list_and_build_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runner = CliRunner()
    listed = runner.invoke(main, ["models", "list", "--json", "--cache-dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["name"]: r["build"] for r in rows}["distilbert-sst2"] == "online"
    assert not any(r["built"] for r in rows)
    failed = runner.invoke(main, ["models", "build", "summarizer-qwen2.5-0.5b", "--cache-dir", str(tmp_path)])
    assert failed.exit_code == 1
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "online-only" in lines[0], failed.stderr
    unknown = runner.invoke(main, ["models", "build", "nope"])
    assert unknown.exit_code == 2 and "no model named 'nope'" in unknown.stderr


@pytest.mark.needs_model
def test_cli_info_by_name_and_by_path(default_model_dir: Path) -> None:
    runner = CliRunner()
    env = {"STREAMNLP_MODEL_DIR": str(default_model_dir)}
    by_name = runner.invoke(main, ["models", "info", "sentiment-minilm-rt"], env=env)
    assert by_name.exit_code == 0, by_name.output
    info = json.loads(by_name.stdout)
    assert info["catalogue"]["offline"] is True and info["built"] is True
    assert set(info["precisions"]) == {"fp32", "int8"} and info["manifest"]["name"] == "sentiment-minilm-rt"
    by_path = runner.invoke(main, ["models", "info", str(default_model_dir)])
    assert by_path.exit_code == 0 and json.loads(by_path.stdout)["name"] == "sentiment-minilm-rt"
