"""Misconfigured workers fail fast: one clear error line, non-zero exit, nothing consumed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from pipeline.kafka.broker import free_port
from pipeline.kafka.clients import ensure_topics
from pipeline.settings import Settings
from pipeline.tools.processes import worker_env
from tests.fault.report import FaultRecord
from tests.fault.workload import committed_offsets, fault_settings, make_events, produce_events

pytestmark = [pytest.mark.fault, pytest.mark.integration, pytest.mark.needs_model, pytest.mark.timeout(180)]

ERROR_PREFIX = "streamnlp: error: "


def _model_copy(model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    return copy


def _missing_file(model_dir: Path, tmp_path: Path) -> dict[str, str]:
    copy = _model_copy(model_dir, tmp_path)
    (copy / "model_int8.onnx").unlink()
    return {"STREAMNLP_MODEL_DIR": str(copy)}


def _corrupt_file(model_dir: Path, tmp_path: Path) -> dict[str, str]:
    copy = _model_copy(model_dir, tmp_path)
    onnx = copy / "model_int8.onnx"
    with onnx.open("r+b") as handle:  # a download or copy cut short
        handle.truncate(onnx.stat().st_size // 3)
    return {"STREAMNLP_MODEL_DIR": str(copy)}


def _refused_port(model_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}  # nothing listens there


def _unresolvable_host(model_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": "kafka.invalid:9092"}  # .invalid never resolves (RFC 2606)


def _unknown_setting(model_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {"STREAMNLP_BATCH_MAXSIZE": "64"}  # typo of STREAMNLP_BATCH_MAX_SIZE


# case -> (environment it gets, what the error line must name, what was injected)
CASES = {
    "missing model file": (_missing_file, "model_int8.onnx", "model dir copy without model_int8.onnx"),
    "corrupt model file": (_corrupt_file, "model_int8.onnx", "model_int8.onnx truncated to a third"),
    "wrong bootstrap (refused)": (_refused_port, "KAFKA_BOOTSTRAP_SERVERS", "a loopback port nothing listens on"),
    "wrong bootstrap (unresolvable)": (_unresolvable_host, "kafka.invalid:9092", "KAFKA_BOOTSTRAP_SERVERS=kafka.invalid:9092"),
    "unknown STREAMNLP_ setting": (_unknown_setting, "STREAMNLP_BATCH_MAXSIZE", "STREAMNLP_BATCH_MAXSIZE=64 (typo)"),
}


async def _record_count(settings: Settings, topics: list[str]) -> int:
    """Records in `topics` (end offsets): no waiting, exact."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return sum((await consumer.end_offsets(partitions)).values()) if partitions else 0
    finally:
        await consumer.stop()


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_startup_fails_fast_without_consuming(
    case: str, kafka_bootstrap: str, default_model_dir: Path, tmp_path: Path, reliability_record: FaultRecord
) -> None:
    make_env, must_mention, injected = CASES[case]
    settings = fault_settings(kafka_bootstrap, tmp_path, default_model_dir)
    await ensure_topics(settings)
    await produce_events(settings, make_events(20, "startup"))  # work it must not touch
    env = worker_env(settings, {"STREAMNLP_WORKER_NAME": "startup-w1", **make_env(default_model_dir, tmp_path)})

    # The command WorkerProcess runs, with stderr kept apart from stdout.
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pipeline.tools.cli", "worker"], env=env, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)

    exit_s = time.monotonic() - started
    errors = [line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    others = [line for line in result.stderr.splitlines() if not line.startswith(ERROR_PREFIX)]
    committed = await committed_offsets(settings)
    outputs = await _record_count(settings, [settings.output_topic, settings.dlq_topic])
    reliability_record.fault = f"startup: {case}"
    reliability_record.injected = f"{injected}; 20 events waiting in the input topic"
    reliability_record.inputs = 20
    reliability_record.observed = {"exit_code": result.returncode, "error": errors[0] if errors else None,
                             "committed": committed, "outputs": outputs, "exit_s": round(exit_s, 1)}
    reliability_record.notes = (f"exit {result.returncode} after {exit_s:.1f} s, {len(errors)} error line; "
                          f"committed offsets {committed or 'none'}, {outputs} outputs")

    assert result.returncode != 0
    assert len(errors) == 1, result.stderr
    assert must_mention in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    for line in others:  # anything else on stderr is a structured log line, not a continuation of the error
        assert isinstance(orjson.loads(line), dict), line
    assert committed == {} and outputs == 0, "a worker that fails at startup must not consume anything"
