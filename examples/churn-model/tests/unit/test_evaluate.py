import math

import numpy as np
from churn_model.evaluate import (
    METRIC_NAMES,
    compute_metrics,
    plot_confusion_matrix,
    plot_feature_importance,
    plot_roc_curve,
)


def test_perfect_predictions():
    y = np.array([0, 1, 1, 0, 1])
    metrics = compute_metrics(y, y, y.astype(float))
    assert tuple(metrics) == METRIC_NAMES
    assert all(value == 1.0 for value in metrics.values())


def test_known_values():
    y = np.array([1, 1, 0, 0])
    pred = np.array([1, 0, 1, 0])
    score = np.array([0.9, 0.4, 0.6, 0.1])
    metrics = compute_metrics(y, pred, score)
    assert metrics["accuracy"] == 0.5
    assert metrics["precision"] == 0.5 and metrics["recall"] == 0.5 and metrics["f1"] == 0.5
    assert metrics["roc_auc"] == 0.75


def test_single_class_roc_auc_is_nan():
    y = np.array([0, 0, 0])
    assert math.isnan(compute_metrics(y, y, np.array([0.1, 0.2, 0.3]))["roc_auc"])


def test_plots_are_pngs(tmp_path):
    y = np.array([0, 1, 1, 0, 1, 0])
    score = np.array([0.2, 0.7, 0.4, 0.3, 0.9, 0.6])
    paths = [
        plot_confusion_matrix(y, (score > 0.5).astype(int), tmp_path / "cm.png"),
        plot_roc_curve(y, score, tmp_path / "roc.png"),
        plot_feature_importance({"a": 0.7, "b": 0.3}, tmp_path / "fi.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
