"""`streamnlp worker`: one worker process against any Kafka cluster."""

from __future__ import annotations

import click

from pipeline.settings import load_settings


@click.command()
def worker() -> None:
    """Run a worker against KAFKA_BOOTSTRAP_SERVERS (any Kafka cluster)."""
    from pipeline.service.worker import run_worker

    run_worker(load_settings())
