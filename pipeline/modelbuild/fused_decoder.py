"""Build a Llama-family decoder directly as a fused ONNX graph (ORT contrib ops).

Why this exists instead of optimum's export: the optimum/torch export of a 30-layer Llama
turns every decode step into ~500 small nodes (mask building, RoPE, `repeat_kv` Expand,
Transpose, Concat of the KV cache), and on a 2-core CPU those nodes plus the in-graph KV
copies cost more than the MatMuls (docs/summarizer.md). ONNX Runtime has fused CPU kernels for
exactly this architecture - `GroupQueryAttention` (RoPE + causal/padding mask + reads the
3-head KV cache directly), `SimplifiedLayerNormalization`/`SkipSimplifiedLayerNormalization`
(RMSNorm + residual add). onnxruntime-genai's model builder emits the same kind of graph, but
it needs transformers 5 (optimum-onnx pins < 4.58), so we write the ~40 nodes per layer
ourselves from the safetensors weights; no torch is needed.

Graph contract (the same as genai's, so the runtime loop stays simple):
  inputs  input_ids int64 [B, S], attention_mask int64 [B, T], past_key_values.{i}.key|value
          float [B, kv_heads, P, head_dim]
  outputs logits float [B, 1, vocab] (last real token of each row only),
          present.{i}.key|value float [B, kv_heads, T, head_dim]
Prompts are RIGHT-padded: GQA only reads `attention_mask.sum(-1) - 1` (seqlens_k) and the mask
width (total length), so each row's real tokens must be a prefix of its row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.modelbuild.base import ModelBuildError

FUSED_GRAPH_KIND = "fused-gqa"
SUPPORTED_MODEL_TYPES = frozenset({"llama"})


@dataclass(frozen=True)
class DecoderShape:
    """The architecture numbers the graph needs, read from a HF config.json."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    rms_eps: float
    rope_theta: float
    max_positions: int
    tied_embeddings: bool

    @classmethod
    def from_hf_config(cls, config: Mapping) -> DecoderShape:
        problem = fused_support_problem(config)
        if problem:
            raise ModelBuildError(f"fused decoder graph: {problem}; use the optimum export (export_causal_lm)")
        heads = int(config["num_attention_heads"])
        hidden = int(config["hidden_size"])
        return cls(
            layers=int(config["num_hidden_layers"]),
            hidden=hidden,
            heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or hidden // heads),
            intermediate=int(config["intermediate_size"]),
            vocab=int(config["vocab_size"]),
            rms_eps=float(config.get("rms_norm_eps", 1e-6)),
            rope_theta=float(config.get("rope_theta", 10000.0)),
            max_positions=int(config.get("max_position_embeddings", 2048)),
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        )


def fused_support_problem(config: Mapping) -> str | None:
    """Why this HF config cannot be built as a fused graph, or None if it can."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model_type {model_type!r} is not among {sorted(SUPPORTED_MODEL_TYPES)}"
    if config.get("rope_scaling"):
        return f"rope_scaling={config['rope_scaling']!r} is not supported"
    if config.get("attention_bias") or config.get("mlp_bias"):
        return "attention/MLP biases are not supported"
    if config.get("hidden_act", "silu") != "silu":
        return f"hidden_act={config.get('hidden_act')!r} is not supported (silu only)"
    heads = int(config.get("num_attention_heads") or 1)
    head_dim = int(config.get("head_dim") or int(config.get("hidden_size", 0)) // heads)
    if head_dim % 16:
        return f"head_dim {head_dim} is not a multiple of 16 (ORT GroupQueryAttention's CPU kernel requires it)"
    return None


def rotary_caches(shape: DecoderShape) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin tables [max_positions, head_dim/2] for GQA's non-interleaved (HF "rotate_half") RoPE."""
    inv_freq = 1.0 / (shape.rope_theta ** (np.arange(0, shape.head_dim, 2, dtype=np.float64) / shape.head_dim))
    freqs = np.outer(np.arange(shape.max_positions, dtype=np.float64), inv_freq)
    return np.cos(freqs).astype(np.float32), np.sin(freqs).astype(np.float32)


def _load_safetensors(hf_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    files = sorted(Path(hf_dir).glob("*.safetensors"))
    if not files:
        raise ModelBuildError(f"{hf_dir} has no *.safetensors weights (pickle checkpoints are refused)")
    weights: dict[str, np.ndarray] = {}
    for f in files:
        weights.update(load_file(str(f)))
    return weights


def build_fused_decoder(hf_dir: Path, dest: Path) -> DecoderShape:
    """Write `dest` (fp32 fused graph, weights in one external-data file next to it)."""
    hf_dir = Path(hf_dir)
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    shape = DecoderShape.from_hf_config(config)
    w = _load_safetensors(hf_dir)

    def weight(name: str) -> np.ndarray:
        try:
            return np.ascontiguousarray(w[name], dtype=np.float32)
        except KeyError:
            raise ModelBuildError(f"{hf_dir}: weight {name!r} not found; not a Llama checkpoint?") from None

    inits: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def init(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(array, name))
        return name

    def node(op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs) -> None:
        nodes.append(helper.make_node(op, inputs, outputs, name=f"{outputs[0]}_{op}", domain=domain, **attrs))

    def linear(x: str, weight_name: str, out: str) -> str:
        # HF stores [out, in]; MatMul wants [in, out]. A constant weight lets quantize_dynamic
        # turn the node into an int8 MatMul.
        init(weight_name + ".T", np.ascontiguousarray(weight(weight_name).T))
        node("MatMul", [x, weight_name + ".T"], [out])
        return out

    ms = "com.microsoft"
    eps = shape.rms_eps
    one = init("const_one_i64", np.array([1], dtype=np.int64))
    zero = init("const_zero_i64", np.array(0, dtype=np.int64))
    cos, sin = rotary_caches(shape)
    init("cos_cache", cos)
    init("sin_cache", sin)

    # seqlens_k (= real tokens - 1 per row) and total length, as GQA wants them (int32)
    node("ReduceSum", ["attention_mask", one], ["mask_sum"], keepdims=0)
    node("Sub", ["mask_sum", one], ["seqlens_k_i64"])
    node("Cast", ["seqlens_k_i64"], ["seqlens_k"], to=TensorProto.INT32)
    node("Shape", ["attention_mask"], ["mask_shape"])
    node("Gather", ["mask_shape", one], ["total_len_1d"], axis=0)
    node("Squeeze", ["total_len_1d"], ["total_len_i64"])
    node("Cast", ["total_len_i64"], ["total_len"], to=TensorProto.INT32)

    embed = init("embed_tokens", weight("model.embed_tokens.weight"))
    node("Gather", [embed, "input_ids"], ["x0"], axis=0)

    qkv_w = {}
    residual, delta = "x0", None
    for i in range(shape.layers):
        p = f"model.layers.{i}"
        ln_in = init(f"{p}.input_layernorm.weight", weight(f"{p}.input_layernorm.weight"))
        if delta is None:
            node("SimplifiedLayerNormalization", [residual, ln_in], [f"h{i}"], axis=-1, epsilon=eps, stash_type=1)
        else:
            node("SkipSimplifiedLayerNormalization", [residual, delta, ln_in], [f"h{i}", "", "", f"res{i}"],
                 domain=ms, epsilon=eps)
            residual = f"res{i}"
        # one packed QKV MatMul: GQA splits it when key/value inputs are empty
        qkv = np.concatenate(
            [weight(f"{p}.self_attn.{n}_proj.weight") for n in ("q", "k", "v")], axis=0
        )
        qkv_w[i] = init(f"{p}.self_attn.qkv_proj.weight.T", np.ascontiguousarray(qkv.T))
        node("MatMul", [f"h{i}", qkv_w[i]], [f"qkv{i}"])
        node(
            "GroupQueryAttention",
            [f"qkv{i}", "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value",
             "seqlens_k", "total_len", "cos_cache", "sin_cache"],
            [f"attn{i}", f"present.{i}.key", f"present.{i}.value"],
            domain=ms, num_heads=shape.heads, kv_num_heads=shape.kv_heads,
            scale=float(shape.head_dim) ** -0.5, do_rotary=1, rotary_interleaved=0,
        )
        linear(f"attn{i}", f"{p}.self_attn.o_proj.weight", f"o{i}")
        ln_post = init(f"{p}.post_attention_layernorm.weight", weight(f"{p}.post_attention_layernorm.weight"))
        node("SkipSimplifiedLayerNormalization", [residual, f"o{i}", ln_post], [f"m{i}", "", "", f"mres{i}"],
             domain=ms, epsilon=eps)
        residual = f"mres{i}"
        linear(f"m{i}", f"{p}.mlp.gate_proj.weight", f"gate{i}")
        linear(f"m{i}", f"{p}.mlp.up_proj.weight", f"up{i}")
        node("Sigmoid", [f"gate{i}"], [f"gsig{i}"])
        node("Mul", [f"gate{i}", f"gsig{i}"], [f"silu{i}"])
        node("Mul", [f"silu{i}", f"up{i}"], [f"act{i}"])
        linear(f"act{i}", f"{p}.mlp.down_proj.weight", f"down{i}")
        delta = f"down{i}"

    norm = init("model.norm.weight", weight("model.norm.weight"))
    assert delta is not None, "a decoder has at least one layer"
    node("SkipSimplifiedLayerNormalization", [residual, delta, norm], ["final", "", "", "final_res"],
         domain=ms, epsilon=eps)

    # Only the last real token of each row reaches the lm_head (a 49k-wide MatMul per position
    # would dominate prefill): index = max(seqlens_k - past_len, 0), past_len = total - S.
    node("Shape", ["input_ids"], ["ids_shape"])
    node("Gather", ["ids_shape", one], ["seq_1d"], axis=0)
    node("Sub", ["total_len_1d", "seq_1d"], ["past_len_1d"])
    node("Sub", ["seqlens_k_i64", "past_len_1d"], ["last_raw"])
    node("Max", ["last_raw", zero], ["last_idx"])
    axes12 = init("const_axes_12", np.array([1, 2], dtype=np.int64))
    node("Unsqueeze", ["last_idx", axes12], ["last_idx_3d"])
    hid = init("const_gather_shape", np.array([1, 1, shape.hidden], dtype=np.int64))
    node("Expand", ["last_idx_3d", hid], ["last_idx_b"])
    node("GatherElements", ["final", "last_idx_b"], ["final_last"], axis=1)
    lm = weight("model.embed_tokens.weight") if shape.tied_embeddings else weight("lm_head.weight")
    init("lm_head.weight.T", np.ascontiguousarray(lm.T))
    node("MatMul", ["final_last", "lm_head.weight.T"], ["logits"])

    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    inputs = [
        helper.make_tensor_value_info("input_ids", i64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", i64, ["batch_size", "total_sequence_length"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch_size", 1, shape.vocab])]
    for i in range(shape.layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(
                f"past_key_values.{i}.{kind}", f32, ["batch_size", shape.kv_heads, "past_sequence_length", shape.head_dim]))
            outputs.append(helper.make_tensor_value_info(
                f"present.{i}.{kind}", f32, ["batch_size", shape.kv_heads, "total_sequence_length", shape.head_dim]))
    graph = helper.make_graph(nodes, "fused_decoder", inputs, outputs, initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)], producer_name="streamnlp"
    )
    model.ir_version = 9
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(dest), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=dest.name + ".data", size_threshold=1024)
    # onnx writes the external-data file 0600; a container running as another user must read it
    (dest.parent / (dest.name + ".data")).chmod(0o644)
    return shape
