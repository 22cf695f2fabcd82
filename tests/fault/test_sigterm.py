"""SIGTERM while a batch is in flight: the batch finishes, its offsets are committed, exit 0, no duplicates."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.kafka.clients import ensure_topics
from tests.fault.report import FaultRecord
from tests.fault.workload import (
    Ledger,
    Watcher,
    committed_offsets,
    fault_settings,
    log_events,
    make_events,
    produce_events,
    start_worker,
    stop_worker,
    wait_exit,
    wait_for_log,
)

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.needs_model, pytest.mark.timeout(420)]

BATCH = 64
EVENTS = 640
MORE = 20


def long_events(count: int, prefix: str) -> list[dict]:
    """Texts past the model window, so one batch's inference takes seconds: a SIGTERM sent
    when a batch starts lands well inside it."""
    events = make_events(count, prefix)
    for event in events:
        event["text"] = " ".join([event["text"]] * 8)[:1500]
    return events


def _batches_done(events: list[dict]) -> int:
    return sum(1 for e in events if e.get("event") == "batch_done")


def _in_flight_after(done: int):
    """A batch has started after `done` batches finished and has not finished itself."""
    def check(events: list[dict]) -> bool:
        started = sum(1 for e in events if e.get("event") == "batch_started")
        return _batches_done(events) >= done and started == _batches_done(events) + 1
    return check


async def test_sigterm_finishes_the_batch_commits_and_exits_0(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path, reliability_record: FaultRecord
) -> None:
    # DEBUG: the worker logs batch_started / batch_done, which is how the test knows a batch is in flight.
    settings = fault_settings(kafka_bootstrap, tmp_path, default_model_dir, batch_max_size=BATCH, log_level="DEBUG")
    await ensure_topics(settings)
    ledger = Ledger(await produce_events(settings, long_events(EVENTS, "term")))
    first = start_worker(settings, tmp_path, "term-w1")
    second = None
    async with Watcher(settings, ledger, [first]) as watch:
        try:
            # Two batches done, the third started: its inference takes seconds, the SIGTERM lands in it.
            await wait_for_log(first, _in_flight_after(2), timeout_s=240, what="third batch in flight")
            first.process.terminate()  # SIGTERM
            signalled = time.monotonic()
            rc_first = await wait_exit(first, timeout_s=120)
            if rc_first is None:  # hung: fail below with its log, but do not leave it running
                first.kill()
            stop_s = time.monotonic() - signalled
            await watch.settle()
            done_before_restart = {c for c, seen in ledger.by_coord.items() if seen}
            committed = await committed_offsets(settings)

            second = start_worker(settings, tmp_path, "term-w2")
            watch.workers.append(second)
            ledger.add_produced(await produce_events(settings, make_events(MORE, "term-more")))
            await watch.drain(timeout_s=300, alive=[second])
            await watch.settle()
        finally:
            rc_second = await stop_worker(second) if second is not None else None

    events = log_events(first)
    stopping = next(i for i, e in enumerate(events) if e.get("event", "").endswith("App]: Stopping..."))
    finished_after_signal = [e for e in events[stopping:] if e.get("event") == "batch_done"]
    reliability_record.fault = "SIGTERM during a batch, restart"
    reliability_record.injected = (f"SIGTERM during batch {_batches_done(events[:stopping]) + 1} "
                             f"(batch_max_size={BATCH}); restart with {MORE} more events")
    reliability_record.__dict__.update(ledger.summary())
    reliability_record.duplicate_bound = 0
    reliability_record.recover_s = round(stop_s, 1)
    reliability_record.recover_what = "SIGTERM -> process exit (the batch in flight finished first)"
    reliability_record.notes = (f"exit {rc_first}; batch of {finished_after_signal[0].get('size') if finished_after_signal else '?'} "
                          f"finished after the signal and committed; 0 duplicates after restart")
    reliability_record.observed = {"exit_code": rc_first, "stop_s": round(stop_s, 1), "committed": committed,
                             "outputs_before_restart": len(done_before_restart),
                             "batch_finished_after_signal": [e.get("size") for e in finished_after_signal]}

    assert rc_first == 0, first.log_tail()
    assert finished_after_signal, "the batch in flight at the SIGTERM must be finished, not dropped"
    assert "batch_unfinished_at_shutdown" not in first.log_path.read_text()
    # Committed offsets cover exactly what was published, the finished batch included.
    assert done_before_restart == {p.coord for p in ledger.produced if p.coord[1] < committed.get(p.coord[0], 0)}
    assert not ledger.missing()
    assert ledger.duplicates == 0, {c: [s.worker for s in seen] for c, seen in ledger.duplicated().items()}
    assert rc_second == 0
