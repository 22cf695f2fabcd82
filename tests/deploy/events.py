"""The sample events as the deploy tests count them: what should come out of the containers, read back
from inside the network by collect.py, and the reliability record of a run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipeline.deadletter import InvalidEvent
from pipeline.kafka.clients import jsonl_records
from pipeline.lanes.sentiment.decoding import decode_text_event
from tests.fault.report import FaultRecord
from tests.paths import REPO

SAMPLES = REPO / "samples" / "events.jsonl"
COLLECT = Path(__file__).with_name("collect.py")  # mounted into a container on the test network


def expected_split() -> tuple[set[str], Counter[str]]:
    """Ids of the valid sample events and error codes of the others, as the worker decides them."""
    valid: set[str] = set()
    invalid: Counter[str] = Counter()
    for record in jsonl_records(SAMPLES.read_bytes().splitlines(keepends=True)):
        try:
            valid.add(decode_text_event(record.value).id)
        except InvalidEvent as exc:
            invalid[exc.code.value] += 1
    return valid, invalid


def record_outputs(record: FaultRecord, valid: set[str], invalid: Counter[str], seen: dict) -> None:
    enriched = valid & set(seen["enriched"])
    record.inputs = len(valid) + sum(invalid.values())
    record.enriched = len(enriched)
    record.dead_lettered = min(len(seen["dead_lettered"]), sum(invalid.values()))
    record.lost = record.inputs - record.enriched - record.dead_lettered
    record.output_records = seen["enriched_records"]
    record.duplicates = seen["enriched_records"] - len(seen["enriched"])
    per_worker = Counter(event["worker"] for event in seen["enriched"].values())
    record.observed["events_per_worker"] = dict(per_worker)
