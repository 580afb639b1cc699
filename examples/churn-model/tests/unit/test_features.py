import numpy as np
from churn_model.data import generate
from churn_model.features import (
    CATEGORICAL_FEATURES,
    FEATURES,
    ID_COLUMN,
    NUMERIC_FEATURES,
    TARGET,
    build_features,
    read_table,
    split,
    write_table,
    x_y,
)


def test_build_features_columns_and_types():
    table = build_features(generate(200, seed=1))
    assert list(table.columns) == [ID_COLUMN, *FEATURES, TARGET]
    for column in NUMERIC_FEATURES:
        assert table[column].dtype == np.float64, column
    for column in CATEGORICAL_FEATURES:
        assert table[column].map(type).eq(str).all(), column
    assert not table.isna().any().any()
    assert np.isfinite(table[list(NUMERIC_FEATURES)].to_numpy()).all()


def test_engineered_features():
    raw = generate(200, seed=1)
    table = build_features(raw)
    new = raw["tenure_months"] < 6
    assert (table.loc[new, "is_new_customer"] == 1).all()
    assert (table.loc[~new, "is_new_customer"] == 0).all()
    zero = raw["tenure_months"] == 0
    assert np.allclose(table.loc[zero, "avg_monthly_spend"], raw.loc[zero, "monthly_charges"])


def test_features_without_label():
    table = build_features(generate(50, seed=1).drop(columns=[TARGET]))
    assert TARGET not in table.columns


def test_split_is_stratified_and_deterministic():
    table = build_features(generate(1000, seed=2))
    train, holdout = split(table, holdout_fraction=0.2, seed=5)
    assert len(train) == 800 and len(holdout) == 200
    assert abs(train[TARGET].mean() - holdout[TARGET].mean()) < 0.02
    assert set(train[ID_COLUMN]).isdisjoint(holdout[ID_COLUMN])
    train2, _ = split(table, holdout_fraction=0.2, seed=5)
    assert train.equals(train2)


def test_table_roundtrip(tmp_path):
    table = build_features(generate(100, seed=1))
    write_table(table, tmp_path / "t.csv")
    back = read_table(tmp_path / "t.csv")
    x1, y1 = x_y(table)
    x2, y2 = x_y(back)
    assert x1.equals(x2) and y1.equals(y2)
