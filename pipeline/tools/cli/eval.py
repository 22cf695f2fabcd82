"""`streamnlp eval`: every built model at every built precision, measured."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from pipeline.settings import load_settings
from pipeline.tools.cli.base import fail, one_line


@click.command("eval")
@click.option("--model", "models_", multiple=True,
              help="Catalogue name or model directory (repeatable; default: every built catalogue model).")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Labelled JSONL or CSV with text,label (default: the held-out review split).")
@click.option("--task", type=click.Choice(["all", "sentiment", "summarization", "toxicity"]), default="all",
              show_default=True)
@click.option("--out", "out_prefix", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write OUT.md, OUT.json and OUT.png (chart of quality vs throughput); "
                   "without it nothing is written.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of Markdown.")
@click.option("--unlabelled", "unlabelled_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the summary candidates nobody has labelled yet (JSONL with their source text) to this "
                   "file, to be labelled by reading (pipeline/tools/evaluation/summaries/GUIDE.md).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=None,
              help="Sentiment texts per predict() call, latency is per call (default: STREAMNLP_BATCH_MAX_SIZE).")
@click.option("--threads", type=click.IntRange(0, 256), default=0, show_default=True,
              help="ONNX intra-op threads for every model (0 = all cores).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N labelled texts (a quick run).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where built models are (default: the parent of STREAMNLP_MODEL_DIR).")
def eval_cmd(models_: tuple[str, ...], data: Path | None, task: str, out_prefix: Path | None, as_json: bool,
             unlabelled_out: Path | None, batch_size: int | None, threads: int, limit: int | None, cache_dir: Path | None) -> None:
    """Measure every built model at every built precision: quality, size, RAM, latency, throughput."""
    settings = load_settings()
    try:
        from pipeline.modelbuild.progress import StderrProgress
        from pipeline.tools.evaluation.data import DataError
        from pipeline.tools.evaluation.isolate import IsolatedRunError
        from pipeline.tools.evaluation.plan import EvalConfig, run_eval
        from pipeline.tools.evaluation.report import render_markdown, write_report, write_unlabelled
    except ImportError as exc:
        fail(f"eval needs the build extra ({exc}); run: pip install -c constraints.txt -e '.[build]'")
    config = EvalConfig(
        cache_dir=cache_dir or settings.model_dir.parent, models=models_, data=data,
        tasks=frozenset({"sentiment", "summarization", "toxicity"} if task == "all" else {task}),
        batch_size=batch_size or settings.batch_max_size, onnx_batch_size=settings.inference_batch_size,
        max_tokens=settings.max_tokens, threads=threads, limit=limit,
        faithfulness_threshold=settings.faithfulness_threshold, summary_min_chars=settings.summary_min_chars,
        summarizer_batch_size=settings.summarizer_batch_size,
        summarizer_max_new_tokens=settings.summarizer_max_new_tokens,
        summarizer_max_prompt_tokens=settings.summarizer_max_prompt_tokens,
        summarizer_constrain_to_source=settings.summarizer_constrain_to_source,
        command="streamnlp eval " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["eval"] else "streamnlp eval",
    )
    try:
        report = run_eval(config, StderrProgress())
    except (DataError, ValueError) as exc:
        fail(one_line(exc))
    except IsolatedRunError as exc:
        fail(f"a measurement failed: {one_line(exc)}", code=1)
    if not report["sentiment"] and not report["summarization"] and not report["toxicity"]:
        fail("no built model to evaluate; run `streamnlp models build` (see `streamnlp models list`)")
    if unlabelled_out is not None:
        count = write_unlabelled(report, unlabelled_out)
        click.echo(f"wrote {count} unlabelled summary candidates to {unlabelled_out}", err=True)
    if out_prefix is not None:
        written = write_report(report, out_prefix)
        click.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
    click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if as_json else render_markdown(report))
