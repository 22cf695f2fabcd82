"""One measurement: one model at one precision on one data set. Runs inside a fresh process.

`memory` is measured from just before the model is loaded to the end of the run (peak RSS
growth), which is why each run gets its own process (pipeline/tools/evaluation/isolate.py): in a
shared process the second model would find the first one's freed memory and look cheaper.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.tools.evaluation.scores import accuracy, expected_calibration_error, macro_f1, percentile

Progress = Callable[[int, int], None]

__all__ = [
    "SentimentRun", "SummarizerRun", "evaluate_extractive", "evaluate_sentiment", "evaluate_summarizer", "judge_summaries",
    "peak_rss_bytes", "start_memory_window",
]


def _proc_status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def start_memory_window() -> int:
    """Reset the peak-RSS mark where the OS allows it (Linux) and return the current RSS, in bytes.

    Without the reset, whatever peaked while the process started up (unpickling the job,
    imports) would hide the model's own peak.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # 5 = reset VmHWM (peak RSS) to the current RSS
    except OSError:
        pass
    current = _proc_status_bytes("VmRSS")
    return current if current is not None else peak_rss_bytes()


def peak_rss_bytes() -> int:
    """Peak RSS since the last reset (Linux) or since the process started."""
    hwm = _proc_status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


@dataclass(frozen=True)
class SentimentRun:
    model_dir: str
    precision: str
    texts: list[str]
    labels: list[str]
    batch_size: int = 128  # texts per predict() call = one worker micro-batch; latency is per call
    threads: int = 0  # ONNX intra-op threads (0 = all cores, the worker default)
    max_tokens: int = 256
    onnx_batch_size: int = 32  # rows per ONNX run inside a call (STREAMNLP_INFERENCE_BATCH_SIZE)
    ood_texts: list[str] | None = None  # a second, out-of-domain labelled set: accuracy only, not timed
    ood_labels: list[str] | None = None


@dataclass(frozen=True)
class SummarizerRun:
    model_dir: str
    precision: str
    texts: list[str]
    faithfulness_threshold: float = 0.75
    batch_size: int = 4
    threads: int = 0
    max_new_tokens: int = 48
    max_prompt_tokens: int = 384
    constrain_to_source: bool = False  # STREAMNLP_SUMMARIZER_CONSTRAIN_TO_SOURCE, as the worker decodes
    text_ids: list[str] | None = None  # with splits: judge against the labels (summaries/labels.jsonl)
    splits: list[str] | None = None


def _size(files: list[Path]) -> int:
    return sum(f.stat().st_size for f in files)


def evaluate_sentiment(run: SentimentRun, progress: Progress) -> dict[str, Any]:
    from pipeline.inference.sentiment import ClassifierConfig, SentimentClassifier, precision_files

    baseline = start_memory_window()
    clf = SentimentClassifier.load(Path(run.model_dir), ClassifierConfig(
        max_tokens=run.max_tokens, batch_size=run.onnx_batch_size, intra_op_threads=run.threads,
        precision=run.precision))
    clf.predict(run.texts[: run.batch_size])  # warm-up: ORT allocates its arenas on the first run
    unknown = sorted(set(run.labels) - set(clf.labels))
    if len(unknown) == len(set(run.labels)):
        raise ValueError(f"none of the data's labels {unknown} is a label of the model {clf.labels}")
    predicted: list[str] = []
    confidences: list[float] = []
    latencies: list[float] = []
    n = len(run.texts)
    for start in range(0, n, run.batch_size):
        chunk = run.texts[start : start + run.batch_size]
        t0 = time.perf_counter()
        out = clf.predict(chunk)
        latencies.append(time.perf_counter() - t0)
        predicted.extend(p.label for p in out)
        confidences.extend(p.score for p in out)
        progress(min(start + run.batch_size, n), n)
    correct = [p == g for p, g in zip(predicted, run.labels, strict=True)]
    ood: dict[str, Any] = {}
    if run.ood_texts is not None and run.ood_labels is not None:
        # at the worker's batching too, after the timed run (its time is not in the throughput)
        ood_predicted = [p.label for start in range(0, len(run.ood_texts), run.batch_size)
                         for p in clf.predict(run.ood_texts[start : start + run.batch_size])]
        ood = {"ood_accuracy": accuracy(run.ood_labels, ood_predicted), "ood_n": len(run.ood_texts),
               "ood_correct": "".join("1" if p == g else "0" for p, g in zip(ood_predicted, run.ood_labels,
                                                                               strict=True))}
    return {
        "model": clf.info.name, "version": clf.info.version, "precision": clf.info.precision,
        "n": n, "labels": clf.labels, "unknown_gold_labels": unknown,
        # per-text outcomes as a 0/1 string: plan.py derives intervals and paired differences, then drops them
        "correct": "".join("1" if c else "0" for c in correct),
        **ood,
        "accuracy": accuracy(run.labels, predicted),
        "macro_f1": macro_f1(run.labels, predicted),
        "ece": expected_calibration_error(confidences, correct, n_bins=10),
        "size_bytes": _size(precision_files(Path(run.model_dir), clf.info.precision)),
        "peak_rss_delta_bytes": peak_rss_bytes() - baseline,
        "batch_size": run.batch_size,
        "onnx_batch_size": run.onnx_batch_size,
        "latency_ms_p50": percentile(latencies, 50) * 1000.0,
        "latency_ms_p99": percentile(latencies, 99) * 1000.0,
        "throughput_per_s": n / sum(latencies),
    }


def evaluate_summarizer(run: SummarizerRun, progress: Progress) -> dict[str, Any]:
    """Generate with the model, then judge every candidate with the service's own summary policy."""
    from pipeline.inference.summarizer import Summarizer, SummarizerConfig, precision_files

    baseline = start_memory_window()
    model = Summarizer.load(Path(run.model_dir), SummarizerConfig(
        max_new_tokens=run.max_new_tokens, max_prompt_tokens=run.max_prompt_tokens, batch_size=run.batch_size,
        intra_op_threads=run.threads, precision=run.precision, constrain_to_source=run.constrain_to_source))
    model.summarize(["The library opens at nine on weekdays. It closes at noon on Saturdays."])  # warm-up
    generated = []
    latencies: list[float] = []
    n = len(run.texts)
    progress(0, n)
    for start in range(0, n, run.batch_size):
        t0 = time.perf_counter()
        generated.extend(model.summarize(run.texts[start : start + run.batch_size]))
        latencies.append(time.perf_counter() - t0)
        progress(min(start + run.batch_size, n), n)
    from pipeline.lanes.summary.text import candidate_text

    candidates = [candidate_text(g) for g in generated]
    result = judge_summaries(run.texts, candidates, run.faithfulness_threshold)
    return {
        "model": model.info.name, "version": model.info.version, "precision": model.info.precision,
        **result,
        **(_labelled(run, candidates) if run.text_ids is not None else {}),
        "size_bytes": _size(precision_files(Path(run.model_dir), model.info.precision)),
        "peak_rss_delta_bytes": peak_rss_bytes() - baseline,
        "batch_size": run.batch_size,
        "latency_ms_p50": percentile(latencies, 50) * 1000.0,
        "docs_per_s": n / sum(latencies),
        "new_tokens_mean": sum(g.new_tokens for g in generated) / n,
    }


def _labelled(run: SummarizerRun, candidates: list[str | None]) -> dict[str, Any]:
    """Per split: what the policy publishes, judged by the labels; the threshold frontier; unlabelled text."""
    from pipeline.lanes.summary.policy import SummaryPolicy
    from pipeline.tools.evaluation.candidates import candidate_key
    from pipeline.tools.evaluation.labels import judge_with_labels, load_labels, threshold_frontier

    labels = load_labels()
    assert run.text_ids is not None and run.splits is not None
    out: dict[str, Any] = {"labelled": {}, "frontier": {}, "unlabelled_candidates": []}
    for split in sorted(set(run.splits)):
        idx = [i for i, s in enumerate(run.splits) if s == split]
        args = ([run.text_ids[i] for i in idx], [run.texts[i] for i in idx], [candidates[i] for i in idx], labels)
        out["labelled"][split] = judge_with_labels(*args, SummaryPolicy(faithfulness_threshold=run.faithfulness_threshold))
        out["frontier"][split] = threshold_frontier(*args, (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0))
    for text_id, split, candidate in zip(run.text_ids, run.splits, candidates, strict=True):
        if candidate and candidate.strip() and candidate_key(text_id, candidate) not in labels:
            out["unlabelled_candidates"].append({"key": candidate_key(text_id, candidate), "text_id": text_id,
                                                 "split": split, "candidate": candidate.strip()})
    return out


def evaluate_extractive(texts: list[str], threshold: float, progress: Progress) -> dict[str, Any]:
    """The service's fallback alone (no model): the floor of the quality-vs-speed chart."""
    from pipeline.lanes.summary.policy import SummaryPolicy, decide

    policy = SummaryPolicy(faithfulness_threshold=threshold)
    t0 = time.perf_counter()
    summaries = [decide(text, None, policy, forced_reason="disabled").text for text in texts]
    elapsed = time.perf_counter() - t0
    progress(len(texts), len(texts))
    n = len(texts)
    return {"model": "extractive (no model)", "version": "-", "precision": "-", "n": n,
            # source sentences only: faithful by construction, and it is the fallback, so nothing falls back
            "faithfulness_mean": 1.0, "below_threshold_share": 0.0, "threshold": threshold,
            "fallback_rate": 0.0, "fallback_reasons": {}, "compression_ratio": _compression(texts, summaries),
            "size_bytes": 0, "peak_rss_delta_bytes": 0, "batch_size": n, "latency_ms_p50": elapsed * 1000.0,
            "docs_per_s": n / elapsed, "new_tokens_mean": 0.0}


def judge_summaries(sources: list[str], candidates: list[str | None], threshold: float) -> dict[str, Any]:
    """Faithfulness of the candidates, how often the policy would replace them, and how much they compress."""
    from pipeline.lanes.summary.policy import SummaryPolicy, decide

    policy = SummaryPolicy(faithfulness_threshold=threshold)
    scores: list[float] = []
    fallbacks: dict[str, int] = {}
    for source, candidate in zip(sources, candidates, strict=True):
        decision = decide(source, candidate, policy)
        # an empty or missing candidate scores 0 (the scorer calls it vacuously faithful, but nothing was written)
        scores.append((decision.candidate_faithfulness or 0.0) if candidate and candidate.strip() else 0.0)
        if decision.method != "abstractive":
            reason = (decision.fallback_reason or "unknown").partition(":")[0]
            fallbacks[reason] = fallbacks.get(reason, 0) + 1
    n = len(sources)
    return {
        "n": n,
        "faithfulness_mean": sum(scores) / n,
        "below_threshold_share": sum(s < threshold for s in scores) / n,
        "threshold": threshold,
        "fallback_rate": sum(fallbacks.values()) / n,
        "fallback_reasons": fallbacks,
        "compression_ratio": _compression(sources, candidates),
    }


def _compression(sources: Sequence[str], summaries: Sequence[str | None]) -> float | None:
    """Mean source words per summary word (empty summaries skipped: the policy replaces them anyway)."""
    ratios = [len(s.split()) / len(c.split()) for s, c in zip(sources, summaries, strict=True) if c and c.split()]
    return sum(ratios) / len(ratios) if ratios else None
