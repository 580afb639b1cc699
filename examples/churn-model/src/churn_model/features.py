"""Feature engineering and the train/holdout split.

The engineered columns are computed here, on the DataFrame, so the model itself is a
plain scikit-learn pipeline of built-in components (no project code inside the pickle):
whoever loads the registered model only needs scikit-learn, and feeds it the table that
`build_features` returns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ID_COLUMN = "customer_id"
TARGET = "churn"

#: Numeric model inputs (all float64 in the feature table).
NUMERIC_FEATURES = (
    "age",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "num_products",
    "paperless_billing",
    "avg_monthly_spend",
    "charges_per_product",
    "support_calls_per_year",
    "is_new_customer",
)
#: Categorical model inputs (strings).
CATEGORICAL_FEATURES = ("contract", "internet_service", "payment_method", "region")
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES

DEFAULT_HOLDOUT_FRACTION = 0.2


def build_features(raw: pd.DataFrame) -> pd.DataFrame:
    """The feature table: id, the model inputs in `FEATURES` order, and the label if present."""
    missing = [
        c
        for c in (
            ID_COLUMN,
            "age",
            "tenure_months",
            "monthly_charges",
            "total_charges",
            "support_calls",
            "num_products",
            "paperless_billing",
            *CATEGORICAL_FEATURES,
        )
        if c not in raw.columns
    ]
    if missing:
        raise ValueError(f"raw data is missing columns: {', '.join(missing)}")
    tenure = raw["tenure_months"].astype("float64")
    out = pd.DataFrame({ID_COLUMN: raw[ID_COLUMN].astype(str)})
    for column in (
        "age",
        "tenure_months",
        "monthly_charges",
        "total_charges",
        "support_calls",
        "num_products",
        "paperless_billing",
    ):
        out[column] = raw[column].astype("float64")
    out["avg_monthly_spend"] = np.where(
        tenure > 0, raw["total_charges"] / tenure.where(tenure > 0, 1.0), raw["monthly_charges"]
    ).astype("float64")
    out["charges_per_product"] = (raw["monthly_charges"] / raw["num_products"].clip(lower=1)).astype("float64")
    out["support_calls_per_year"] = (raw["support_calls"] * 12.0 / tenure.clip(lower=1.0)).astype("float64")
    out["is_new_customer"] = (tenure < 6).astype("float64")
    for column in CATEGORICAL_FEATURES:
        out[column] = raw[column].astype(str)
    if TARGET in raw.columns:
        out[TARGET] = raw[TARGET].astype(int)
    return out[[ID_COLUMN, *FEATURES, *([TARGET] if TARGET in raw.columns else [])]]


def split(
    features: pd.DataFrame, *, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded train/holdout split."""
    from sklearn.model_selection import train_test_split

    if not 0 < holdout_fraction < 1:
        raise ValueError("holdout_fraction must be between 0 and 1")
    train, holdout = train_test_split(
        features, test_size=holdout_fraction, random_state=seed, stratify=features[TARGET]
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def x_y(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Model inputs and label of a feature table."""
    return table[list(FEATURES)], table[TARGET]


def read_table(path) -> pd.DataFrame:
    """Read a feature table written by `write_table`, with the dtypes the model expects."""
    dtypes = {c: "float64" for c in NUMERIC_FEATURES}
    dtypes.update({c: str for c in CATEGORICAL_FEATURES})
    dtypes[ID_COLUMN] = str
    return pd.read_csv(path, dtype=dtypes)


def write_table(table: pd.DataFrame, path) -> None:
    table.to_csv(path, index=False)
