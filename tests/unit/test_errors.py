"""One exception base: every failure the project raises on purpose derives from StreamnlpError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pipeline
from pipeline.errors import StreamnlpError


def _project_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(pipeline.__path__, "pipeline."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_project_exception_derives_from_the_base():
    found = _project_exceptions()
    assert len(found) >= 12  # the dozen failure types the CLI reports as one line
    strays = sorted(name for name, cls in found.items() if not issubclass(cls, StreamnlpError))
    assert strays == []
