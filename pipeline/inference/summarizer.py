"""Abstractive summaries with a small causal LM on ONNX Runtime + the Rust `tokenizers` library.

Runtime dependencies: onnxruntime, tokenizers, numpy. This module must never import torch or
transformers (the worker process stays free of them).

Model directory layout (written by `pipeline.modelbuild.summarizer`, see docs/summarizer.md):
    model.onnx (fp32), model_int8.onnx, model_int4.onnx   decoder with KV cache (optimum
                                                          "text-generation-with-past" export)
    tokenizer.json                                        fast tokenizer
    generation.json                                       chat-template pieces, system prompt,
                                                          instruction, EOS/pad ids
    config.json, manifest.json

Why a project-owned decode loop (and not onnxruntime-genai): the genai model builder needs
transformers 5, which conflicts with the optimum/transformers versions the build pins; genai
would add a second native runtime to the worker image; and on our 2-core reference machine
the measured gain did not justify that (numbers in docs/summarizer.md). The loop below is
~150 lines of numpy around one `InferenceSession.run` per generated token.

Decode loop: prompts of one batch are left-padded to the same width; `attention_mask`
covers padding + generated tokens, `position_ids` count only real tokens, and the graph's
`present.*` outputs are fed back as `past_key_values.*` each step. Greedy argmax; a row
finishes on an EOS token, a stop sequence, `max_new_tokens`, or the optional time budget.
Finished rows are dropped from the batch (KV cache rows compacted) so the remaining rows
run cheaper. Texts are sorted by prompt length before batching to minimise padding.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from pipeline.inference.sentiment import ModelInfo, ModelLoadError, read_json_object

__all__ = [
    "SummarizerConfig",
    "GeneratedSummary",
    "Summarizer",
    "ModelInfo",
    "ModelLoadError",
    "HEAD_FRACTION",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_INSTRUCTION",
]

log = logging.getLogger(__name__)

#: Share of the source-token budget kept from the start of a long text; the rest is its end.
HEAD_FRACTION = 0.7

#: Prompt wording (compared in docs/summarizer.md, "Prompt"); the build writes the full ChatML
#: prefix/suffix into generation.json, which is what the runtime uses.
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant that writes short, faithful summaries."
DEFAULT_INSTRUCTION = "Summarize the text above in one or two sentences."

#: Chatty lead-ins small instruct models put before the answer ("Here's a concise summary:").
_PREAMBLE = re.compile(r"^\s*(?:sure[,!.]?\s*)?(?:here(?:'s| is)|below is)[^:\n]{0,80}:\s*", re.IGNORECASE)

_FIX_HINT = (
    "run `streamnlp models build` to build the default summarizer (models/cache/summarizer-smollm2-135m), "
    "or point STREAMNLP_SUMMARIZER_MODEL_DIR at a built summarizer directory"
)

_PRECISION_FILES = {
    "fp32": ("model.onnx",),
    "int8": ("model_int8.onnx", "model_quantized.onnx"),
    "int4": ("model_int4.onnx",),
}

_TRUNCATION_MARK = " ... "


@dataclass(frozen=True)
class SummarizerConfig:
    max_new_tokens: int = 48
    max_prompt_tokens: int = 384  # prompt truncated head+tail to fit
    batch_size: int = 4  # prompts per generate() call
    intra_op_threads: int = 1  # its own thread budget, so sentiment keeps a core
    precision: str = "int8"  # which ONNX file; "fp32" / "int8" / "int4" where built
    stop_sequences: tuple[str, ...] = ("\n\n", "<|im_end|>")


@dataclass(frozen=True)
class GeneratedSummary:
    text: str  # stripped, stop sequence removed
    prompt_tokens: int  # after truncation
    new_tokens: int
    prompt_truncated: bool
    stop_reason: str  # "eos" | "stop_sequence" | "max_new_tokens" | "time_budget"


def _read_json(path: Path) -> dict:
    return read_json_object(path, _FIX_HINT)


def _head_tail(ids: list[int], budget: int, mark: list[int], head_fraction: float) -> list[int]:
    """First H and last T ids with `mark` between them, len == budget (budget > len(mark))."""
    room = budget - len(mark)
    if room <= 0:
        return ids[:budget]
    head = max(1, int(round(room * head_fraction)))
    tail = room - head
    return ids[:head] + mark + (ids[len(ids) - tail :] if tail > 0 else [])


def _clean(text: str) -> str:
    """Strip whitespace and a chatty lead-in ("Here's a concise summary of the text:")."""
    return _PREAMBLE.sub("", text, count=1).strip()


def _find_stop(text: str, stops: Sequence[str]) -> int:
    """Index of the earliest stop sequence in `text`, or -1."""
    best = -1
    for s in stops:
        if not s:
            continue
        i = text.find(s)
        if i >= 0 and (best < 0 or i < best):
            best = i
    return best


class Summarizer:
    """Greedy batched generation over an exported decoder-with-past ONNX model. Thread-safe."""

    info: ModelInfo

    def __init__(
        self,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        config: SummarizerConfig,
        info: ModelInfo,
        generation: dict,
    ) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self.config = config
        self.info = info
        self.head_fraction = HEAD_FRACTION

        inputs = {i.name: i for i in session.get_inputs()}
        self._has_attention = "attention_mask" in inputs
        self._has_position = "position_ids" in inputs
        self._past_names = sorted(
            (n for n in inputs if n.startswith("past_key_values.")),
            key=lambda n: (int(n.split(".")[1]), n.split(".")[2]),
        )
        outputs = [o.name for o in session.get_outputs()]
        self._logits_name = "logits" if "logits" in outputs else outputs[0]
        self._present_names = ["present." + n[len("past_key_values.") :] for n in self._past_names]
        missing = [n for n in self._present_names if n not in outputs]
        if missing:
            raise ModelLoadError(f"{info.path}: graph has no outputs {missing[:2]}...; not a with-past export")
        self._output_names = [self._logits_name, *self._present_names]
        kv_dtype = inputs[self._past_names[0]].type if self._past_names else "tensor(float)"
        self._kv_dtype = np.float16 if "float16" in kv_dtype else np.float32
        kv_shape = inputs[self._past_names[0]].shape if self._past_names else [None, 1, None, 1]
        self._kv_heads = int(kv_shape[1]) if isinstance(kv_shape[1], int) else int(generation["num_key_value_heads"])
        self._head_dim = int(kv_shape[3]) if isinstance(kv_shape[3], int) else int(generation["head_dim"])

        # Fused GQA graphs read only the per-row token count from the mask, so their prompts
        # are right-padded; optimum exports take explicit positions and are left-padded.
        self._right_pad = generation.get("padding_side", "left") == "right"
        self._eos_ids = frozenset(int(i) for i in generation.get("eos_token_ids", []))
        self._pad_id = int(generation.get("pad_token_id", next(iter(self._eos_ids), 0)))
        prefix = generation["prompt_prefix"]
        suffix = generation["prompt_suffix"]
        self._prefix_ids = tokenizer.encode(prefix, add_special_tokens=False).ids
        self._suffix_ids = tokenizer.encode(suffix, add_special_tokens=False).ids
        self._mark_ids = tokenizer.encode(_TRUNCATION_MARK, add_special_tokens=False).ids
        max_positions = int(generation.get("max_position_embeddings") or 0) or None
        max_prompt = int(config.max_prompt_tokens)
        if max_positions is not None and max_prompt + config.max_new_tokens > max_positions:
            max_prompt = max_positions - config.max_new_tokens
            log.warning("max_prompt_tokens clamped to %d (model has %d positions)", max_prompt, max_positions)
        overhead = len(self._prefix_ids) + len(self._suffix_ids)
        if max_prompt - overhead < len(self._mark_ids) + 8:
            raise ModelLoadError(
                f"max_prompt_tokens={config.max_prompt_tokens} leaves no room for text "
                f"(prompt template alone is {overhead} tokens)"
            )
        self.max_prompt_tokens = max_prompt
        self._text_budget = max_prompt - overhead
        self._stops = tuple(s for s in config.stop_sequences if s)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model_dir: Path, config: SummarizerConfig | None = None) -> "Summarizer":
        config = config or SummarizerConfig()
        if config.precision not in _PRECISION_FILES:
            raise ModelLoadError(f"unknown precision {config.precision!r}; use one of {sorted(_PRECISION_FILES)}")
        if config.batch_size < 1:
            raise ModelLoadError(f"batch_size must be >= 1, got {config.batch_size}")
        if config.max_new_tokens < 1:
            raise ModelLoadError(f"max_new_tokens must be >= 1, got {config.max_new_tokens}")
        model_dir = Path(model_dir).expanduser()
        if not model_dir.is_dir():
            raise ModelLoadError(f"summarizer model directory {model_dir} does not exist; {_FIX_HINT}")
        manifest_path = model_dir / "manifest.json"
        if not manifest_path.is_file():
            raise ModelLoadError(f"{model_dir} has no manifest.json (build incomplete?); {_FIX_HINT}")
        manifest = _read_json(manifest_path)
        for required in ("tokenizer.json", "generation.json"):
            if not (model_dir / required).is_file():
                raise ModelLoadError(f"{model_dir} is missing {required}; {_FIX_HINT}")
        onnx_path = next((model_dir / f for f in _PRECISION_FILES[config.precision] if (model_dir / f).is_file()), None)
        if onnx_path is None:
            built = [p for p, files in _PRECISION_FILES.items() if any((model_dir / f).is_file() for f in files)]
            raise ModelLoadError(
                f"{model_dir} has no {config.precision} model ({_PRECISION_FILES[config.precision][0]}); "
                f"built precisions: {built or 'none'}; {_FIX_HINT}"
            )
        generation = _read_json(model_dir / "generation.json")
        for key in ("prompt_prefix", "prompt_suffix", "eos_token_ids"):
            if key not in generation:
                raise ModelLoadError(f"{model_dir / 'generation.json'} has no {key!r}; {_FIX_HINT}")
        try:
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises plain Exception
            raise ModelLoadError(f"cannot load {model_dir / 'tokenizer.json'}: {exc}; {_FIX_HINT}") from exc
        tokenizer.no_truncation()
        tokenizer.no_padding()

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = max(0, int(config.intra_op_threads))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(
                f"cannot load ONNX model {onnx_path} (corrupt or incompatible): {exc}; {_FIX_HINT}"
            ) from exc
        names = {i.name for i in session.get_inputs()}
        if "input_ids" not in names or not any(n.startswith("past_key_values.") for n in names):
            raise ModelLoadError(
                f"{onnx_path} is not a decoder-with-past export (inputs: {sorted(names)[:6]}...); {_FIX_HINT}"
            )
        info = ModelInfo(
            name=str(manifest.get("name") or model_dir.name),
            version=str(manifest.get("version") or "unversioned"),
            precision=config.precision,
            path=str(onnx_path),
        )
        return cls(session, tokenizer, config, info, generation)

    # ------------------------------------------------------------------ prompts
    def build_prompt(self, text: str) -> tuple[list[int], bool]:
        """Prompt token ids for one source text (head+tail truncated to fit) and the truncation flag."""
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        truncated = len(ids) > self._text_budget
        if truncated:
            ids = _head_tail(ids, self._text_budget, self._mark_ids, self.head_fraction)
        return self._prefix_ids + ids + self._suffix_ids, truncated

    # --------------------------------------------------------------- generation
    def summarize(self, texts: Sequence[str], *, time_budget_s: float | None = None) -> list[GeneratedSummary]:
        """One summary per text, in input order. Blocking; safe to call from several threads.

        `time_budget_s` bounds the whole call: rows still generating when it runs out are cut
        (stop_reason "time_budget", partial text kept); batches not started get empty text.
        """
        if isinstance(texts, str):
            raise TypeError("summarize() takes a sequence of strings, not a single string")
        n = len(texts)
        if n == 0:
            return []
        deadline = None if time_budget_s is None else time.monotonic() + float(time_budget_s)
        prompts = [self.build_prompt(t) for t in texts]
        order = sorted(range(n), key=lambda i: len(prompts[i][0]))
        results: list[GeneratedSummary | None] = [None] * n
        bs = self.config.batch_size
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            outs = self.generate_ids([prompts[i][0] for i in idx], deadline=deadline)
            for i, (text, n_new, reason) in zip(idx, outs):
                ids, truncated = prompts[i]
                results[i] = GeneratedSummary(
                    text=text,
                    prompt_tokens=len(ids),
                    new_tokens=n_new,
                    prompt_truncated=truncated,
                    stop_reason=reason,
                )
        return results  # type: ignore[return-value]

    def generate_ids(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        deadline: float | None = None,
        max_new_tokens: int | None = None,
        ignore_stop: bool = False,
    ) -> list[tuple[str, int, str]]:
        """Greedy-decode one batch of prompt token ids -> [(text, new_tokens, stop_reason)] in order.

        `ignore_stop=True` (benchmarks only) disables EOS/stop sequences so every row generates
        exactly `max_new_tokens` tokens.
        """
        rows = len(prompts)
        if rows == 0:
            return []
        max_new = int(max_new_tokens or self.config.max_new_tokens)
        if deadline is not None and time.monotonic() >= deadline:
            return [("", 0, "time_budget")] * rows
        width = max(len(p) for p in prompts)
        total = width + max_new
        input_ids = np.full((rows, width), self._pad_id, dtype=np.int64)
        # attention mask for the whole generation, sliced per step: [pad..., prompt..., generated...]
        attention = np.zeros((rows, total), dtype=np.int64)
        for r, p in enumerate(prompts):
            if self._right_pad:
                input_ids[r, : len(p)] = p
                attention[r, : len(p)] = 1
            else:
                input_ids[r, width - len(p) :] = p
                attention[r, width - len(p) : width] = 1
        positions = np.cumsum(attention[:, :width], axis=1) - 1
        positions[attention[:, :width] == 0] = 1  # padding: any valid position, masked anyway
        next_pos = positions[:, -1:] + 1  # (rows, 1)

        empty = np.zeros((rows, self._kv_heads, 0, self._head_dim), dtype=self._kv_dtype)
        past = [empty] * len(self._past_names)
        generated = np.zeros((rows, max_new), dtype=np.int64)
        n_gen = np.zeros(rows, dtype=np.int64)
        texts = [""] * rows
        reasons = [""] * rows
        skip = [0] * rows  # stop-sequence search starts here (after a skipped lead-in)
        active = np.arange(rows)  # original row index of each row still in the batch

        step_ids = input_ids
        step_pos = positions
        seq_len = width
        for _ in range(max_new):
            feed = {"input_ids": step_ids}
            if self._has_attention:
                feed["attention_mask"] = attention[active, :seq_len] if len(active) < rows else attention[:, :seq_len]
            if self._has_position:
                feed["position_ids"] = step_pos
            feed.update(zip(self._past_names, past))
            outs = self._session.run(self._output_names, feed)
            logits = outs[0]
            past = outs[1:]
            next_tok = logits[:, -1, :].argmax(axis=-1).astype(np.int64)

            keep: list[int] = []
            timed_out = deadline is not None and time.monotonic() >= deadline
            for j, r in enumerate(active):
                tok = int(next_tok[j])
                if ignore_stop:
                    generated[r, n_gen[r]] = tok
                    n_gen[r] += 1
                    if n_gen[r] >= max_new:
                        reasons[r], texts[r] = "max_new_tokens", self._decode(generated[r, : n_gen[r]])
                    else:
                        keep.append(j)
                    continue
                if tok in self._eos_ids:
                    reasons[r] = "eos"
                    texts[r] = self._decode(generated[r, : n_gen[r]])
                    continue
                generated[r, n_gen[r]] = tok
                n_gen[r] += 1
                text = self._decode(generated[r, : n_gen[r]])
                cut = _find_stop(text[skip[r] :], self._stops)
                if cut >= 0:
                    cut += skip[r]
                    head = text[:cut]
                    if _PREAMBLE.match(head) and not _PREAMBLE.sub("", head, count=1).strip():
                        # "Here's a concise summary:\n\n" - the summary follows; keep generating
                        skip[r] = cut + 1
                        cut = -1
                if cut >= 0:
                    reasons[r], texts[r] = "stop_sequence", text[:cut]
                elif n_gen[r] >= max_new:
                    reasons[r], texts[r] = "max_new_tokens", text
                elif timed_out:
                    reasons[r], texts[r] = "time_budget", text
                else:
                    keep.append(j)
            if not keep:
                break
            seq_len += 1
            attention[active[keep], seq_len - 1] = 1
            if len(keep) < len(active):  # drop finished rows from the batch (compact the KV cache)
                sel = np.asarray(keep)
                past = [p[sel] for p in past]
                next_tok = next_tok[sel]
                next_pos = next_pos[sel]
                active = active[sel]
            step_ids = next_tok[:, None]
            step_pos = next_pos
            next_pos = next_pos + 1
        for r in range(rows):  # loop fell through without finishing (cannot happen; defensive)
            if not reasons[r]:
                reasons[r], texts[r] = "max_new_tokens", self._decode(generated[r, : n_gen[r]])
        return [(_clean(texts[r]), int(n_gen[r]), reasons[r]) for r in range(rows)]

    def _decode(self, ids: np.ndarray) -> str:
        # special tokens that are not EOS (e.g. <repo_name>) never belong in a summary
        return self._tokenizer.decode(ids.tolist(), skip_special_tokens=True)

    def __repr__(self) -> str:
        i = self.info
        return f"Summarizer({i.name}@{i.version}, {i.precision}, batch_size={self.config.batch_size})"
