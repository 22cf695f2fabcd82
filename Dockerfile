# Runtime image for the worker. No torch: models are built on the host
# (`streamnlp models build`) and mounted read-only at /models (see docker-compose.yml).
# Cannot be built on machines without a Docker engine.
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY pipeline ./pipeline
COPY schemas ./schemas
COPY samples ./samples
# Runtime dependencies only (no [build] extra, so no torch/transformers/optimum).
RUN pip install -c constraints.txt . \
    && useradd --create-home --uid 10001 streamnlp \
    && mkdir -p /tmp/streamnlp && chown streamnlp /tmp/streamnlp
USER streamnlp
ENV STREAMNLP_DATA_DIR=/tmp/streamnlp STREAMNLP_WEB_HOST=0.0.0.0 STREAMNLP_MODEL_DIR=/models/sentiment-minilm-rt
EXPOSE 6066
ENTRYPOINT ["streamnlp"]
CMD ["worker"]
