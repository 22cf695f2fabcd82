"""Podman for the deploy tests: one configuration, the two images (built once, cached by content hash),
containers and networks that are removed whatever the outcome.

Podman runs rootful with the `runc` runtime. Its configuration is this module's own file
(CONTAINERS_CONF), so the tests neither need nor change the machine's: the runtime, and ulimits the
runtime may actually set (podman's rootful defaults raise nofile/nproc, which fails where the
process lacks CAP_SYS_RESOURCE, as on our CI machines; crun fails the same way).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.paths import ARTIFACTS as TEST_ARTIFACTS
from tests.paths import REPO

ROOT = REPO
ARTIFACTS = TEST_ARTIFACTS / "deploy"
BASE_IMAGE_SCRIPT = ROOT / "deploy" / "podman" / "base-image.sh"
# What the Dockerfile copies into the build; their content is the project image's cache key.
IMAGE_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "constraints.txt",
                "models/catalogue.toml", "pipeline", "schemas", "samples")
PIP_CA_IN_BUILD = "/run/secrets/pip-ca.crt"  # where the Dockerfile's secret mount puts it


class PodmanError(AssertionError):
    """A podman command failed; the message has its output."""


def missing_tools() -> list[str]:
    """What the deploy tests need and this machine lacks (.ci/run installs them)."""
    need = ["podman", "runc", "debootstrap"]
    missing = [tool for tool in need if shutil.which(tool) is None]
    if not any(Path(d, "netavark").exists() for d in ("/usr/lib/podman", "/usr/libexec/podman")):
        missing.append("netavark")
    if not any(Path(d, "aardvark-dns").exists() for d in ("/usr/lib/podman", "/usr/libexec/podman")):
        missing.append("aardvark-dns")
    if shutil.which("iptables") is None:  # netavark's bridge networks
        missing.append("iptables")
    return missing


def containers_conf(directory: Path) -> Path:
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    # Within this process's hard limits, which is all a process without CAP_SYS_RESOURCE may set;
    # podman itself runs with nproc capped at 32768.
    nofile = 1_048_576 if nofile == resource.RLIM_INFINITY else min(nofile, 1_048_576)
    nproc = 32_768 if nproc == resource.RLIM_INFINITY else min(nproc, 32_768)
    path = directory / "containers.conf"
    path.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        # No systemd here: health checks run when the tests call `podman healthcheck run`.
        'events_logger = "file"\n'
    )
    return path


@dataclass
class Podman:
    conf: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise PodmanError(f"podman {' '.join(args)} exited {out.returncode}:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
        return out

    def timed(self, phase: str, started: float) -> None:
        self.timings[phase] = round(time.monotonic() - started, 1)

    # --- images -----------------------------------------------------------------------------

    def image_exists(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0

    def base_image(self) -> str:
        started = time.monotonic()
        out = subprocess.run(["bash", str(BASE_IMAGE_SCRIPT)], env=self.env, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            raise PodmanError(f"{BASE_IMAGE_SCRIPT.name} failed:\n{out.stderr[-6000:]}")
        self.timed("base image", started)
        return out.stdout.strip().splitlines()[-1]

    def project_image(self, base: str, work: Path) -> str:
        """The Dockerfile's runtime-nomodels target on `base`, tagged by the hash of its inputs."""
        tag = f"localhost/streamnlp:test-{content_hash(base)}"
        started = time.monotonic()
        if not self.image_exists(tag):
            secrets = build_secrets(work)
            self("build", "--format", "docker",  # the OCI format has no HEALTHCHECK
                 "--target", "runtime-nomodels", "--build-arg", f"PYTHON_IMAGE={base}",
                 *[arg for name, path in secrets.items() for arg in ("--secret", f"id={name},src={path}")],
                 "--tag", tag, str(ROOT), timeout=1200)
            self.untag_others("localhost/streamnlp", keep=tag, prefix="test-")
        self.timed("project image", started)
        return tag

    def untag_others(self, repository: str, keep: str, prefix: str) -> None:
        """Drop this suite's older tags, so storage does not grow by an image per code change
        (their layers are mostly shared; an image still in use stays)."""
        listed = self("images", "--format", "{{.Repository}}:{{.Tag}}", repository, check=False).stdout.split()
        for name in listed:
            if name != keep and name.split(":", 1)[-1].startswith(prefix):
                self("rmi", name, check=False)

    # --- containers ---------------------------------------------------------------------------

    def logs(self, name: str) -> str:
        out = self("logs", name, check=False)
        return out.stdout + out.stderr

    def state(self, name: str) -> dict:
        return json.loads(self("inspect", "--type", "container", "--format", "{{json .State}}", name).stdout)

    def wait_for_log(self, name: str, pattern: str, timeout: float) -> str:
        """Follow the container's output until a line matches `pattern`; the line."""
        follow = subprocess.Popen(["podman", "logs", "--follow", name], env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        watchdog = threading.Timer(timeout, follow.kill)  # ends the loop below when nothing matches in time
        watchdog.start()
        try:
            seen: list[str] = []
            for line in follow.stdout:  # also ends when the container stops
                seen.append(line)
                if re.search(pattern, line):
                    return line
            state = self.state(name)
            why = (f"within {timeout:.0f}s" if state["Status"] == "running"
                   else f"before it stopped ({state['Status']}, exit code {state.get('ExitCode')})")
            raise PodmanError(f"{name}: no line matching {pattern!r} {why}; output:\n{''.join(seen)[-4000:]}")
        finally:
            watchdog.cancel()
            follow.kill()
            follow.wait()

    def wait_input_assigned(self, name: str, topic: str, timeout: float) -> str:
        """Until the worker logs a partition assignment that includes `topic`; the line.

        A passing health check says the models are loaded, not that the worker is in the consumer group:
        one CI run produced while the second worker was still joining, and the first one took every event.
        """
        return self.wait_for_log(name, rf'(?=.*"event": "partitions_assigned")(?=.*"{re.escape(topic)}:\d+")', timeout)

    def wait_healthy(self, name: str, timeout: float) -> float:
        """Run the container's health check until it passes (there is no systemd timer to run it);
        seconds it took. Fails at once if the container stops."""
        started = time.monotonic()
        while True:
            state = self.state(name)
            if state["Status"] != "running":
                raise PodmanError(f"{name} is {state['Status']} (exit code {state.get('ExitCode')}) before turning "
                                  f"healthy; output:\n{self.logs(name)[-6000:]}")
            if self("healthcheck", "run", name, check=False).returncode == 0:
                health = self.state(name).get("Health") or self.state(name).get("Healthcheck") or {}
                assert health.get("Status") == "healthy", health
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise PodmanError(f"{name} not healthy within {timeout:.0f}s; output:\n{self.logs(name)[-6000:]}")
            # A probe, not an event: podman 4.3 has no `wait --condition=healthy`. Pace the probes.
            time.sleep(1)

    def exit_code(self, name: str, timeout: float) -> int:
        out = self("wait", name, timeout=timeout)
        return int(out.stdout.strip().splitlines()[-1])

    def save_logs(self, names: list[str], prefix: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name in names:
            (ARTIFACTS / f"{prefix}-{name}.log").write_text(self.logs(name))


def content_hash(base: str) -> str:
    digest = hashlib.sha256(base.encode())
    for top in IMAGE_INPUTS:
        path = ROOT / top
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def pip_settings() -> dict[str, str]:
    """This machine's pip configuration (`pip config list`, which includes PIP_* variables)."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    settings: dict[str, str] = {}
    # PIP_* variables (listed as ":env:.name") override the files, as in pip itself.
    for line in sorted(lines, key=lambda line: line.startswith(":env:")):
        key, _, value = line.partition("=")
        settings[key.rsplit(".", 1)[-1]] = value.strip().strip("'\"")
    return settings


def build_secrets(work: Path) -> dict[str, Path]:
    """The pip configuration and CA bundle for the image build, as build secrets (never in a layer).

    Index settings pointing at this machine's files (file:// indexes, find-links) are left out: the
    build container cannot see them.
    """
    settings = pip_settings()
    lines = ["[global]"]
    for key in ("index-url", "extra-index-url", "trusted-host", "timeout", "default-timeout", "retries", "proxy"):
        if key not in settings:
            continue
        values = settings[key].split()
        if "index-url" in key:
            values = [v for v in values if v.startswith(("http://", "https://"))]
        if values:
            lines.append(f"{key} = {' '.join(values)}")
    secrets: dict[str, Path] = {}
    ca = Path(settings.get("cert") or os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():
        lines.append(f"cert = {PIP_CA_IN_BUILD}")
        secrets["pip-ca.crt"] = ca
    pip_conf = work / "pip.conf"
    pip_conf.write_text("\n".join(lines) + "\n")
    secrets["pip.conf"] = pip_conf
    return secrets
