"""Two workers in one group share the partitions; kill -9 one, the other takes its partitions over."""

from __future__ import annotations

import time
from datetime import datetime
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
)

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.needs_model, pytest.mark.timeout(600)]

EVENTS = 3_000
BATCH = 64
PARTITIONS = 4
SESSION_TIMEOUT_S = 6.0


def owners(ledger: Ledger) -> dict[int, str]:
    """Current owner of each input partition: the worker that sent its latest output."""
    latest: dict[int, tuple[float, str]] = {}
    for (partition, _), seen in ledger.by_coord.items():
        for s in seen:
            if partition not in latest or s.at > latest[partition][0]:
                latest[partition] = (s.at, s.worker)
    return {partition: worker for partition, (_, worker) in latest.items()}


async def test_two_workers_share_then_survivor_takes_over(
    kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path, reliability_record: FaultRecord
) -> None:
    settings = fault_settings(kafka_bootstrap, tmp_path, default_model_dir, batch_max_size=BATCH,
                              topic_partitions=PARTITIONS, session_timeout_s=SESSION_TIMEOUT_S)
    await ensure_topics(settings)
    ledger = Ledger(await produce_events(settings, make_events(EVENTS, "group", empty_every=50)))
    a = start_worker(settings, tmp_path, "group-a")
    b = start_worker(settings, tmp_path, "group-b")
    victim, survivor = a, b

    def shared() -> bool:
        current = owners(ledger)
        return (len(current) == PARTITIONS and set(current.values()) == {"group-a", "group-b"}
                and ledger.accounted >= EVENTS // 5)

    try:
        async with Watcher(settings, ledger, [a, b]) as watch:
            await watch.wait_until(shared, timeout_s=240, what="both workers owning partitions", alive=[a, b])
            owners_before = owners(ledger)
            victim_partitions = {p for p, w in owners_before.items() if w == "group-a"}
            before_kill = ledger.accounted
            victim.kill()
            killed_at = time.time()  # wall clock: compared with output record timestamps
            committed_at_kill = await committed_offsets(settings)

            def takeover_at() -> float | None:
                times = [s.at for (p, _), seen in ledger.by_coord.items() if p in victim_partitions
                         for s in seen if s.worker == "group-b" and s.at >= killed_at]
                return min(times) if times else None

            await watch.wait_until(lambda: takeover_at() is not None, timeout_s=180,
                                   what="survivor processing the victim's partitions", alive=[survivor])
            first_takeover = takeover_at()
            await watch.drain(timeout_s=300, alive=[survivor])
            await watch.settle()
    finally:
        rc_survivor = await stop_worker(survivor)
        if victim.alive():
            victim.kill()

    reassigned = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
                  for e in log_events(survivor) if e.get("event") == "partitions_assigned"]
    reassigned_after_kill = [t for t in reassigned if t >= killed_at]
    reliability_record.fault = "two workers, kill -9 one"
    reliability_record.injected = (f"SIGKILL group-a (partitions {sorted(victim_partitions)}) after "
                             f"{before_kill}/{EVENTS} outputs; session timeout {SESSION_TIMEOUT_S:.0f} s")
    reliability_record.__dict__.update(ledger.summary())
    reliability_record.duplicate_bound = BATCH
    reliability_record.recover_s = round(first_takeover - killed_at, 1) if first_takeover else None
    reliability_record.recover_what = "kill -> first survivor output on the victim's partitions"
    reassigned_s = round(reassigned_after_kill[0] - killed_at, 1) if reassigned_after_kill else None
    reliability_record.notes = (f"both workers held partitions ({', '.join(f'p{p}:{w[-1]}' for p, w in sorted(owners_before.items()))}); "
                          f"survivor reassigned all 4 after {reassigned_s} s")
    reliability_record.observed = {
        "owners_before_kill": {str(p): w for p, w in sorted(owners_before.items())},
        "reassigned_after_s": reassigned_s,
        "committed_at_kill": committed_at_kill, "survivor_exit_code": rc_survivor,
    }

    assert victim_partitions and len(victim_partitions) < PARTITIONS
    assert reassigned_after_kill, "the survivor must be given the victim's partitions"
    # A partition the victim had already drained gets no output after the kill, so "latest writer" would
    # still name the victim there; what must hold is that nothing after the kill came from it.
    writers_after_kill = {s.worker for seen in ledger.by_coord.values() for s in seen if s.at > killed_at}
    assert writers_after_kill == {"group-b"}, "after the kill only the survivor produces output"
    assert not ledger.missing()
    # Redone work is the victim's uncommitted tail: only on its partitions, only past its committed offsets,
    # and at most its one batch in flight (offsets are committed after every batch).
    for coord, seen in ledger.duplicated().items():
        assert coord[0] in victim_partitions and coord[1] >= committed_at_kill.get(coord[0], 0), (coord, seen)
    assert ledger.duplicates <= BATCH
    assert rc_survivor == 0, survivor.log_tail()
