"""Tiny causal-LM fixtures for the summarizer tests (plain module; tests import from here).

`build_tiny_llm_dir(dir)` builds a random 2-layer Llama (hidden 64, 4 heads / 2 KV heads) and a
word-level `tokenizers` tokenizer with the ChatML specials, saves it as a HF directory and exports
it through `pipeline.modelbuild.summarizer.export_decoder` - `graph="fused"` is the GQA graph the
real build uses, `graph="optimum"` the optimum export + surgery used for other architectures -
then writes generation.json and manifest.json like the real build.
Takes a few seconds; no hub access.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WORDS = (
    "system user assistant summarize the text above in one or two sentences . , a an and but or not "
    "city council voted on tuesday to approve new bike lane network that will add protected lanes "
    "over next four years supporters said plan reduce traffic deaths encourage commuting by bicycle "
    "while opponents argued removing parking spaces hurt small businesses main street first phase "
    "costing about million dollars begin construction spring connect university campus downtown "
    "train station researchers have developed low cost sensor can detect spoiled milk before it is "
    "opened printed inside carton changes colour from yellow purple when bacteria levels rise ..."
).split()

# Texts the tiny vocabulary covers, with clearly different lengths (left-padding matters).
TINY_TEXTS = [
    "city council voted",
    "the city council voted on tuesday to approve a new bike lane network that will add protected lanes",
    "researchers have developed a low cost sensor",
    "supporters said the plan will reduce traffic deaths and encourage commuting by bicycle , while opponents "
    "argued that removing parking spaces will hurt small businesses on main street .",
    "milk",
]


def tiny_vocab() -> list[str]:
    return list(dict.fromkeys(SPECIALS + ["[UNK]"] + WORDS))


def build_tiny_tokenizer():
    from tokenizers import AddedToken, Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    vocab = {w: i for i, w in enumerate(tiny_vocab())}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    return tok


def build_tiny_llm_dir(root: Path, seed: int = 0, graph: str = "fused") -> Path:
    """Random tiny Llama -> ONNX (export_decoder) -> runtime layout in root/'model'. Returns it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from pipeline.modelbuild.summarizer import export_decoder, write_generation_config

    root = Path(root)
    hf_dir = root / "hf"
    out = root / "model"
    hf_dir.mkdir(parents=True, exist_ok=True)
    tok = build_tiny_tokenizer()
    vocab_size = tok.get_vocab_size()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,  # head_dim 16: ORT GroupQueryAttention needs a multiple of 16
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        tie_word_embeddings=True,
        initializer_range=0.5,  # large random weights: layers dominate the residual, outputs vary
    )
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(str(hf_dir))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", eos_token="<|im_end|>", pad_token="<|im_end|>", bos_token="<|im_start|>"
    )
    fast.save_pretrained(str(hf_dir))
    kind = export_decoder(hf_dir, out, graph)
    hf_config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    prefix = "<|im_start|> system <|im_end|> <|im_start|> user "
    suffix = " summarize the text above . <|im_end|> <|im_start|> assistant "
    gen = write_generation_config(out, hf_config, out / "tokenizer.json", prefix, suffix, kind)
    # The random model may emit these at any step; tests control EOS explicitly.
    gen["eos_token_ids"] = [0]
    (out / "generation.json").write_text(json.dumps(gen, indent=2), encoding="utf-8")
    (out / "manifest.json").write_text(
        json.dumps({"name": "tiny-llm", "version": "test", "files": {}}, indent=2), encoding="utf-8"
    )
    return out


SEQ2SEQ_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def build_tiny_seq2seq_hf_dir(root: Path, seed: int = 0) -> Path:
    """Random tiny BART (distilbart-cnn's architecture) + word-level tokenizer wrapping inputs in
    <s> ... </s>, saved as a HF directory in root/'hf'. Returns it."""
    import torch
    from tokenizers import AddedToken, Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    hf_dir = Path(root) / "hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(dict.fromkeys(SEQ2SEQ_SPECIALS + WORDS))}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SEQ2SEQ_SPECIALS])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    torch.manual_seed(seed)
    config = BartConfig(
        vocab_size=len(vocab), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
        bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=0,
        init_std=0.5,  # large random weights so greedy outputs vary between inputs
    )
    BartForConditionalGeneration(config).eval().save_pretrained(str(hf_dir))
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    ).save_pretrained(str(hf_dir))
    return hf_dir
