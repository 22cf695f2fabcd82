"""`streamnlp` command line, one module per command group. Only wiring: parse, load settings, call
the module that does the work. `main` (the console script's entry point) is the click group."""

from __future__ import annotations

from pipeline.tools.cli.base import main
from pipeline.tools.cli.bench import bench
from pipeline.tools.cli.broker import broker
from pipeline.tools.cli.config import config_cmd
from pipeline.tools.cli.demo import demo
from pipeline.tools.cli.dlq import dlq
from pipeline.tools.cli.eval import eval_cmd
from pipeline.tools.cli.models import models
from pipeline.tools.cli.produce import produce
from pipeline.tools.cli.tail import tail
from pipeline.tools.cli.worker import worker

__all__ = ["main"]

for _command in (bench, broker, config_cmd, demo, dlq, eval_cmd, models, produce, tail, worker):
    main.add_command(_command)
