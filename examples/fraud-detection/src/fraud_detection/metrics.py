"""The metrics of a fraud classifier: threshold-free ranking (roc_auc, average_precision) first, since fraud
is rare and accuracy alone says little (a model that never flags fraud is 95 % accurate)."""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("roc_auc", "average_precision", "precision", "recall", "f1", "accuracy")


def compute_metrics(y_true, y_pred, y_score) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y_true = np.asarray(y_true)
    both = len(np.unique(y_true)) == 2
    metrics = {
        "roc_auc": roc_auc_score(y_true, y_score) if both else float("nan"),
        "average_precision": average_precision_score(y_true, y_score) if both else float("nan"),
        "precision": precision_score(y_true, y_pred, zero_division=0),
        "recall": recall_score(y_true, y_pred, zero_division=0),
        "f1": f1_score(y_true, y_pred, zero_division=0),
        "accuracy": accuracy_score(y_true, y_pred),
    }
    return {name: round(float(metrics[name]), 6) for name in METRIC_NAMES}


def score(model, x) -> tuple[np.ndarray, np.ndarray]:
    """(predicted labels, probability of the positive class) for the rows of `x`."""
    return np.asarray(model.predict(x)), np.asarray(model.predict_proba(x))[:, 1]
