"""The README stays true: every setting and every CLI command it should list, it lists."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pipeline.tools.cli import main
from pipeline.settings import setting_env_names
from tests.paths import REPO

README = (REPO / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    # STREAMNLP_BOOTSTRAP_SERVERS shares the KAFKA_BOOTSTRAP_SERVERS row.
    names = setting_env_names() - {"STREAMNLP_BOOTSTRAP_SERVERS"}
    missing = sorted(name for name in names if f"| `{name}` |" not in README)
    assert "STREAMNLP_BOOTSTRAP_SERVERS" in README
    assert not missing, f"README configuration table lacks {missing}"


def test_every_cli_command_is_in_the_reference() -> None:
    commands = [name for name in main.commands if name != "models"]
    commands += [f"models {name}" for name in main.commands["models"].commands]
    missing = [c for c in commands if f"`streamnlp {c}" not in README]
    assert not missing, f"README CLI reference lacks {missing}"


def test_quickstart_is_two_make_commands() -> None:
    assert "make demo" in README and "make test" in README
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci


def test_cli_help_runs() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "worker", "broker", "produce", "tail", "models", "config"):
        assert command in result.output
