"""`streamnlp tail`: follow the enriched topic (and the dead-letter topic)."""

from __future__ import annotations

import click

from pipeline.settings import load_settings
from pipeline.tools.cli.base import run_kafka


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print raw JSON lines.")
@click.option("--dlq", is_flag=True, help="Also follow the dead-letter topic.")
@click.option("--from-beginning/--latest", default=True, show_default=True)
@click.option("--max", "max_records", type=int, default=None, help="Exit after printing this many records.")
def tail(as_json: bool, dlq: bool, from_beginning: bool, max_records: int | None) -> None:
    """Follow the enriched topic."""
    from pipeline.kafka.clients import check_reachable, follow
    from pipeline.tools.console import raw_line, tail_line

    settings = load_settings()
    check_reachable(settings)
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
        run_kafka(run())
    except KeyboardInterrupt:
        pass
