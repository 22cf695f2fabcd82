"""Write the checked-in JSON Schema files from the pydantic models.

    python -m schemas.generate           # (re)write schemas/*.schema.json
    python -m schemas.generate --check   # exit 1 and list drifted files

Input schemas describe what the worker *accepts* (validation mode); output
schemas describe what it *writes* (serialization mode).  Output is stable
across runs: sorted keys, 2-space indent, trailing newline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from schemas.events import DeadLetter, EnrichedEvent, TextEvent
from schemas.summaries import SummaryEvent, SummaryRequest
from schemas.windows import SentimentWindow

SCHEMA_DIR = Path(__file__).resolve().parent
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: file name -> (model, json-schema mode)
SCHEMAS: dict[str, tuple[type[BaseModel], Literal["validation", "serialization"]]] = {
    "text_event.schema.json": (TextEvent, "validation"),
    "enriched_event.schema.json": (EnrichedEvent, "serialization"),
    "dead_letter.schema.json": (DeadLetter, "serialization"),
    "summary_event.schema.json": (SummaryEvent, "serialization"),
    "summary_request.schema.json": (SummaryRequest, "serialization"),
    "sentiment_window.schema.json": (SentimentWindow, "serialization"),
}


def schema_dict(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict:
    schema = model.model_json_schema(mode=mode)
    schema["$schema"] = JSON_SCHEMA_DIALECT
    return schema


def render(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> str:
    return json.dumps(schema_dict(model, mode), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """File name -> exact file content. The drift test uses this too."""
    return {name: render(model, mode) for name, (model, mode) in SCHEMAS.items()}


def drifted(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    out = []
    for name, content in render_all().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            out.append(name)
    return out


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    written = []
    for name, content in render_all().items():
        path = directory / name
        path.write_text(content, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="don't write; exit 1 if any file is out of date")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="output directory (default: schemas/)")
    args = parser.parse_args(argv)

    if args.check:
        stale = drifted(args.dir)
        if stale:
            for name in stale:
                print(f"drifted: {args.dir / name}", file=sys.stderr)
            print("run `python -m schemas.generate` and commit the result", file=sys.stderr)
            return 1
        print(f"{len(SCHEMAS)} schema files up to date")
        return 0

    for path in write_all(args.dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
