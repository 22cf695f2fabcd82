"""Runtime inference (ONNX Runtime + tokenizers; never torch/transformers)."""

from pipeline.inference.sentiment import (
    ClassifierConfig,
    ModelInfo,
    ModelLoadError,
    SentimentClassifier,
    SentimentPrediction,
)

__all__ = [
    "ClassifierConfig",
    "ModelInfo",
    "ModelLoadError",
    "SentimentClassifier",
    "SentimentPrediction",
]
