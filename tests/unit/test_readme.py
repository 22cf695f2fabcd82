"""The README and docs/ stay true: every setting, metric, error code and CLI command is listed on the page
that holds its table, the README links to those pages, and no relative link leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.runtime.metrics import WorkerMetrics
from pipeline.settings import setting_env_names
from pipeline.tools.cli import main
from schemas.events import ErrorCode
from tests.paths import REPO

README = (REPO / "README.md").read_text()
CONFIGURATION = REPO / "docs" / "configuration.md"  # the configuration table
OPERATIONS = REPO / "docs" / "operations.md"  # probes and the metrics table
SCHEMAS = REPO / "docs" / "schemas.md"  # the event formats and dead-letter codes
# Pages whose relative links must resolve: the README, every docs page, and the deploy guide it links to.
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "deploy" / "README.md"]


def _links_to(page: Path) -> bool:
    return f"]({page.relative_to(REPO).as_posix()})" in README or f"]({page.relative_to(REPO).as_posix()}#" in README


def test_every_setting_is_in_the_configuration_table() -> None:
    assert _links_to(CONFIGURATION), "README should link to docs/configuration.md"
    text = CONFIGURATION.read_text()
    # STREAMNLP_BOOTSTRAP_SERVERS shares the KAFKA_BOOTSTRAP_SERVERS row.
    names = setting_env_names() - {"STREAMNLP_BOOTSTRAP_SERVERS"}
    missing = sorted(name for name in names if f"| `{name}` |" not in text)
    assert "STREAMNLP_BOOTSTRAP_SERVERS" in text
    assert not missing, f"docs/configuration.md's table lacks {missing}"


def test_every_metric_is_in_the_metrics_table() -> None:
    assert _links_to(OPERATIONS), "README should link to docs/operations.md"
    text = OPERATIONS.read_text()
    suffix = {"counter": "_total", "info": "_info"}
    exposed = [f"{family.name}{suffix.get(family.type, '')}" for family in WorkerMetrics().registry.collect()]
    ours = [name for name in exposed if name.startswith("streamnlp_")]
    assert ours, "WorkerMetrics registers streamnlp_* metrics"
    missing = [name for name in ours if f"| `{name}` |" not in text]
    assert not missing, f"docs/operations.md's metrics table lacks {missing}"
    # The standard process and GC families are one row each.
    assert "| `process_*` |" in text and "| `python_gc_*` |" in text
    for path in ("/healthz", "/readyz", "/metrics", "/dashboard"):
        assert f"| `{path}` |" in text, f"docs/operations.md should say what {path} answers"


def test_every_dead_letter_code_is_documented() -> None:
    assert _links_to(SCHEMAS), "README should link to docs/schemas.md"
    text = SCHEMAS.read_text()
    missing = [code.value for code in ErrorCode if f"`{code.value}`" not in text]
    assert not missing, f"docs/schemas.md's dead-letter codes lack {missing}"


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


# --------------------------------------------------------------------------- #
# Relative links
# --------------------------------------------------------------------------- #

FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The page without code: `a[i](x)` in a code block is not a link."""
    return INLINE_CODE.sub("", FENCED.sub("", text))


def _anchors(page: Path) -> set[str]:
    """The heading ids GitHub gives a page: lower case, punctuation dropped, spaces to hyphens, repeats -1, -2."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(FENCED.sub("", page.read_text())):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(_prose(page.read_text())) if not re.match(r"[a-zA-Z][\w+.-]*:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_relative_links_lead_somewhere(page: Path) -> None:
    broken = []
    for target in _relative_links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor} in {dest.relative_to(REPO)})")
    assert not broken, f"{page.relative_to(REPO)} links to {broken}"


def test_the_link_checker_sees_links_and_anchors() -> None:
    """Guards the checker itself: a regex that matched nothing would pass every page."""
    assert "docs/configuration.md" in _relative_links(REPO / "README.md")
    assert {"quickstart-two-commands", "measured-2-core-reference-machine-no-gpu", "layout"} <= _anchors(REPO / "README.md")
    assert "evaluation-the-small-model-trade-off-measured" in _anchors(REPO / "docs" / "models.md")
