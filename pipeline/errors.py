"""The one exception base: every failure streamnlp raises on purpose derives from `StreamnlpError`.

Such a failure carries a message that says what went wrong and how to fix it, so the CLI
catches the base once and prints that one line (exit 2) instead of a traceback; anything
else is a bug and keeps its traceback. Each package keeps its own subclasses beside its code
(ConfigError in settings, ModelLoadError in inference, ModelBuildError in modelbuild, ...).
"""

from __future__ import annotations

__all__ = ["StreamnlpError"]


class StreamnlpError(Exception):
    """An expected failure with a fix-it message (bad setting, missing model, unreachable broker...)."""
