"""Operator tools around the worker: the CLI, DLQ inspect/replay, demo, benchmark, evaluation."""
