"""Offensive-language scoring with ONNX Runtime: one graph, string in, probabilities out.

Runtime dependencies: onnxruntime and numpy. No pickle is ever loaded here: the build
(pipeline/modelbuild/toxicity.py) turned alt-profanity-check's scikit-learn files into
`model.onnx`, tokenizer and all, so a batch is one `session.run` over the raw texts.

Model directory layout: model.onnx, config.json (labels, input/output names, languages),
manifest.json (written last by the build).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.inference.sentiment import ModelInfo, ModelLoadError, read_json_object

__all__ = ["OFFENSIVE", "ToxicityClassifier", "ToxicityConfig", "ToxicityPrediction", "built_precisions"]

log = logging.getLogger(__name__)

OFFENSIVE = "offensive"
_FIX_HINT = (
    "run `streamnlp models build toxicity-linear` (or `make models`), point STREAMNLP_TOXICITY_MODEL_DIR at a built "
    "toxicity model, or turn toxicity off with STREAMNLP_TOXICITY_ENABLED=false"
)


@dataclass(frozen=True)
class ToxicityConfig:
    threshold: float = 0.5  # P(offensive) at or above it labels a text offensive (the package's own decision)
    batch_size: int = 256  # rows per ONNX run: a bag-of-words graph costs microseconds per text
    intra_op_threads: int = 1  # the graph is tiny; more threads only add synchronisation


@dataclass(frozen=True)
class ToxicityPrediction:
    label: str  # "offensive" or "clean"
    score: float  # probability of `label`
    offensive_probability: float  # P(offensive), whatever the label


def built_precisions(model_dir: Path) -> list[str]:
    return ["fp32"] if (Path(model_dir) / "model.onnx").is_file() else []


class ToxicityClassifier:
    """Thread-safe (ONNX Runtime sessions are); `predict` is blocking: run it off the event loop."""

    info: ModelInfo

    def __init__(self, session: ort.InferenceSession, labels: list[str], languages: frozenset[str],
                 input_name: str, output_name: str, config: ToxicityConfig, info: ModelInfo) -> None:
        self._session = session
        self._labels = labels
        self.languages = languages
        self._input = input_name
        self._output = output_name
        self.config = config
        self.info = info

    @classmethod
    def load(cls, model_dir: Path, config: ToxicityConfig | None = None) -> ToxicityClassifier:
        config = config or ToxicityConfig()
        if not 0.0 < config.threshold < 1.0:
            raise ModelLoadError(f"toxicity threshold must be between 0 and 1, got {config.threshold}")
        model_dir = Path(model_dir).expanduser()
        onnx_path = model_dir / "model.onnx"
        if not onnx_path.is_file():
            raise ModelLoadError(f"no toxicity model at {model_dir} (model.onnx missing); {_FIX_HINT}")
        settings = read_json_object(model_dir / "config.json", _FIX_HINT)
        labels = settings.get("labels")
        if not isinstance(labels, list) or len(labels) != 2 or OFFENSIVE not in labels:
            raise ModelLoadError(f"{model_dir / 'config.json'}: labels must name two classes, one {OFFENSIVE!r}; {_FIX_HINT}")
        manifest_path = model_dir / "manifest.json"
        manifest = read_json_object(manifest_path, _FIX_HINT) if manifest_path.is_file() else {}
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.intra_op_threads
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelLoadError(f"cannot load {onnx_path}: {exc}; {_FIX_HINT}") from exc
        input_name = str(settings.get("input") or session.get_inputs()[0].name)
        output_name = str(settings.get("output") or "probabilities")
        if output_name not in {o.name for o in session.get_outputs()}:
            raise ModelLoadError(f"{onnx_path} has no output {output_name!r}; {_FIX_HINT}")
        info = ModelInfo(name=str(manifest.get("name") or model_dir.name),
                         version=str(manifest.get("version") or "unversioned"), precision="fp32", path=str(model_dir))
        languages = frozenset(str(code) for code in (settings.get("languages") or ["en"]))
        return cls(session, [str(label) for label in labels], languages, input_name, output_name, config, info)

    def predict(self, texts: Sequence[str]) -> list[ToxicityPrediction]:
        """One prediction per text, in order."""
        offensive_index = self._labels.index(OFFENSIVE)
        clean_label = self._labels[1 - offensive_index]
        out: list[ToxicityPrediction] = []
        size = self.config.batch_size
        for start in range(0, len(texts), size):
            batch = np.array(list(texts[start:start + size]), dtype=object).reshape(-1, 1)
            probabilities = self._session.run([self._output], {self._input: batch})[0][:, offensive_index]
            for p in probabilities.tolist():
                offensive = p >= self.config.threshold
                out.append(ToxicityPrediction(label=OFFENSIVE if offensive else clean_label,
                                              score=round(p if offensive else 1.0 - p, 6),
                                              offensive_probability=round(p, 6)))
        return out
