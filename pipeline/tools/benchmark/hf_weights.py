"""The naive lane's PyTorch model: the built sentiment model's own fp32 weights, read back from model.onnx.

The model build deletes its intermediate Hugging Face checkpoint, and rebuilding it would
retrain (another seed, other weights). The fp32 ONNX graph holds every weight: biases,
embeddings, LayerNorms, pooler and classifier under their PyTorch names, and the linear
weights as transposed MatMul initializers named after their node. Build-time only (torch).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import StreamnlpError

#: "/bert/encoder/layer.3/attention/self/query/MatMul" -> "bert.encoder.layer.3.attention.self.query"
_LINEAR_NODE = re.compile(r"^/(?P<module>.+)/MatMul$")


#: pipeline/modelbuild/pooled_classifier.py names its parts encoder/head; with pooling="cls" it is
#: BertForSequenceClassification's structure under its bert/classifier names.
_POOLED_TO_HF = (("encoder.", "bert."), ("head.", "classifier."))


def _hf_name(name: str) -> str:
    for ours, theirs in _POOLED_TO_HF:
        if name.startswith(ours):
            return theirs + name[len(ours):]
    return name


class WeightsError(StreamnlpError, RuntimeError):
    """The ONNX graph does not map back onto the model's PyTorch parameters."""


def onnx_state_dict(onnx_path: Path) -> dict[str, np.ndarray]:
    """PyTorch parameter name -> array, from an optimum-exported BERT-style classifier."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: i for i in graph.initializer}
    state = {_hf_name(name): numpy_helper.to_array(t) for name, t in inits.items() if not name.startswith("onnx::")}
    for node in graph.node:
        match = _LINEAR_NODE.match(node.name)
        if node.op_type == "MatMul" and match and len(node.input) == 2 and node.input[1] in inits:
            module = _hf_name(match.group("module").replace("/", ".") + ".")
            state[f"{module}weight"] = numpy_helper.to_array(inits[node.input[1]]).T.copy()
    return state


def load_torch_classifier(model_dir: Path, threads: int) -> tuple[Any, Any]:
    """(model, tokenizer) for a transformers text-classification pipeline, weights equal to model.onnx."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedTokenizerFast

    torch.set_num_threads(threads)
    config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True, trust_remote_code=False)
    if getattr(config, "pooling", "cls") != "cls":
        raise WeightsError(f"{model_dir} pools with {config.pooling!r}: no transformers class runs it; use --no-naive")
    model = AutoModelForSequenceClassification.from_config(config)
    state = {k: torch.from_numpy(np.array(v)) for k, v in onnx_state_dict(Path(model_dir) / "model.onnx").items()}
    expected = set(model.state_dict())
    missing = sorted(k for k in expected - set(state) if not k.endswith("position_ids"))
    if missing:
        raise WeightsError(f"{model_dir}/model.onnx lacks weights for {missing[:3]}... ({len(missing)} in all)")
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)
    model.eval()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(Path(model_dir) / "tokenizer.json"), unk_token="[UNK]", sep_token="[SEP]",
        pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]", model_max_length=512,
    )
    return model, tokenizer


def max_logit_difference(model: Any, tokenizer: Any, model_dir: Path, texts: list[str]) -> float:
    """Largest |torch - onnxruntime| logit over `texts`: proves the two lanes run the same weights."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(Path(model_dir) / "model.onnx"), providers=["CPUExecutionProvider"])
    worst = 0.0
    names = {i.name for i in session.get_inputs()}
    for text in texts:
        enc = tokenizer(text, return_tensors="np", truncation=True, max_length=256)
        (onnx_logits,) = session.run(None, {k: v.astype(np.int64) for k, v in enc.items() if k in names})
        with torch.inference_mode():
            torch_logits = model(**{k: torch.from_numpy(v) for k, v in enc.items()}).logits.numpy()
        worst = max(worst, float(np.abs(onnx_logits - torch_logits).max()))
    return worst
