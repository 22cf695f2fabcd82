"""`streamnlp dlq inspect|replay`: the dead-letter topic, summarised and replayed."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
import orjson

from pipeline.settings import load_settings
from pipeline.tools.cli.base import fail, run_kafka
from schemas.events import ErrorCode


class _IsoTime(click.ParamType):
    name = "ISO-TIME"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO-8601 time (e.g. 2026-11-01T12:00:00Z or 2026-11-01)", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.group()
def dlq() -> None:
    """Inspect the dead-letter topic and replay dead letters after fixing their cause."""


@dlq.command("inspect")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def dlq_inspect(as_json: bool) -> None:
    """Summarise the dead-letter topic by error code (count, first/last time, example ids and reasons)."""
    from pipeline.kafka.clients import check_reachable
    from pipeline.tools.dlq import format_summary, inspect

    settings = load_settings()
    check_reachable(settings)
    summary = run_kafka(inspect(settings))
    click.echo(orjson.dumps(summary.as_dict()).decode() if as_json else format_summary(summary))


@dlq.command("replay")
@click.option("--error-code", "error_codes", multiple=True, type=click.Choice([c.value for c in ErrorCode]),
              help="Only dead letters with this code (repeatable).")
@click.option("--since", type=_IsoTime(), help="Only dead letters that failed at or after this time.")
@click.option("--until", type=_IsoTime(), help="Only dead letters that failed before this time.")
@click.option("--id", "ids", multiple=True,
              help="Only this event id (repeatable; the record key when the id was unreadable).")
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter (required when no filter is given).")
@click.option("--include-replays", is_flag=True,
              help="Also replay letters that an earlier replay made (its record failed again); skipped by default, "
                   "since their original letter is replayed too.")
@click.option("--dry-run", is_flag=True, help="List what would be replayed; publish nothing.")
@click.option("--topic", default=None, help="Publish to this topic instead of each letter's source topic.")
@click.option("--json", "as_json", is_flag=True, help="Print the final counts as JSON.")
def dlq_replay(error_codes: tuple[str, ...], since: datetime | None, until: datetime | None, ids: tuple[str, ...],
               everything: bool, include_replays: bool, dry_run: bool, topic: str | None, as_json: bool) -> None:
    """Re-publish selected dead letters' raw records, byte-exact, to the topic they came from."""
    from pipeline.kafka.clients import check_reachable
    from pipeline.tools.dlq import ReplayFilter, format_report, replay

    settings = load_settings()
    try:
        selection = ReplayFilter(error_codes=frozenset(ErrorCode(c) for c in error_codes), ids=frozenset(ids),
                                 since=since, until=until)
    except ValueError as exc:
        fail(str(exc))
    if selection.selects_everything and not everything:
        fail("no filter given; pass --error-code, --since/--until or --id, or --all to replay every dead letter")
    check_reachable(settings)
    report = run_kafka(replay(settings, selection, dry_run=dry_run, topic_override=topic,
                              include_replays=include_replays, say=click.echo))
    click.echo(orjson.dumps(report.as_dict()).decode() if as_json else format_report(report))
    if not report.ok:
        sys.exit(1)
