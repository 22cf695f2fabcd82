"""Wiring: the Faust app built from Settings, and the worker process that runs it."""
