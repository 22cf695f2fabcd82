"""Render the fault suite's record (test-artifacts/reliability.json) as the table in docs/reliability.md.

    .venv/bin/python -m pytest -q -m fault tests/fault      # writes test-artifacts/reliability.json
    .venv/bin/python scripts/reliability_table.py --write    # refreshes the table in docs/reliability.md

Without --write the table is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO / "test-artifacts" / "reliability.json"
DOC = REPO / "docs" / "reliability.md"
START, END = "<!-- reliability-table:start -->", "<!-- reliability-table:end -->"

# Table order: the order the issue lists the faults in.
ORDER = ["test_crash_restart", "test_network_cut", "test_consumer_group", "test_sigterm", "test_poison", "test_startup"]


def _rank(test_id: str) -> tuple[int, str]:
    module = test_id.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
    return (ORDER.index(module) if module in ORDER else len(ORDER), test_id)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(data: dict[str, Any]) -> str:
    runs = data.get("runs", {})
    lines = [
        "| fault | injected | inputs | enriched | dead-lettered | lost | duplicates (asserted bound) | time | observed | result |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for test_id in sorted(runs, key=_rank):
        r = runs[test_id]
        bound = r.get("duplicate_bound")
        dups = f"{r.get('duplicates', 0)}" + (f" (≤ {bound})" if bound is not None else "")
        time = f"{r['recover_s']} s: {r.get('recover_what', '')}" if r.get("recover_s") is not None else "–"
        lines.append("| " + " | ".join(_cell(c) for c in (
            r.get("fault", test_id), r.get("injected", ""), r.get("inputs", 0), r.get("enriched", 0),
            r.get("dead_lettered", 0), r.get("lost", 0), dups, time, r.get("notes", ""),
            f"{r.get('outcome', '?')} ({r.get('duration_s', '?')} s)",
        )) + " |")
    machine = data.get("machine", {})
    stamps = sorted(r.get("recorded_at", "") for r in runs.values())
    lines.append("")
    lines.append(f"Recorded {stamps[0] if stamps else '?'} – {stamps[-1] if stamps else '?'} on {machine.get('cpus', '?')} "
                 f"CPUs, Python {machine.get('python', '?')} ({machine.get('platform', '?')}).")
    return "\n".join(lines)


def write_into(doc: Path, table: str) -> None:
    text = doc.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{doc} has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="fault suite record (default: %(default)s)")
    parser.add_argument("--write", action="store_true", help=f"replace the table in {DOC.relative_to(REPO)}")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.json.read_text())
    except FileNotFoundError:
        print(f"{args.json} not found: run `.venv/bin/python -m pytest -q -m fault tests/fault` first", file=sys.stderr)
        return 1
    table = render(data)
    if args.write:
        write_into(DOC, table)
        print(f"updated {DOC.relative_to(REPO)} ({len(data.get('runs', {}))} rows)")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
