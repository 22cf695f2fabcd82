"""What each fault test injected and observed, for docs/reliability.md.

Every fault test fills one `FaultRecord`; the fixture in conftest.py stamps the
test's outcome and merges it into test-artifacts/reliability.json keyed by test
id, so re-running one test refreshes only its row.
`scripts/reliability_table.py` renders the file as the markdown table.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REPORT_PATH = Path(os.environ.get("STREAMNLP_RELIABILITY_REPORT", REPO / "test-artifacts" / "reliability.json"))


@dataclass
class FaultRecord:
    fault: str
    injected: str = ""
    inputs: int = 0
    enriched: int = 0  # distinct inputs with an enriched record
    dead_lettered: int = 0  # distinct inputs with a dead letter
    lost: int = 0  # inputs with neither
    output_records: int = 0  # every record read, duplicates included
    duplicates: int = 0  # output records beyond the first per input
    duplicate_bound: int | None = None  # what the test asserted duplicates stay within
    recover_s: float | None = None  # see recover_what
    recover_what: str = ""  # what recover_s measures, e.g. "heal -> first output sent after it"
    notes: str = ""  # one line for the table: what else was observed
    observed: dict[str, Any] = field(default_factory=dict)  # test-specific facts, kept in the JSON only
    outcome: str = "unfinished"
    duration_s: float | None = None
    recorded_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def merge_into_report(test_id: str, record: FaultRecord, path: Path = REPORT_PATH) -> None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    data.setdefault("runs", {})
    record.recorded_at = datetime.now(UTC).isoformat(timespec="seconds")
    data["runs"][test_id] = record.to_json()
    data["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
