"""`streamnlp config`: every setting, its environment variable and its current value."""

from __future__ import annotations

import click
from pydantic import SecretStr

from pipeline.settings import Settings, env_name, load_settings, setting_env_names


@click.command("config")
def config_cmd() -> None:
    """List every setting, its environment variable and its current value."""
    settings = load_settings()
    for name, field in Settings.model_fields.items():
        env = env_name(name)
        value = getattr(settings, name)
        shown = "********" if isinstance(value, SecretStr) else str(value)  # secrets: set or not, never the value
        click.echo(f"{env:<34} {shown:<40} {field.description or ''}")
    assert setting_env_names()  # the same names `load_settings` validates against
