import pandas as pd
import pytest
from churn_model.data import DATASET_SIZES, RAW_COLUMNS, generate, load_dataset


def test_same_seed_same_rows():
    pd.testing.assert_frame_equal(generate(300, seed=3), generate(300, seed=3))


def test_other_seed_other_rows():
    assert not generate(300, seed=3).equals(generate(300, seed=4))


def test_toy_dataset_shape_and_label():
    df = load_dataset("toy")
    assert len(df) == DATASET_SIZES["toy"] == 2000
    assert tuple(df.columns) == RAW_COLUMNS
    assert set(df["churn"].unique()) == {0, 1}
    assert 0.15 < df["churn"].mean() < 0.4
    assert not df.isna().any().any()


def test_label_depends_on_contract():
    df = generate(5000, seed=11)
    rates = df.groupby("contract")["churn"].mean()
    assert rates["month-to-month"] > rates["one-year"] > rates["two-year"]


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'huge'"):
        load_dataset("huge")
