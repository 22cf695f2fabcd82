"""Before/after of one change, measured in the same run: `python -m pipeline.tools.benchmark.ab`.

Each arm is a real worker process on its own fresh topics of one embedded broker, fed the same
seeded texts; rounds alternate the arms (A B A B ...) so machine noise hits both alike. An arm is
the current tree or an older commit (checked out with `git worktree` into a temporary directory
and put first on the worker's PYTHONPATH), plus optional STREAMNLP_* overrides:

    python -m pipeline.tools.benchmark.ab --a-rev HEAD~1                      # the last commit's effect
    python -m pipeline.tools.benchmark.ab --a-env STREAMNLP_FETCH_MAX_WAIT_MS=100 --b-env STREAMNLP_FETCH_MAX_WAIT_MS=25

Per arm: drain events/s, worker CPU s per 1,000 events, and end-to-end p50/p99 at a fixed offered
rate (the same for both arms). Prints a JSON line per round and a Markdown summary (best round of
each arm, ratios B/A).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.kafka.broker import EmbeddedBroker
from pipeline.settings import REPO_ROOT, Settings
from pipeline.tools.benchmark.lanes import KafkaLane, lane_settings, start_worker
from pipeline.tools.benchmark.texts import bench_texts


@contextlib.contextmanager
def source_tree(rev: str | None, parent: Path) -> Iterator[Path | None]:
    """A checkout of `rev` (None: the working tree itself, no checkout)."""
    if rev is None:
        yield None
        return
    path = parent / f"tree-{rev.replace('/', '_').replace('~', '-')}"
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(path), rev],
                   check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)


def _env(tree: Path | None, pairs: list[str]) -> dict[str, str]:
    env = dict(pair.split("=", 1) for pair in pairs)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def _arm_settings(base: Settings, pairs: list[str]) -> Settings:
    """The collector and producer follow the arm's settings too (e.g. the fetch wait)."""
    updates = {k.removeprefix("STREAMNLP_").lower(): v for k, v in (p.split("=", 1) for p in pairs)}
    return Settings(**{**base.model_dump(), **updates})


async def run_ab(args: argparse.Namespace) -> dict[str, Any]:
    texts = bench_texts(args.events, summary_min_chars=400, seed=6).texts
    paced_texts = texts[: int(args.rate * args.seconds)]
    rounds: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="streamnlp-ab-") as tmp, \
            source_tree(args.a_rev, Path(tmp)) as tree_a, source_tree(args.b_rev, Path(tmp)) as tree_b:
        base = Settings(bootstrap_servers=broker.bootstrap_servers)
        async with contextlib.AsyncExitStack() as stack:
            lanes = {}
            for arm, tree, pairs in (("A", tree_a, args.a_env), ("B", tree_b, args.b_env)):
                lane = await stack.enter_async_context(KafkaLane(arm, lane_settings(_arm_settings(base, pairs), f"ab{arm}", Path(tmp))))
                start_worker(lane, Path(tmp) / f"worker-{arm}.log", _env(tree, pairs))
                lanes[arm] = lane
            for lane in lanes.values():
                await lane.warm(base.topic_partitions)
            for index in range(args.rounds):
                for arm in ("A", "B") if index % 2 == 0 else ("B", "A"):
                    drained = await lanes[arm].drain(texts, 600)
                    paced = await lanes[arm].paced(paced_texts, args.rate, 600)
                    row = {"arm": arm, "round": index + 1, "events_per_s": drained["events_per_s"],
                           "cpu_s_per_1k": drained["cpu_s_per_1k"], "rate": args.rate,
                           "p50_ms": paced["latency"]["p50_ms"], "p99_ms": paced["latency"]["p99_ms"]}
                    rounds[arm].append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    return {"a": {"rev": args.a_rev, "env": args.a_env}, "b": {"rev": args.b_rev, "env": args.b_env},
            "rounds": rounds, "summary": summarize(rounds)}


def summarize(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Median of each arm's rounds, and B/A ratios (throughput up is better; CPU and latency down is better)."""
    med = {arm: {k: statistics.median(r[k] for r in rows) for k in ("events_per_s", "cpu_s_per_1k", "p50_ms", "p99_ms")}
           for arm, rows in rounds.items()}
    ratios = {k: round(med["B"][k] / med["A"][k], 3) for k in med["A"] if med["A"][k]}
    return {"median": med, "b_over_a": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a-rev", default=None, help="git revision of arm A (default: the working tree)")
    parser.add_argument("--b-rev", default=None, help="git revision of arm B (default: the working tree)")
    parser.add_argument("--a-env", action="append", default=[], help="STREAMNLP_X=value for arm A (repeatable)")
    parser.add_argument("--b-env", action="append", default=[], help="STREAMNLP_X=value for arm B (repeatable)")
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=100.0, help="offered events/s of the latency runs")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = asyncio.run(run_ab(args))
    print(json.dumps(result["summary"]))


if __name__ == "__main__":
    main()
