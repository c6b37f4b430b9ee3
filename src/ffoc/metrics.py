"""Detection metrics from continuous scores and from thresholded labels."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)

__all__ = ["detection_metrics", "METRIC_NAMES"]

METRIC_NAMES = ("accuracy", "f1", "auroc", "auprc")


def detection_metrics(y_true, anomaly_score, is_outlier) -> dict[str, float]:
    """Return accuracy, F1, AUROC, AUPRC and the confusion matrix; anomalies are the positive class.

    AUROC and AUPRC come from the continuous ``anomaly_score`` (higher = more
    anomalous), never from thresholded labels; accuracy, F1 and the confusion
    matrix come from ``is_outlier``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 for anomalies, 0 for normal samples.
    anomaly_score : array-like of shape (n_samples,)
        Higher means more anomalous (for example ``-detector.score_samples(X)``).
    is_outlier : array-like of shape (n_samples,)
        Boolean (or 0/1) decisions, True for predicted outliers.

    Examples
    --------
    >>> m = detection_metrics([0, 0, 1], [0.1, 0.2, 0.9], [False, False, True])
    >>> m["auroc"], m["f1"], m["tp"]
    (1.0, 1.0, 1)
    """
    y_true = np.asarray(y_true).astype(int)
    anomaly_score = np.asarray(anomaly_score, dtype=np.float64)
    predicted = np.asarray(is_outlier).astype(int)
    if set(np.unique(y_true)) - {0, 1}:
        raise ValueError(f"y_true must contain only 0 (normal) and 1 (anomaly); got {np.unique(y_true)}.")
    both_classes = len(np.unique(y_true)) == 2
    tn, fp, fn, tp = confusion_matrix(y_true, predicted, labels=[0, 1]).ravel()
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "f1": float(f1_score(y_true, predicted, zero_division=0.0)),
        "auroc": float(roc_auc_score(y_true, anomaly_score)) if both_classes else float("nan"),
        "auprc": float(average_precision_score(y_true, anomaly_score)) if both_classes else float("nan"),
        "tn": int(tn),
        "fp": int(fp),
        "fn": int(fn),
        "tp": int(tp),
    }
