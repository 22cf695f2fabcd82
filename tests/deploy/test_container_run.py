"""The image, run for real: the embedded broker in one container, two workers (models mounted read-only,
as docker-compose.yml does), the sample events produced from a third, every event out the other end.

The image is the Dockerfile's runtime-nomodels target on a Debian base built with debootstrap
(tests/deploy/podman.py); the `build` and `runtime` targets, which install torch, are not built here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.deploy.events import COLLECT, expected_split, record_outputs
from tests.deploy.podman import Podman

# The first run on a machine builds the base and project images (minutes) inside the first test.
pytestmark = [pytest.mark.deploy, pytest.mark.timeout(1200)]

# Like deploy/k8s/deployment.yaml: read-only root filesystem, a writable /tmp (an emptyDir there).
HARDENED = ["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,mode=1777,size=256m",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
WORKER_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "broker:9092",
    "STREAMNLP_TOPIC_PARTITIONS": "4",
    "STREAMNLP_INFERENCE_THREADS": "1",
    "STREAMNLP_SUMMARIZER_THREADS": "1",
}


@pytest.fixture
def network(podman: Podman) -> Iterator[tuple[str, list[str]]]:
    """A fresh network and the names of the containers started on it; all removed afterwards."""
    name = f"streamnlp-test-{uuid.uuid4().hex[:8]}"
    podman("network", "create", name)
    containers: list[str] = []
    try:
        yield name, containers
    finally:
        podman.save_logs(containers, "container")
        for container in reversed(containers):
            podman("rm", "--force", "--time", "10", container, check=False)
        podman("network", "rm", "--force", name, check=False)


def env_args(env: dict[str, str]) -> list[str]:
    return [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]


def test_broker_workers_and_producer_in_containers(podman, project_image, models_dir, network, phase, reliability_record):
    net, containers = network
    valid, invalid = expected_split()
    prefix = net
    reliability_record.fault = "container run"
    reliability_record.injected = ("runtime-nomodels image (podman, runc): broker, 2 workers (models mounted read-only, "
                           "read-only root, all capabilities dropped) and the producer in separate containers; "
                           "samples/events.jsonl")

    with phase("broker up"):
        broker = f"{prefix}-broker"
        containers.append(broker)
        podman("run", "--detach", "--name", broker, "--network", net, "--network-alias", "broker", *HARDENED,
               project_image, "broker", "--host", "0.0.0.0", "--advertised-host", "broker", "--port", "9092")
        podman.wait_for_log(broker, r"embedded broker listening: KAFKA_BOOTSTRAP_SERVERS=broker:9092", timeout=60)

    with phase("two workers healthy"):
        workers = [f"{prefix}-worker-{i}" for i in (1, 2)]
        started = time.monotonic()
        for worker in workers:
            containers.append(worker)
            # No command: the image's ENTRYPOINT + CMD, `streamnlp worker`.
            podman("run", "--detach", "--name", worker, "--network", net, *HARDENED,
                   "--volume", f"{models_dir}:/models:ro", *env_args(WORKER_ENV), project_image)
        for worker in workers:
            podman.wait_healthy(worker, timeout=240)
        reliability_record.recover_s = round(time.monotonic() - started, 1)
        reliability_record.recover_what = "worker containers started -> both health checks healthy (models loaded)"

    with phase("both workers own input partitions"):
        for worker in workers:
            podman.wait_input_assigned(worker, "texts", timeout=120)

    with phase("produce"):
        producer = f"{prefix}-producer"
        containers.append(producer)
        out = podman("run", "--name", producer, "--network", net, *HARDENED, *env_args(WORKER_ENV),
                     project_image, "produce", "samples/events.jsonl", timeout=120)
        assert f"produced {len(valid) + sum(invalid.values())} records" in out.stderr

    with phase("every event out"):
        collector = f"{prefix}-collect"
        containers.append(collector)
        out = podman("run", "--name", collector, "--network", net, *HARDENED,
                     "--volume", f"{COLLECT}:/collect.py:ro", "--entrypoint", "python", project_image,
                     "/collect.py", "broker:9092", "--enriched", str(len(valid)),
                     "--dead-lettered", str(sum(invalid.values())), timeout=300)
        seen = json.loads(out.stdout)
    record_outputs(reliability_record, valid, invalid, seen)

    assert set(seen["enriched"]) == valid, f"missing {sorted(valid - set(seen['enriched']))[:10]}"
    assert Counter(seen["dead_lettered"]) == invalid
    # Both workers took part: the input partitions were split between them.
    assert len({event["worker"] for event in seen["enriched"].values()}) == 2, Counter(e["worker"] for e in seen["enriched"].values())

    with phase("checks inside"):
        for worker in workers:
            state = podman.state(worker)
            assert state["Status"] == "running", state
            config = json.loads(podman("inspect", "--type", "container", "--format", "{{json .HostConfig}}", worker).stdout)
            assert config["ReadonlyRootfs"] is True
            # The worker process itself (PID 1 of the container) runs as the image's uid.
            status = podman("exec", worker, "cat", "/proc/1/status").stdout
            uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
            assert set(uids) == {"10001"}, status
            denied = podman("exec", worker, "touch", "/app/written", check=False)
            assert denied.returncode != 0 and "Read-only file system" in denied.stderr, denied
            models = podman("exec", worker, "touch", "/models/written", check=False)
            assert models.returncode != 0, "the model mount must be read-only"

    with phase("stop"):
        # SIGTERM, then the worker finishes its batch and exits 0 within compose's grace period.
        for name in [*workers, broker]:
            podman("stop", "--time", "30", name, timeout=60)
            assert podman.state(name)["ExitCode"] == 0, podman.logs(name)[-3000:]
    reliability_record.notes = (f"both workers enriched events ({', '.join(str(n) for n in sorted(reliability_record.observed['events_per_worker'].values()))}); "
                        "worker PID 1 uid 10001, root filesystem and model mount read-only; "
                        "broker and workers exit 0 on SIGTERM")
