"""A worker as a child process: used by the demo, the measurements and the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from pipeline.settings import ENV_PREFIX, Settings, env_name

# Per-process identity stays the child's own; everything else is inherited from the parent's Settings.
_NOT_FORWARDED = {"bootstrap_servers", "worker_name", "log_format"}


def worker_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != env_name("bootstrap_servers")}
    env[env_name("bootstrap_servers")] = settings.bootstrap_servers
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name in _NOT_FORWARDED or value is None:  # unset optionals stay unset (str(None) is not None)
            continue
        if isinstance(value, SecretStr):  # str() masks it; the child needs the real value
            value = value.get_secret_value()
        env[env_name(name)] = str(value)
    env[env_name("log_format")] = "json"
    env.update(extra or {})
    return env


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pipeline.tools.cli", "worker"], env=worker_env(self.settings, self.extra_env),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()  # the child keeps its own descriptor
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM, wait; SIGKILL if it does not stop in time."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout=30)

    def kill(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(timeout=30)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
