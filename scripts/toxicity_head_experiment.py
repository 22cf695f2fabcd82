"""Stretch experiment of the toxicity issue: a toxicity head on the sentiment encoder, distilled from toxicity-linear.

One encoder pass would give both labels if a second head on the sentiment model's pooled vector
could stand in for the linear model. The encoder stays as built (fine-tuning it for toxicity
would change sentiment); only a logistic head is trained, on the linear model's P(offensive)
(soft targets) over unlabelled text: the Rotten Tomatoes snippets minus the 120 of the
evaluation set, a third of them with one of the linear model's 200 most offensive words
inserted (review text alone has almost nothing offensive for the teacher to score). Then the
head and the linear model are scored on the labelled set (pipeline/tools/evaluation/toxicity),
per case type.

    .venv/bin/python scripts/toxicity_head_experiment.py [--limit N]

Prints the per-case F1 of both and the head's cost. Reads the built default models only.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from tokenizers import Tokenizer

from pipeline.inference.toxicity import ToxicityClassifier
from pipeline.modelbuild.data import load_rotten_tomatoes
from pipeline.settings import DEFAULT_MODEL_CACHE
from pipeline.tools.evaluation.toxicity import case_table, load_cases

SENTIMENT = DEFAULT_MODEL_CACHE / "sentiment-minilm-rt"
TOXICITY = DEFAULT_MODEL_CACHE / "toxicity-linear"
FEATURES = {"pooled": "/encoder/pooler/activation/Tanh_output_0", "cls": "/encoder/pooler/Gather_output_0"}


def encoder_session(model_path: Path) -> ort.InferenceSession:
    """The int8 sentiment graph (what the worker runs) with its pooled and [CLS] vectors as extra outputs."""
    model = onnx.load(str(model_path))
    for name in FEATURES.values():
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def features(session: ort.InferenceSession, tokenizer: Tokenizer, texts: list[str], batch: int = 64) -> dict:
    out: dict[str, list[np.ndarray]] = {k: [] for k in FEATURES}
    tokenizer.enable_truncation(96)
    for start in range(0, len(texts), batch):
        enc = tokenizer.encode_batch(texts[start:start + batch])
        width = max(len(e.ids) for e in enc)
        ids = np.array([e.ids + [0] * (width - len(e.ids)) for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask + [0] * (width - len(e.ids)) for e in enc], dtype=np.int64)
        got = session.run(list(FEATURES.values()), {"input_ids": ids, "attention_mask": mask,
                                                     "token_type_ids": np.zeros_like(ids)})
        for key, value in zip(FEATURES, got, strict=True):
            out[key].append(value)
    return {k: np.concatenate(v) for k, v in out.items()}


def train_head(x: np.ndarray, soft: np.ndarray, epochs: int = 300, lr: float = 0.5, l2: float = 1e-4) -> tuple:
    """Logistic regression on soft targets (binary cross-entropy), full-batch gradient descent on standardised x."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad = p - soft
        w -= lr * (z.T @ grad / len(z) + l2 * w)
        b -= lr * grad.mean()
    return w, b, mean, std


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=8000, help="unlabelled snippets used (before augmentation)")
    args = parser.parse_args()
    cases = load_cases()
    held = {c.text for c in cases}
    rng = random.Random(5)
    snippets = [e.text for e in load_rotten_tomatoes() if e.text not in held]
    rng.shuffle(snippets)
    snippets = snippets[: args.limit]
    teacher = ToxicityClassifier.load(TOXICITY)
    vocabulary = teacher_words()
    unlabelled = list(snippets)
    for text in snippets[: len(snippets) // 3]:
        words = text.split()
        words.insert(rng.randrange(len(words) + 1), rng.choice(vocabulary))
        unlabelled.append(" ".join(words))
    soft = np.array([p.offensive_probability for p in teacher.predict(unlabelled)])
    print(f"unlabelled texts {len(unlabelled)}, teacher offensive (p >= 0.5) {int((soft >= 0.5).sum())}")
    session = encoder_session(SENTIMENT / "model_int8.onnx")
    tokenizer = Tokenizer.from_file(str(SENTIMENT / "tokenizer.json"))
    t0 = time.perf_counter()
    train = features(session, tokenizer, unlabelled)
    print(f"encoder features: {time.perf_counter() - t0:.0f} s for {len(unlabelled)} texts")
    test_texts = [c.text for c in cases]
    test = features(session, tokenizer, test_texts)
    linear = [p.label == "offensive" for p in teacher.predict(test_texts)]
    rows = {"linear": case_table(cases, linear)}
    for key in FEATURES:
        w, b, mean, std = train_head(train[key], soft)
        p = 1 / (1 + np.exp(-(((test[key] - mean) / std) @ w + b)))
        rows[f"head on {key}"] = case_table(cases, list(p >= 0.5))
        fit = 1 / (1 + np.exp(-(((train[key] - mean) / std) @ w + b)))
        agree = float(((fit >= 0.5) == (soft >= 0.5)).mean())
        print(f"head on {key}: agreement with the teacher on its training texts {agree:.3f}")
    names = list(rows)
    print("| case type | " + " | ".join(f"F1 {n}" for n in names) + " | " + " | ".join(f"acc {n}" for n in names) + " |")
    for i, row in enumerate(rows["linear"]):
        f1 = [rows[n][i]["f1"] for n in names]
        acc = [rows[n][i]["accuracy"] for n in names]
        print(f"| {row['case']} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in f1) + " | "
              + " | ".join(f"{v:.2f}" for v in acc) + " |")
    x = np.random.default_rng(0).standard_normal((128, 384)).astype(np.float32)
    w32 = np.zeros(384, dtype=np.float32)
    t0 = time.perf_counter()
    for _ in range(1000):
        x @ w32
    print(f"head cost: {(time.perf_counter() - t0):.3f} ms per 128-text batch (numpy, one 384-wide dot product per text)")


def teacher_words(n: int = 200) -> list[str]:
    """The linear model's n most offensive words, read from its ONNX graph (vocabulary and fused weights)."""
    model = onnx.load(str(TOXICITY / "model.onnx"))
    node = next(x for x in model.graph.node if x.op_type == "TfIdfVectorizer")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    words = [w.decode() for w in attrs["pool_strings"]]
    index = {i: w for w, i in zip(words, attrs["ngram_indexes"], strict=True)}
    weights = next(onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name == "fused_idf_weights")
    score = weights[:, 1::2].sum(1)  # each classifier's offensive column
    return [index[int(i)] for i in score.argsort()[::-1][:n] if int(i) in index]


if __name__ == "__main__":
    main()
