"""KV-cached forward steps over exported generation graphs (numpy + onnxruntime only).

The summarizer's decode loop (`pipeline.inference.summarizer`) owns tokens, stop rules and
row bookkeeping; a graph object here owns the tensors one architecture needs between steps:

* `CausalGraph`: one decoder-with-past session. Two layouts are supported:
  - optimum export (`padding_side: left`): left-padded prompts, explicit `position_ids`;
  - fused GQA graph (`padding_side: right`, pipeline/modelbuild/fused_decoder.py): right-padded
    prompts; the graph reads only per-row token counts from `attention_mask`.
* `Seq2SeqGraph`: optimum's encoder-decoder export (encoder, decoder, decoder-with-past
  sessions, e.g. distilbart-cnn): the encoder runs once per batch, its cross-attention K/V are
  computed by the first decoder step and reused by every later step.

Both expose `begin(prompts, max_new) -> (state, logits)` and
`advance(state, tokens, keep) -> logits`, where `logits` are the next-token scores
[rows, vocab] of the rows still in the batch and `keep` (indices into the current rows, or
None for all) drops finished rows before the step, so a batch stops paying for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort


class GenerationGraph(Protocol):
    def begin(self, prompts: Sequence[Sequence[int]], max_new: int) -> tuple[Any, np.ndarray]: ...

    def advance(self, state: Any, tokens: np.ndarray, keep: np.ndarray | None) -> np.ndarray: ...


def past_input_names(session: ort.InferenceSession) -> list[str]:
    """`past_key_values.*` inputs sorted by layer, then name (key before value)."""
    names = [i.name for i in session.get_inputs() if i.name.startswith("past_key_values.")]
    return sorted(names, key=lambda n: (int(n.split(".")[1]), n.split(".", 2)[2]))


def _present(name: str) -> str:
    return "present." + name[len("past_key_values.") :]


def _kv_dtype(session: ort.InferenceSession) -> type:
    kv = [i for i in session.get_inputs() if i.name.startswith("past_key_values.")]
    return np.float16 if kv and "float16" in kv[0].type else np.float32


# ------------------------------------------------------------------------------ causal
@dataclass
class _CausalState:
    past: list[np.ndarray]
    attention: np.ndarray  # [rows still active, width + max_new]
    seq_len: int
    next_pos: np.ndarray  # [rows, 1] position of the next token (optimum layout only)


class CausalGraph:
    """Decoder-only model exported with its KV cache (optimum or the fused GQA builder)."""

    def __init__(self, session: ort.InferenceSession, *, kv_heads: int, head_dim: int, pad_id: int,
                 right_pad: bool) -> None:
        self.session = session
        inputs = {i.name for i in session.get_inputs()}
        self.has_attention = "attention_mask" in inputs
        self.has_position = "position_ids" in inputs
        self.past_names = past_input_names(session)
        outputs = [o.name for o in session.get_outputs()]
        self.logits_name = "logits" if "logits" in outputs else outputs[0]
        self.present_names = [_present(n) for n in self.past_names]
        missing = [n for n in self.present_names if n not in outputs]
        if missing:
            raise ValueError(f"graph has no outputs {missing[:2]}...; not a with-past export")
        self.output_names = [self.logits_name, *self.present_names]
        self.kv_dtype = _kv_dtype(session)
        self.kv_heads, self.head_dim = kv_heads, head_dim
        self.pad_id = pad_id
        self.right_pad = right_pad

    def begin(self, prompts: Sequence[Sequence[int]], max_new: int) -> tuple[_CausalState, np.ndarray]:
        rows = len(prompts)
        width = max(len(p) for p in prompts)
        input_ids = np.full((rows, width), self.pad_id, dtype=np.int64)
        attention = np.zeros((rows, width + max_new), dtype=np.int64)
        for r, p in enumerate(prompts):
            if self.right_pad:
                input_ids[r, : len(p)] = p
                attention[r, : len(p)] = 1
            else:
                input_ids[r, width - len(p) :] = p
                attention[r, width - len(p) : width] = 1
        positions = np.cumsum(attention[:, :width], axis=1) - 1
        positions[attention[:, :width] == 0] = 1  # padding: any valid position, masked anyway
        # (only the optimum layout takes positions; it is left-padded, so column -1 is each row's last)
        empty: np.ndarray = np.zeros((rows, self.kv_heads, 0, self.head_dim), dtype=self.kv_dtype)
        state = _CausalState([empty] * len(self.past_names), attention, width, positions[:, -1:] + 1)
        return state, self._run(state, input_ids, positions)

    def advance(self, state: _CausalState, tokens: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
        if keep is not None:
            state.past = [p[keep] for p in state.past]
            state.attention = state.attention[keep]
            state.next_pos = state.next_pos[keep]
        state.seq_len += 1
        state.attention[:, state.seq_len - 1] = 1
        positions = state.next_pos
        state.next_pos = state.next_pos + 1
        return self._run(state, tokens[:, None], positions)

    def _run(self, state: _CausalState, input_ids: np.ndarray, positions: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids}
        if self.has_attention:
            feed["attention_mask"] = state.attention[:, : state.seq_len]
        if self.has_position:
            feed["position_ids"] = positions
        feed.update(zip(self.past_names, state.past, strict=False))
        outs = self.session.run(self.output_names, feed)
        state.past = outs[1:]
        return outs[0][:, -1, :]


# ----------------------------------------------------------------------------- seq2seq
@dataclass
class _Seq2SeqState:
    encoder_mask: np.ndarray
    cross: dict[str, np.ndarray] = field(default_factory=dict)  # past_key_values.*.encoder.*
    self_kv: dict[str, np.ndarray] = field(default_factory=dict)  # past_key_values.*.decoder.*


class Seq2SeqGraph:
    """Encoder-decoder model (optimum "text2text-generation-with-past": encoder_model,
    decoder_model, decoder_with_past_model)."""

    def __init__(self, encoder: ort.InferenceSession, decoder: ort.InferenceSession,
                 decoder_with_past: ort.InferenceSession, *, pad_id: int, decoder_start_id: int,
                 forced_bos_id: int | None) -> None:
        self.encoder, self.decoder, self.decoder_with_past = encoder, decoder, decoder_with_past
        self.pad_id = pad_id
        self.decoder_start_id = decoder_start_id
        self.forced_bos_id = forced_bos_id
        self.past_names = past_input_names(decoder_with_past)
        self.cross_names = [n for n in self.past_names if ".encoder." in n]
        self.self_names = [n for n in self.past_names if ".decoder." in n]
        first_outputs = {o.name for o in decoder.get_outputs()}
        missing = [_present(n) for n in self.past_names if _present(n) not in first_outputs]
        if not self.cross_names or not self.self_names or missing:
            raise ValueError("decoder graphs do not expose decoder/encoder KV caches (not a with-past export)")
        self._first_outputs = ["logits", *(_present(n) for n in self.past_names)]
        self._step_outputs = ["logits", *(_present(n) for n in self.self_names)]

    def begin(self, prompts: Sequence[Sequence[int]], max_new: int) -> tuple[_Seq2SeqState, np.ndarray]:
        rows = len(prompts)
        width = max(len(p) for p in prompts)
        ids = np.full((rows, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((rows, width), dtype=np.int64)
        for r, p in enumerate(prompts):
            ids[r, : len(p)] = p
            mask[r, : len(p)] = 1
        (hidden,) = self.encoder.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})
        start = np.full((rows, 1), self.decoder_start_id, dtype=np.int64)
        outs = self.decoder.run(
            self._first_outputs,
            {"input_ids": start, "encoder_hidden_states": hidden, "encoder_attention_mask": mask},
        )
        state = _Seq2SeqState(mask)
        presents = dict(zip(self.past_names, outs[1:], strict=False))
        state.cross = {n: presents[n] for n in self.cross_names}
        state.self_kv = {n: presents[n] for n in self.self_names}
        logits = outs[0][:, -1, :]
        if self.forced_bos_id is not None:  # e.g. BART: the summary always starts with <s>
            logits = self._step(state, np.full(rows, self.forced_bos_id, dtype=np.int64))
        return state, logits

    def advance(self, state: _Seq2SeqState, tokens: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
        if keep is not None:
            state.encoder_mask = state.encoder_mask[keep]
            state.cross = {n: v[keep] for n, v in state.cross.items()}
            state.self_kv = {n: v[keep] for n, v in state.self_kv.items()}
        return self._step(state, tokens)

    def _step(self, state: _Seq2SeqState, tokens: np.ndarray) -> np.ndarray:
        feed = {"input_ids": tokens[:, None], "encoder_attention_mask": state.encoder_mask, **state.cross, **state.self_kv}
        outs = self.decoder_with_past.run(self._step_outputs, feed)
        state.self_kv = dict(zip(self.self_names, outs[1:], strict=False))
        return outs[0][:, -1, :]
