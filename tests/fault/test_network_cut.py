"""Network cut between worker and broker for 10 s mid-stream: the worker recovers by itself, nothing is lost."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.kafka.broker import EmbeddedBroker, EmbeddedBrokerConfig, free_port
from pipeline.kafka.clients import ensure_topics
from tests.fault.proxy import TcpProxy
from tests.fault.report import FaultRecord
from tests.fault.workload import (
    Ledger,
    Watcher,
    fault_settings,
    log_events,
    make_events,
    produce_events,
    start_worker,
    stop_worker,
)

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.needs_model, pytest.mark.timeout(600)]

EVENTS = 2_000
CUT_S = float(os.environ.get("FAULT_CUT_S", "10"))  # longer cuts can be tried by hand
BATCH = 128


def _wall(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


@pytest.fixture
async def proxied_broker(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedBroker, TcpProxy]]:
    """A broker of its own that advertises the proxy, so every client reconnects through it."""
    proxy_port = free_port()
    broker = EmbeddedBroker(EmbeddedBrokerConfig(advertised=f"127.0.0.1:{proxy_port}",
                                                 log_path=tmp_path / "broker.log")).start()
    proxy = await TcpProxy("127.0.0.1", broker.port, listen_port=proxy_port).start()
    try:
        yield broker, proxy
    finally:
        await proxy.stop()
        broker.stop()


async def test_network_cut_10s_then_heal(
    proxied_broker: tuple[EmbeddedBroker, TcpProxy], default_model_dir: Path, tmp_path: Path,
    reliability_record: FaultRecord,
) -> None:
    _, proxy = proxied_broker
    # DEBUG: batch_started/batch_done lines show what the worker was doing across the cut.
    settings = fault_settings(proxy.address, tmp_path, default_model_dir, batch_max_size=BATCH, log_level="DEBUG")
    await ensure_topics(settings)
    ledger = Ledger(await produce_events(settings, make_events(EVENTS, "cut", empty_every=50)))
    worker = start_worker(settings, tmp_path, "cut-w1")
    pid = worker.pid
    try:
        async with Watcher(settings, ledger, [worker]) as watch:
            await watch.wait_until(lambda: ledger.accounted >= EVENTS // 4, timeout_s=240,
                                   what="a quarter of the stream out", alive=[worker])
            before_cut = ledger.accounted
            connections_before = proxy.accepted
            dropped = await proxy.cut()
            cut_at = time.monotonic()
            cut_wall = time.time()
            # The fault itself lasts CUT_S; meanwhile the worker must not give up and exit.
            while time.monotonic() - cut_at < CUT_S:
                assert worker.alive(), f"worker exited during the cut:\n{watch.logs()}"
                await asyncio.sleep(0.2)
            await proxy.heal()
            healed_at = time.time()  # wall clock: compared with output record timestamps
            await watch.wait_until(lambda: ledger.first_at("cut-w1", after=healed_at) is not None, timeout_s=120,
                                   what="outputs again after the heal", alive=[worker])
            first_after = ledger.first_at("cut-w1", after=healed_at)
            await watch.drain(timeout_s=300, alive=[worker])
            drained_at = time.time()
            await watch.settle()
        alive_at_end = worker.alive()
    finally:
        rc = await stop_worker(worker)  # while the proxy still forwards: the shutdown commit goes through it

    reliability_record.fault = f"network cut {CUT_S:.0f} s, heal"
    reliability_record.recover_what = "heal -> first batch published and acked after it (worker log)"
    reliability_record.injected = (f"proxy reset {dropped} connections and refused new ones for {CUT_S:.0f} s "
                             f"after {before_cut}/{EVENTS} outputs")
    reliability_record.__dict__.update(ledger.summary())
    reliability_record.duplicate_bound = BATCH
    reliability_record.observed = {"reconnections": proxy.accepted - connections_before, "same_pid_alive": alive_at_end,
                             "heal_to_drained_s": round(drained_at - healed_at, 1), "exit_code": rc}
    batches = [(e["event"], e.get("size"), round(_wall(e) - cut_wall, 2)) for e in log_events(worker)
               if e.get("event") in ("batch_started", "batch_done") and cut_wall - 5 <= _wall(e) <= healed_at + 5]
    reliability_record.observed["batches_around_cut_s"] = batches  # seconds after the cut began
    reliability_record.observed["log_errors_during_cut"] = sum(
        1 for e in log_events(worker) if e.get("level") == "error" and cut_wall <= _wall(e) <= healed_at)
    done_after_heal = [t for name, _, t in batches if name == "batch_done" and t >= healed_at - cut_wall]
    reliability_record.recover_s = round(done_after_heal[0] - (healed_at - cut_wall), 1) if done_after_heal else None
    reliability_record.observed["first_output_sent_after_heal_s"] = round(first_after - healed_at, 2) if first_after else None
    reliability_record.notes = (f"same process throughout (pid {pid}), {proxy.accepted - connections_before} reconnections, "
                          f"no batch completed during the cut, all out {drained_at - healed_at:.1f} s after the heal"
                          + ("; duplicates: produce retries of records whose acks the cut dropped"
                             if ledger.duplicates else ""))

    assert not [t for name, _, t in batches if name == "batch_done" and 0.5 < t < CUT_S], "the cut did not cut"
    assert alive_at_end and worker.pid == pid, "the worker recovers in the same process"
    assert not ledger.missing()
    # Re-sent or redone work is limited to the batch in flight when the network went away.
    assert ledger.duplicates <= BATCH
    assert rc == 0, worker.log_tail()
