"""Build-time model recipes (`streamnlp models build`). Heavy deps (torch/transformers/optimum) are imported lazily inside functions.

    base.py               the error type, staged builds installed atomically, manifests (imports nothing else here)
    weights.py            safe weight loading (safetensors/GGUF only, no remote code)
    quantize.py           dynamic int8 quantization
    pooled_classifier.py  the default classifier module and its ONNX export
    sentiment.py          the default sentiment recipe (fine-tune, export, evaluate)
    classifier_export.py  export an existing HF sequence classifier
    fused_decoder.py, summarizer.py  the summarizer recipes
    defaults.py           what `models build` builds by default
    catalogue_build.py    build one catalogue entry by its recipe
"""

from pipeline.modelbuild.base import ModelBuildError, is_built, require_build_dependencies, sha256_file
from pipeline.modelbuild.classifier_export import export_sequence_classifier
from pipeline.modelbuild.defaults import build_default_models, iter_catalogue
from pipeline.modelbuild.progress import StderrProgress, null_progress
from pipeline.modelbuild.quantize import quantize_dynamic_int8
from pipeline.modelbuild.sentiment import DEFAULT_MODEL_NAME, DEFAULT_PARAMS, build_sentiment_minilm
from pipeline.modelbuild.summarizer import (
    SUMMARIZER_MODEL_NAME,
    build_summarizer_smollm2,
    export_causal_lm,
    export_summarizer,
)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "DEFAULT_PARAMS",
    "SUMMARIZER_MODEL_NAME",
    "ModelBuildError",
    "StderrProgress",
    "build_default_models",
    "build_sentiment_minilm",
    "build_summarizer_smollm2",
    "export_causal_lm",
    "export_sequence_classifier",
    "export_summarizer",
    "is_built",
    "iter_catalogue",
    "null_progress",
    "quantize_dynamic_int8",
    "require_build_dependencies",
    "sha256_file",
]
