from tests.kafka_backend import choose_kafka_backend, docker_engine_reachable


def _never() -> bool:
    raise AssertionError("docker probe must not run when an external cluster is set")


def test_external_cluster_wins_without_probing_docker() -> None:
    assert choose_kafka_backend({"KAFKA_BOOTSTRAP_SERVERS": "k1:9092"}, _never) == "external"


def test_testcontainers_when_docker_is_reachable() -> None:
    assert choose_kafka_backend({}, lambda: True) == "testcontainers"


def test_embedded_when_no_docker_engine() -> None:
    assert choose_kafka_backend({"KAFKA_BOOTSTRAP_SERVERS": "  "}, lambda: False) == "embedded"


def test_probe_is_false_for_a_missing_socket(tmp_path) -> None:
    assert docker_engine_reachable(str(tmp_path / "docker.sock"), timeout_s=0.2) is False
