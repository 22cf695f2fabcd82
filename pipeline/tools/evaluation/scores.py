"""Evaluation metrics: pure functions over plain sequences (no models, no I/O).

Conventions, so numbers in the report mean one thing:
* macro-F1 averages over the *gold* classes by default: a 3-class model scored on binary
  data is not charged a third, zero "neutral" F1 (its neutral answers already count as
  errors in the other classes' recall).
* ECE: equal-width confidence bins over [0, 1] (a confidence of exactly k/n falls in the
  bin it closes, 0 in the first), |accuracy - mean confidence| weighted by bin share.
* percentiles interpolate linearly between order statistics (numpy's default).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["accuracy", "bootstrap_interval", "expected_calibration_error", "macro_f1", "paired_difference", "percentile"]


def _check_pairs(gold: Sequence[object], predicted: Sequence[object]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("no examples")


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    _check_pairs(gold, predicted)
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def macro_f1(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-class F1 over `labels` (default: the classes present in `gold`).

    A class never predicted and never gold contributes nothing; a class with no true
    positives has F1 = 0.
    """
    _check_pairs(gold, predicted)
    classes = list(dict.fromkeys(labels)) if labels is not None else sorted(set(gold))
    scores = []
    for label in classes:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    """Expected calibration error of top-label confidences (0 = perfectly calibrated)."""
    _check_pairs(confidences, correct)
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if conf.min() < 0.0 or conf.max() > 1.0:
        raise ValueError("confidences must lie in [0, 1]")
    # bin k holds (k/n, (k+1)/n]; ceil maps a confidence on an edge into the bin it closes
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for k in range(n_bins):
        in_bin = bins == k
        if in_bin.any():
            ece += in_bin.mean() * abs(hit[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, linear interpolation."""
    if not len(values):
        raise ValueError("no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError("q must be within 0..100")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def bootstrap_interval(correct: Sequence[bool], *, n_boot: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of an accuracy (resampling texts with replacement), seeded."""
    hit = np.asarray(correct, dtype=np.float64)
    if not hit.size:
        raise ValueError("no examples")
    rng = np.random.default_rng(seed)
    means = hit[rng.integers(0, hit.size, size=(n_boot, hit.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def paired_difference(a_correct: Sequence[bool], b_correct: Sequence[bool], *, n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> dict[str, float | int]:
    """Accuracy of A minus accuracy of B on the same texts: paired bootstrap interval and exact McNemar p.

    Paired because both models answer the same texts: resampling texts keeps each text's pair of
    outcomes together, which is what makes a 1-point difference on 1,275 texts detectable at all.
    McNemar's exact test looks at the discordant texts only (A right and B wrong, or the reverse).
    """
    a = np.asarray(a_correct, dtype=np.float64)
    b = np.asarray(b_correct, dtype=np.float64)
    if a.shape != b.shape or not a.size:
        raise ValueError(f"paired outcomes needed: {a.size} vs {b.size}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    tail = 100 * (1 - level) / 2
    a_only = int(((a == 1) & (b == 0)).sum())
    b_only = int(((a == 0) & (b == 1)).sum())
    return {"difference": float(a.mean() - b.mean()), "low": float(np.percentile(diffs, tail)),
            "high": float(np.percentile(diffs, 100 - tail)), "a_only": a_only, "b_only": b_only,
            "mcnemar_p": _mcnemar_exact(a_only, b_only)}


def _mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p: binomial(n = discordant, 1/2) tail, doubled, capped at 1."""
    from math import comb

    n = a_only + b_only
    if n == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
