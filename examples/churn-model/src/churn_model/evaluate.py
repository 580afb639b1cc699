"""Metrics and plots (matplotlib with the Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

METRIC_NAMES = ("accuracy", "f1", "roc_auc", "precision", "recall")


def compute_metrics(y_true, y_pred, y_score) -> dict[str, float]:
    """accuracy, f1, roc_auc, precision, recall of a binary classifier (positive class 1)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    y_true = np.asarray(y_true)
    metrics = {
        "accuracy": accuracy_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred, zero_division=0),
        "precision": precision_score(y_true, y_pred, zero_division=0),
        "recall": recall_score(y_true, y_pred, zero_division=0),
        "roc_auc": roc_auc_score(y_true, y_score) if len(np.unique(y_true)) == 2 else float("nan"),
    }
    return {name: round(float(metrics[name]), 6) for name in METRIC_NAMES}


def score(model, x) -> tuple[np.ndarray, np.ndarray]:
    """(predicted labels, probability of churn) for the rows of `x`."""
    proba = np.asarray(model.predict_proba(x))[:, 1]
    pred = np.asarray(model.predict(x))
    return pred, proba


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(y_true, y_pred, path: Path, title: str = "Confusion matrix") -> Path:
    from sklearn.metrics import confusion_matrix

    plt = _pyplot()
    matrix = confusion_matrix(y_true, y_pred, labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
    ax.set_xticks([0, 1], ["stays", "churns"])
    ax.set_yticks([0, 1], ["stays", "churns"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_roc_curve(y_true, y_score, path: Path, title: str = "ROC curve") -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fpr, tpr, _ = roc_curve(y_true, y_score)
    auc = roc_auc_score(y_true, y_score)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.plot(fpr, tpr, label=f"AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_feature_importance(importances: dict[str, float], path: Path, top: int = 12) -> Path:
    plt = _pyplot()
    items = list(importances.items())[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.barh([name for name, _ in items], [value for _, value in items])
    ax.set_xlabel("importance")
    ax.set_title("Feature importance")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
