"""Out-of-fold soft labels from the built full teacher's recipe settings (docs/models.md, Distillation).

The teacher recipe (`streamnlp models build sentiment-teacher`) does this after training the full
teacher when `soft_label_folds` > 1 (the default, 2). This runs only that part, beside an
already-built full teacher, so the soft labels can be regenerated without retraining it (35 min):
two fold teachers (20 min each on 2 quiet cores, labels included), each trained on half of the training split with
the full teacher's settings, label the half they did not see; both label the validation and the
unlabelled out-of-domain texts (mean log-probability).

    .venv/bin/python scripts/crossfit_soft_labels.py /tmp/oof/soft_labels.json.gz [folds]
    .venv/bin/streamnlp models build sentiment-student-l6 ...   # reads pipeline/modelbuild/distill_data/
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from pipeline.catalogue import load_catalogue
from pipeline.modelbuild import distill
from pipeline.modelbuild.ood import load_ood_unlabelled
from pipeline.modelbuild.progress import StderrProgress


def main(out: Path, folds: int) -> None:
    t0 = time.monotonic()
    sha256 = dict(load_catalogue().get(distill.TEACHER_NAME).source.sha256 or {})
    teacher = Path("models/cache") / distill.TEACHER_NAME
    manifest = json.loads((teacher / "manifest.json").read_text())
    params = {**manifest["parameters"], "soft_label_folds": folds}
    train, val, held, _ = distill._splits(None)
    progress = StderrProgress()
    sets = {"train": [e.text for e in train + val], "ood_unlabelled": load_ood_unlabelled()}
    with tempfile.TemporaryDirectory(prefix="crossfit-") as work:
        source = distill.extract_teacher(distill.installed_teacher_parts(), sha256, Path(work) / "source")
        logits, records = distill.crossfit_soft_labels(
            source, train, sets, folds, params, ([e.text for e in val], [e.label for e in val]), held, Path(work),
            progress, out.parent / ".crossfit.checkpoint", 100)
    teacher_id = {**distill.soft_label_teacher(manifest), "folds": records}
    header = distill.write_soft_labels(out, teacher_id, sets, logits)
    print(json.dumps({"out": str(out), "seconds": round(time.monotonic() - t0, 1), "folds": records,
                      "sha256": header["sha256"]}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else distill.SOFT_LABEL_FOLDS)
