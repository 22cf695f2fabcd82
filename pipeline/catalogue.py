"""The model catalogue (models/catalogue.toml) as typed entries, and what of it is built.

Only reading and validation live here: no build dependencies, so `streamnlp models list`
and `info` stay fast and work in a runtime-only install. Building an entry is
`pipeline.modelbuild.catalogue_build`.

Validation is strict (unknown keys are errors) because a typo in a declarative file
would otherwise silently drop a setting; every error names its entry.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import StreamnlpError
from pipeline.settings import REPO_ROOT

PACKAGE_DIR = Path(__file__).resolve().parent


Task = Literal["sentiment", "summarization", "toxicity"]
Precision = Literal["fp32", "int8", "int4"]
SourceKind = Literal["package", "local", "huggingface"]

__all__ = [
    "Catalogue", "CatalogueEntry", "CatalogueError", "BuiltModel", "Source",
    "built_model", "find_catalogue", "load_catalogue",
]


class CatalogueError(StreamnlpError):
    """The catalogue file is missing or invalid, or a name is not in it; the message names the entry."""


def find_catalogue(repo_root: Path = REPO_ROOT, package_dir: Path = PACKAGE_DIR) -> Path:
    """The catalogue file: `models/catalogue.toml` in a checkout, else the copy installed with the package.

    `models/catalogue.toml` stays the one file people edit (docs and other tools point at it), but a
    non-editable install (`pip install .`, the container image) ships packages only, not `models/`.
    So `pipeline/catalogue.toml` is a symlink to it, listed as package data: building a wheel copies
    the symlink's target into the package. The checkout is tried first so a checkout whose symlinks
    were not materialised (git core.symlinks=false) still reads the real file.
    """
    candidates = (Path(repo_root) / "models" / "catalogue.toml", Path(package_dir) / "catalogue.toml")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CatalogueError("no model catalogue found; looked for " + " and ".join(str(c) for c in candidates))


class Source(BaseModel):
    """Where a model's weights come from. `package` and `local` need no network; `huggingface` does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SourceKind
    package: str | None = Field(default=None, description="pip requirement that ships the weights")
    path: str | None = Field(default=None, description="file or directory inside the package, or the local directory")
    hf_id: str | None = Field(default=None, description="Hugging Face model id")
    upstream: str | None = None
    data: str | None = Field(default=None, description="training data, for recipes that fine-tune")
    sha256: dict[str, str] | None = Field(
        default=None, description="file name -> sha256 the recipe checks before it reads the file (pickles above all)")

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Source:
        needs = {"package": ("package",), "local": ("path",), "huggingface": ("hf_id",)}[self.kind]
        missing = [name for name in needs if not getattr(self, name)]
        if missing:
            raise ValueError(f"source kind {self.kind!r} needs {', '.join(missing)}")
        return self

    def describe(self) -> str:
        if self.kind == "huggingface":
            return f"hf:{self.hf_id}"
        if self.kind == "local":
            return f"dir:{self.path}"
        return f"pip:{self.package}" + (f" ({self.path})" if self.path else "")


class CatalogueEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    task: Task
    default: bool = False
    offline: bool
    source: Source
    recipe: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:function")
    build_args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the recipe")
    export: str
    quantization: dict[str, str]
    precisions: list[Precision]
    default_precision: Precision = "int8"
    licence: str = Field(min_length=1)
    labels: list[str] | None = None
    languages: list[str] = Field(default_factory=lambda: ["en"])
    training: dict[str, Any] | None = None
    prompt: str | None = None
    notes: str | None = None
    build_minutes_2_cores: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CatalogueEntry:
        online_source = self.source.kind == "huggingface"
        if self.offline == online_source:
            raise ValueError(f"offline = {str(self.offline).lower()} contradicts source kind {self.source.kind!r} "
                             "(a Hugging Face source needs the hub: offline = false)")
        if self.default and not self.offline:
            raise ValueError("a default model must be offline-buildable: a bare `streamnlp models build` runs without network")
        if "fp32" not in self.precisions:
            raise ValueError("precisions must include fp32 (every recipe exports fp32 first)")
        if self.default_precision not in self.precisions:
            raise ValueError(f"default_precision {self.default_precision!r} is not among precisions {self.precisions}")
        unexplained = [p for p in self.precisions if p != "fp32" and p not in self.quantization]
        if unexplained:
            raise ValueError(f"quantization has no recipe for precision(s) {unexplained}")
        if self.task == "sentiment" and not self.labels:
            raise ValueError("a sentiment model needs labels")
        return self

    @property
    def online_only(self) -> bool:
        return not self.offline


@dataclass(frozen=True)
class BuiltModel:
    """What `models build` left in the cache for an entry (or any model directory)."""

    path: Path
    version: str
    precisions: tuple[str, ...]
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Catalogue:
    path: Path
    entries: dict[str, CatalogueEntry]

    def get(self, name: str) -> CatalogueEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise CatalogueError(f"no model named {name!r} in {self.path}; known: {', '.join(self.entries)}") from None

    def defaults(self, task: Task | None = None) -> list[CatalogueEntry]:
        return [e for e in self.entries.values() if e.default and (task is None or e.task == task)]

    def by_task(self, task: Task) -> list[CatalogueEntry]:
        return [e for e in self.entries.values() if e.task == task]


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Parse and validate the catalogue; CatalogueError names the file and every bad entry."""
    path = Path(path) if path else find_catalogue()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"cannot read the model catalogue {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path} is not valid TOML: {exc}") from exc
    raw = data.get("models")
    if not isinstance(raw, dict) or not raw:
        raise CatalogueError(f"{path} has no [models.<name>] tables")
    entries: dict[str, CatalogueEntry] = {}
    problems: list[str] = []
    for name, table in raw.items():
        if not isinstance(table, dict):
            problems.append(f"[models.{name}] must be a table")
            continue
        try:
            entries[name] = CatalogueEntry.model_validate({**table, "name": name})
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "entry"
                problems.append(f"[models.{name}] {where}: {err['msg'].removeprefix('Value error, ')}")
    for task in ("sentiment", "summarization", "toxicity"):
        defaults = [n for n, e in entries.items() if e.default and e.task == task]
        if len(defaults) > 1:
            problems.append(f"more than one default {task} model: {', '.join(defaults)}")
    if problems:
        raise CatalogueError(f"invalid model catalogue {path}: " + "; ".join(problems))
    return Catalogue(path=path, entries=entries)


def built_model(model_dir: Path, task: Task | None = None) -> BuiltModel | None:
    """The finished build in `model_dir` (its manifest is written last), or None."""
    manifest_path = Path(model_dir) / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    if task is None:
        kind = str(manifest.get("task", ""))
        task = "summarization" if "summar" in kind else "toxicity" if kind == "toxicity" else "sentiment"
    if task == "summarization":
        from pipeline.inference.summarizer import built_precisions
    elif task == "toxicity":
        from pipeline.inference.toxicity import built_precisions
    else:
        from pipeline.inference.sentiment import built_precisions
    return BuiltModel(path=Path(model_dir), version=str(manifest.get("version") or "unversioned"),
                      precisions=tuple(built_precisions(Path(model_dir))), manifest=manifest)
