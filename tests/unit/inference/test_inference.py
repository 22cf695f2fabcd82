"""SentimentClassifier contract tests (tiny DistilBERT exported at test time; real model optional)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline.inference import (
    ClassifierConfig,
    ModelInfo,
    ModelLoadError,
    SentimentClassifier,
    SentimentPrediction,
)
from pipeline.inference.sentiment import _head_tail, _special_span
from tests.fixtures_models import SAMPLE_TEXTS
from tests.paths import REPO

REPO_ROOT = REPO


def _fp32(tiny_model_dir, **kw) -> SentimentClassifier:
    return SentimentClassifier.load(tiny_model_dir, ClassifierConfig(precision="fp32", **kw))


def test_load_info_from_manifest(tiny_model_dir):
    clf = SentimentClassifier.load(tiny_model_dir, ClassifierConfig())
    assert isinstance(clf.info, ModelInfo)
    assert clf.info.name == "tiny-distilbert"
    assert clf.info.version == "0.0.1-test"
    assert clf.info.precision == "int8"
    assert clf.info.path.endswith("model_int8.onnx")
    assert clf.labels == ["negative", "positive"]  # id2label lower-cased
    # DistilBERT declares no token_type_ids: only declared inputs are fed
    assert "token_type_ids" not in {i.name for i in clf._session.get_inputs()}


def test_predict_one_per_text_in_order(tiny_model_dir):
    clf = _fp32(tiny_model_dir, batch_size=3)
    texts = SAMPLE_TEXTS * 2
    preds = clf.predict(texts)
    assert len(preds) == len(texts)
    assert all(isinstance(p, SentimentPrediction) for p in preds)
    assert all(p.label in ("negative", "positive") for p in preds)
    assert all(0.5 <= p.score <= 1.0 for p in preds)
    single = [clf.predict([t])[0] for t in texts]
    assert [p.n_tokens for p in preds] == [s.n_tokens for s in single]
    assert [p.label for p in preds] == [s.label for s in single]
    # lengths really are mixed, so bucketing had something to reorder
    assert len({p.n_tokens for p in preds}) >= 5
    assert clf.predict([]) == []


def test_bucketing_matches_unbucketed(tiny_model_dir):
    texts = SAMPLE_TEXTS[::-1] + SAMPLE_TEXTS
    bucketed = _fp32(tiny_model_dir, batch_size=4).predict_proba(texts)[0]
    one_by_one = np.vstack([_fp32(tiny_model_dir, batch_size=1).predict_proba([t])[0] for t in texts])
    np.testing.assert_allclose(bucketed, one_by_one, atol=1e-5)
    # the texts give distinct outputs, so an order mix-up would be caught
    assert len({round(float(p), 5) for p in one_by_one[:, 1]}) >= 5


def test_int8_close_to_fp32(tiny_model_dir):
    p8 = SentimentClassifier.load(tiny_model_dir, ClassifierConfig(precision="int8")).predict_proba(SAMPLE_TEXTS)[0]
    p32 = _fp32(tiny_model_dir).predict_proba(SAMPLE_TEXTS)[0]
    assert np.abs(p8 - p32).max() < 0.15


def test_truncation_flag_exactly_for_long_texts(tiny_model_dir):
    max_tokens = 12
    clf = _fp32(tiny_model_dir, max_tokens=max_tokens, batch_size=4)
    long_text = " ".join(["the film was good"] * 60)  # ~240 tokens, > 128 model positions
    texts = SAMPLE_TEXTS + [long_text]
    preds = clf.predict(texts)
    n_tokens = [len(clf._tokenizer.encode(t).ids) for t in texts]
    assert [p.n_tokens for p in preds] == n_tokens
    assert [p.truncated for p in preds] == [n > max_tokens for n in n_tokens]
    assert any(p.truncated for p in preds) and not all(p.truncated for p in preds)
    assert preds[-1].n_tokens > 128  # true length reported, run still works beyond model positions


def test_head_tail_keeps_specials_head_and_tail():
    ids = [101] + list(range(1, 31)) + [102]  # [CLS] 1..30 [SEP]
    mask = [1] + [0] * 30 + [1]
    lead, trail = _special_span(mask)
    assert (lead, trail) == (1, 1)
    kept = _head_tail(ids, lead, trail, max_tokens=10, head_fraction=0.25)
    assert len(kept) == 10
    assert kept[0] == 101 and kept[-1] == 102
    assert kept[1:3] == [1, 2]  # head: round(8 * 0.25) = 2
    assert kept[3:9] == list(range(25, 31))  # tail: last 6
    assert _head_tail(ids, 1, 1, 10, 1.0) == [101] + list(range(1, 9)) + [102]  # head-only


def test_max_tokens_clamped_to_model_positions(tiny_model_dir):
    clf = _fp32(tiny_model_dir, max_tokens=100_000)
    assert clf.max_tokens == 128
    assert clf.predict([" ".join(["good"] * 500)])[0].truncated


def test_missing_dir_error_names_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="streamnlp models build"):
        SentimentClassifier.load(tmp_path / "nope", ClassifierConfig())


@pytest.mark.parametrize("name", ["tokenizer.json", "config.json", "model_int8.onnx"])
def test_missing_file_error(tiny_model_copy, name):
    (tiny_model_copy / name).unlink()
    with pytest.raises(ModelLoadError) as exc:
        SentimentClassifier.load(tiny_model_copy, ClassifierConfig(precision="int8"))
    assert name in str(exc.value)
    assert "STREAMNLP_MODEL_DIR" in str(exc.value)


def test_corrupt_onnx_error(tiny_model_copy):
    (tiny_model_copy / "model_int8.onnx").write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelLoadError, match="corrupt") as exc:
        SentimentClassifier.load(tiny_model_copy, ClassifierConfig())
    assert "streamnlp models build" in str(exc.value)


def test_bad_config_values(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="precision"):
        SentimentClassifier.load(tiny_model_dir, ClassifierConfig(precision="fp16"))
    with pytest.raises(ModelLoadError, match="batch_size"):
        SentimentClassifier.load(tiny_model_dir, ClassifierConfig(batch_size=0))


def test_plain_optimum_dir_without_manifest(tiny_model_copy):
    """optimum-exported layout (no manifest, no int8): name from dir, version unversioned, fp32 fallback."""
    (tiny_model_copy / "manifest.json").unlink()
    (tiny_model_copy / "model_int8.onnx").unlink()
    clf = SentimentClassifier.load(tiny_model_copy, ClassifierConfig())
    assert clf.info.name == tiny_model_copy.name
    assert clf.info.version == "unversioned"
    assert clf.info.precision == "fp32"
    assert len(clf.predict(["good film", "bad"])) == 2


def test_thread_safe_predict(tiny_model_dir):
    from concurrent.futures import ThreadPoolExecutor

    clf = _fp32(tiny_model_dir, batch_size=4)
    expected = clf.predict_proba(SAMPLE_TEXTS)[0]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: clf.predict_proba(SAMPLE_TEXTS)[0], range(8)))
    for r in results:
        np.testing.assert_allclose(r, expected, atol=1e-6)


def test_worker_path_does_not_import_torch(tiny_model_dir):
    code = f"""
import json, sys
from pathlib import Path
from pipeline.inference import SentimentClassifier, ClassifierConfig
clf = SentimentClassifier.load(Path({str(tiny_model_dir)!r}), ClassifierConfig())
preds = clf.predict(["great film", "bad"])
heavy = sorted(m for m in ("torch", "transformers", "optimum") if m in sys.modules)
print(json.dumps({{"n": len(preds), "heavy": heavy}}))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"n": 2, "heavy": []}


@pytest.mark.needs_model
def test_default_model_sanity(default_model_dir):  # fixture from conftest.py
    clf = SentimentClassifier.load(default_model_dir, ClassifierConfig())
    manifest = json.loads((default_model_dir / "manifest.json").read_text())
    assert clf.info.name == manifest["name"] and clf.info.version == manifest["version"]
    preds = clf.predict(
        [
            "A wonderful, moving film with brilliant performances.",
            "A tedious, boring mess that wastes its talented cast.",
        ]
    )
    assert [p.label for p in preds] == ["positive", "negative"]
