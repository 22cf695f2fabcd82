"""PNG of a bench report: throughput per lane and latency percentiles per lane (matplotlib, build extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LANES = ("bare", "naive", "pipeline")


def write_plot(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    lanes = [name for name in LANES if name in report["lanes"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    rates = [report["lanes"][n]["events_per_s"] for n in lanes]
    bars = left.bar(lanes, rates, color=["#999999", "#d62728", "#1f77b4"][: len(lanes)])
    left.bar_label(bars, fmt="%.0f")
    left.set_ylabel("events/s (backlog drain)")
    left.set_title("Sentiment throughput")
    width = 0.25
    for offset, key in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        values = []
        for n in lanes:
            lane = report["lanes"][n]
            latency = lane.get("paced", {}).get("latency") or lane.get("latency") or {}
            values.append(latency.get(key) or 0.0)
        right.bar([i + (offset - 1) * width for i in range(len(lanes))], values, width, label=key[:3])
    offered = [report["lanes"][n].get("paced", {}).get("offered_rate") for n in lanes]
    right.set_xticks(range(len(lanes)), [f"{n}\n({r:.0f} ev/s)" if r else n for n, r in zip(lanes, offered, strict=True)])
    right.set_yscale("log")
    right.set_ylabel("ms (log)")
    load = int(report["config"]["latency_load"] * 100)
    right.set_title(f"End-to-end latency at {load}% of each lane's max")
    right.legend()
    ratios = ", ".join(f"{k} {v}" for k, v in report.get("ratios", {}).items())
    fig.suptitle(f"streamnlp bench ({report['machine']['cpus']} cores): {ratios}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
