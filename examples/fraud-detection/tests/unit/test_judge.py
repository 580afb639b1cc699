"""The judge's arithmetic on predictions: no model is loaded, the labels are its own."""

import numpy as np
from fraud_detection.models import MODELS
from fraud_detection.pipeline import validation_table
from fraud_detection.validation import judged, parse_model_uri

SPEC = MODELS["card_fraud"]
Y = SPEC.x_y(validation_table(SPEC, "tiny"))[1]


def scored(pred, proba, **checks):
    return {"checks": {"loads": True, **checks}, "errors": [], "pred": list(pred), "proba": list(proba)}


def test_perfect_predictions_score_one_and_pass_every_check():
    checks, metrics, errors = judged(scored(Y, Y.astype(float)), Y)
    assert all(checks.values()) and not errors
    assert metrics["roc_auc"] == metrics["average_precision"] == metrics["recall"] == 1.0


def test_predictions_of_the_wrong_length_or_with_nan_fail_a_check():
    checks, metrics, errors = judged(scored(Y[:10], Y[:10]), Y)
    assert checks["shape"] is False and metrics == {} and "10 predictions for 800 rows" in errors[0]
    proba = np.where(np.arange(len(Y)) == 3, np.nan, 0.5)
    checks, metrics, _ = judged(scored(Y, proba), Y)
    assert checks["no_nan"] is False and metrics == {}


def test_a_model_that_never_flags_fraud_is_accurate_and_useless():
    checks, metrics, _ = judged(scored(np.zeros(len(Y)), np.full(len(Y), 0.01)), Y)
    assert metrics["accuracy"] > 0.9 and metrics["recall"] == 0 and metrics["roc_auc"] == 0.5


def test_a_model_that_could_not_load_has_no_metrics():
    checks, metrics, errors = judged({"checks": {"loads": False}, "errors": ["cannot load"]}, Y)
    assert checks == {"loads": False} and metrics == {} and errors == ["cannot load"]


def test_model_uris():
    assert parse_model_uri("models:/prod.fraud.card_fraud@champion") == ("prod.fraud.card_fraud", "champion")
    assert parse_model_uri("models:/card_fraud/3") == ("card_fraud", "3")
