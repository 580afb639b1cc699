"""Which model a registry name trains, and the hyper-parameters each model takes."""

import pytest
from fraud_detection.models import MODELS, ModelError, ParamError, parse_params, select, selector, split_params


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("dev.fraud.card_fraud", "card_fraud"),
        ("staging.fraud.ato_risk", "ato_risk"),
        ("prod.fraud.card_fraud", "card_fraud"),
        ("card_fraud", "card_fraud"),
        ("ato_risk-dev", "ato_risk"),
        ("main.fraud.card_fraud_staging", "card_fraud"),
    ],
)
def test_the_registry_names_last_part_names_the_model(name, model):
    assert selector(name) == model
    assert select(name).name == model


def test_an_explicit_model_wins_and_an_unknown_one_is_named():
    assert select("dev.fraud.card_fraud", "ato_risk").name == "ato_risk"
    with pytest.raises(ModelError, match=r"'dev.fraud.churn' names no model .*known: card_fraud, ato_risk"):
        select("dev.fraud.churn")
    with pytest.raises(ModelError, match="name the model"):
        select("")


def test_each_model_keeps_its_own_defaults_and_takes_the_same_keys():
    card, ato = parse_params(MODELS["card_fraud"], []), parse_params(MODELS["ato_risk"], [])
    assert set(card) == set(ato) and card != ato
    params = parse_params(MODELS["ato_risk"], split_params("n_estimators=40, learning_rate=0.05"))
    assert (params["n_estimators"], params["learning_rate"], params["max_depth"]) == (40, 0.05, ato["max_depth"])


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("C=1", r"unknown parameter 'C' for card_fraud \(known parameters: learning_rate, max_depth"),
        ("max_depth=2.5", "must be int"),
        ("n_estimators=lots", "must be int"),
        ("max_depth=0", "between 1 and 32"),
        ("max_depth", "expected KEY=VALUE"),
    ],
)
def test_a_bad_parameter_says_why(item, message):
    with pytest.raises(ParamError, match=message):
        parse_params(MODELS["card_fraud"], [item])
