"""docker-compose.yml, executed: podman-compose runs it with deploy/podman/compose.override.yml (the Kafka
and topic-job images cannot be pulled here, so both run the streamnlp image: the embedded broker and
the compose file's own topic script; Prometheus is left out), `--scale worker=2`, the demo producer,
and every sample event comes out.

Podman 4.3 limits what podman-compose can do with `depends_on`: it has no `wait --condition=healthy`
(podman-compose skips `service_healthy`), and starting a container whose dependency has already
exited fails ("generating dependency graph ... not found in input list"), which is every worker once
the one-shot topic job is done. So the test walks compose's dependency order itself, one service
at a time with `up --no-deps`, waiting on each condition the compose file states: the broker's
health check, the topic job's successful exit, the workers' start; everything else (images, commands,
environment, volumes, network, names, health checks, scaling) is podman-compose running the file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipeline.settings import Settings
from tests.container_files import interpolation_default
from tests.deploy.events import COLLECT, expected_split, record_outputs
from tests.deploy.podman import ROOT, Podman, PodmanError

# The first run on a machine builds the base and project images (minutes) inside whichever test runs first.
pytestmark = [pytest.mark.deploy, pytest.mark.timeout(1200)]

COMPOSE = ROOT / "docker-compose.yml"
OVERRIDE = ROOT / "deploy" / "podman" / "compose.override.yml"


def podman_compose_bin() -> str:
    found = shutil.which("podman-compose", path=str(Path(sys.executable).parent)) or shutil.which("podman-compose")
    if found is None:
        pytest.fail("podman-compose is missing: it is in the dev extra (pip install -c constraints.txt -e '.[dev]')")
    return found


class Compose:
    def __init__(self, podman: Podman, image: str) -> None:
        self.podman = podman
        self.project = f"streamnlp-test-{uuid.uuid4().hex[:8]}"
        self.env = {**podman.env, "STREAMNLP_IMAGE": image}
        # --in-pod false: one network namespace per container, as Docker Compose does (in a pod the
        # scaled workers would share one and collide on port 6066).
        self.argv = [podman_compose_bin(), "--in-pod", "false", "-p", self.project, "-f", str(COMPOSE), "-f", str(OVERRIDE)]

    @property
    def network(self) -> str:
        return f"{self.project}_default"

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([*self.argv, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise PodmanError(f"podman-compose {' '.join(args)} exited {out.returncode}:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
        return out

    def containers(self, service: str | None = None) -> list[str]:
        filters = ["--filter", f"label=io.podman.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        out = self.podman("ps", "--all", *filters, "--format", "{{.Names}}")
        return sorted(out.stdout.split())


@pytest.fixture
def compose(podman: Podman, project_image: str, models_dir: Path) -> Iterator[Compose]:
    project = Compose(podman, project_image)
    try:
        yield project
    finally:
        names = project.containers()
        podman.save_logs(names, "compose")
        try:
            project("down", "--timeout", "10", timeout=180)
        finally:  # whatever `down` left
            for name in names:
                podman("rm", "--force", "--depend", "--time", "5", name, check=False)
            podman("network", "rm", "--force", project.network, check=False)


def test_compose_file_runs_with_two_workers(podman, compose, phase, reliability_record):
    valid, invalid = expected_split()
    reliability_record.fault = "compose run"
    reliability_record.injected = ("docker-compose.yml + deploy/podman/compose.override.yml under podman-compose: "
                           "broker, topic job, --scale worker=2, the demo producer")
    config = yaml.safe_load(COMPOSE.read_text())
    env = config["x-streamnlp-env"]
    settings = Settings.model_construct(
        consumer_group=env["STREAMNLP_CONSUMER_GROUP"], input_topic=env["STREAMNLP_INPUT_TOPIC"])
    partitions = int(interpolation_default(str(env["STREAMNLP_TOPIC_PARTITIONS"])))
    topics = [env[key] for key in ("STREAMNLP_INPUT_TOPIC", "STREAMNLP_OUTPUT_TOPIC", "STREAMNLP_DLQ_TOPIC",
                                   "STREAMNLP_SUMMARY_REQUESTS_TOPIC", "STREAMNLP_SUMMARIES_TOPIC", "STREAMNLP_WINDOWS_TOPIC")]
    topics += [settings.windows_route_topic, settings.windows_state_topic]

    services = config["services"]
    with phase("kafka healthy"):
        compose("up", "--detach", "--no-deps", "kafka")
        (kafka,) = compose.containers("kafka")
        podman.wait_healthy(kafka, timeout=90)

    with phase("topics job"):
        assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
        compose("up", "--detach", "--no-deps", "topics")
        (topics_job,) = compose.containers("topics")
        assert podman.exit_code(topics_job, timeout=120) == 0, podman.logs(topics_job)
        assert f"PartitionCount: {partitions}" in podman.logs(topics_job)

    with phase("up --scale worker=2, healthy"):
        assert services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        started = time.monotonic()
        compose("up", "--detach", "--no-deps", "--scale", "worker=2", "worker")
        workers = compose.containers("worker")
        assert len(workers) == 2, compose.containers()
        for worker in workers:
            podman.wait_healthy(worker, timeout=240)
        reliability_record.recover_s = round(time.monotonic() - started, 1)
        reliability_record.recover_what = "`up --scale worker=2` -> both health checks healthy"

    with phase("both workers own input partitions"):
        for worker in workers:
            podman.wait_input_assigned(worker, env["STREAMNLP_INPUT_TOPIC"], timeout=120)

    with phase("producer"):
        assert services["producer"]["depends_on"]["worker"]["condition"] == "service_started"
        compose("up", "--detach", "--no-deps", "producer")
        (producer,) = compose.containers("producer")
        assert podman.exit_code(producer, timeout=120) == 0, podman.logs(producer)
        assert f"produced {len(valid) + sum(invalid.values())} records" in podman.logs(producer)

    with phase("every event out"):
        out = podman("run", "--rm", "--network", compose.network, "--volume", f"{COLLECT}:/collect.py:ro",
                     "--entrypoint", "python", compose.env["STREAMNLP_IMAGE"], "/collect.py", "kafka:9092",
                     "--enriched", str(len(valid)), "--dead-lettered", str(sum(invalid.values())),
                     *[arg for topic in topics for arg in ("--topic", topic)], timeout=300)
        seen = json.loads(out.stdout)
    record_outputs(reliability_record, valid, invalid, seen)
    assert set(seen["enriched"]) == valid, f"missing {sorted(valid - set(seen['enriched']))[:10]}"
    assert Counter(seen["dead_lettered"]) == invalid
    assert len({event["worker"] for event in seen["enriched"].values()}) == 2
    # The topic job made every topic the workers use, with the configured partitions.
    assert seen["topics"] == {topic: partitions for topic in topics}

    with phase("compose run producer tail"):
        # The README's `docker compose run --rm producer tail`: arguments to the `streamnlp` entrypoint.
        out = compose("run", "--rm", "--no-deps", "producer", "tail", "--json", "--max", "1", timeout=120)
        (line,) = [line for line in out.stdout.splitlines() if line.startswith("{")]
        assert json.loads(line)["id"] in valid
    reliability_record.notes = (f"topic job made all {len(topics)} topics ({partitions} partitions each); both workers enriched "
                        f"events ({', '.join(str(n) for n in sorted(reliability_record.observed['events_per_worker'].values()))}); "
                        "`compose run --rm producer tail` works")
