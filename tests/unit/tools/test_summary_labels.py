"""The committed summary evaluation set: frozen texts, labels keyed to exact text, the judging arithmetic."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from pipeline.lanes.summary.policy import SummaryPolicy
from pipeline.tools.evaluation.candidates import candidate_key
from pipeline.tools.evaluation.data import DataError
from pipeline.tools.evaluation.labels import judge_with_labels, load_labels
from pipeline.tools.evaluation.longtexts import TEXTS_FILE, load_long_texts, select_long_texts


def test_the_committed_texts_are_the_selection_rules_output() -> None:
    committed = [json.loads(line) for line in TEXTS_FILE.read_text(encoding="utf-8").splitlines()]
    assert committed == [asdict(t) for t in select_long_texts()]  # a changed package or rule shows up here


def test_the_test_third_is_frozen_by_draw_index() -> None:
    texts = load_long_texts()
    assert len(texts) == 72 and len(load_long_texts("test")) == 24
    for t in texts:
        assert (t.split == "test") == (int(t.id.rsplit("-", 1)[1]) % 3 == 0)
        assert 500 <= len(t.text) <= 1200


def test_committed_labels_are_keyed_to_committed_texts() -> None:
    labels = load_labels()
    ids = {t.id for t in load_long_texts()}
    assert len(labels) >= 150
    assert all(label.text_id in ids for label in labels.values())
    assert any(not label.faithful for label in labels.values()) and any(label.publishable for label in labels.values())


def test_an_edited_candidate_no_longer_matches_its_label(tmp_path: Path) -> None:
    line = {"key": candidate_key("x-00", "A said B."), "text_id": "x-00", "candidate": "A said C.",
            "faithful": True, "errors": [], "complete": True, "meta": False, "degenerate": False}
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="key does not match"):
        load_labels(path)


def _label(tmp_path: Path, rows: list[dict]) -> dict:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps({"errors": [], "complete": True, "meta": False, "degenerate": False, **r,
                                        "key": candidate_key(r["text_id"], r["candidate"])}) + "\n" for r in rows),
                    encoding="utf-8")
    return load_labels(path)


def test_judging_counts_published_errors_guard_recall_and_unlabelled(tmp_path: Path) -> None:
    source = ("The council opened the Elm Street library every day until nine. Parents had asked for it for years. "
              "The pool on River Road will be next.")
    good = "The council opened the Elm Street library every day until nine."
    wrong = "The council opened the River Road library every day until nine."  # a name run the source never forms
    meta = "The text describes a library."
    labels = _label(tmp_path, [
        {"text_id": "a", "candidate": good, "faithful": True},
        {"text_id": "b", "candidate": wrong, "faithful": False,
         "errors": [{"span": "River Road library", "kind": "place", "why": "the library is on Elm Street"}]},
        {"text_id": "c", "candidate": meta, "faithful": True, "meta": True},
    ])
    result = judge_with_labels(["a", "b", "c", "d"], [source] * 4, [good, wrong, meta, "Unread text here."],
                               labels, SummaryPolicy())
    assert result["unlabelled"] == 1
    assert result["bad_candidates"] == 2
    assert result["guard_recall"] == 1.0          # the meta one and the misplaced name are both replaced
    assert result["published_labelled"] == 1 and result["published_with_error"] == 0
    assert result["coverage"] == 0.25
