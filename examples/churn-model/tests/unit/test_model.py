import pytest
from churn_model.data import generate
from churn_model.features import build_features, split, x_y
from churn_model.model import DEFAULT_PARAMS, ParamError, feature_importances, parse_params, train_model


def test_parse_params_defaults_and_types():
    params = parse_params(["n_estimators=20", "learning_rate=0.05", "max_depth=2.0"])
    assert params["n_estimators"] == 20 and isinstance(params["n_estimators"], int)
    assert params["learning_rate"] == 0.05
    assert params["max_depth"] == 2
    assert params["subsample"] == DEFAULT_PARAMS["subsample"]
    assert parse_params(None) == DEFAULT_PARAMS


@pytest.mark.parametrize(
    "item, message",
    [
        ("colour=red", "unknown parameter 'colour'"),
        ("n_estimators", "expected KEY=VALUE"),
        ("n_estimators=ten", "must be int"),
        ("n_estimators=1.5", "must be int"),
        ("learning_rate=fast", "must be float"),
        ("subsample=2", "between"),
    ],
)
def test_parse_params_errors(item, message):
    with pytest.raises(ParamError, match=message):
        parse_params([item])


def _data(n=600, seed=3):
    return split(build_features(generate(n, seed=seed)), seed=seed)


def test_model_learns_and_is_deterministic():
    train, holdout = _data()
    params = {"n_estimators": 30, "max_depth": 2}
    model = train_model(*x_y(train), params)
    x, y = x_y(holdout)
    accuracy = (model.predict(x) == y).mean()
    assert accuracy > 0.65
    again = train_model(*x_y(train), params)
    assert (again.predict_proba(x) == model.predict_proba(x)).all()


def test_feature_importances_cover_inputs():
    train, _ = _data(300)
    model = train_model(*x_y(train), {"n_estimators": 10})
    importances = feature_importances(model)
    assert abs(sum(importances.values()) - 1) < 1e-6
    assert "tenure_months" in importances
    assert any(name.startswith("contract_") for name in importances)


def test_toy_pipeline_is_deterministic(tmp_path):
    """Same dataset + params -> same tables and the same metrics (what train/evaluate log)."""
    from churn_model.data import load_dataset
    from churn_model.evaluate import compute_metrics, score

    def run():
        train, holdout = split(build_features(load_dataset("toy")), seed=7)
        model = train_model(*x_y(train), {"n_estimators": 40})
        x, y = x_y(holdout)
        return train, compute_metrics(y, *score(model, x))

    (train_a, metrics_a), (train_b, metrics_b) = run(), run()
    assert train_a.equals(train_b)
    assert metrics_a == metrics_b
    assert metrics_a["accuracy"] > 0.7
