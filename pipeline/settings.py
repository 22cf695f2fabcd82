"""Worker configuration: one typed object, read from the environment.

Every setting is `STREAMNLP_<FIELD>`; the bootstrap servers also honour the
conventional `KAFKA_BOOTSTRAP_SERVERS`. Unknown `STREAMNLP_*` variables are an
error, because a typo in a deployment manifest should fail at startup instead of
silently running with a default.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import StreamnlpError
from pipeline.limits import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_PAYLOAD_CAP_BYTES,
    OUTPUT_HEADROOM_BYTES,
    letter_budget,
)

ENV_PREFIX = "STREAMNLP_"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_CACHE = REPO_ROOT / "models" / "cache"
DEFAULT_SENTIMENT_MODEL = "sentiment-minilm-rt"
DEFAULT_SUMMARIZER_MODEL = "summarizer-smollm2-135m"
DEFAULT_TOXICITY_MODEL = "toxicity-linear"


def env_name(field: str) -> str:
    """The environment variable for a setting, as `streamnlp config`, error messages and child workers spell it:
    STREAMNLP_<FIELD>, except the broker list, which keeps Kafka's usual KAFKA_BOOTSTRAP_SERVERS."""
    return "KAFKA_BOOTSTRAP_SERVERS" if field == "bootstrap_servers" else ENV_PREFIX + field.upper()


class ConfigError(StreamnlpError):
    """A misconfiguration; the message says which setting and how to fix it."""


def _default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # --- Kafka -----------------------------------------------------------
    bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices("STREAMNLP_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS", "bootstrap_servers"),
        description="Comma-separated host:port list of Kafka brokers.",
    )
    consumer_group: str = Field(default="streamnlp", description="Consumer group id (Faust app id).")
    input_topic: str = Field(default="texts", description="Topic the worker consumes TextEvents from.")
    output_topic: str = Field(default="texts.enriched", description="Topic enriched events are published to, keyed by event id.")
    dlq_topic: str = Field(default="texts.dlq", description="Dead-letter topic for inputs that cannot be enriched.")
    topic_partitions: int = Field(default=4, ge=1, le=10_000, description="Partitions used when the worker creates topics.")
    topic_replication: int = Field(default=1, ge=1, description="Replication factor used when the worker creates topics.")
    rebalance_timeout_s: float = Field(default=3.0, gt=0, description="Consumer group rebalance timeout (seconds).")
    session_timeout_s: float = Field(
        default=10.0, gt=0, le=300,
        description="A worker silent this long is dropped from the group and its partitions reassigned.",
    )

    fetch_max_wait_ms: int = Field(
        # 25, not 100: same-run A/B on the embedded broker, 1.23x drain rate, p99 0.72x (docs/performance.md)
        default=25, ge=1, le=30_000,
        description="Longest a consumer fetch may wait for data (bounds idle latency on brokers that hold fetches).",
    )

    # --- secure transport (docs/operations.md "Secure transport"; checked by _check_transport) --------
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How every Kafka client connects: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL.",
    )
    ssl_cafile: Path | None = Field(
        default=None, description="PEM CA bundle that signed the brokers' certificates (unset: the system trust store).",
    )
    ssl_certfile: Path | None = Field(default=None, description="PEM client certificate, for brokers that require mutual TLS.")
    ssl_keyfile: Path | None = Field(default=None, description="PEM private key (unencrypted) of the client certificate.")
    ssl_check_hostname: bool = Field(default=True, description="Verify that a broker's certificate names the host connected to.")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", description="SASL mechanism for SASL_PLAINTEXT / SASL_SSL.",
    )
    sasl_username: str | None = Field(default=None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(default=None, description="SASL password (never logged; masked by `streamnlp config`).")

    # --- batching and inference -----------------------------------------
    batch_max_size: int = Field(default=128, ge=1, le=4096, description="Max events per micro-batch (measured: docs/batching.md).")
    batch_max_wait_ms: int = Field(default=10, ge=1, le=60_000, description="Max time to wait for a batch to fill (measured: docs/batching.md).")
    # Backpressure: Faust stops fetching a partition once its agent's buffer is this full, so a
    # worker that falls behind leaves the backlog in Kafka instead of in memory. 1024 = 8 default
    # batches of look-ahead (Faust's own default, 4096 records of up to 20 KB each, is ~80 MB).
    stream_buffer_maxsize: int = Field(
        default=1024, ge=16, le=65_536,
        description="Max records buffered per agent; when full the worker pauses fetching (backpressure).",
    )
    # Byte bounds next to the record counts (pipeline/runtime/buffers.py): 1024 records of 20,000-character
    # texts would be 20-80 MB per agent. 16 MiB still holds several batches of them; short reviews
    # never reach it. docs/operations.md ("Memory bound, by bytes as well as records") states the resulting worst case per worker.
    stream_buffer_max_bytes: int = Field(
        default=16 * 1024 * 1024, ge=65_536, le=1 << 34,
        description="Max bytes of records buffered per agent (with STREAMNLP_STREAM_BUFFER_MAXSIZE records, whichever "
        "comes first); past 80% of it the worker pauses fetching.",
    )
    batch_max_bytes: int = Field(
        default=4 * 1024 * 1024, ge=65_536, le=1 << 32,
        description="A micro-batch closes once its records reach this many bytes (or STREAMNLP_BATCH_MAX_SIZE records).",
    )
    consumer_max_partition_fetch_bytes: int = Field(
        default=1024 * 1024, ge=65_536, le=1 << 30,
        description="Most bytes one fetch returns per partition (consumer max_partition_fetch_bytes); at least "
        "STREAMNLP_PRODUCER_MAX_REQUEST_BYTES.",
    )
    consumer_fetch_max_bytes: int = Field(
        default=8 * 1024 * 1024, ge=65_536, le=1 << 31,
        description="Most bytes one fetch response holds over all partitions (consumer fetch_max_bytes).",
    )
    model_dir: Path = Field(
        default=DEFAULT_MODEL_CACHE / DEFAULT_SENTIMENT_MODEL,
        description="Directory of the built sentiment model (streamnlp models build).",
    )
    model_precision: Literal["int8", "fp32"] = Field(default="int8", description="Which ONNX file of the model to run.")
    max_tokens: int = Field(default=256, ge=16, le=512, description="Model window; longer texts are head+tail truncated.")
    inference_batch_size: int = Field(default=32, ge=1, le=1024, description="Max rows per ONNX run after length bucketing.")
    inference_threads: int = Field(default=0, ge=0, le=256, description="ONNX Runtime intra-op threads (0 = one per core).")

    # --- language gate (pipeline/inference/language.py) ------------------------------
    language_gate: bool = Field(
        default=True,
        description="Texts reliably detected in a language outside sentiment_languages get sentiment null "
        "(sentiment_skipped_reason unsupported_language) instead of an English-only model's guess; the detected "
        "language is published either way.",
    )
    sentiment_languages: str = Field(
        default="en", description="Comma-separated ISO 639 codes the sentiment model handles (the gate lets these through).",
    )
    language_min_letters: int = Field(
        default=30, ge=1, le=10_000,
        description="Latin-script texts with fewer letters are never gated: detection on them is unreliable "
        "(non-Latin scripts are trusted at any length).",
    )

    # --- toxicity (pipeline/inference/toxicity.py), scored in the sentiment lane's micro-batch ---
    toxicity_enabled: bool = Field(
        default=True,
        description="Score every enriched event's offensive language (toxicity: {label, score}) in the same micro-batch "
        "as sentiment; false: toxicity null with toxicity_skipped_reason disabled, and no toxicity model is loaded.",
    )
    toxicity_model_dir: Path = Field(
        default=DEFAULT_MODEL_CACHE / DEFAULT_TOXICITY_MODEL,
        description="Directory of the built toxicity model (streamnlp models build toxicity-linear).",
    )
    toxicity_threshold: float = Field(
        default=0.5, gt=0.0, lt=1.0,
        description="P(offensive) at or above this labels a text offensive (0.5: the model's own decision).",
    )

    # --- shadow model (pipeline/lanes/sentiment/shadow.py) --------------------------------
    shadow_model_dir: Path | None = Field(
        default=None,
        description="A second sentiment model that scores a sample of events next to the primary; agreement is "
        "reported (metric + log), its results are never published. Unset: no shadow.",
    )
    shadow_precision: Literal["int8", "fp32"] = Field(default="int8", description="Which ONNX file of the shadow model to run.")
    shadow_sample_rate: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="Share of scored events the shadow model also scores (chosen by event id, so stable across restarts).",
    )

    # --- summary lane ----------------------------------------------------
    summarizer_mode: Literal["abstractive", "extractive", "off"] = Field(
        default="abstractive",
        description="abstractive = small LLM with faithfulness check; extractive = top sentences only; off = no summaries.",
    )
    summary_min_chars: int = Field(default=400, ge=1, description="Texts at least this long get a summary.")
    summaries_topic: str = Field(default="texts.summaries", description="Topic summaries are published to, keyed by event id.")
    summary_requests_topic: str = Field(
        default="texts.summarize", description="Internal topic feeding the summary agent (long texts only)."
    )
    summarizer_model_dir: Path = Field(
        default=DEFAULT_MODEL_CACHE / DEFAULT_SUMMARIZER_MODEL,
        description="Directory of the built summarizer model (streamnlp models build).",
    )
    summarizer_precision: Literal["fp32", "int8", "int4"] = Field(default="int8", description="Which ONNX file of the summarizer to run.")
    summarizer_batch_size: int = Field(default=4, ge=1, le=64, description="Prompts per generation batch.")
    summarizer_batch_max_wait_ms: int = Field(default=200, ge=1, le=60_000, description="Max time to wait for a summary batch to fill.")
    summarizer_threads: int = Field(
        default=1, ge=1, le=256, description="ONNX Runtime threads for generation (its own budget, so sentiment keeps a core)."
    )
    summarizer_concurrency: int = Field(
        default=1, ge=1, le=16,
        description="Generation batches run in parallel, each with summarizer_threads ONNX threads; keep "
        "concurrency x threads within the cores sentiment does not need.",
    )
    summarizer_isolation: Literal["process", "thread"] = Field(
        default="process",
        description="process = generation runs in child processes at a lower CPU priority, so sentiment keeps its "
        "latency while summaries are generated (docs/summarizer.md, 'Sentiment first'); thread = in the worker process.",
    )
    summarizer_priority: Literal["idle", "nice"] = Field(
        default="idle",
        description="CPU priority of the generation processes (isolation=process): idle = SCHED_IDLE, runs only on "
        "cores nothing else wants (Linux; falls back to nice where refused); nice = nice 19.",
    )
    summarizer_max_new_tokens: int = Field(default=48, ge=1, le=512, description="Hard cap on generated tokens per summary.")
    summarizer_max_prompt_tokens: int = Field(default=384, ge=32, le=8192, description="Longer texts are head+tail truncated in the prompt.")
    summarizer_batch_time_budget_s: float = Field(default=30.0, gt=0, description="Per-batch generation time budget.")
    summarizer_constrain_to_source: bool = Field(
        default=False,
        description="Source-constrained decoding: a number or capitalised name the model starts must continue a word "
        "of the source text, else the best allowed token of the top 50 is taken (docs/summarizer.md, "
        "'Source-constrained decoding').",
    )
    faithfulness_threshold: float = Field(
        default=0.75, ge=0.0, le=1.0, description="Abstractive summaries scoring below this are replaced by the extractive one."
    )
    summary_backlog_max: int = Field(
        default=200, ge=0, description="Above this many queued summary requests, publish extractive summaries (load shedding)."
    )

    # --- windowed sentiment aggregates (pipeline/lanes/windows/agent.py) --------------
    windows_enabled: bool = Field(
        default=True, description="Publish per-source tumbling-window sentiment aggregates of texts.enriched.",
    )
    windows_topic: str = Field(
        default="texts.sentiment.windows", description="Topic closed windows (SentimentWindow) are published to, keyed by source.",
    )
    window_size_s: float = Field(default=60.0, gt=0, le=86_400, description="Tumbling window size in seconds of event time (epoch-aligned).")
    window_grace_s: float = Field(
        default=10.0, ge=0, le=86_400,
        description="A window closes once events this many seconds past its end have been seen; later events are counted as late and dropped.",
    )
    window_idle_flush_s: float = Field(
        default=120.0, ge=0, le=86_400,
        description="Close a partition's open windows after this many wall-clock seconds without new events (0 = only later events close windows).",
    )
    window_future_tolerance_s: float = Field(
        default=300.0, ge=0, le=86_400,
        description="Event times further than this ahead of the wall clock are not trusted: the event counts in the window "
        "of its Kafka timestamp and does not move the watermark past it (streamnlp_window_future_events_total).",
    )
    window_alert_threshold: float = Field(
        default=0.3, ge=0.0, le=1.0,
        description="Alert when a window's negative share exceeds the trailing mean of the source's previous windows by more than this.",
    )
    window_offensive_alert_threshold: float = Field(
        default=0.2, ge=0.0, le=1.0,
        description="Alert when a window's offensive share (toxicity) exceeds the trailing mean of the source's previous "
        "windows by more than this.",
    )
    window_alert_min_count: int = Field(
        default=10, ge=1, description="Windows with fewer labelled events never alert and do not enter the trailing mean.",
    )
    window_trailing: int = Field(default=5, ge=1, le=1000, description="How many previous windows of a source make the alert baseline.")

    # --- validation and dead letters -------------------------------------
    max_text_chars: int = Field(default=20_000, ge=1, description="Longer texts are dead-lettered as text_too_long.")
    dlq_payload_cap_bytes: int = Field(
        default=DEFAULT_PAYLOAD_CAP_BYTES, ge=0, description="Raw payloads up to this size are kept byte-exact in dead letters.",
    )
    max_payload_bytes: int = Field(
        default=DEFAULT_MAX_PAYLOAD_BYTES, ge=1,
        description="Input record values larger than this are dead-lettered as payload_too_large without being parsed.",
    )
    producer_max_request_bytes: int = Field(
        default=DEFAULT_MAX_RECORD_BYTES, ge=65_536,
        description="Largest record the worker publishes (the producer's max_request_size); keep it at most the topics' "
        "max.message.bytes. A record whose output is larger is dead-lettered as output_too_large.",
    )

    # --- process -----------------------------------------------------------
    worker_name: str = Field(default_factory=_default_worker_name, description="Name stamped on outputs (processing.worker).")
    data_dir: Path = Field(default=Path(".streamnlp"), description="Faust state directory.")
    web_port: int = Field(default=6066, ge=0, le=65535, description="Faust web server port (0 disables it).")
    web_host: str = Field(default="127.0.0.1", description="Faust web server bind address.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    log_format: Literal["auto", "json", "console"] = Field(default="auto", description="auto = JSON unless stderr is a TTY.")
    log_text_bodies: bool = Field(
        default=False, description="Allow event text bodies in logs (debugging only; they are redacted otherwise).",
    )

    # --- live dashboard (pipeline/dashboard; served on the web server above) ---------------
    dashboard_enabled: bool = Field(
        default=True, description="Serve the live dashboard at /dashboard on the worker's web server (needs web_port != 0).",
    )
    dashboard_token: SecretStr | None = Field(
        default=None,
        description="When set, /dashboard* require `Authorization: Bearer <token>` (or ?token= on the page URL).",
    )
    dashboard_show_text: bool = Field(
        default=False, description="Show text bodies and summaries on the dashboard; otherwise ids, labels and scores only.",
    )
    dashboard_bucket_s: float = Field(
        default=10.0, ge=0.5, le=3600.0, description="Width of the dashboard's sentiment-over-time buckets (seconds).",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        servers = [s.strip() for s in value.replace("kafka://", "").split(",") if s.strip()]
        if not servers:
            raise ValueError("is empty; set KAFKA_BOOTSTRAP_SERVERS=host:port[,host:port]")
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port; set KAFKA_BOOTSTRAP_SERVERS=host:port[,host:port]")
        return ",".join(servers)

    @model_validator(mode="after")
    def _distinct_topics(self) -> Settings:
        topics = [self.input_topic, self.output_topic, self.dlq_topic, self.summaries_topic, self.summary_requests_topic,
                  self.windows_topic]
        if len(set(topics)) != len(topics):
            raise ValueError(f"input, output, dead-letter, summaries, summary-request and windows topics must differ, got {topics}")
        return self

    @model_validator(mode="after")
    def _check_fetch_sizes(self) -> Settings:
        # A record larger than the partition fetch size is skipped by aiokafka on brokers that cut
        # fetches at that size (RecordTooLargeError), so every record the worker writes and reads back
        # (summary requests, enriched events for the windows) must fit.
        if self.consumer_max_partition_fetch_bytes < self.producer_max_request_bytes:
            raise ValueError(
                f"STREAMNLP_CONSUMER_MAX_PARTITION_FETCH_BYTES={self.consumer_max_partition_fetch_bytes} is below "
                f"STREAMNLP_PRODUCER_MAX_REQUEST_BYTES={self.producer_max_request_bytes}: records that large could not be "
                "fetched; raise it to at least that")
        if self.consumer_fetch_max_bytes < self.consumer_max_partition_fetch_bytes:
            raise ValueError(
                f"STREAMNLP_CONSUMER_FETCH_MAX_BYTES={self.consumer_fetch_max_bytes} is below "
                f"STREAMNLP_CONSUMER_MAX_PARTITION_FETCH_BYTES={self.consumer_max_partition_fetch_bytes}; "
                "set it to at least that")
        return self

    @model_validator(mode="after")
    def _check_record_sizes(self) -> Settings:
        problem = record_size_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @field_validator("sentiment_languages")
    @classmethod
    def _check_languages(cls, value: str) -> str:
        codes = [c.strip().lower() for c in value.split(",") if c.strip()]
        bad = [c for c in codes if not (2 <= len(c) <= 3 and c.isalpha() and c.isascii())]
        if bad or not codes:
            raise ValueError(f"must be a comma-separated list of ISO 639 codes such as 'en' or 'en,es', got {value!r}")
        return ",".join(dict.fromkeys(codes))

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile", "sasl_username", "sasl_password", "shadow_model_dir",
                     "dashboard_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose files write `${VAR:-}`: an empty variable means "not set", not the path "."
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_transport(self) -> Settings:
        problem = transport_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def sentiment_language_set(self) -> frozenset[str]:
        return frozenset(self.sentiment_languages.split(","))

    @property
    def windows_route_topic(self) -> str:
        """Internal topic re-keying enriched events by source, so each source's windows live in one partition.

        Scoped by consumer group like Faust's changelog topics: two deployments reading the same
        output topic must not count each other's events.
        """
        return f"{self.consumer_group}-windows-by-source"

    @property
    def windows_state_topic(self) -> str:
        """Compacted topic holding the open windows (pipeline/lanes/windows/state.py), scoped by consumer group."""
        return f"{self.consumer_group}-windows-state"

    @property
    def broker_urls(self) -> list[str]:
        return [f"kafka://{server}" for server in self.bootstrap_servers.split(",")]


TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})


def transport_problem(settings: Settings) -> str | None:
    """The first inconsistency of the security settings, as a one-line fix-it message; None if fine.

    Settings that would be silently ignored (a CA file with PLAINTEXT, a password
    without SASL) are errors too: they mean the operator expected protection they
    would not get.
    """
    protocol = settings.security_protocol
    files = {"STREAMNLP_SSL_CAFILE": settings.ssl_cafile, "STREAMNLP_SSL_CERTFILE": settings.ssl_certfile,
             "STREAMNLP_SSL_KEYFILE": settings.ssl_keyfile}
    if protocol in TLS_PROTOCOLS:
        for env, path in files.items():
            if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
                return f"{env}={path} is not a readable file; point it at the PEM file (or unset it)"
        if settings.ssl_keyfile is not None and settings.ssl_certfile is None:
            return "STREAMNLP_SSL_KEYFILE is set without STREAMNLP_SSL_CERTFILE; set both for mutual TLS"
    else:
        given = [env for env, path in files.items() if path is not None]
        if given:
            return (f"{given[0]} is set but STREAMNLP_SECURITY_PROTOCOL={protocol} does not use TLS; "
                    "set STREAMNLP_SECURITY_PROTOCOL=SSL (or SASL_SSL)")
    has_user, has_password = settings.sasl_username is not None, settings.sasl_password is not None
    if protocol in SASL_PROTOCOLS:
        missing = [env for env, ok in (("STREAMNLP_SASL_USERNAME", has_user), ("STREAMNLP_SASL_PASSWORD", has_password))
                   if not ok]
        if missing:
            return f"STREAMNLP_SECURITY_PROTOCOL={protocol} needs {' and '.join(missing)}"
    elif has_user or has_password:
        return (f"SASL credentials are set but STREAMNLP_SECURITY_PROTOCOL={protocol}; "
                "set STREAMNLP_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT)")
    return None


def record_size_problem(settings: Settings) -> str | None:
    """Input cap, dead-letter payload cap and the producer's limit must fit together; a fix-it message if not.

    An accepted input must leave room for what enrichment adds, and a dead letter with its
    payload kept must fit (pipeline/deadletter.py), or records would be refused one by one.
    """
    limit = settings.producer_max_request_bytes
    max_input = limit - OUTPUT_HEADROOM_BYTES
    if settings.max_payload_bytes > max_input:
        return (f"STREAMNLP_MAX_PAYLOAD_BYTES={settings.max_payload_bytes} leaves no room for the enriched output under "
                f"STREAMNLP_PRODUCER_MAX_REQUEST_BYTES={limit} (enrichment needs {OUTPUT_HEADROOM_BYTES} bytes of "
                f"headroom); set STREAMNLP_MAX_PAYLOAD_BYTES<={max_input} or raise STREAMNLP_PRODUCER_MAX_REQUEST_BYTES "
                "(and the topics' max.message.bytes)")
    if letter_budget(settings.dlq_payload_cap_bytes) > limit:
        largest = (limit - letter_budget(0)) // 4 * 3
        return (f"STREAMNLP_DLQ_PAYLOAD_CAP_BYTES={settings.dlq_payload_cap_bytes} makes dead letters (base64 payload plus "
                f"{letter_budget(0)} bytes of fields) larger than STREAMNLP_PRODUCER_MAX_REQUEST_BYTES={limit}; "
                f"set STREAMNLP_DLQ_PAYLOAD_CAP_BYTES<={largest}")
    return None


def setting_env_names() -> set[str]:
    """Every environment variable name a Settings field can be read from."""
    names = {env_name(name) for name in Settings.model_fields}
    names.add(ENV_PREFIX + "BOOTSTRAP_SERVERS")  # the broker list's other accepted name (its validation_alias)
    return names


def unknown_env_settings(environ: Mapping[str, str]) -> list[str]:
    known = setting_env_names()
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (overrides win); raise ConfigError with a fix-it message."""
    unknown = unknown_env_settings(os.environ)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)}; run `streamnlp config` to list valid STREAMNLP_* names"
        )
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a cross-field check: its message already names the variables
                problems.append(err["msg"].removeprefix("Value error, "))
                continue
            field = ".".join(str(p) for p in err["loc"])
            problems.append(f"{env_name(field)}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
