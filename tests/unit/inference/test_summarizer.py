"""Summarizer runtime: decode-loop correctness on a tiny random Llama exported like the real model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures_llm import TINY_TEXTS, build_tiny_llm_dir
from tests.paths import REPO


@pytest.fixture(scope="module", params=["fused", "optimum"])
def tiny_llm_dir(request, tmp_path_factory) -> Path:
    """Every runtime test runs on both graph kinds (right-padded fused GQA, left-padded optimum)."""
    return build_tiny_llm_dir(tmp_path_factory.mktemp(f"tiny-llm-{request.param}"), graph=request.param)


def test_fused_graph_matches_optimum_export(tmp_path):
    """The hand-built GQA graph computes the same model as optimum's export of the same weights:
    same greedy tokens for a padded batch, logits equal to float tolerance."""
    import numpy as np

    fused = _load(build_tiny_llm_dir(tmp_path / "f", graph="fused"), batch_size=8, max_new_tokens=10)
    reference = _load(build_tiny_llm_dir(tmp_path / "o", graph="optimum"), batch_size=8, max_new_tokens=10)
    prompts = [fused.build_prompt(t)[0] for t in TINY_TEXTS]
    assert prompts == [reference.build_prompt(t)[0] for t in TINY_TEXTS]
    assert fused.generate_ids(prompts, ignore_stop=True) == reference.generate_ids(prompts, ignore_stop=True)

    def last_logits(s, prompt):
        graph = s._graph
        state, logits = graph.begin([prompt], max_new=1)
        return logits[0]

    np.testing.assert_allclose(last_logits(fused, prompts[1]), last_logits(reference, prompts[1]),
                               rtol=1e-4, atol=1e-4)


def test_fused_builder_refuses_unsupported_architectures(tmp_path):
    import json

    from pipeline.modelbuild.base import ModelBuildError
    from pipeline.modelbuild.summarizer import export_decoder

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2", "attention_bias": True}))
    with pytest.raises(ModelBuildError, match="qwen2"):
        export_decoder(tmp_path, tmp_path / "out", graph="fused")


def _load(model_dir: Path, **kw):
    from pipeline.inference.summarizer import Summarizer, SummarizerConfig

    cfg = dict(precision="fp32", intra_op_threads=1, max_new_tokens=8, stop_sequences=())
    cfg.update(kw)
    return Summarizer.load(model_dir, SummarizerConfig(**cfg))


def test_one_result_per_prompt_in_order(tiny_llm_dir):
    s = _load(tiny_llm_dir, batch_size=2)
    out = s.summarize(TINY_TEXTS)
    assert len(out) == len(TINY_TEXTS)
    singles = [s.summarize([t])[0] for t in TINY_TEXTS]
    assert [o.text for o in out] == [o.text for o in singles]
    assert [o.prompt_tokens for o in out] == [o.prompt_tokens for o in singles]
    # prompts differ in length, so order really was restored after length sorting
    assert len({o.prompt_tokens for o in out}) == len(TINY_TEXTS)
    assert s.summarize([]) == []
    with pytest.raises(TypeError):
        s.summarize("not a list")


def test_batched_equals_one_by_one_token_ids(tiny_llm_dir):
    """Padding (left for optimum, right for fused), mask and positions: a padded row decodes exactly as alone."""
    s = _load(tiny_llm_dir, batch_size=8, max_new_tokens=12)
    prompts = [s.build_prompt(t)[0] for t in TINY_TEXTS]
    assert len({len(p) for p in prompts}) > 1
    batched = s.generate_ids(prompts, ignore_stop=True)
    alone = [s.generate_ids([p], ignore_stop=True)[0] for p in prompts]
    assert batched == alone
    assert all(n == 12 for _, n, _ in batched)


def test_max_new_tokens_cap(tiny_llm_dir):
    s = _load(tiny_llm_dir, max_new_tokens=5, batch_size=3)
    for o in s.summarize(TINY_TEXTS):
        assert o.new_tokens <= 5
        assert o.stop_reason in ("max_new_tokens", "eos")
        if o.stop_reason == "max_new_tokens":
            assert o.new_tokens == 5


def test_eos_finishes_row_and_others_continue(tiny_llm_dir):
    import json

    s = _load(tiny_llm_dir, max_new_tokens=6, batch_size=8)
    prompts = [s.build_prompt(t)[0] for t in TINY_TEXTS]
    ref = s.generate_ids(prompts, ignore_stop=True)
    # make the first not-yet-seen token of row 0 (at step k >= 1) an EOS token: row 0 stops after k tokens
    tok_ids = s._tokenizer.encode(ref[0][0], add_special_tokens=False).ids
    k = next((i for i in range(1, len(tok_ids)) if tok_ids[i] not in tok_ids[:i]), None)
    if k is None:
        pytest.skip("random model repeated one token")
    s._eos_ids = frozenset({tok_ids[k]})
    out = s.generate_ids(prompts)
    assert out[0][2] == "eos" and out[0][1] == k
    for (text, n, reason), (rtext, rn, _) in zip(out[1:], ref[1:], strict=True):
        if reason == "max_new_tokens":  # rows not hitting the new EOS are unchanged
            assert (text, n) == (rtext, rn)
    json.dumps(out)  # plain types


def test_stop_sequence_cuts_text(tiny_llm_dir):
    s = _load(tiny_llm_dir, max_new_tokens=8)
    free = s.summarize([TINY_TEXTS[1]])[0]
    words = free.text.split()
    assert len(words) >= 4
    stop = words[2]
    if stop in words[:2]:
        pytest.skip("random model repeated the word; stop position ambiguous")
    s2 = _load(tiny_llm_dir, max_new_tokens=8, stop_sequences=(stop,))
    cut = s2.summarize([TINY_TEXTS[1]])[0]
    assert cut.stop_reason == "stop_sequence"
    assert stop not in cut.text.split()
    assert cut.text == " ".join(words[:2])
    assert cut.new_tokens == 3


def test_prompt_truncation_head_tail(tiny_llm_dir):
    from pipeline.inference.summarizer import HEAD_FRACTION

    long_text = " ".join([TINY_TEXTS[1]] * 30)
    s = _load(tiny_llm_dir, max_prompt_tokens=64, max_new_tokens=3)
    ids, truncated = s.build_prompt(long_text)
    assert truncated and len(ids) == 64
    text_ids = s._tokenizer.encode(long_text, add_special_tokens=False).ids
    body = ids[len(s._prefix_ids) : len(ids) - len(s._suffix_ids)]
    head = int(round((len(body) - len(s._mark_ids)) * HEAD_FRACTION))
    assert body[:head] == text_ids[:head]
    assert body[len(body) - (len(body) - head - len(s._mark_ids)) :] == text_ids[len(text_ids) - (len(body) - head - len(s._mark_ids)) :]
    out = s.summarize([long_text, TINY_TEXTS[0]])
    assert out[0].prompt_truncated and out[0].prompt_tokens == 64
    assert not out[1].prompt_truncated


def test_time_budget(tiny_llm_dir):
    s = _load(tiny_llm_dir, max_new_tokens=50, batch_size=1)
    out = s.summarize(TINY_TEXTS, time_budget_s=0.0)
    assert [o.stop_reason for o in out] == ["time_budget"] * len(TINY_TEXTS)


def test_load_errors(tiny_llm_dir, tmp_path):
    from pipeline.inference.summarizer import ModelLoadError

    with pytest.raises(ModelLoadError, match="models build"):
        _load(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="int4"):
        _load(tiny_llm_dir, precision="int4")
    with pytest.raises(ModelLoadError, match="precision"):
        _load(tiny_llm_dir, precision="bf16")


def test_worker_import_does_not_pull_torch():
    code = (
        "import sys, pipeline.inference.summarizer as m; "
        "bad = [x for x in ('torch', 'transformers', 'optimum') if x in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


# ------------------------------------------------------------------ real model
# `summarizer_model_dir` comes from conftest.py (pytest.fail with the build hint when missing)
@pytest.mark.needs_model
def test_real_summarizer_two_texts(summarizer_model_dir):
    from pipeline.inference.summarizer import Summarizer, SummarizerConfig

    s = Summarizer.load(summarizer_model_dir, SummarizerConfig(max_new_tokens=32, batch_size=2))
    texts = [
        "The city council voted 7 to 2 on Tuesday to approve a new bike lane network that will add 40 kilometres "
        "of protected lanes over the next four years. Supporters said the plan will reduce traffic deaths, while "
        "opponents argued that removing parking spaces will hurt small businesses on Main Street.",
        "Researchers at the university have developed a low cost sensor that detects spoiled milk before the "
        "carton is opened. The sensor changes colour from yellow to purple when bacteria levels rise, and it "
        "flagged 94 percent of spoiled samples in tests with 300 cartons.",
    ]
    out = s.summarize(texts)
    assert len(out) == 2
    for o in out:
        assert o.text.strip()
        assert 0 < o.new_tokens <= 32
        assert o.stop_reason in ("eos", "stop_sequence", "max_new_tokens")
    assert s.info.name == "summarizer-smollm2-135m" and s.info.precision == "int8"


# ------------------------------------------------------------------ encoder-decoder (distilbart-cnn)
@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory) -> tuple[Path, Path]:
    """(HF dir, exported summarizer dir) of a random tiny BART, exported like distilbart-cnn would be."""
    from pipeline.modelbuild.summarizer import export_summarizer
    from tests.fixtures_llm import build_tiny_seq2seq_hf_dir

    root = tmp_path_factory.mktemp("tiny-seq2seq")
    hf_dir = build_tiny_seq2seq_hf_dir(root)
    export_summarizer(hf_dir, root / "model", precisions=("fp32", "int8"))
    return hf_dir, root / "model"


def test_seq2seq_tokens_match_transformers_generate(tiny_seq2seq):
    """Our encoder-decoder loop (no torch) == transformers greedy generate on the same weights."""
    import torch
    from transformers import BartForConditionalGeneration

    hf_dir, model_dir = tiny_seq2seq
    s = _load(model_dir, batch_size=8, max_new_tokens=9)
    prompts = [s.build_prompt(t)[0] for t in TINY_TEXTS]
    assert all(p[0] == 0 and p[-1] == 2 for p in prompts)  # <s> ... </s> as the tokenizer wraps it
    ours = s.generate_ids(prompts, ignore_stop=True)
    alone = [s.generate_ids([p], ignore_stop=True)[0] for p in prompts]
    assert ours == alone

    model = BartForConditionalGeneration.from_pretrained(str(hf_dir)).eval()
    expected = []
    for p in prompts:
        with torch.inference_mode():
            out = model.generate(torch.tensor([p]), do_sample=False, num_beams=1, max_new_tokens=11, min_new_tokens=11)
        # [decoder start, forced <s>, 9 tokens, forced </s> at max length]; our loop counts after <s>
        expected.append(s._tokenizer.decode(out[0, 2:11].tolist(), skip_special_tokens=True).strip())
    assert [text for text, _, _ in ours] == expected


def test_seq2seq_summarize_api_and_int8(tiny_seq2seq):
    _, model_dir = tiny_seq2seq
    for precision in ("fp32", "int8"):
        s = _load(model_dir, precision=precision, batch_size=2, max_new_tokens=6)
        out = s.summarize(TINY_TEXTS)
        assert len(out) == len(TINY_TEXTS)
        assert all(o.new_tokens <= 6 and o.stop_reason in ("eos", "max_new_tokens") for o in out)
        assert s.info.precision == precision
    with pytest.raises(Exception, match="int4"):
        _load(model_dir, precision="int4")


def test_cli_export_summarizer_then_load(tiny_seq2seq, tmp_path):
    from click.testing import CliRunner

    from pipeline.tools.cli import main

    hf_dir, _ = tiny_seq2seq
    out = tmp_path / "exported"
    result = CliRunner().invoke(main, ["models", "export-summarizer", str(hf_dir), "--out", str(out), "--precisions", "fp32"])
    assert result.exit_code == 0, result.output
    assert "graph optimum-seq2seq" in result.output
    assert len(_load(out, batch_size=2).summarize(TINY_TEXTS[:2])) == 2
    refused = CliRunner().invoke(main, ["models", "export-summarizer", str(hf_dir), "--out", str(tmp_path / "x"),
                                        "--precisions", "fp32,int4"])
    assert refused.exit_code == 1 and "fp32 (+ int8)" in refused.output
