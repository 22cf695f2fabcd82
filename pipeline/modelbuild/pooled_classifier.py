"""Sequence classifier = encoder + pooling + linear head (build time only; imports torch lazily).

`pooling="cls"` is BertForSequenceClassification's structure (tanh pooler over [CLS], dropout,
linear); `pooling="mean"` is the masked mean over tokens that all-MiniLM-L6-v2 was trained with as a
sentence-transformer. Both measured on the held-out split in docs/models.md (cls won by 0.4-0.5
points at 3 epochs). One module for both so the recipe can train an exponential moving average
of the weights and export exactly what it evaluated; the exported graph has the contract of an
optimum text-classification export (input_ids, attention_mask, token_type_ids -> logits), so the
runtime loader does not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

ONNX_OPSET = 17


POOLINGS = ("cls", "mean")


def build_pooled_classifier(base_dir: Path, num_labels: int, pooling: str = "cls", dropout: float = 0.1) -> Any:
    """An nn.Module: the encoder at `base_dir`, [CLS] pooler or masked token mean, dropout, linear head."""
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r} ({', '.join(POOLINGS)})")
    import torch
    from torch import nn
    from transformers import AutoModel

    from pipeline.modelbuild.weights import LOADER_KWARGS

    class PooledClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(
                str(base_dir),
                add_pooling_layer=pooling == "cls",
                use_safetensors=True,
                local_files_only=True,
                **LOADER_KWARGS,
            )
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(self.encoder.config.hidden_size, num_labels)

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
        ) -> torch.Tensor:
            # MPNet (the distillation teacher) has no segment embeddings: its forward takes no token_type_ids
            types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **types)
            if pooling == "cls":
                pooled = out.pooler_output
            else:
                mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
                pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(self.dropout(pooled))

    return PooledClassifier()


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
    # the inputs the tokenizer gives (MPNet's has no token_type_ids; the runtime feeds what the graph takes)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
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
