"""Mean-pooled sequence classifier on a sentence-transformers encoder (build time only; imports torch lazily).

Why not transformers' BertForSequenceClassification: it classifies from the [CLS] pooler, but
all-MiniLM-L6-v2 was trained as a sentence-transformer with *mean* pooling over tokens, so its
[CLS] vector and pooler carry little of what it learned. Mean pooling + a linear head, fine-tuned
end to end, measured +1.5-2 points held-out accuracy over the CLS head (docs/models.md). The
exported graph has the same contract as an optimum text-classification export
(input_ids, attention_mask, token_type_ids -> logits), so the runtime loader does not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

ONNX_OPSET = 17


def build_mean_pooled_classifier(base_dir: Path, num_labels: int, dropout: float = 0.1) -> Any:
    """An nn.Module: the encoder at `base_dir` (no pooler), masked mean over tokens, dropout, linear head."""
    import torch
    from torch import nn
    from transformers import AutoModel

    from pipeline.modelbuild.weights import LOADER_KWARGS

    class MeanPooledClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(
                str(base_dir), add_pooling_layer=False, use_safetensors=True, local_files_only=True, **LOADER_KWARGS
            )
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(self.encoder.config.hidden_size, num_labels)

        def forward(
            self, input_ids: "torch.Tensor", attention_mask: "torch.Tensor", token_type_ids: "torch.Tensor"
        ) -> "torch.Tensor":
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(self.dropout(pooled))

    return MeanPooledClassifier()


def export_classifier_onnx(model: Any, tokenizer: Any, onnx_path: Path, check_texts: Sequence[str]) -> float:
    """Export to ONNX (dynamic batch and sequence axes) and check ORT logits against torch on `check_texts`.

    Returns the max absolute logit difference; raises ValueError above 1e-3 (the check optimum's
    exporter does for its own exports, which this graph does not go through).
    """
    import numpy as np
    import onnxruntime as ort
    import torch

    model.eval()
    sample = tokenizer(list(check_texts[:2]) or ["a sample"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch_size", 1: "sequence_length"} for n in names}
    axes["logits"] = {0: "batch_size"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            tuple(sample[n] for n in names),
            str(onnx_path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            dynamo=False,  # the TorchScript exporter: stable for BERT graphs and what optimum uses
        )
    batch = tokenizer(list(check_texts), padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        expected = model(*(batch[n] for n in names)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {n: batch[n].numpy().astype(np.int64) for n in names})
    diff = float(np.abs(got - expected).max())
    if diff > 1e-3:
        raise ValueError(f"ONNX export does not match torch: max |logit diff| {diff:.2e} > 1e-3")
    return diff
