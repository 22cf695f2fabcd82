"""Build-time model recipes. Heavy deps (torch/transformers/optimum) are imported lazily inside functions."""

from pipeline.modelbuild.progress import StderrProgress, null_progress
from pipeline.modelbuild.recipes import (
    DEFAULT_MODEL_NAME,
    DEFAULT_PARAMS,
    ModelBuildError,
    build_default_models,
    build_sentiment_minilm,
    export_sequence_classifier,
    is_built,
    iter_catalogue,
    quantize_dynamic_int8,
    require_build_dependencies,
    sha256_file,
)

from pipeline.modelbuild.summarizer import (
    SUMMARIZER_MODEL_NAME,
    build_summarizer_smollm2,
    export_causal_lm,
    export_summarizer,
)

__all__ = [
    "SUMMARIZER_MODEL_NAME",
    "build_summarizer_smollm2",
    "export_causal_lm",
    "export_summarizer",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_PARAMS",
    "ModelBuildError",
    "StderrProgress",
    "build_default_models",
    "build_sentiment_minilm",
    "export_sequence_classifier",
    "is_built",
    "iter_catalogue",
    "null_progress",
    "quantize_dynamic_int8",
    "require_build_dependencies",
    "sha256_file",
]
