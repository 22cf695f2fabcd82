"""kill -9 in the middle of 5,000 events, restart: nothing lost, duplicates only where offsets were uncommitted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fault.report import FaultRecord
from tests.fault.workload import (
    Ledger,
    Watcher,
    committed_offsets,
    fault_settings,
    make_events,
    produce_events,
    start_worker,
    stop_worker,
)

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.needs_model, pytest.mark.timeout(600)]

EVENTS = 5_000
BATCH = 128
PARTITIONS = 4


async def test_kill_9_mid_stream_then_restart(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path, reliability_record: FaultRecord
) -> None:
    settings = fault_settings(kafka_bootstrap, tmp_path, default_model_dir, batch_max_size=BATCH,
                              topic_partitions=PARTITIONS)
    from pipeline.kafka.clients import ensure_topics

    await ensure_topics(settings)
    events = make_events(EVENTS, "crash", empty_every=50)  # 100 of them are dead letters (empty text)
    ledger = Ledger(await produce_events(settings, events))
    reliability_record.fault = "kill -9 mid-stream, restart"
    reliability_record.inputs = EVENTS

    first = start_worker(settings, tmp_path, "crash-w1")
    second = None
    async with Watcher(settings, ledger, [first]) as watch:
        try:
            await watch.wait_until(lambda: ledger.accounted >= EVENTS * 2 // 5, timeout_s=240,
                                   what="first worker 40% through", alive=[first])
            first.kill()
            killed_at = time.time()  # wall clock: compared with output record timestamps
            rc_first = first.returncode
            committed = await committed_offsets(settings)
            seen_before_restart = ledger.accounted
            second = start_worker(settings, tmp_path, "crash-w2")
            watch.workers.append(second)
            await watch.drain(timeout_s=300, alive=[second])
            await watch.settle()
        finally:
            if second is not None:
                rc_second = await stop_worker(second)

    first_by_w2 = ledger.first_at("crash-w2")
    dup = ledger.duplicated()
    reliability_record.injected = f"SIGKILL after {seen_before_restart}/{EVENTS} outputs; restart (batch_max_size={BATCH}, {PARTITIONS} partitions)"
    reliability_record.__dict__.update(ledger.summary())
    reliability_record.recover_s = round(first_by_w2 - killed_at, 1) if first_by_w2 else None
    reliability_record.duplicate_bound = BATCH
    reliability_record.recover_what = "kill -> first output of the restarted worker (start, model load, group join)"
    reliability_record.observed = {"killed_exit_code": rc_first, "committed_at_kill": committed,
                             "restarted_exit_code": rc_second}
    reliability_record.notes = (f"duplicates = the killed worker's outputs past its committed offsets "
                          f"({len(dup)} inputs); restarted worker exit {rc_second}")

    assert rc_first == -9
    assert not ledger.missing(), f"lost inputs: {ledger.missing()[:5]}"
    # Duplicates are exactly the first worker's outputs for inputs at or past the offset it had
    # committed when it died: nothing committed is redone, everything uncommitted is.
    uncommitted_by_w1 = {c for c in ledger.coords_by("crash-w1") if c[1] >= committed.get(c[0], 0)}
    assert set(dup) == uncommitted_by_w1
    for coord, seen in dup.items():
        assert [s.worker for s in seen] == ["crash-w1", "crash-w2"], (coord, seen)
    assert ledger.duplicates <= BATCH, f"{ledger.duplicates} duplicates: more than one batch was uncommitted"
    assert rc_second == 0, second.log_tail() if second else ""
