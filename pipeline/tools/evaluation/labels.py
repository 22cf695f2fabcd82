"""Summary quality from labels read by people: what the lane would publish, and how often it is wrong.

Pure functions over candidates and labels (no model). A label judges one exact candidate text of
one source text (guide: summaries/GUIDE.md); a candidate nobody has labelled yet is counted as
unlabelled and never guessed at, so a change of model, prompt or decoding shows up here as
unlabelled text until someone has read it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.lanes.summary.policy import SummaryPolicy, decide
from pipeline.tools.evaluation.candidates import candidate_key
from pipeline.tools.evaluation.data import DataError

__all__ = ["LABELS_FILE", "Label", "judge_with_labels", "load_labels", "threshold_frontier"]

LABELS_FILE = Path(__file__).with_name("summaries") / "labels.jsonl"
_KINDS = frozenset({"number", "entity", "role", "place", "tense", "invented", "contradiction"})


@dataclass(frozen=True)
class Label:
    key: str
    text_id: str
    candidate: str
    faithful: bool
    complete: bool
    meta: bool
    degenerate: bool
    errors: tuple[dict[str, str], ...] = field(default=())

    @property
    def publishable(self) -> bool:
        return self.faithful and self.complete and not self.meta and not self.degenerate


def load_labels(path: Path = LABELS_FILE) -> dict[str, Label]:
    """Labels by candidate key; a malformed line is an error naming the file and line."""
    if not path.is_file():
        return {}
    labels: dict[str, Label] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            label = Label(key=obj["key"], text_id=obj["text_id"], candidate=obj["candidate"],
                          faithful=bool(obj["faithful"]), complete=bool(obj["complete"]), meta=bool(obj["meta"]),
                          degenerate=bool(obj["degenerate"]), errors=tuple(obj.get("errors") or ()))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}:{number}: not a label ({exc}); see {path.with_name('GUIDE.md')}") from None
        if label.key != candidate_key(label.text_id, label.candidate):
            raise DataError(f"{path}:{number}: key does not match text_id + candidate (edited candidate text?)")
        if not label.faithful and not label.errors:
            raise DataError(f"{path}:{number}: an unfaithful label must name its errors")
        if any(e.get("kind") not in _KINDS for e in label.errors):
            raise DataError(f"{path}:{number}: error kinds must be one of {sorted(_KINDS)}")
        labels[label.key] = label
    return labels


def judge_with_labels(text_ids: Sequence[str], sources: Sequence[str], candidates: Sequence[str | None],
                      labels: dict[str, Label], policy: SummaryPolicy) -> dict[str, Any]:
    """What the policy publishes for each candidate, scored against the labels.

    `error_share` is over published abstractive summaries that carry a label; `guard_recall` is
    the share of labelled bad candidates (unfaithful, cut, meta or degenerate) that the policy
    replaced; `coverage` counts texts whose published abstractive summary is labelled publishable.
    """
    published = published_labelled = published_bad = published_unfaithful = published_cut_or_meta = 0
    bad = bad_rejected = unlabelled = correct = 0
    unlabelled_published = 0
    reasons: dict[str, int] = {}
    for text_id, source, candidate in zip(text_ids, sources, candidates, strict=True):
        decision = decide(source, candidate, policy)
        label = labels.get(candidate_key(text_id, candidate)) if candidate and candidate.strip() else None
        abstractive = decision.method == "abstractive"
        if not abstractive:
            reason = (decision.fallback_reason or "unknown").split(":")[-1]
            reasons[reason] = reasons.get(reason, 0) + 1
        if candidate and candidate.strip() and label is None:
            unlabelled += 1
        if label is not None and not label.publishable:
            bad += 1
            bad_rejected += not abstractive
        if abstractive:
            published += 1
            if label is None:
                unlabelled_published += 1
                continue
            published_labelled += 1
            published_bad += not label.publishable
            published_unfaithful += not label.faithful
            published_cut_or_meta += (not label.complete) or label.meta
            correct += label.publishable
    n = len(text_ids)
    return {
        "n": n, "unlabelled": unlabelled, "unlabelled_published": unlabelled_published,
        "published_abstractive": published, "published_labelled": published_labelled,
        "published_with_error": published_unfaithful, "published_bad": published_bad,
        "published_cut_or_meta": published_cut_or_meta,
        "error_share": published_unfaithful / published_labelled if published_labelled else None,
        "bad_share": published_bad / published_labelled if published_labelled else None,
        "bad_candidates": bad, "guard_recall": bad_rejected / bad if bad else None,
        "coverage": correct / n if n else None, "fallback_reasons": reasons,
    }


def threshold_frontier(text_ids: Sequence[str], sources: Sequence[str], candidates: Sequence[str | None],
                       labels: dict[str, Label], thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Coverage and error share of the published summaries at each faithfulness threshold."""
    rows = []
    for threshold in thresholds:
        r = judge_with_labels(text_ids, sources, candidates, labels, SummaryPolicy(faithfulness_threshold=threshold))
        rows.append({"threshold": threshold, "coverage": r["coverage"], "bad_share": r["bad_share"],
                     "error_share": r["error_share"], "published": r["published_abstractive"],
                     "unlabelled_published": r["unlabelled_published"]})
    return rows
