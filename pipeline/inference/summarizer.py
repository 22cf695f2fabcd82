"""Abstractive summaries with a small LM on ONNX Runtime + the Rust `tokenizers` library.

Runtime dependencies: onnxruntime, tokenizers, numpy. This module must never import torch or
transformers (the worker process stays free of them).

Model directory layouts (written by `pipeline.modelbuild.summarizer`, see docs/summarizer.md):
    decoder-only   model.onnx (+ model.onnx.data) fp32, model_int8.onnx, model_int4.onnx: one
                   decoder-with-KV-cache graph - the fused GQA graph of our builder (default
                   model) or an optimum "text-generation-with-past" export (other architectures)
    seq2seq        encoder_model.onnx, decoder_model.onnx, decoder_with_past_model.onnx (+ *_int8)
    tokenizer.json, generation.json (prompt pieces, EOS/pad ids, padding side, architecture),
    config.json, manifest.json

Why a project-owned decode loop (and not onnxruntime-genai): the genai model builder needs
transformers 5, which conflicts with the optimum/transformers versions the build pins; genai
would add a second native runtime to the worker image; and with our own fused graph the loop is
as fast as genai on the same graph (numbers in docs/summarizer.md).

Decode loop: prompts are sorted by length and batched; the graph object
(`pipeline.inference.graphs`) prefills the batch and runs one KV-cached step per token. Greedy
argmax; a row finishes on an EOS token, a stop sequence, `max_new_tokens`, or the optional time
budget. Finished rows are dropped from the batch (caches compacted) so the remaining rows run
cheaper.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from pipeline.inference.constraints import SourceConstraint, token_table
from pipeline.inference.graphs import CausalGraph, GenerationGraph, Seq2SeqGraph
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
    "built_precisions",
    "precision_files",
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

_PRECISION_FILES = {  # decoder-only: one graph per precision (first existing name wins)
    "fp32": (("model.onnx",),),
    "int8": (("model_int8.onnx",), ("model_quantized.onnx",)),
    "int4": (("model_int4.onnx",),),
}

#: encoder-decoder exports (optimum "text2text-generation-with-past"): encoder, first decoder step, decoder with past
_SEQ2SEQ_FILES = {
    "fp32": (("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx"),),
    "int8": (("encoder_model_int8.onnx", "decoder_model_int8.onnx", "decoder_with_past_model_int8.onnx"),),
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
    # numbers and capitalised names must continue a span of the source (pipeline.inference.constraints)
    constrain_to_source: bool = False


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


def _open_session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = max(0, int(threads))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"cannot load ONNX model {path} (corrupt or incompatible): {exc}; {_FIX_HINT}") from exc


def _causal_graph(session: ort.InferenceSession, generation: dict, pad_id: int) -> CausalGraph:
    inputs = {i.name: i for i in session.get_inputs()}
    past = [n for n in inputs if n.startswith("past_key_values.")]
    if "input_ids" not in inputs or not past:
        raise ValueError(f"not a decoder-with-past export (inputs: {sorted(inputs)[:6]}...)")
    shape = inputs[past[0]].shape
    kv_heads = shape[1] if isinstance(shape[1], int) else int(generation["num_key_value_heads"])
    head_dim = shape[3] if isinstance(shape[3], int) else int(generation["head_dim"])
    # Fused GQA graphs read only the per-row token count from the mask, so their prompts are
    # right-padded; optimum exports take explicit positions and are left-padded.
    right_pad = generation.get("padding_side", "left") == "right"
    return CausalGraph(session, kv_heads=int(kv_heads), head_dim=int(head_dim), pad_id=pad_id, right_pad=right_pad)


class Summarizer:
    """Greedy batched generation over an exported decoder-with-past (or encoder-decoder) ONNX model.
    Thread-safe: all decode state is local to a call."""

    info: ModelInfo

    def __init__(
        self,
        graph: GenerationGraph,
        tokenizer: Tokenizer,
        config: SummarizerConfig,
        info: ModelInfo,
        generation: dict,
    ) -> None:
        self._graph = graph
        self._tokenizer = tokenizer
        self.config = config
        self.info = info
        self.head_fraction = HEAD_FRACTION
        self._eos_ids = frozenset(int(i) for i in generation.get("eos_token_ids", []))
        self.pad_id = int(generation.get("pad_token_id", next(iter(self._eos_ids), 0)))
        prefix = generation["prompt_prefix"]
        suffix = generation["prompt_suffix"]
        # seq2seq tokenizers wrap the source in specials (<s> ... </s>); the build records them
        self._prefix_ids = list(generation.get("special_prefix_ids", [])) + (
            tokenizer.encode(prefix, add_special_tokens=False).ids if prefix else [])
        self._suffix_ids = (tokenizer.encode(suffix, add_special_tokens=False).ids if suffix else []) + list(
            generation.get("special_suffix_ids", []))
        self._mark_ids = tokenizer.encode(_TRUNCATION_MARK, add_special_tokens=False).ids
        max_positions = int(generation.get("max_position_embeddings") or 0) or None
        max_prompt = int(config.max_prompt_tokens)
        # decoder-only: prompt and generated tokens share the positions; seq2seq: the encoder's own
        prompt_room = max_positions if generation.get("architecture") == "seq2seq" else (
            max_positions - config.max_new_tokens if max_positions is not None else None)
        if prompt_room is not None and max_prompt > prompt_room:
            max_prompt = prompt_room
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
    def load(cls, model_dir: Path, config: SummarizerConfig | None = None) -> Summarizer:
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
        generation = _read_json(model_dir / "generation.json")
        for key in ("prompt_prefix", "prompt_suffix", "eos_token_ids"):
            if key not in generation:
                raise ModelLoadError(f"{model_dir / 'generation.json'} has no {key!r}; {_FIX_HINT}")
        seq2seq = generation.get("architecture") == "seq2seq"
        candidates = _SEQ2SEQ_FILES if seq2seq else _PRECISION_FILES
        files = next(
            (names for names in candidates.get(config.precision, ()) if all((model_dir / f).is_file() for f in names)),
            None,
        )
        if files is None:
            built = [p for p, options in candidates.items()
                     if any(all((model_dir / f).is_file() for f in names) for names in options)]
            raise ModelLoadError(
                f"{model_dir} has no {config.precision} model ({', '.join(candidates.get(config.precision, [('?',)])[0])}); "
                f"built precisions: {built or 'none'}; {_FIX_HINT}"
            )
        try:
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises plain Exception
            raise ModelLoadError(f"cannot load {model_dir / 'tokenizer.json'}: {exc}; {_FIX_HINT}") from exc
        tokenizer.no_truncation()
        tokenizer.no_padding()

        sessions = [_open_session(model_dir / f, config.intra_op_threads) for f in files]
        eos = [int(i) for i in generation.get("eos_token_ids", [])]
        pad_id = int(generation.get("pad_token_id", eos[0] if eos else 0))
        try:
            if seq2seq:
                forced = generation.get("forced_bos_token_id")
                graph: GenerationGraph = Seq2SeqGraph(
                    *sessions, pad_id=pad_id, decoder_start_id=int(generation["decoder_start_token_id"]),
                    forced_bos_id=int(forced) if forced is not None else None,
                )
            else:
                graph = _causal_graph(sessions[0], generation, pad_id)
        except (KeyError, ValueError) as exc:
            raise ModelLoadError(f"{model_dir / files[0]} is not a usable generation export: {exc}; {_FIX_HINT}") from exc
        info = ModelInfo(
            name=str(manifest.get("name") or model_dir.name),
            version=str(manifest.get("version") or "unversioned"),
            precision=config.precision,
            path=str(model_dir / files[-1]),
        )
        return cls(graph, tokenizer, config, info, generation)

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
        constraints = [self.source_constraint(t) for t in texts] if self.config.constrain_to_source else None
        order = sorted(range(n), key=lambda i: len(prompts[i][0]))
        results: list[GeneratedSummary | None] = [None] * n
        bs = self.config.batch_size
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            outs = self.generate_ids([prompts[i][0] for i in idx], deadline=deadline,
                                     constraints=[constraints[i] for i in idx] if constraints else None)
            for i, (text, n_new, reason) in zip(idx, outs, strict=True):
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
        constraints: Sequence[SourceConstraint | None] | None = None,
    ) -> list[tuple[str, int, str]]:
        """Greedy-decode one batch of prompt token ids -> [(text, new_tokens, stop_reason)] in order.

        `ignore_stop=True` (benchmarks only) disables EOS/stop sequences so every row generates
        exactly `max_new_tokens` tokens. `constraints[i]`, when given, may replace row i's greedy
        token (`SourceConstraint.choose`).
        """
        rows = len(prompts)
        if rows == 0:
            return []
        max_new = int(max_new_tokens or self.config.max_new_tokens)
        if deadline is not None and time.monotonic() >= deadline:
            return [("", 0, "time_budget")] * rows
        state, logits = self._graph.begin(prompts, max_new)
        generated = np.zeros((rows, max_new), dtype=np.int64)
        n_gen = np.zeros(rows, dtype=np.int64)
        texts = [""] * rows
        reasons = [""] * rows
        skip = [0] * rows  # stop-sequence search starts here (after a skipped lead-in)
        active = np.arange(rows)  # original row index of each row still in the batch
        sofar = [""] * rows  # decoded text per row, what a constraint judges the next token against

        for _ in range(max_new):
            next_tok = logits.argmax(axis=-1).astype(np.int64)
            keep: list[int] = []
            timed_out = deadline is not None and time.monotonic() >= deadline
            for j, r in enumerate(active):
                tok = int(next_tok[j])
                constraint = constraints[int(r)] if constraints is not None else None
                if constraint is not None:
                    tok = constraint.choose(sofar[r], logits[j], tok)
                    next_tok[j] = tok
                if ignore_stop:
                    generated[r, n_gen[r]] = tok
                    n_gen[r] += 1
                    if constraints is not None:
                        sofar[r] = self._decode(generated[r, : n_gen[r]])
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
                text = sofar[r] = self._decode(generated[r, : n_gen[r]])
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
            sel = None if len(keep) == len(active) else np.asarray(keep)
            if sel is not None:  # drop finished rows from the batch (the graph compacts its caches)
                next_tok = next_tok[sel]
                active = active[sel]
            logits = self._graph.advance(state, next_tok, sel)
        for row in range(rows):  # loop fell through without finishing (cannot happen; defensive)
            if not reasons[row]:
                reasons[row], texts[row] = "max_new_tokens", self._decode(generated[row, : n_gen[row]])
        if constraints is not None:
            texts = [texts[r] if (c := constraints[r]) is None else c.tidy(texts[r]) for r in range(rows)]
        return [(_clean(texts[r]), int(n_gen[r]), reasons[r]) for r in range(rows)]

    def source_constraint(self, source: str) -> SourceConstraint:
        """A fresh constraint for one row summarising `source` (the vocabulary table is built once)."""
        return SourceConstraint.for_source(source, token_table(self._tokenizer), eos_ids=self._eos_ids)

    def _decode(self, ids: np.ndarray) -> str:
        # special tokens that are not EOS (e.g. <repo_name>) never belong in a summary
        return self._tokenizer.decode(ids.tolist(), skip_special_tokens=True)

    def __repr__(self) -> str:
        i = self.info
        return f"Summarizer({i.name}@{i.version}, {i.precision}, batch_size={self.config.batch_size})"


def precision_files(model_dir: Path, precision: str) -> list[Path]:
    """Every file the loader reads for `precision`: its graph(s) and their external weights ([] if not built)."""
    model_dir = Path(model_dir)
    for layout in (_PRECISION_FILES, _SEQ2SEQ_FILES):
        for names in layout.get(precision, ()):
            if all((model_dir / f).is_file() for f in names):
                graphs = [model_dir / f for f in names]
                return graphs + [g.with_name(g.name + ".data") for g in graphs if g.with_name(g.name + ".data").is_file()]
    return []


def built_precisions(model_dir: Path) -> list[str]:
    """Precisions whose graph files all exist in `model_dir` (decoder-only or encoder-decoder layout)."""
    return [p for p in ("fp32", "int8", "int4") if precision_files(model_dir, p)]
