"""Measurements behind the inference defaults (docs/models.md).

    python -m pipeline.modelbuild.measure models/cache/sentiment-minilm-rt [--skip-quant]

1. Truncation: long documents built by concatenating same-label held-out snippets, scored with
   head-only, head+tail (several splits), tail-only and chunk-and-average.
2. Throughput of `predict` for batch sizes 1/8/16/32/64 on held-out snippets (~110 chars),
   int8 vs fp32, rounds interleaved so machine noise hits all settings alike.
3. Quantization config: avx2 (u8 weights) vs avx512_vnni (s8 weights) accuracy and speed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.inference.sentiment import ClassifierConfig, SentimentClassifier
from pipeline.modelbuild.data import LABELS, load_rotten_tomatoes, stratified_split


def held_out(seed: int = 13):
    _, held = stratified_split(load_rotten_tomatoes(), seed=seed)
    return held


def long_documents(held, *, n_docs: int = 300, snippets: int = 20, seed: int = 7) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    by_label: dict[int, list[str]] = {}
    for e in held:
        by_label.setdefault(e.label, []).append(e.text)
    docs, labels = [], []
    for i in range(n_docs):
        label = i % 2
        docs.append(" ".join(rng.sample(by_label[label], snippets)))
        labels.append(LABELS[label])
    return docs, labels


def _chunk_average(clf: SentimentClassifier, texts: list[str]) -> np.ndarray:
    """Split each text's content into max_tokens windows, average window probabilities."""
    from pipeline.inference.sentiment import _special_span

    encs = clf._tokenizer.encode_batch(texts)
    rows, types, owner = [], [], []
    for k, enc in enumerate(encs):
        lead, trail = _special_span(enc.special_tokens_mask)
        ids = enc.ids
        pre, content, post = ids[:lead], ids[lead : len(ids) - trail], ids[len(ids) - trail :]
        budget = clf.max_tokens - lead - trail
        for s in range(0, max(len(content), 1), budget):
            r = pre + content[s : s + budget] + post
            rows.append(r)
            types.append([0] * len(r))
            owner.append(k)
    order = np.argsort([len(r) for r in rows], kind="stable")
    probs = np.empty((len(rows), len(clf.labels)))
    bs = clf.config.batch_size
    for s in range(0, len(rows), bs):
        idx = order[s : s + bs]
        probs[idx] = clf._run([rows[i] for i in idx], [types[i] for i in idx])
    out = np.zeros((len(texts), len(clf.labels)))
    counts = np.zeros(len(texts))
    for p, k in zip(probs, owner, strict=True):
        out[k] += p
        counts[k] += 1
    return out / counts[:, None]


def measure_truncation(
    model_dir: Path, held, max_tokens_list=(128, 256), precision: str = "int8", n_docs: int = 300, seed: int = 7
) -> dict:
    docs, labels = long_documents(held, n_docs=n_docs, seed=seed)
    y = np.array([LABELS.index(l) for l in labels])
    result: dict = {}
    for max_tokens in max_tokens_list:
        clf = SentimentClassifier.load(model_dir, ClassifierConfig(max_tokens=max_tokens, precision=precision))
        n_tok = [len(e.ids) for e in clf._tokenizer.encode_batch(docs)]
        row: dict[str, Any] = {"docs": len(docs), "median_tokens": int(statistics.median(n_tok))}
        for name, frac in (
            ("head_only", 1.0),
            ("head75_tail25", 0.75),
            ("head50_tail50", 0.5),
            ("head25_tail75", 0.25),
            ("tail_only", 0.0),
        ):
            clf.head_fraction = frac
            t = time.perf_counter()
            p, _ = clf.predict_proba(docs)
            row[name] = {"accuracy": round(float((p.argmax(1) == y).mean()), 4), "seconds": round(time.perf_counter() - t, 2)}
        t = time.perf_counter()
        p = _chunk_average(clf, docs)
        row["chunk_average"] = {"accuracy": round(float((p.argmax(1) == y).mean()), 4), "seconds": round(time.perf_counter() - t, 2)}
        result[f"max_tokens_{max_tokens}"] = row
    return result


def measure_throughput(
    model_dir: Path, texts: list[str], batch_sizes=(1, 8, 16, 32, 64), precisions=("int8", "fp32"), rounds: int = 3,
    n: int = 512,
) -> dict:
    texts = texts[:n]
    clfs = {
        (pr, bs): SentimentClassifier.load(model_dir, ClassifierConfig(batch_size=bs, precision=pr))
        for pr in precisions
        for bs in batch_sizes
    }
    for clf in clfs.values():  # warm-up
        clf.predict(texts[:64])
    times: dict = {k: [] for k in clfs}
    for _ in range(rounds):
        for (pr, bs), clf in clfs.items():
            t = time.perf_counter()
            for s in range(0, len(texts), bs):  # caller hands over `bs` events at a time
                clf.predict(texts[s : s + bs])
            times[(pr, bs)].append(time.perf_counter() - t)
    out: dict = {}
    for (pr, bs), ts in times.items():
        out.setdefault(pr, {})[str(bs)] = round(len(texts) / min(ts), 1)
    out["texts"] = len(texts)
    out["mean_chars"] = round(sum(map(len, texts)) / len(texts), 1)
    return out


def measure_bucketing(
    model_dir: Path, texts: list[str], *, handed: int = 256, batch_sizes=(1, 8, 16, 32, 64),
    precisions=("int8", "fp32"), rounds: int = 3, n: int = 1024,
) -> dict:
    """Caller hands `handed` events per predict() call; config.batch_size splits them into ONNX runs."""
    texts = texts[:n]
    clfs = {
        (pr, bs): SentimentClassifier.load(model_dir, ClassifierConfig(batch_size=bs, precision=pr))
        for pr in precisions
        for bs in batch_sizes
    }
    for clf in clfs.values():
        clf.predict(texts[:64])
    times: dict = {k: [] for k in clfs}
    for _ in range(rounds):
        for key, clf in clfs.items():
            t = time.perf_counter()
            for s in range(0, len(texts), handed):
                clf.predict(texts[s : s + handed])
            times[key].append(time.perf_counter() - t)
    out: dict = {"handed_per_call": handed, "texts": len(texts)}
    for (pr, bs), ts in times.items():
        out.setdefault(pr, {})[str(bs)] = round(len(texts) / min(ts), 1)
    return out


def measure_threads(model_dir: Path, texts: list[str], rounds: int = 3, n: int = 512) -> dict:
    texts = texts[:n]
    out = {}
    for threads in (1, 2):
        clf = SentimentClassifier.load(model_dir, ClassifierConfig(intra_op_threads=threads, batch_size=16))
        clf.predict(texts[:64])
        best = min(_timed(clf, texts) for _ in range(rounds))
        out[str(threads)] = round(len(texts) / best, 1)
    return out


def _timed(clf: SentimentClassifier, texts: list[str]) -> float:
    t = time.perf_counter()
    for s in range(0, len(texts), 64):
        clf.predict(texts[s : s + 64])
    return time.perf_counter() - t


def measure_quant_configs(model_dir: Path, held) -> dict:
    from pipeline.modelbuild.quantize import quantize_dynamic_int8
    from pipeline.modelbuild.sentiment import evaluate_accuracy

    texts = [e.text for e in held]
    labels = [LABELS[e.label] for e in held]
    out = {}
    scratch = Path(tempfile.mkdtemp(prefix="quantcmp-"))
    try:
        for kind in ("avx2", "avx512_vnni"):
            d = scratch / kind
            d.mkdir()
            for f in ("model.onnx", "tokenizer.json", "config.json"):
                shutil.copy2(model_dir / f, d / f)
            quantize_dynamic_int8(d / "model.onnx", d / "model_int8.onnx", kind)
            acc = evaluate_accuracy(d, texts, labels, "int8")
            tp = measure_throughput(d, texts, batch_sizes=(32,), precisions=("int8",), rounds=3)
            out[kind] = {"accuracy_int8": round(acc, 4), "ev_per_s_bs32": tp["int8"]["32"],
                         "size_bytes": (d / "model_int8.onnx").stat().st_size}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--skip-quant", action="store_true")
    ap.add_argument("--docs", type=int, default=300, help="long documents for the truncation measurement")
    ap.add_argument("--max-tokens", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", choices=("truncation", "throughput", "bucketing", "threads", "quant"))
    args = ap.parse_args(argv)
    held = held_out()
    res: dict = {}
    if args.only in (None, "truncation"):
        res["truncation"] = measure_truncation(
            args.model_dir, held, tuple(args.max_tokens), n_docs=args.docs, seed=args.seed
        )
        print(json.dumps(res["truncation"]), file=sys.stderr)
    if args.only in (None, "throughput"):
        res["throughput"] = measure_throughput(args.model_dir, [e.text for e in held])
        print(json.dumps(res["throughput"]), file=sys.stderr)
    if args.only in (None, "bucketing"):
        res["bucketing"] = measure_bucketing(args.model_dir, [e.text for e in held])
    if args.only in (None, "threads"):
        res["threads"] = measure_threads(args.model_dir, [e.text for e in held])
    if args.only in (None, "quant") and not args.skip_quant:
        res["quantization"] = measure_quant_configs(args.model_dir, held)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
