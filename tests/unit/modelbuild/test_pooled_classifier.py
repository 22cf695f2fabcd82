"""The mean-pooled classifier recipe path: export matches torch, and the runtime loader reads it unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures_models import build_tiny_tokenizer

TEXTS = ["a good film", "bad and boring", "the plot is fine but the acting is bad", "good"]


def _tiny_bert(out_dir: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    tok = build_tiny_tokenizer()
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(out_dir), safe_serialization=True)
    BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                      cls_token="[CLS]", mask_token="[MASK]", model_max_length=128).save_pretrained(str(out_dir))
    return out_dir


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_padding_does_not_change_logits(tmp_path: Path, pooling: str) -> None:
    import torch
    from transformers import AutoTokenizer

    from pipeline.modelbuild.pooled_classifier import build_pooled_classifier

    base = _tiny_bert(tmp_path / "bert")
    model = build_pooled_classifier(base, num_labels=2, pooling=pooling).eval()
    tok = AutoTokenizer.from_pretrained(str(base))
    alone = tok(["good"], return_tensors="pt")
    padded = tok(["good", "the plot is fine but the acting is bad"], padding=True, return_tensors="pt")
    with torch.no_grad():
        a = model(alone["input_ids"], alone["attention_mask"], alone["token_type_ids"])
        b = model(padded["input_ids"], padded["attention_mask"], padded["token_type_ids"])
    assert torch.allclose(a[0], b[0], atol=1e-5), "padding must not change a text's logits"


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_export_matches_torch_and_loads_in_the_runtime(tmp_path: Path, pooling: str) -> None:
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from pipeline.inference.sentiment import ClassifierConfig, SentimentClassifier
    from pipeline.modelbuild.pooled_classifier import build_pooled_classifier, export_classifier_onnx

    base = _tiny_bert(tmp_path / "bert")
    model = build_pooled_classifier(base, num_labels=2, pooling=pooling).eval()
    with torch.no_grad():
        model.head.weight.mul_(20.0)  # confident enough that labels differ per text
    tok = AutoTokenizer.from_pretrained(str(base))
    out = tmp_path / "model"
    out.mkdir()
    diff = export_classifier_onnx(model, tok, out / "model.onnx", TEXTS)
    assert diff < 1e-3
    tok.save_pretrained(str(out))
    config = json.loads((base / "config.json").read_text())
    config.update(id2label={"0": "negative", "1": "positive"}, label2id={"negative": 0, "positive": 1})
    (out / "config.json").write_text(json.dumps(config))

    clf = SentimentClassifier.load(out, ClassifierConfig(precision="fp32", batch_size=2))
    probs, _ = clf.predict_proba(TEXTS)
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = torch.softmax(model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]), -1).numpy()
    assert np.allclose(np.asarray(probs), expected, atol=1e-4)



def test_weight_average_tracks_and_swaps_back() -> None:
    import torch

    from pipeline.modelbuild.sentiment import _WeightAverage

    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    avg = _WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(4.0)
    avg.update(model)  # 0.5 * 0 + 0.5 * 4
    with avg.swapped_in(model):
        assert torch.allclose(model.weight, torch.full((1, 2), 2.0))
    assert torch.allclose(model.weight, torch.full((1, 2), 4.0)), "training weights are restored"
    avg.copy_to(model)
    assert torch.allclose(model.weight, torch.full((1, 2), 2.0))


def test_unknown_pooling_is_a_clear_error(tmp_path: Path) -> None:
    from pipeline.modelbuild.pooled_classifier import build_pooled_classifier

    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        build_pooled_classifier(tmp_path, num_labels=2, pooling="max")
