"""The `streamnlp` click group and what every command shares: the one-line error and the Kafka client runner.

A project failure (`StreamnlpError`: bad setting, missing model, unreachable broker, broken
catalogue...) is caught once, by the group, and printed as its one fix-it line with exit 2;
a command catches one itself only where its exit code or wording differs. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import click

from pipeline.errors import StreamnlpError

EXIT_CONFIG = 2
T = TypeVar("T")


def fail(message: str, code: int = EXIT_CONFIG) -> NoReturn:
    click.echo(f"streamnlp: error: {message}", err=True)
    sys.exit(code)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def run_kafka(work: Coroutine[Any, Any, T]) -> T:
    """Run the CLI's Kafka client work; a failure is one line and a non-zero exit, not a traceback."""
    from aiokafka.errors import KafkaError

    try:
        return asyncio.run(work)
    except TimeoutError as exc:
        fail(str(exc))
    except KafkaError as exc:  # the broker accepted TCP, so usually a protocol mismatch: say so
        fail(f"Kafka client error: {exc}; if the brokers require TLS or SASL, set STREAMNLP_SECURITY_PROTOCOL "
             "(README, 'Secure transport')", code=1)


class _Streamnlp(click.Group):
    """The one handler: every subcommand (nested groups included) runs inside this `invoke`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StreamnlpError as exc:
            fail(str(exc))


@click.group(cls=_Streamnlp, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="streamnlp", prog_name="streamnlp")
def main() -> None:
    """Streaming text enrichment on Kafka with small ONNX models."""
