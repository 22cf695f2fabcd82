"""Shared model fixtures (tests/conftest.py loads this module as a plugin: its fixtures reach every test).

`tiny_distilbert_hf(dir)` builds a random, tiny DistilBERT sequence classifier plus a
WordPiece tokenizer at test time (no hub access), and `tiny_model_dir` exports it through
`export_sequence_classifier` -> the same ONNX layout `streamnlp models build` writes.
Takes a few seconds; the exported directory is shared by the whole session.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = (
    "the a an and but or not no very really quite so film movie story plot actor actors acting "
    "director scene scenes music great good fine fun funny brilliant moving wonderful best love loved "
    "bad awful boring dull worst hate hated mess tedious predictable long short slow fast "
    "is was are were it this that of in on with for to as by at too much more less i you we they "
    ". , ! ? '"
).split()
_PIECES = ["##s", "##ed", "##ing", "##ly", "##er", "##est"]

# Texts that the tiny tokenizer covers; lengths vary from a few to many tokens.
SAMPLE_TEXTS = [
    "great film",
    "the plot was boring and the acting was awful .",
    "a really moving story with brilliant music and wonderful actors , the best film this year !",
    "bad",
    "i loved it",
    "too long , too slow , too predictable ; a tedious mess of a movie that was much too long",
    "the director is good but the story is dull",
    "fun",
    "it was fine",
    "the worst movie , i hated the scenes and the music and the plot and the acting",
]


def tiny_vocab() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    return _SPECIALS + _WORDS + letters + _PIECES + [f"##{c}" for c in letters]


def build_tiny_tokenizer():
    """A BERT-style WordPiece `tokenizers.Tokenizer` over a small vocabulary."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tiny_vocab()))}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return tok


def tiny_distilbert_hf(out_dir: Path, *, seed: int = 0, max_positions: int = 128) -> Path:
    """Save a random tiny DistilBERT sequence classifier + fast tokenizer as a HF directory."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = build_tiny_tokenizer()
    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=tok.get_vocab_size(),
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=max_positions,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
        pad_token_id=0,
    )
    model = DistilBertForSequenceClassification(config)
    # make the random classifier head confident enough that scores differ visibly per text
    with torch.no_grad():
        model.classifier.weight.mul_(20.0)
    model.eval()
    model.save_pretrained(str(out_dir))
    fast = DistilBertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=max_positions,
    )
    fast.save_pretrained(str(out_dir))
    return out_dir


def export_tiny_model(work_dir: Path) -> Path:
    """Build the tiny HF model and export it with `export_sequence_classifier`; returns the model dir."""
    from pipeline.modelbuild import export_sequence_classifier

    work_dir = Path(work_dir)
    hf = tiny_distilbert_hf(work_dir / "tiny-distilbert-hf")
    out = work_dir / "tiny-distilbert"
    export_sequence_classifier(hf, out, quantize=True, name="tiny-distilbert", version="0.0.1-test")
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Exported tiny DistilBERT (model.onnx, model_int8.onnx, tokenizer.json, config.json, manifest.json)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return export_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def tiny_model_copy(tiny_model_dir, tmp_path) -> Path:
    """A private copy of the tiny model directory a test may damage."""
    dest = tmp_path / "tiny-distilbert"
    shutil.copytree(tiny_model_dir, dest)
    return dest
