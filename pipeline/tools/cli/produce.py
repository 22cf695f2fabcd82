"""`streamnlp produce`: a JSONL file or stdin to a topic, one record per line, byte-exact."""

from __future__ import annotations

import click

from pipeline.settings import load_settings
from pipeline.tools.cli.base import run_kafka


@click.command()
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--topic", help="Target topic (default: the input topic).")
def produce(source: click.utils.LazyFile, topic: str | None) -> None:
    """Send a JSONL file (or stdin) to the input topic, one event per line, byte-exact."""
    from pipeline.kafka.clients import check_reachable, jsonl_records
    from pipeline.kafka.clients import produce as produce_records

    settings = load_settings()
    check_reachable(settings)
    count = len(run_kafka(produce_records(settings, topic or settings.input_topic, jsonl_records(source))))
    click.echo(f"produced {count} records to {topic or settings.input_topic}", err=True)
