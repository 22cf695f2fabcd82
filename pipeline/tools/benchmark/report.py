"""The bench report as a Markdown table (what `streamnlp bench` prints) and as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

LANE_NOTES = {
    "bare": "batched ONNX `predict`, no Kafka (latency: an ideal in-process micro-batcher, same load)",
    "naive": "aiokafka loop, auto-commit, transformers pipeline per message (PyTorch fp32)",
    "pipeline": "produce → worker process → enriched events consumed",
    "pipeline_no_toxicity": "the pipeline lane with STREAMNLP_TOXICITY_ENABLED=false (best of the on/off rounds)",
}


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:,}" if isinstance(value, (int, float)) else str(value)


def render_markdown(report: dict[str, Any]) -> str:
    t = report["texts"]
    cfg = report["config"]
    machine = report.get("machine", {})
    lines = [
        f"Machine: {machine.get('cpus')} CPUs, {machine.get('platform')}, int8 kernels: "
        f"{machine.get('int8_kernels', 'not recorded')} (int8 speed and answers depend on them).",
        f"Texts: {t['count']} (seed {t['seed']}), {t['short']} short (< {t['short_max_chars']} chars) + "
        f"{t['count'] - t['short']} medium; chars min {t['chars_min']}, median {t['chars_p50']}, "
        f"mean {t['chars_mean']}, max {t['chars_max']} (all below the summary threshold).",
        f"Threads: {cfg['threads']}; batch_max_size {cfg['batch_max_size']}, wait {cfg['batch_max_wait_ms']} ms; "
        f"latency at {int(cfg['latency_load'] * 100)}% of each lane's own throughput for {cfg['latency_seconds']:.0f} s.",
        "",
        "| lane | events/s | p50 ms | p95 ms | p99 ms | CPU s / 1k events | peak RSS MiB | what |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in ("bare", "naive", "pipeline", "pipeline_no_toxicity"):
        lane = report["lanes"].get(name)
        if lane is None:
            continue
        latency = lane.get("paced", {}).get("latency") or lane.get("latency") or {}
        lines.append(f"| {name} | {_fmt(lane['events_per_s'])} | {_fmt(latency.get('p50_ms'))} | "
                     f"{_fmt(latency.get('p95_ms'))} | {_fmt(latency.get('p99_ms'))} | {_fmt(lane['cpu_s_per_1k'])} | "
                     f"{_fmt(lane['peak_rss_mib'])} | {LANE_NOTES[name]} |")
    lines.append("")
    for ratio, value in report.get("ratios", {}).items():
        lines.append(f"- **{ratio}** throughput: {_fmt(value)}")
    compare = report.get("toxicity_compare")
    if compare:
        lines.append(f"- **toxicity on/off**: {compare['rounds']} alternating drains each, events/s on "
                     f"{', '.join(_fmt(v) for v in compare['on_events_per_s'])} vs off "
                     f"{', '.join(_fmt(v) for v in compare['off_events_per_s'])}; best on / best off = "
                     f"**{_fmt(compare['ratio'])}** (CPU s / 1k events on {', '.join(_fmt(v) for v in compare['on_cpu_s_per_1k'])}"
                     f", off {', '.join(_fmt(v) for v in compare['off_cpu_s_per_1k'])})")
    bare_runs = report["lanes"].get("bare", {}).get("runs_events_per_s")
    if bare_runs:
        lines.append(f"- bare ran first and last ({' and '.join(_fmt(r) for r in bare_runs)} events/s); the faster is the ceiling")
    run = report.get("latency_run")
    if run:
        lines.append(f"- **latency at {int(run['load'] * 100)}% load** ({_fmt(run['offered_rate'])} events/s): "
                     f"p50 {_fmt(run['p50_ms'])} ms, p99 {_fmt(run['p99_ms'])} ms = {_fmt(run['p99_over_bare_batch'])}× "
                     f"the bare batch time ({_fmt(run['bare_batch_ms'])} ms for {cfg['batch_max_size']} texts); bare p99 at "
                     f"the same share of its own throughput {_fmt(run.get('bare_p99_ms'))} ms")
    variants = report.get("summary_isolation") or {cfg.get("summarizer_isolation", "default"): report.get("summary_lane")}
    for variant, mixed in variants.items():
        if not mixed or "summaries" not in mixed:
            continue
        s = mixed["summaries"]
        default = " (the worker's setting)" if variant == cfg.get("summarizer_isolation") else ""
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.get("fallback_reasons", {}).items())) or "none"
        lines.append(f"- **summaries in flight, {variant}**{default}: {s['docs']} long texts at once with the paced "
                     f"short stream: sentiment p99 {_fmt(mixed['latency']['p99_ms'])} ms vs "
                     f"{_fmt(mixed.get('sentiment_p99_alone_ms'))} ms without long texts "
                     f"(**{_fmt(mixed.get('sentiment_p99_ratio'))}×**); summaries {_fmt(s['docs_per_s'])} docs/s (last "
                     f"after {_fmt(s['seconds'])} s), fallback share {_fmt(s.get('fallback_share'))} ({reasons})")
    scaling = report.get("scaling")
    if scaling:
        lines.append(f"- **{scaling['consumers']} workers** in one group: {_fmt(scaling['events_per_s'])} events/s = "
                     f"{_fmt(scaling['speedup'])}× one worker, scaling efficiency {_fmt(scaling['efficiency'])} "
                     f"({scaling.get('threads_per_worker')} ONNX thread(s) each, {report['machine']['cpus']} cores shared "
                     "with the broker and the bench's clients)")
    lines.append("")
    lines.append(f"Command: `{report['command']}`")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    return path
