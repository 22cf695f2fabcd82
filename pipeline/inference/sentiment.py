"""Sentiment classification with ONNX Runtime + the Rust `tokenizers` library.

Runtime dependencies: onnxruntime, tokenizers, numpy. This module must never import
torch or transformers (the worker process stays free of them).

Model directory layout (see docs/architecture.md):
    model.onnx, model_int8.onnx, tokenizer.json, config.json (with id2label), manifest.json
An optimum-exported directory (model.onnx + tokenizer.json + config.json, no manifest)
is also accepted.

Long texts: every text is tokenized without truncation first (so `n_tokens` is the true
length); texts longer than `max_tokens` keep [CLS] + first H + last T content tokens + [SEP]
(head+tail truncation, H = HEAD_FRACTION of the content budget; chosen by measurement,
see docs/models.md).

Batching: the batch is sorted by token length, split into ONNX runs of at most
`batch_size` rows, each run padded only to its own longest row; results are returned
in the caller's order.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from pipeline.errors import StreamnlpError

__all__ = [
    "ClassifierConfig",
    "SentimentPrediction",
    "ModelInfo",
    "SentimentClassifier",
    "ModelLoadError",
    "HEAD_FRACTION",
    "built_precisions",
    "precision_files",
]

log = logging.getLogger(__name__)

#: Share of the content-token budget kept from the start of a long text; the rest comes
#: from its end. Measured in docs/models.md ("Truncation").
HEAD_FRACTION = 0.25

_FIX_HINT = (
    "run `streamnlp models build` to build the default model, "
    "or point STREAMNLP_MODEL_DIR at a built model directory"
)

_PRECISION_FILES = {
    "fp32": ("model.onnx",),
    # model_quantized.onnx: what optimum's ORTQuantizer writes by default
    "int8": ("model_int8.onnx", "model_quantized.onnx"),
}


class ModelLoadError(StreamnlpError):
    """The model directory is missing, incomplete or corrupt. The message names the fix."""


@dataclass(frozen=True)
class ClassifierConfig:
    max_tokens: int = 256  # model window incl. special tokens
    batch_size: int = 32  # max rows per ONNX run (after length bucketing)
    intra_op_threads: int = 0  # 0 = ORT default
    precision: str = "int8"  # "int8" -> model_int8.onnx, "fp32" -> model.onnx


@dataclass(frozen=True)
class SentimentPrediction:
    label: str  # from config.json id2label, lower-cased: "negative"/"positive"
    score: float  # softmax probability of `label`
    truncated: bool  # text exceeded max_tokens; head+tail kept
    n_tokens: int  # tokens before truncation


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    precision: str
    path: str


def read_json_object(path: Path, fix_hint: str = _FIX_HINT) -> dict:
    """A model directory's JSON file as a dict, or ModelLoadError ending in `fix_hint`."""
    try:
        with path.open("r", encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}; {fix_hint}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is not a JSON object; {fix_hint}")
    return data


def _labels_from_config(config: dict, path: Path) -> list[str]:
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise ModelLoadError(f"{path} has no id2label mapping; {_FIX_HINT}")
    try:
        items = sorted((int(k), str(v)) for k, v in id2label.items())
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: id2label keys must be integers ({exc}); {_FIX_HINT}") from exc
    if [k for k, _ in items] != list(range(len(items))):
        raise ModelLoadError(f"{path}: id2label ids must be 0..n-1, got {[k for k, _ in items]}")
    return [v.lower() for _, v in items]


def _head_tail(ids: list[int], n_lead: int, n_trail: int, max_tokens: int, head_fraction: float) -> list[int]:
    """Keep the leading/trailing special tokens, the first H and the last T content tokens."""
    budget = max_tokens - n_lead - n_trail
    head = int(round(budget * head_fraction))
    tail = budget - head
    n = len(ids)
    content_end = n - n_trail
    kept = ids[: n_lead + head]
    if tail > 0:
        kept = kept + ids[content_end - tail : content_end]
    return kept + ids[content_end:]


def _special_span(mask: list[int]) -> tuple[int, int]:
    """Number of leading and trailing special tokens (e.g. [CLS] ... [SEP] -> (1, 1))."""
    n = len(mask)
    lead = 0
    while lead < n and mask[lead]:
        lead += 1
    trail = 0
    while trail < n - lead and mask[n - 1 - trail]:
        trail += 1
    return lead, trail


class SentimentClassifier:
    """Binary/multi-class sequence classifier over an exported ONNX model. Thread-safe."""

    info: ModelInfo

    def __init__(
        self,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        labels: list[str],
        config: ClassifierConfig,
        info: ModelInfo,
        pad_id: int,
        max_positions: int | None,
    ) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._labels = labels
        self.config = config
        self.info = info
        self._pad_id = pad_id
        self._input_names = {i.name for i in session.get_inputs()}
        self._output_name = session.get_outputs()[0].name
        max_tokens = config.max_tokens
        if max_positions is not None and max_tokens > max_positions:
            log.warning("max_tokens %d exceeds the model's %d positions; clamping", max_tokens, max_positions)
            max_tokens = max_positions
        self.max_tokens = max_tokens
        self.head_fraction = HEAD_FRACTION

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model_dir: Path, config: ClassifierConfig | None = None) -> SentimentClassifier:
        config = config or ClassifierConfig()
        if config.precision not in _PRECISION_FILES:
            raise ModelLoadError(f"unknown precision {config.precision!r}; use 'int8' or 'fp32'")
        if config.max_tokens < 8:
            raise ModelLoadError(f"max_tokens must be >= 8, got {config.max_tokens}")
        if config.batch_size < 1:
            raise ModelLoadError(f"batch_size must be >= 1, got {config.batch_size}")
        model_dir = Path(model_dir).expanduser()
        if not model_dir.is_dir():
            raise ModelLoadError(f"model directory {model_dir} does not exist; {_FIX_HINT}")

        manifest_path = model_dir / "manifest.json"
        manifest = read_json_object(manifest_path) if manifest_path.is_file() else None

        for required in ("tokenizer.json", "config.json"):
            if not (model_dir / required).is_file():
                raise ModelLoadError(f"{model_dir} is missing {required}; {_FIX_HINT}")

        precision = config.precision
        onnx_path = next(
            (model_dir / f for f in _PRECISION_FILES[precision] if (model_dir / f).is_file()), None
        )
        if onnx_path is None and precision == "int8" and manifest is None and (model_dir / "model.onnx").is_file():
            # plain optimum export without a quantized graph: serve fp32
            log.warning("%s has no int8 model; falling back to fp32 model.onnx", model_dir)
            precision, onnx_path = "fp32", model_dir / "model.onnx"
        if onnx_path is None:
            raise ModelLoadError(
                f"{model_dir} is missing {_PRECISION_FILES[precision][0]} (precision={precision}); {_FIX_HINT}"
            )

        hf_config = read_json_object(model_dir / "config.json")
        labels = _labels_from_config(hf_config, model_dir / "config.json")

        try:
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises plain Exception
            raise ModelLoadError(f"cannot load {model_dir / 'tokenizer.json'}: {exc}; {_FIX_HINT}") from exc
        tokenizer.no_truncation()
        tokenizer.no_padding()
        pad_id = hf_config.get("pad_token_id")
        if pad_id is None:
            pad_id = tokenizer.token_to_id("[PAD]") or 0

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = max(0, int(config.intra_op_threads))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(
                f"cannot load ONNX model {onnx_path} (corrupt or incompatible): {exc}; {_FIX_HINT}"
            ) from exc
        input_names = {i.name for i in session.get_inputs()}
        if "input_ids" not in input_names:
            raise ModelLoadError(f"{onnx_path} has no input_ids input (inputs: {sorted(input_names)}); {_FIX_HINT}")
        out_shape = session.get_outputs()[0].shape
        if out_shape and isinstance(out_shape[-1], int) and out_shape[-1] != len(labels):
            raise ModelLoadError(
                f"{onnx_path} outputs {out_shape[-1]} classes but config.json id2label has {len(labels)}"
            )

        if manifest is not None and manifest.get("name"):
            name = str(manifest["name"])
            version = str(manifest.get("version") or "unversioned")
        else:
            name_or_path = hf_config.get("_name_or_path") or ""
            name = model_dir.name or os.path.basename(str(name_or_path).rstrip("/")) or "unknown"
            version = "unversioned"
        info = ModelInfo(name=name, version=version, precision=precision, path=str(onnx_path))
        max_positions = hf_config.get("max_position_embeddings")
        return cls(
            session,
            tokenizer,
            labels,
            config,
            info,
            int(pad_id),
            int(max_positions) if isinstance(max_positions, int) else None,
        )

    # ---------------------------------------------------------------- inference
    def _encode(self, texts: Sequence[str]) -> tuple[list[list[int]], list[list[int]], list[int]]:
        """Token ids (truncated to max_tokens), type ids, and true token counts."""
        encodings = self._tokenizer.encode_batch(list(texts))
        all_ids: list[list[int]] = []
        all_types: list[list[int]] = []
        n_tokens: list[int] = []
        max_tokens = self.max_tokens
        for enc in encodings:
            ids = enc.ids
            types = enc.type_ids
            n = len(ids)
            n_tokens.append(n)
            if n > max_tokens:
                lead, trail = _special_span(enc.special_tokens_mask)
                ids = _head_tail(ids, lead, trail, max_tokens, self.head_fraction)
                types = _head_tail(types, lead, trail, max_tokens, self.head_fraction)
            all_ids.append(ids)
            all_types.append(types)
        return all_ids, all_types, n_tokens

    def _run(self, ids: list[list[int]], types: list[list[int]]) -> np.ndarray:
        """One ONNX run over rows padded to their own max length -> probabilities."""
        width = max(len(r) for r in ids)
        rows = len(ids)
        input_ids = np.full((rows, width), self._pad_id, dtype=np.int64)
        attention = np.zeros((rows, width), dtype=np.int64)
        type_ids = np.zeros((rows, width), dtype=np.int64)
        for i, (r, t) in enumerate(zip(ids, types, strict=True)):
            input_ids[i, : len(r)] = r
            attention[i, : len(r)] = 1
            type_ids[i, : len(t)] = t
        feed = {"input_ids": input_ids}
        if "attention_mask" in self._input_names:
            feed["attention_mask"] = attention
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = type_ids
        (logits,) = self._session.run([self._output_name], feed)
        logits = logits.astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict_proba(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Class probabilities (n, n_labels) in input order, plus true token counts."""
        if isinstance(texts, str):
            raise TypeError("predict() takes a sequence of strings, not a single string")
        n = len(texts)
        if n == 0:
            return np.zeros((0, len(self._labels))), []
        ids, types, n_tokens = self._encode(texts)
        lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=n)
        order = np.argsort(lengths, kind="stable")
        probs = np.empty((n, len(self._labels)), dtype=np.float64)
        bs = self.config.batch_size
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            probs[idx] = self._run([ids[i] for i in idx], [types[i] for i in idx])
        return probs, n_tokens

    def predict(self, texts: Sequence[str]) -> list[SentimentPrediction]:
        """One prediction per text, in input order. Blocking; safe to call from several threads."""
        probs, n_tokens = self.predict_proba(texts)
        best = probs.argmax(axis=1) if len(n_tokens) else []
        max_tokens = self.max_tokens
        return [
            SentimentPrediction(
                label=self._labels[int(b)],
                score=float(probs[i, b]),
                truncated=n_tokens[i] > max_tokens,
                n_tokens=n_tokens[i],
            )
            for i, b in enumerate(best)
        ]

    def __repr__(self) -> str:
        i = self.info
        return f"SentimentClassifier({i.name}@{i.version}, {i.precision}, max_tokens={self.max_tokens})"


def precision_files(model_dir: Path, precision: str) -> list[Path]:
    """The ONNX file the loader would run for `precision` ([] if not built)."""
    found = next((Path(model_dir) / n for n in _PRECISION_FILES.get(precision, ()) if (Path(model_dir) / n).is_file()), None)
    return [found] if found is not None else []


def built_precisions(model_dir: Path) -> list[str]:
    """Precisions whose ONNX file exists in `model_dir` (what `ClassifierConfig.precision` may name)."""
    return [p for p in _PRECISION_FILES if precision_files(model_dir, p)]
