"""The eval report as Markdown, JSON and a quality-vs-throughput chart (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["render_markdown", "write_chart", "write_report", "write_unlabelled"]


def _mb(n: int | None) -> str:
    return "-" if not n else f"{n / 1e6:,.0f} MB" if n >= 10e6 else f"{n / 1e6:.1f} MB"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def render_markdown(report: dict[str, Any], chart_name: str | None = None) -> str:
    m = report["machine"]
    lines = [
        f"# streamnlp eval ({report['created_at'][:10]})",
        "",
        f"Measured by `{report['command']}` on {m['cpus']} CPUs ({m['arch']}, {m['system']}; int8 kernels: {m.get('int8_kernels', 'not recorded')}), no GPU, "
        f"onnxruntime {m['onnxruntime']}, 1-minute load average {m['load_average_1m_at_start']} at start"
        f"{'' if m.get('load_average_1m_at_end') is None else ' and ' + str(m['load_average_1m_at_end']) + ' at the end'}; "
        f"{report['elapsed_s']:.0f} s in all. Each model and precision runs in its own process "
        f"with {report['settings']['threads']} ONNX threads.",
        "",
    ]
    head = report.get("headline")
    if head and head.get("accuracy_int8") is not None:
        gap = head.get("fp32_int8_gap")
        lines += [
            f"**Default sentiment model `{head['model']}` ({head['version']}):** held-out accuracy int8 "
            f"**{_pct(head['accuracy_int8'])}**, fp32 {_pct(head['accuracy_fp32'])}"
            + ("" if gap is None else f" (fp32 - int8 = {100 * gap:+.1f} points)")
            + f", {head['throughput_int8_per_s']:.0f} texts/s at int8.",
            "",
        ]
    if chart_name:
        lines += [f"![quality vs throughput]({chart_name})", ""]
    if report["sentiment"]:
        data = report["data"]["sentiment"]
        batch = report["settings"]["sentiment_batch_size"]
        rows = report["settings"]["onnx_batch_size"]
        lines += [
            f"## Sentiment: {data['name']} (n = {data['n']:,})",
            "",
            f"{data['source']}; labels {', '.join(f'{k} {v}' for k, v in data['labels'].items())}. "
            f"Texts are handed over {batch} per `predict()` call (a worker micro-batch), sorted by length "
            f"inside it and run {rows} rows per ONNX run, as in the worker.",
            "",
            f"| model | precision | accuracy (95% CI) | vs default int8 | out of domain (95% CI) | OOD vs default "
            f"| macro-F1 | ECE | size | peak RAM | p50 ms / {batch} texts | p99 ms | texts/s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in report["sentiment"]:
            lines.append(
                f"| {r['model']} | {r['precision']} | {_with_ci(r.get('accuracy'), r.get('accuracy_ci95'))} "
                f"| {_vs(r.get('accuracy_vs_default'))} | {_with_ci(r.get('ood_accuracy'), r.get('ood_accuracy_ci95'))} "
                f"| {_vs(r.get('ood_accuracy_vs_default'))} | {_num(r['macro_f1'])} | {_num(r['ece'])} "
                f"| {_mb(r['size_bytes'])} | {_mb(r['peak_rss_delta_bytes'])} | {r['latency_ms_p50']:.1f} "
                f"| {r['latency_ms_p99']:.1f} | {r['throughput_per_s']:.0f} |")
        lines += distillation_section(report)
        unknown = {r["model"]: r["unknown_gold_labels"] for r in report["sentiment"] if r["unknown_gold_labels"]}
        if unknown:
            lines += ["", "Gold labels a model cannot output (always counted wrong): "
                      + "; ".join(f"{k}: {', '.join(v)}" for k, v in unknown.items()) + "."]
        lines.append("")
    if report["summarization"]:
        data = report["data"]["summarization"]
        threshold = report["settings"]["faithfulness_threshold"]
        lines += [
            f"## Summarization: {data['name']} (n = {data['n']})",
            "",
            f"{data['source']}; batch {report['settings']['summarizer_batch_size']}, at most "
            f"{report['settings']['summarizer_max_new_tokens']} new tokens. Candidates are judged by the service's own "
            f"policy (`pipeline/lanes/summary/policy.py`, threshold {threshold}).",
            "",
            f"| model | precision | faithfulness mean | below {threshold} | fallback rate (reasons) | compression "
            "| docs/s | p50 s / batch | size | peak RAM |",
            "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in report["summarization"]:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["fallback_reasons"].items()))
            lines.append(
                f"| {r['model']} | {r['precision']} | {_num(r['faithfulness_mean'])} | {_pct(r['below_threshold_share'])} "
                f"| {_pct(r['fallback_rate'])}{f' ({reasons})' if reasons else ''} "
                f"| {_num(r['compression_ratio'], 1)}x | {r['docs_per_s']:.2f} | {r['latency_ms_p50'] / 1000:.2f} "
                f"| {_mb(r['size_bytes'])} | {_mb(r['peak_rss_delta_bytes'])} |")
        lines.append("")
        lines += _labelled_section(report["summarization"])
    lines += toxicity_section(report)
    lines += [
        "## Definitions",
        "",
        "* **accuracy**: share of texts whose label equals the gold label. **macro-F1**: mean F1 over the gold "
        "classes. **ECE**: expected calibration error of the top label's probability, 10 equal-width bins "
        "(0 = a 0.9 score is right 90% of the time).",
        "* **size**: the ONNX file(s) the precision loads. **peak RAM**: growth of the process's peak RSS from "
        "just before loading the model to the end of the run (model, arenas, activations).",
        "* **latency**: wall time of one `predict()` call on a batch (one worker hand-over, texts sorted by "
        "length inside it); **texts/s**: texts / total predict time. Summaries: one `summarize()` call per batch.",
        "* **faithfulness**: `score_faithfulness` of the model's own candidate (before any fallback); **fallback "
        "rate**: candidates the policy would replace by the extractive summary (unfaithful or degenerate); "
        "**compression**: source words per summary word.",
        "* The `extractive (no model)` row is the service's fallback alone: faithful by construction.",
        "",
    ]
    return "\n".join(lines)


def _with_ci(x: float | None, ci: list[float] | tuple[float, float] | None) -> str:
    if x is None:
        return "-"
    return _pct(x) if not ci else f"{100 * x:.1f}% ({100 * ci[0]:.1f}-{100 * ci[1]:.1f})"


def _vs(d: dict[str, Any] | None) -> str:
    """Paired difference to the default int8 row in points, its 95% interval, and McNemar's p."""
    if not d:
        return "-"
    if not d["a_only"] and not d["b_only"]:
        return "same answers"
    return (f"{100 * d['difference']:+.1f} ({100 * d['low']:+.1f} to {100 * d['high']:+.1f}; "
            f"p={d['mcnemar_p']:.2g})")


def distillation_section(report: dict[str, Any]) -> list[str]:
    """The teacher-vs-default line and the switch rule's verdict per student (issue 15)."""
    comp = report.get("distillation")
    if not comp:
        return []
    lines = [""]
    ood = report["data"].get("sentiment_ood")
    if ood:
        lines += [f"Out of domain: {ood['source']} (n = {ood['n']:,}). Intervals: percentile bootstrap over texts "
                  "(2,000 resamples); *vs default*: paired bootstrap of the accuracy difference to the default at "
                  "int8 on the same texts, in points, with the exact McNemar p.", ""]
    if comp.get("keeps"):
        lines += [f"**{comp['keeps']['line'][0].upper() + comp['keeps']['line'][1:]}** (default int8 vs teacher fp32: "
                  f"held-out accuracy ratio, and the teacher's texts/s over the default's).", ""]
    rule = comp.get("switch_rule")
    if rule:
        lines += [f"**Default switch rule**: {rule['rule']}.", ""]
        if rule["students"]:
            lines += ["| student | precision | beats default (held-out, CI > 0) | no loss out of domain "
                      "| costs no more | qualifies |", "|---|---|---|---|---|---|"]
            yes = {True: "yes", False: "no"}
            lines += [f"| {v['model']} | {v['precision']} | {yes[v['beats_default_held_out']]} "
                      f"| {yes[v['no_loss_out_of_domain']]} | {yes[v['costs_no_more']]} | **{yes[v['qualifies']]}** |"
                      for v in rule["students"]]
            lines.append("")
        winner = rule.get("winner")
        lines += [f"Verdict: {winner['model']} {winner['precision']} qualifies." if winner else
                  "Verdict: no student qualifies; the default stays.", ""]
    return lines


#: What a linear bag-of-words model cannot do, as the per-case table shows it (docs/models.md, "Toxicity").
TOXICITY_LIMITS = (
    "A linear bag-of-words model scores words, not meaning: it flags profanity used as praise and slurs quoted in "
    "reporting (no context, no quotation marks, no negation), misses insults made of ordinary words, and knows "
    "only the spellings it was trained on: leetspeak (`sh1t`) and spaced-out words (`f u c k`) are unknown tokens "
    "to it, and so is every non-English insult (in the pipeline the language gate keeps reliably detected "
    "non-English texts from it: `toxicity: null`)."
)


def toxicity_section(report: dict[str, Any]) -> list[str]:
    """Per model: P / R / F1 of the offensive class per case type, the model alone and behind the language gate."""
    rows = report.get("toxicity") or []
    if not rows:
        return []
    data = report["data"]["toxicity"]
    lines = [f"## Toxicity: {data['name']} (n = {data['n']}, {data['offensive']} offensive)", "",
             f"{data['source']}. Precision, recall and F1 of the offensive class; a case type with no offensive "
             "text has no recall or F1, its accuracy is the share not flagged.", ""]
    for r in rows:
        lines += [f"**{r['model']}** ({r['version']}, {r['precision']}): {r['texts_per_s']:,.0f} texts/s, "
                  f"p50 {r['batch_ms_p50']:.1f} ms per {report['settings']['sentiment_batch_size']}-text batch.", "",
                  "| case type | n | offensive | flagged | precision | recall | F1 | accuracy | F1 behind the gate |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        gated = {row["case"]: row for row in r["behind_gate"]}
        for row in r["cases"]:
            behind = gated.get(row["case"], {})
            name = f"**{row['case']}**" if row["case"] == "all" else row["case"]
            lines.append(f"| {name} | {row['n']} | {row['offensive']} | {row['flagged']} | {_num(row['precision'])} "
                         f"| {_num(row['recall'])} | {_num(row['f1'])} | {_pct(row['accuracy'])} "
                         f"| {_num(behind.get('f1'))} |")
        lines.append("")
    lines += [TOXICITY_LIMITS, ""]
    return lines


def _labelled_section(rows: list[dict[str, Any]]) -> list[str]:
    """Quality judged against labels read by people (pipeline/tools/evaluation/summaries/)."""
    rows = [r for r in rows if r.get("labelled")]
    if not rows:
        return []
    lines = [
        "### Judged against the labels (read by people; guide: pipeline/tools/evaluation/summaries/GUIDE.md)",
        "",
        "Published = the policy keeps the model's candidate. **with error** = published summaries labelled "
        "unfaithful; **cut/meta** = published summaries labelled incomplete or meta-text; **guard recall** = "
        "share of labelled bad candidates (unfaithful, cut, meta or degenerate) the policy replaced; "
        "**coverage** = texts whose published summary is labelled faithful, complete and not meta. "
        "Unlabelled candidates are counted, never guessed.",
        "",
        "| model | precision | split | texts | unlabelled | published | with error | cut/meta | guard recall "
        "| coverage |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for split, j in sorted(r["labelled"].items(), key=lambda kv: kv[0] != "test"):
            err = "-" if j["error_share"] is None else f"{j['published_with_error']} ({_pct(j['error_share'])})"
            lines.append(
                f"| {r['model']} | {r['precision']} | {split} | {j['n']} | {j['unlabelled']} "
                f"| {j['published_abstractive']} | {err} | {j['published_cut_or_meta']} "
                f"| {_pct(j['guard_recall'])} | {_pct(j['coverage'])} |")
    lines.append("")
    for r in rows:
        frontier = (r.get("frontier") or {}).get("test")
        # a frontier over unlabelled text would be guesswork: only fully labelled runs get one
        if not frontier or r["labelled"]["test"]["unlabelled"]:
            continue
        lines += [f"Coverage vs error on the test split, {r['model']} {r['precision']}, by faithfulness threshold:",
                  "", "| threshold | published | coverage | with error | bad (error, cut, meta) |",
                  "|---:|---:|---:|---:|---:|"]
        lines += [f"| {f['threshold']} | {f['published']} | {_pct(f['coverage'])} | {_pct(f['error_share'])} "
                  f"| {_pct(f['bad_share'])} |" for f in frontier]
        lines.append("")
    return lines


def write_chart(report: dict[str, Any], path: Path) -> None:
    """Quality vs throughput, one panel per task, log-scale throughput: the small-model trade-off at a glance."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ood_rows = [r for r in report["sentiment"] if r.get("ood_accuracy") is not None]
    panels = [(task, rows) for task, rows in (("sentiment", report["sentiment"]), ("sentiment-ood", ood_rows),
                                              ("summarization", report["summarization"])) if rows]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(6.2 * max(1, len(panels)), 4.6), squeeze=False)
    for ax, (task, rows) in zip(axes[0], panels, strict=False):
        if task == "sentiment":
            xs = [r["throughput_per_s"] for r in rows]
            ys = [100 * r["accuracy"] for r in rows]
            ax.set_xlabel("throughput (texts/s, log scale)")
            ax.set_ylabel(f"accuracy on {report['data']['sentiment']['name']} (%)")
            ax.set_title("Sentiment")
        elif task == "sentiment-ood":
            xs = [r["throughput_per_s"] for r in rows]
            ys = [100 * r["ood_accuracy"] for r in rows]
            ax.set_xlabel("throughput (texts/s, log scale)")
            ax.set_ylabel(f"accuracy on {report['data']['sentiment_ood']['name']} (%)")
            ax.set_title("Sentiment, out of domain")
        else:
            xs = [r["docs_per_s"] for r in rows]
            ys = [100 * (1 - r["fallback_rate"]) for r in rows]
            ax.set_xlabel("throughput (docs/s, log scale)")
            ax.set_ylabel("summaries kept (faithful, not degenerate) (%)")
            ax.set_title("Summarization")
        for r, x, y in zip(rows, xs, ys, strict=True):
            size = f", {_mb(r['size_bytes'])}" if r["size_bytes"] else ""
            label = r["model"] if r["precision"] == "-" else f"{r['model']} {r['precision']}{size}"
            ax.scatter([x], [y], s=40, zorder=3)
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="major", alpha=0.3)
        # at least 10 points of y range: a 0.5-point gap must not look like a cliff
        low, high = min(ys), max(ys)
        pad = max(2.0, (10.0 - (high - low)) / 2)
        ax.set_ylim(max(0.0, low - pad), min(100.0, high + pad) + 4.0)
        ax.set_xlim(min(xs) / 2, max(xs) * 4)
    fig.suptitle(f"streamnlp: quality vs throughput ({report['machine']['cpus']} CPUs, {report['created_at'][:10]})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(report: dict[str, Any], prefix: Path) -> list[Path]:
    """PREFIX.md, PREFIX.json and PREFIX.png; returns the paths written."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    md, js, png = (prefix.with_name(prefix.name + ext) for ext in (".md", ".json", ".png"))
    write_chart(report, png)
    md.write_text(render_markdown(report, chart_name=png.name), encoding="utf-8")
    js.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return [md, js, png]


def write_unlabelled(report: dict[str, Any], path: Path) -> int:
    """Every distinct unlabelled summary candidate of the run, with its source, as JSONL to label."""
    from pipeline.tools.evaluation.longtexts import load_long_texts

    sources = {t.id: t.text for t in load_long_texts()}
    seen: dict[str, dict[str, Any]] = {}
    for r in report["summarization"]:
        for c in r.get("unlabelled_candidates", []):
            seen.setdefault(c["key"], {**c, "source": sources.get(c["text_id"], "")})
    Path(path).write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in seen.values()), encoding="utf-8")
    return len(seen)
