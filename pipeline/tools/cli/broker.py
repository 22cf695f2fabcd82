"""`streamnlp broker`: the embedded Kafka-protocol broker in the foreground."""

from __future__ import annotations

import click

from pipeline.tools.cli.base import fail


@click.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Port to listen on (0 = any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for other machines or containers (then set --advertised-host).")
@click.option("--advertised-host", default=None,
              help="Host name clients connect to after bootstrap (Kafka's advertised listener); default: --host.")
def broker(port: int, host: str, advertised_host: str | None) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, in memory) in the foreground until SIGINT or SIGTERM."""
    from pipeline.kafka.broker import EmbeddedBroker, EmbeddedBrokerConfig, free_port, run_in_foreground

    # The advertised address needs the real port, so a free one is picked here rather than by the broker.
    port = port or free_port(host)
    config = EmbeddedBrokerConfig(host=host, port=port, advertised=f"{advertised_host}:{port}" if advertised_host else None)
    code = run_in_foreground(EmbeddedBroker(config), lambda embedded: click.echo(
        f"embedded broker listening: KAFKA_BOOTSTRAP_SERVERS={advertised_host or embedded.config.host}:{embedded.port} "
        "(Ctrl-C stops it; storage is in memory)"))
    if code is not None:
        fail(f"the embedded broker exited unexpectedly with code {code}", code=1)
