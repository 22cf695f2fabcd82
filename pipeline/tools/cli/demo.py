"""`streamnlp demo`: embedded broker + a worker process + the sample events, end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.settings import load_settings
from pipeline.tools.cli.base import fail


@click.command()
@click.option("--count", type=int, default=None,
              help="Send N events (cycling the sample file), exit 0 when all are accounted for.")
@click.option("--samples", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--timeout", "timeout_s", type=float, default=300.0, show_default=True)
def demo(count: int | None, samples: Path | None, timeout_s: float) -> None:
    """Embedded broker + worker + sample events; prints enriched events as they arrive."""
    from pipeline.service.worker import load_classifier, load_summarizer
    from pipeline.tools.demo import DemoConfig, DemoFailed, run_demo
    from pipeline.tools.samples import DEFAULT_SAMPLES

    settings = load_settings()
    if count is not None and count < 1:
        fail("--count must be at least 1")
    try:
        # Fail before starting anything when a model is missing.
        load_classifier(settings)
        load_summarizer(settings)
    except Exception as exc:  # noqa: BLE001 - any load failure (not only ModelLoadError) is one line before the broker starts
        fail(f"{exc}")
    try:
        tally = run_demo(settings, DemoConfig(count=count, samples=samples or DEFAULT_SAMPLES, timeout_s=timeout_s),
                         say=click.echo)
    except DemoFailed as exc:
        fail(str(exc), code=1)
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    if tally.gold_labelled:
        click.echo(f"agreement with the samples' gold labels: {tally.gold_matched / tally.gold_labelled:.1%} "
                   f"({tally.gold_matched}/{tally.gold_labelled}"
                   + (f"; {tally.sentiment_skipped} texts in other languages got no sentiment (language gate)"
                      if tally.sentiment_skipped else "") + ")")
    click.echo(tally.as_json())
    if not tally.complete:
        sys.exit(1)
