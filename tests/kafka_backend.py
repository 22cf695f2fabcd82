"""Which Kafka the test suite talks to: an external cluster, a testcontainers broker, or the embedded one."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Literal

KafkaBackend = Literal["external", "testcontainers", "embedded"]


def choose_kafka_backend(env: Mapping[str, str], docker_available: Callable[[], bool]) -> KafkaBackend:
    """An explicit KAFKA_BOOTSTRAP_SERVERS wins; else a real broker in Docker; else the embedded one."""
    if env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip():
        return "external"
    # Probe lazily: the docker check costs a socket round trip we skip when an external cluster is set.
    if docker_available():
        return "testcontainers"
    return "embedded"


def docker_engine_reachable(socket_path: str = "/var/run/docker.sock", timeout_s: float = 1.0) -> bool:
    """True when a Docker engine answers on its unix socket (the client binary alone is not enough)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(socket_path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.")
    except OSError:
        return False
