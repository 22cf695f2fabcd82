"""deploy/k8s against the code: settings names and values, probes, ports, scaling bounds, sizing.

No cluster is needed: the manifests are parsed, not applied.
"""

from __future__ import annotations

import json
import os
import re
import tomllib

import pytest
import yaml

from pipeline.settings import (
    DEFAULT_SENTIMENT_MODEL,
    DEFAULT_SUMMARIZER_MODEL,
    ConfigError,
    Settings,
    load_settings,
    setting_env_names,
)
from pipeline.tools.cli import main as cli_main
from tests.paths import REPO

ROOT = REPO
K8S = ROOT / "deploy" / "k8s"
BENCH = json.loads((ROOT / "docs" / "bench.json").read_text())  # the reference run of docs/performance.md
HEALTH_SOURCE = (ROOT / "pipeline" / "runtime" / "health.py").read_text()
WEB_PORT = Settings.model_fields["web_port"].default
SECRET_SETTINGS = {"STREAMNLP_SASL_USERNAME", "STREAMNLP_SASL_PASSWORD"}
# What a cluster deployment must pin rather than inherit from a default meant for a laptop.
REQUIRED = {
    "KAFKA_BOOTSTRAP_SERVERS", "STREAMNLP_CONSUMER_GROUP", "STREAMNLP_INPUT_TOPIC", "STREAMNLP_OUTPUT_TOPIC",
    "STREAMNLP_DLQ_TOPIC", "STREAMNLP_TOPIC_PARTITIONS", "STREAMNLP_TOPIC_REPLICATION", "STREAMNLP_MODEL_DIR",
    "STREAMNLP_SUMMARIZER_MODEL_DIR", "STREAMNLP_INFERENCE_THREADS", "STREAMNLP_SUMMARIZER_THREADS",
    "STREAMNLP_DATA_DIR", "STREAMNLP_WEB_HOST", "STREAMNLP_WEB_PORT", "STREAMNLP_LOG_FORMAT",
    "STREAMNLP_SECURITY_PROTOCOL",
}


def load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


@pytest.fixture(scope="module")
def config() -> dict[str, str]:
    configmap = load("configmap.yaml")
    assert configmap["kind"] == "ConfigMap"
    return configmap["data"]


@pytest.fixture(scope="module")
def deployment() -> dict:
    manifest = load("deployment.yaml")
    assert manifest["kind"] == "Deployment"
    return manifest


@pytest.fixture(scope="module")
def container(deployment) -> dict:
    (worker,) = deployment["spec"]["template"]["spec"]["containers"]
    return worker


@pytest.fixture(scope="module")
def scaled_object() -> dict:
    manifest = load("keda-scaledobject.yaml")
    assert manifest["kind"] == "ScaledObject" and manifest["apiVersion"] == "keda.sh/v1alpha1"
    return manifest


def _port_number(container: dict, port: int | str) -> int:
    if isinstance(port, int):
        return port
    (match,) = [p for p in container["ports"] if p["name"] == port]
    return match["containerPort"]


def test_configmap_names_are_settings(config):
    unknown = sorted(set(config) - setting_env_names())
    assert not unknown, f"configmap.yaml sets {unknown}, which pipeline.settings.Settings does not define"
    assert all(isinstance(v, str) for v in config.values()), "ConfigMap values must be strings (quote numbers)"
    missing = sorted(REQUIRED - set(config))
    assert not missing, f"configmap.yaml lacks {missing}"
    assert not SECRET_SETTINGS & set(config), "credentials belong in a Secret, not the ConfigMap"


def test_configmap_values_are_valid_settings(config, monkeypatch):
    for key in list(os.environ):
        if key.startswith(("STREAMNLP_", "KAFKA_")):
            monkeypatch.delenv(key)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.web_host == "0.0.0.0", "the default 127.0.0.1 is unreachable for probes and Prometheus"
    assert settings.model_dir.as_posix() == f"/models/{DEFAULT_SENTIMENT_MODEL}"
    assert settings.summarizer_model_dir.as_posix() == f"/models/{DEFAULT_SUMMARIZER_MODEL}"
    assert settings.inference_threads >= 1, "0 = one per node core, not per pod CPU"
    assert settings.topic_replication >= 3


def test_deployment_env_names_are_settings(container):
    names = {e["name"] for e in container.get("env", [])}
    unknown = sorted(n for n in names if n.startswith(("STREAMNLP_", "KAFKA_")) and n not in setting_env_names())
    assert not unknown, f"deployment.yaml sets {unknown}, which Settings does not define"
    assert [ref["configMapRef"]["name"] for ref in container["envFrom"]] == [load("configmap.yaml")["metadata"]["name"]]
    for entry in container.get("env", []):
        if entry["name"] in SECRET_SETTINGS:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["optional"] is True, "PLAINTEXT clusters have no credentials Secret"


def test_command_is_the_worker(container):
    # The image's ENTRYPOINT is `streamnlp` (tests/unit/test_dockerfile.py); args pick the CLI command.
    assert "command" not in container
    assert container["args"][0] == "worker" and container["args"][0] in cli_main.commands


def test_image_is_the_project_version(container):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert container["image"] == f"streamnlp:{version}"
    kustomization = load("kustomization.yaml")
    (image,) = kustomization["images"]
    assert image["name"] == "streamnlp" and image["newTag"] == version


def test_probes_use_the_health_routes(container, config):
    port = int(config["STREAMNLP_WEB_PORT"])
    assert port == WEB_PORT
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        assert f'@app.page("{probe["path"]}")' in HEALTH_SOURCE
        assert _port_number(container, probe["port"]) == port
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60, "model loading needs a startup budget"


def test_replicas_fit_the_partitions(deployment, config):
    partitions = int(config["STREAMNLP_TOPIC_PARTITIONS"])
    spec = deployment["spec"]
    assert 1 <= spec["replicas"] <= partitions
    surge = spec["strategy"]["rollingUpdate"]["maxSurge"]
    assert isinstance(surge, int) and spec["replicas"] + surge <= partitions, \
        "a surge pod without partitions never becomes ready and stalls the rollout"


def test_graceful_shutdown_budget(deployment, config):
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    budget = float(config.get("STREAMNLP_SUMMARIZER_BATCH_TIME_BUDGET_S",
                              Settings.model_fields["summarizer_batch_time_budget_s"].default))
    assert grace >= budget + 10, "SIGTERM must leave time for the summary batch in flight and the final commit"


def test_runs_non_root_with_read_only_root(deployment, container, config):
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    writable = [m["mountPath"] for m in container["volumeMounts"] if m["name"] in empty_dirs]
    data_dir = config["STREAMNLP_DATA_DIR"]
    assert any(data_dir == p or data_dir.startswith(p.rstrip("/") + "/") for p in writable), \
        "STREAMNLP_DATA_DIR must be on an emptyDir: the root filesystem is read-only"


def test_resources_match_the_benchmark(container, config):
    def mib(quantity: str) -> float:
        number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", quantity).groups()
        return float(number) * (1024 if unit == "Gi" else 1)

    resources = container["resources"]
    measured_rss_mib = BENCH["lanes"]["pipeline"]["peak_rss_mib"]  # worker peak RSS with both default models
    assert mib(resources["requests"]["memory"]) >= measured_rss_mib * 1.2
    assert mib(resources["limits"]["memory"]) >= mib(resources["requests"]["memory"])
    threads = int(config["STREAMNLP_INFERENCE_THREADS"]) + \
        int(config["STREAMNLP_SUMMARIZER_THREADS"]) * int(config.get("STREAMNLP_SUMMARIZER_CONCURRENCY", "1"))
    assert float(resources["requests"]["cpu"]) >= threads, "one core per ONNX thread the pod runs"
    assert f"{measured_rss_mib:.0f} MiB" in (K8S / "deployment.yaml").read_text(), "the sizing comment quotes the measurement"


def test_sizing_comments_quote_the_current_benchmark(scaled_object):
    # A new reference run (docs/bench.json) makes these comments stale: this test says which.
    pipeline, scaling = BENCH["lanes"]["pipeline"], BENCH["scaling"]
    per_pod = round(scaling["events_per_s"] / scaling["consumers"])  # one worker, 1 ONNX thread
    def prose(name: str) -> str:  # comment lines joined into one line of words
        return " ".join(word for word in (K8S / name).read_text().split() if word != "#")

    deployment = prose("deployment.yaml")
    for quoted in (f"{pipeline['peak_rss_mib']:.0f} MiB RSS", f"{pipeline['events_per_s']} events/s",
                   f"about {per_pod} events/s", f"{scaling['events_per_s']} events/s together"):
        assert quoted in deployment, f"deployment.yaml's sizing comment should say {quoted!r}"
    cpu = re.search(r"(\d+\.\d+) CPU s per 1k", deployment)
    assert cpu and abs(float(cpu.group(1)) - pipeline["cpu_s_per_1k"]) < 0.006, (cpu, pipeline["cpu_s_per_1k"])
    keda = prose("keda-scaledobject.yaml")
    assert f"about {per_pod} events/s" in keda and f"{scaling['events_per_s']} events/s together" in keda
    threshold = int(scaled_object["spec"]["triggers"][0]["metadata"]["lagThreshold"])
    assert 5 <= threshold / per_pod <= 20, "lagThreshold is about 10 s of one pod's work"


def test_metrics_service(container):
    service = load("service-metrics.yaml")
    assert service["kind"] == "Service"
    (port,) = service["spec"]["ports"]
    assert port["port"] == WEB_PORT and _port_number(container, port["targetPort"]) == WEB_PORT
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(WEB_PORT)
    assert annotations["prometheus.io/path"] == "/metrics" and '@app.page("/metrics")' in HEALTH_SOURCE
    assert service["spec"]["publishNotReadyAddresses"] is True, "idle (unready) workers must still be scraped"
    labels = load("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_keda_scales_within_the_partitions_on_the_worker_group(scaled_object, config, deployment):
    spec = scaled_object["spec"]
    assert spec["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= int(config["STREAMNLP_TOPIC_PARTITIONS"])
    # A rollout at KEDA's maximum adds maxSurge pods: each needs a partition to turn ready, or the
    # rollout (maxUnavailable 0) waits for ever.
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert isinstance(surge, int), "a percentage surge rounds up to a pod count; keep it a number"
    assert spec["maxReplicaCount"] + surge <= int(config["STREAMNLP_TOPIC_PARTITIONS"]), \
        "KEDA's maxReplicaCount + the Deployment's maxSurge exceed the partitions"
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["consumerGroup"] == config["STREAMNLP_CONSUMER_GROUP"]
    assert meta["topic"] == config["STREAMNLP_INPUT_TOPIC"]
    assert meta["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    assert int(meta["lagThreshold"]) > 0
    assert meta["offsetResetPolicy"] == "earliest"


def test_kustomization_lists_the_manifests():
    kustomization = load("kustomization.yaml")
    assert set(kustomization["resources"]) == {"configmap.yaml", "deployment.yaml", "service-metrics.yaml"}
    assert "keda-scaledobject.yaml" in (K8S / "kustomization.yaml").read_text(), "mention the optional KEDA file"
    for manifest in K8S.glob("*.yaml"):
        document = yaml.safe_load(manifest.read_text())
        assert "namespace" not in document.get("metadata", {}), f"{manifest.name}: manifests stay namespace-agnostic"


def _service_link_names(service: dict) -> set[str]:
    """The variables Kubernetes injects into pods for a Service when service links are on (docker-links style)."""
    prefix = service["metadata"]["name"].upper().replace("-", "_")
    names = {f"{prefix}_SERVICE_HOST", f"{prefix}_SERVICE_PORT", f"{prefix}_PORT"}
    for port in service["spec"]["ports"]:
        protocol = port.get("protocol", "TCP")
        base = f"{prefix}_PORT_{port['port']}_{protocol}"
        names |= {base, f"{base}_PROTO", f"{base}_PORT", f"{base}_ADDR"}
        if port.get("name"):
            names.add(f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}")
    return names


def test_service_links_cannot_stop_the_worker(deployment, config, monkeypatch):
    # Every Service in the namespace becomes environment variables in the pod unless enableServiceLinks is
    # false; a Service named streamnlp-* yields STREAMNLP_* names the strict settings refuse.
    pod = deployment["spec"]["template"]["spec"]
    if pod.get("enableServiceLinks") is False:
        return
    services = [yaml.safe_load(path.read_text()) for path in K8S.glob("*.yaml")]
    injected = set().union(*(_service_link_names(s) for s in services if s and s.get("kind") == "Service"))
    for key in list(os.environ):
        if key.startswith(("STREAMNLP_", "KAFKA_")):
            monkeypatch.delenv(key)
    for key, value in {**config, **{name: "10.0.0.1" for name in injected}}.items():
        monkeypatch.setenv(key, value)
    try:
        load_settings()
    except ConfigError as exc:
        pytest.fail(f"with service links on, the pod's environment stops the worker: {exc}; "
                    "set enableServiceLinks: false in deployment.yaml")


def test_service_links_are_off(deployment):
    # Any Service named streamnlp-* added to the namespace later (by anyone) would do the same.
    assert deployment["spec"]["template"]["spec"]["enableServiceLinks"] is False
