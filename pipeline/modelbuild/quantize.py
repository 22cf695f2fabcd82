"""Dynamic int8 quantization of an exported fp32 ONNX model (build time only)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pipeline.inference.hardware import cpu_flags
from pipeline.modelbuild.base import ModelBuildError

#: The default: onnxruntime's quantize_dynamic on MatMul + Gather, s8 per-channel weights
#: (docs/models.md: same speed as optimum's avx512_vnni preset, one held-out text better).
DEFAULT_QUANTIZATION = "s8-matmul-gather"


def _quant_config(kind: str):
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    if kind == "auto":
        kind = "avx512_vnni" if "avx512_vnni" in cpu_flags() else "avx2"
    if kind == "avx2":
        return kind, AutoQuantizationConfig.avx2(is_static=False, per_channel=True)
    if kind == "avx512_vnni":
        return kind, AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True)
    if kind == "arm64":
        return kind, AutoQuantizationConfig.arm64(is_static=False, per_channel=True)
    raise ModelBuildError(f"unknown quantization config {kind!r} (s8-matmul-gather, avx2, avx512_vnni, arm64, auto)")


def quantize_dynamic_int8(model_onnx: Path, dest: Path, kind: str = "avx2") -> str:
    """Dynamic int8 quantization; writes `dest`. Returns the config name.

    "s8-matmul-gather": onnxruntime's quantize_dynamic on MatMul and Gather only; the other kinds
    are optimum ORTQuantizer presets (avx2, avx512_vnni, arm64, auto).
    """
    if kind == "s8-matmul-gather":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            str(model_onnx), str(dest), per_channel=True, weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gather"],
        )
        return kind
    from optimum.onnxruntime import ORTQuantizer

    kind, qconfig = _quant_config(kind)
    scratch = Path(tempfile.mkdtemp(prefix="quant-", dir=dest.parent))
    try:
        quantizer = ORTQuantizer.from_pretrained(model_onnx.parent, file_name=model_onnx.name)
        quantizer.quantize(save_dir=scratch, quantization_config=qconfig, file_suffix="int8")
        produced = scratch / f"{model_onnx.stem}_int8.onnx"
        if not produced.is_file():
            raise ModelBuildError(f"quantizer did not produce {produced.name}")
        os.replace(produced, dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return kind
