"""Source-constrained decoding, with vs without, on the DEV split of the committed long texts.

    python -m pipeline.tools.evaluation.constrained MODEL_DIR PRECISION [MAX_NEW_TOKENS] > out.jsonl

Both variants run in the same process on the same loaded graph, batch by batch, alternating which
goes first, so the docs/s ratio is not skewed by other load on the machine drifting over the run.
Never run on the test split: decoding is tuned on dev (pipeline.tools.evaluation.longtexts).
Per text it prints one JSON line per variant; the summary table goes to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HARD = ("number", "time", "date", "entity")


def run(model_dir: Path, precision: str, max_new_tokens: int = 64, threads: int = 2, batch_size: int = 4) -> list[dict]:
    from pipeline.inference.summarizer import GeneratedSummary, Summarizer, SummarizerConfig
    from pipeline.lanes.summary.faithfulness import score_faithfulness
    from pipeline.lanes.summary.policy import SummaryPolicy, decide
    from pipeline.lanes.summary.text import candidate_text
    from pipeline.tools.evaluation.longtexts import load_long_texts

    texts = load_long_texts("dev")
    model = Summarizer.load(model_dir, SummarizerConfig(
        precision=precision, max_new_tokens=max_new_tokens, batch_size=batch_size, intra_op_threads=threads))
    table = model.source_constraint("warm up").table  # builds the vocabulary table once, outside the timing
    rows: list[dict] = []
    seconds = {False: 0.0, True: 0.0}
    for b, start in enumerate(range(0, len(texts), batch_size)):
        chunk = texts[start : start + batch_size]
        prompts = [model.build_prompt(t.text) for t in chunk]
        for constrained in ((False, True) if b % 2 == 0 else (True, False)):
            cons = [model.source_constraint(t.text) for t in chunk] if constrained else None
            t0 = time.perf_counter()
            outs = model.generate_ids([p for p, _ in prompts], constraints=cons)
            seconds[constrained] += time.perf_counter() - t0
            for i, (t, (text, n_new, reason)) in enumerate(zip(chunk, outs, strict=True)):
                g = GeneratedSummary(text, len(prompts[i][0]), n_new, prompts[i][1], reason)
                cand = candidate_text(g) or ""
                report = score_faithfulness(t.text, cand)
                decision = decide(t.text, cand, SummaryPolicy())
                rows.append({
                    "id": t.id, "precision": precision, "constrained": constrained, "raw": text, "candidate": cand,
                    "stop_reason": reason, "new_tokens": n_new,
                    "unsupported_hard": [s.text for s in report.spans if not s.supported and s.kind in HARD],
                    "unsupported": report.unsupported, "score": report.score,
                    "fallback": decision.fallback_reason, "published": decision.method,
                    "replaced": cons[i].replaced if cons else 0, "unresolved": cons[i].unresolved if cons else 0,
                    "events": [[text_at, table.surfaces[g], table.surfaces[c]] for text_at, g, c in cons[i].events]
                    if cons else [],
                })
    for constrained in (False, True):
        sel = [r for r in rows if r["constrained"] == constrained]
        rows.append({"summary": True, "precision": precision, "constrained": constrained, "texts": len(sel),
                     "seconds": round(seconds[constrained], 2), "docs_per_s": round(len(sel) / seconds[constrained], 3),
                     "new_tokens": sum(r["new_tokens"] for r in sel)})
    return rows


def table(rows: list[dict]) -> str:
    lines = []
    for summary in (r for r in rows if r.get("summary")):
        sel = [r for r in rows if not r.get("summary") and r["constrained"] == summary["constrained"]
               and r["precision"] == summary["precision"]]
        n = len(sel)
        lines.append(
            f"{summary['precision']:5} constrained={summary['constrained']!s:5} texts={n} "
            f"with-unsupported-number/name={sum(bool(r['unsupported_hard']) for r in sel)} "
            f"fallback={sum(r['published'] == 'extractive' for r in sel)} "
            f"replaced-steps={sum(r['replaced'] for r in sel)} unresolved={sum(r['unresolved'] for r in sel)} "
            f"docs/s={summary['docs_per_s']} tokens={summary['new_tokens']} s={summary['seconds']}")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    model_dir, precision = argv[0], argv[1]
    max_new = int(argv[2]) if len(argv) > 2 else 64
    rows = run(Path(model_dir), precision, max_new)
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))
    print(table(rows), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
