"""The CLI's one handler: a project failure raised inside any command is its one fix-it line and exit 2."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from pipeline.errors import StreamnlpError
from pipeline.tools.cli import main


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("STREAMNLP_") or key == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(key)


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        # ConfigError in a top-level command (settings are validated inside it)
        (["config"], {"STREAMNLP_BATCH_MAX_SIZE": "zero"}, "invalid configuration: STREAMNLP_BATCH_MAX_SIZE: "),
        # CatalogueError and ConfigError inside nested groups: the handler is on the top group, around them all
        (["models", "build", "no-such-model"], {}, "no model named 'no-such-model' in "),
        (["dlq", "inspect"], {"STREAMNLP_NO_SUCH_SETTING": "1"}, "unknown setting(s) STREAMNLP_NO_SUCH_SETTING; "),
    ],
)
def test_a_project_error_inside_a_command_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], fragment: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("streamnlp: error: " + fragment), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    # The StreamnlpError was caught inside the CLI: what left it is the exit, so Python prints no traceback.
    assert isinstance(result.exception, SystemExit) and not isinstance(result.exception, StreamnlpError)
