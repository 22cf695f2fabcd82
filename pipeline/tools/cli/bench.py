"""`streamnlp bench [sentiment|summarizer]`: the benchmarks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from pipeline.settings import load_settings
from pipeline.tools.cli.base import fail, one_line


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
        click.option("--toxicity-compare/--no-toxicity-compare", "toxicity_compare", default=True, show_default=True,
                     help="Drain the same backlog again with STREAMNLP_TOXICITY_ENABLED=false (toxicity on/off ratio)."),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of the table."),
        click.option("--out", "out_prefix", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Also write OUT.json and OUT.png (throughput and latency plot)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(invoke_without_command=True)
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
                     toxicity_compare: bool, as_json: bool, out_prefix: Path | None) -> None:
    settings = load_settings()
    from pipeline.kafka.broker import BrokerError
    from pipeline.tools.benchmark.lanes import LaneError
    from pipeline.tools.benchmark.plan import BenchConfig, run_bench
    from pipeline.tools.benchmark.report import render_markdown, write_json

    if not (settings.model_dir / "manifest.json").is_file():
        fail(f"no built sentiment model at {settings.model_dir}; run `streamnlp models build`")
    config = BenchConfig(events=events, latency_seconds=latency_seconds, long_docs=long_docs, workers=workers,
                         naive=naive, summaries=long_docs > 0, toxicity_off=toxicity_compare,
                         command="streamnlp " + " ".join(sys.argv[1:]))
    try:
        report = run_bench(settings, config)
    except (LaneError, BrokerError, TimeoutError) as exc:
        fail(one_line(exc), code=1)
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
        fail(f"the benchmark needs the build extra ({exc}); run: pip install -c constraints.txt -e '.[build]'")
    sys.exit(run_bench(list(ctx.args)))
