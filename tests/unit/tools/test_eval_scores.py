"""Evaluation metrics on small cases computed by hand."""

from __future__ import annotations

import pytest

from pipeline.tools.evaluation.scores import accuracy, expected_calibration_error, macro_f1, percentile


def test_accuracy() -> None:
    assert accuracy(["pos", "neg", "pos", "neg"], ["pos", "pos", "pos", "neg"]) == 0.75
    with pytest.raises(ValueError):
        accuracy(["pos"], [])


def test_macro_f1_by_hand() -> None:
    gold = ["pos", "pos", "pos", "neg", "neg"]
    pred = ["pos", "pos", "neg", "neg", "pos"]
    # pos: tp 2, fp 1, fn 1 -> F1 = 4/6; neg: tp 1, fp 1, fn 1 -> F1 = 2/4
    assert macro_f1(gold, pred) == pytest.approx((4 / 6 + 2 / 4) / 2)


def test_macro_f1_ignores_predicted_only_classes_unless_asked() -> None:
    gold = ["pos", "neg", "pos", "neg"]
    pred = ["pos", "neutral", "pos", "neg"]
    # gold classes: pos F1 = 1; neg tp 1, fn 1 -> 2/3. With "neutral" in the labels it adds a 0.
    assert macro_f1(gold, pred) == pytest.approx((1 + 2 / 3) / 2)
    assert macro_f1(gold, pred, labels=["neg", "neutral", "pos"]) == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_macro_f1_of_a_never_predicted_class_is_zero() -> None:
    assert macro_f1(["a", "b"], ["a", "a"]) == pytest.approx((2 / 3 + 0) / 2)


def test_ece_by_hand() -> None:
    # Bin (0.8, 0.9]: confidences 0.9, 0.9 -> mean 0.9, accuracy 1/2 -> gap 0.4, weight 2/4.
    # Bin (0.5, 0.6]: confidences 0.6, 0.6 -> mean 0.6, accuracy 1 -> gap 0.4, weight 2/4.
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.6], [True, False, True, True]) == pytest.approx(0.4)


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    conf = [0.75] * 4
    assert expected_calibration_error(conf, [True, True, True, False]) == pytest.approx(0.0)


def test_ece_bin_edges_and_extremes() -> None:
    # 1.0 goes to the last bin, 0.0 to the first; 0.5 closes bin (0.4, 0.5].
    assert expected_calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)
    assert expected_calibration_error([0.5, 0.5], [True, False], n_bins=2) == pytest.approx(0.0)
    assert expected_calibration_error([0.5], [True], n_bins=1) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        expected_calibration_error([1.2], [True])


def test_percentiles_interpolate() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 25.0
    assert percentile(values, 0) == 10.0 and percentile(values, 100) == 40.0
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    with pytest.raises(ValueError):
        percentile([], 50)
