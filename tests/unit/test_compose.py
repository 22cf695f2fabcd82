"""docker-compose.yml and deploy/worker.env.example stay in sync with pipeline.settings.

No Docker engine is needed: the files are parsed, not run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess

import pytest
import yaml

from pipeline.settings import Settings, setting_env_names
from tests.container_files import interpolation_default as _default
from tests.container_files import parse_dockerfile
from tests.paths import REPO

ROOT = REPO
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / "worker.env.example"

SETTINGS_PREFIXES = ("STREAMNLP_", "KAFKA_")
REQUIRED_WORKER_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "STREAMNLP_INPUT_TOPIC",
    "STREAMNLP_OUTPUT_TOPIC",
    "STREAMNLP_DLQ_TOPIC",
    "STREAMNLP_TOPIC_PARTITIONS",
    "STREAMNLP_CONSUMER_GROUP",
    "STREAMNLP_BATCH_MAX_SIZE",
    "STREAMNLP_BATCH_MAX_WAIT_MS",
    "STREAMNLP_MODEL_DIR",
    "STREAMNLP_MODEL_PRECISION",
    "STREAMNLP_LOG_FORMAT",
    "STREAMNLP_INFERENCE_THREADS",
}


def known_setting_names() -> set[str]:
    """Env names Settings reads: STREAMNLP_<FIELD> plus the KAFKA_BOOTSTRAP_SERVERS alias."""
    return setting_env_names()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...] form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def test_services_exist(compose):
    assert {"kafka", "topics", "worker", "producer"} <= set(compose["services"])


def test_kafka_runs_in_kraft_mode(compose):
    kafka = compose["services"]["kafka"]
    assert kafka["image"] in {"apache/kafka:3.9.0"} or kafka["image"].startswith("bitnami/kafka")
    env = _env(kafka)
    roles = env.get("KAFKA_PROCESS_ROLES") or env.get("KAFKA_CFG_PROCESS_ROLES")
    assert roles and "controller" in roles and "broker" in roles
    assert not any("ZOOKEEPER" in key for key in env)
    assert "healthcheck" in kafka


@pytest.mark.parametrize("service", ["worker", "producer"])
def test_service_env_uses_only_known_settings(compose, service):
    known = known_setting_names()
    env = _env(compose["services"][service])
    used = {k for k in env if k.startswith(SETTINGS_PREFIXES)}
    unknown = sorted(used - known)
    assert not unknown, f"{service} sets {unknown}, which pipeline.settings.Settings does not define"


def test_worker_sets_the_documented_settings(compose):
    env = _env(compose["services"]["worker"])
    missing = sorted(REQUIRED_WORKER_ENV - set(env))
    assert not missing, f"worker environment lacks {missing}"


def test_worker_env_values_are_valid_settings(compose, monkeypatch):
    # The defaults compose would substitute must pass Settings validation.
    for key in list(__import__("os").environ):
        if key.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(key)
    for key, value in _env(compose["services"]["worker"]).items():
        monkeypatch.setenv(key, _default(value))
    settings = Settings()
    assert settings.bootstrap_servers == "kafka:9092"
    assert (settings.input_topic, settings.output_topic, settings.dlq_topic) == ("texts", "texts.enriched", "texts.dlq")
    assert str(settings.model_dir).startswith("/models/")


def test_worker_is_scalable(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker, "a fixed container_name prevents --scale worker=N"
    assert not worker.get("ports"), "published host ports collide when scaling workers"
    assert worker.get("build") == "." or (isinstance(worker.get("build"), dict) and worker["build"].get("context") == ".")


def _entrypoint() -> list[str]:
    _, stages = parse_dockerfile((ROOT / "Dockerfile").read_text())
    by_name = {stage.name: stage for stage in stages}
    stage = by_name["runtime-nomodels"]
    while True:  # the nearest ENTRYPOINT up the FROM chain
        if stage.args("ENTRYPOINT"):
            return json.loads(stage.args("ENTRYPOINT")[-1])
        stage = by_name[stage.base]


def _argv(service: dict) -> list[str]:
    """What the container runs: compose's `command` is appended to the image's ENTRYPOINT."""
    command = service["command"]
    return _entrypoint() + (command if isinstance(command, list) else shlex.split(command))


def _assert_cli_accepts(argv: list[str]) -> None:
    from pipeline.tools.cli import main as cli_main

    assert argv[0] == "streamnlp" and argv.count("streamnlp") == 1, f"{argv}: the entrypoint is already `streamnlp`"
    name, *rest = argv[1:]
    assert name in cli_main.commands, f"`{' '.join(argv)}`: no such command"
    cli_main.commands[name].make_context(name, list(rest))  # raises click.UsageError on bad arguments


@pytest.mark.parametrize("service", ["worker", "producer"])
def test_service_command_is_a_cli_command_after_the_entrypoint(compose, service, monkeypatch):
    # `command: ["streamnlp", "worker"]` ran `streamnlp streamnlp worker`: each file parsed fine on its own.
    monkeypatch.chdir(ROOT)  # the producer's file argument is relative to the image's WORKDIR (/app = the repo)
    argv = _argv(compose["services"][service])
    _assert_cli_accepts(argv)
    if service == "worker":
        assert argv == ["streamnlp", "worker"]


def test_documented_compose_run_commands_are_cli_commands(monkeypatch):
    # `docker compose run --rm producer <args>` also appends <args> to the entrypoint.
    monkeypatch.chdir(ROOT)
    documented = []
    for doc in (COMPOSE, ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "deploy" / "README.md"):
        for match in re.finditer(r"compose run --rm (\w+) ([^\n#`]*)", doc.read_text()):
            documented.append((doc.name, match.group(1), shlex.split(match.group(2))))
    assert documented, "the compose header documents `docker compose run --rm producer tail`"
    for doc, service, args in documented:
        assert service in {"producer", "worker"}, (doc, service)
        _assert_cli_accepts(_entrypoint() + args)


def test_models_are_mounted_read_only(compose):
    worker = compose["services"]["worker"]
    mounts = [v for v in worker.get("volumes", []) if isinstance(v, str)]
    model_mounts = [m for m in mounts if m.startswith("./models/cache:")]
    assert model_mounts and all(m.endswith(":ro") for m in model_mounts), mounts
    target = model_mounts[0].split(":")[1]
    assert _default(_env(worker)["STREAMNLP_MODEL_DIR"]).startswith(target + "/")


def test_topic_init_creates_the_worker_topics(compose):
    topics = compose["services"]["topics"]
    script = " ".join(topics["command"]) if isinstance(topics["command"], list) else topics["command"]
    # Topic names and partitions come from the same environment as the workers'.
    assert _env(topics) == _env(compose["services"]["worker"])
    for name in ("STREAMNLP_INPUT_TOPIC", "STREAMNLP_OUTPUT_TOPIC", "STREAMNLP_DLQ_TOPIC", "KAFKA_BOOTSTRAP_SERVERS"):
        assert f"$${name}" in script, f"topic init does not use {name}"
    assert "--create" in script and "--if-not-exists" in script
    assert "--partitions \"$$STREAMNLP_TOPIC_PARTITIONS\"" in script
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert compose["services"]["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def _worker_topics(settings: Settings) -> set[str]:
    """Every topic setting, fields and derived names alike (a new one fails the test below until compose creates it)."""
    names = [n for n in Settings.model_fields if n.endswith("_topic")]
    names += [n for n, v in vars(Settings).items() if n.endswith("_topic") and isinstance(v, property)]
    return {getattr(settings, n) for n in names}


def test_topic_init_script_creates_every_topic_with_the_configured_layout(compose, tmp_path, monkeypatch):
    # Run the job's script for real, with kafka-topics.sh replaced by a recorder (the Kafka image itself
    # runs in tests/deploy/test_compose_run.py's stand-in, against a real broker).
    topics = compose["services"]["topics"]
    assert topics["entrypoint"] == ["/bin/bash", "-ec"]
    script = topics["command"][0].replace("$$", "$")  # compose's escape for a literal $
    calls = tmp_path / "calls"
    recorder = tmp_path / "kafka-topics.sh"
    recorder.write_text(f'#!/bin/bash\nprintf "%s\\0" "$@" >> {calls}\nprintf "\\n" >> {calls}\n')
    recorder.chmod(recorder.stat().st_mode | stat.S_IXUSR)
    env = {k: _default(v) for k, v in _env(topics).items()}
    out = subprocess.run(["/bin/bash", "-ec", script.replace("/opt/kafka/bin/kafka-topics.sh", str(recorder))],
                         env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    created: dict[str, list[str]] = {}
    for line in calls.read_text().splitlines():
        args = [a for a in line.split("\0") if a]
        assert args[:2] == ["--bootstrap-server", env["KAFKA_BOOTSTRAP_SERVERS"]], args
        if "--create" in args:
            created[args[args.index("--topic") + 1]] = args
    for key in [k for k in os.environ if k.startswith(SETTINGS_PREFIXES)]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert set(created) == _worker_topics(settings)
    for name, args in created.items():
        assert "--if-not-exists" in args
        assert args[args.index("--partitions") + 1] == str(settings.topic_partitions), name
        assert args[args.index("--replication-factor") + 1] == str(settings.topic_replication), name
        configs = [args[i + 1] for i, a in enumerate(args) if a == "--config"]
        assert configs == (["cleanup.policy=compact"] if name == settings.windows_state_topic else []), name


def test_producer_sends_the_samples(compose):
    producer = compose["services"]["producer"]
    command = _argv(producer)
    assert command[:2] == ["streamnlp", "produce"] and command[-1].endswith("samples/events.jsonl")
    assert (ROOT / "samples" / "events.jsonl").exists()


def test_sample_counts_in_the_comments_are_the_files(compose):
    # The split the worker itself makes: valid events are enriched, the rest dead-lettered.
    from pipeline.deadletter import InvalidEvent
    from pipeline.kafka.clients import jsonl_records
    from pipeline.lanes.sentiment.decoding import decode_text_event

    records = list(jsonl_records((ROOT / "samples" / "events.jsonl").read_bytes().splitlines(keepends=True)))
    valid = 0
    for record in records:
        try:
            decode_text_event(record.value)
            valid += 1
        except InvalidEvent:
            pass
    stated = f"{len(records)} lines: {valid} events + {len(records) - valid} deliberately malformed"
    assert stated in COMPOSE.read_text(), f"docker-compose.yml's producer comment should say ({stated} ones)"


def test_env_example_uses_only_known_settings():
    known = known_setting_names()
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line.split("=", 1)[0])
    unknown = sorted(n for n in names if n.startswith(SETTINGS_PREFIXES) and n not in known)
    assert not unknown, f"deploy/worker.env.example has unknown settings {unknown}"
    assert REQUIRED_WORKER_ENV <= names


# --- container image target and Prometheus (issue 7, item 3) -----------------------------------

PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"


def test_compose_builds_a_dockerfile_stage_without_models(compose):
    _, stages = parse_dockerfile((ROOT / "Dockerfile").read_text())
    worker, producer = compose["services"]["worker"], compose["services"]["producer"]
    # Models are mounted from ./models/cache, so compose must not run the torch build stage.
    assert worker["build"]["target"] == "runtime-nomodels" in {s.name for s in stages}
    assert producer["build"] == worker["build"] and producer["image"] == worker["image"]


def test_worker_web_server_is_reachable_in_the_network(compose):
    # The image sets STREAMNLP_WEB_HOST=0.0.0.0; the default 127.0.0.1 would hide /metrics from Prometheus.
    assert _env(compose["services"]["worker"]).get("STREAMNLP_WEB_HOST", "0.0.0.0") == "0.0.0.0"


def test_summarizer_model_is_on_the_mount(compose):
    env = _env(compose["services"]["worker"])
    assert _default(env["STREAMNLP_SUMMARIZER_MODEL_DIR"]) == "/models/summarizer-smollm2-135m"


def test_prometheus_service(compose):
    prometheus = compose["services"]["prometheus"]
    image, _, tag = prometheus["image"].partition(":")
    assert image == "prom/prometheus" and re.fullmatch(r"v\d+\.\d+\.\d+", tag), "pin a release, not latest"
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "worker" in prometheus["depends_on"]


def test_prometheus_scrapes_every_worker():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "streamnlp-worker"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (sd,) = job["dns_sd_configs"]
    # A records of the compose service name: one per replica (`tasks.worker` only exists in Swarm).
    assert sd["names"] == ["worker"] and sd["type"] == "A"
    assert sd["port"] == Settings.model_fields["web_port"].default
    health = (ROOT / "pipeline" / "runtime" / "health.py").read_text()
    assert '@app.page("/metrics")' in health
