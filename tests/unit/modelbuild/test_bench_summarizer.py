"""`streamnlp bench summarizer`'s issue-14 rows on a tiny random Llama: the 1.1.0 int8 reference is
re-made from the fp32 graph and runs, and the default configuration decodes with the worker's
settings (source constraint included). No timing is asserted: docs/s of a tiny model mean nothing."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from tests.fixtures_llm import TINY_TEXTS, build_tiny_llm_dir


@pytest.fixture(scope="module")
def tiny_fused(tmp_path_factory) -> Path:
    return build_tiny_llm_dir(tmp_path_factory.mktemp("tiny-bench"), graph="fused")


def test_reference_int8_is_the_1_1_0_quantization_and_runs(tiny_fused, tmp_path):
    from pipeline.modelbuild.bench_summarizer import build_reference_int8, onnx_runner

    ref = build_reference_int8(tiny_fused, tmp_path / "ref")
    ops = {n.op_type for n in onnx.load(str(ref / "model_int8.onnx")).graph.node}
    # quantize_dynamic's integer MatMuls, none of 1.2.0's block-wise MatMulNBits
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert "MatMulNBits" not in ops
    assert not (tiny_fused / "model_int8.onnx").exists(), "the model dir itself is left alone"

    from pipeline.inference.summarizer import Summarizer, SummarizerConfig

    probe = Summarizer.load(tiny_fused, SummarizerConfig(precision="fp32"))
    prompts = [probe.build_prompt(t)[0] for t in TINY_TEXTS[:2]]
    run = onnx_runner(ref, "int8", prompts, threads=1, new_tokens=3)
    out = run(prompts, list(TINY_TEXTS[:2]))
    assert [n for _, n, _ in out] == [3, 3]  # EOS ignored: every row does the full work


def test_reference_needs_the_fp32_graph(tmp_path):
    from pipeline.modelbuild.base import ModelBuildError
    from pipeline.modelbuild.bench_summarizer import build_reference_int8

    with pytest.raises(ModelBuildError, match="--no-reference-int8"):
        build_reference_int8(tmp_path, tmp_path / "ref")


def test_bench_prints_the_floor_line_with_the_constraint_on(tiny_fused, monkeypatch, capsys):
    from pipeline.modelbuild.bench_summarizer import DEFAULT_ENGINE, REFERENCE_ENGINE, main

    monkeypatch.setenv("STREAMNLP_SUMMARIZER_CONSTRAIN_TO_SOURCE", "true")
    monkeypatch.setenv("STREAMNLP_SUMMARIZER_PRECISION", "fp32")  # the tiny dir has no 1.2.0 int8
    monkeypatch.setenv("STREAMNLP_SUMMARIZER_MAX_NEW_TOKENS", "3")
    rc = main(["--model-dir", str(tiny_fused), "--skip-torch", "--precisions", "fp32", "--batch-sizes", "4",
               "--docs", "4", "--rounds", "1", "--new-tokens", "3", "--threads", "1"])
    assert rc == 0
    out = capsys.readouterr().out
    rows = {line.split("  ")[0] for line in out.splitlines()}
    assert {REFERENCE_ENGINE, DEFAULT_ENGINE} <= rows
    floor = [line for line in out.splitlines() if line.startswith(f"{DEFAULT_ENGINE} (")]
    assert len(floor) == 1
    assert "fp32 of test, 3 new tokens, source constraint on, batch 4" in floor[0]
    assert "x the 1.1.0 int8's" in floor[0]
    assert "the 0.5x floor" in floor[0]
