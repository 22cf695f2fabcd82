"""`streamnlp worker`: one worker process against any Kafka cluster."""

from __future__ import annotations

import click

from pipeline.settings import ConfigError
from pipeline.tools.cli.base import cli_settings, fail


@click.command()
def worker() -> None:
    """Run a worker against KAFKA_BOOTSTRAP_SERVERS (any Kafka cluster)."""
    from pipeline.service.worker import run_worker

    settings = cli_settings()
    try:
        run_worker(settings)
    except ConfigError as exc:
        fail(str(exc))
    except Exception as exc:  # ModelLoadError and friends: one clear line, non-zero exit
        if type(exc).__name__ == "ModelLoadError":
            fail(str(exc))
        raise
