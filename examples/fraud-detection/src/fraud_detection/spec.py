"""What every model of the project provides, so the steps stay the same for each: data, features, estimator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the model's selector: the last part of its registry names (dev.fraud.card_fraud -> card_fraud)
    description: str
    family: str  # the estimator, as a run tag
    balanced: bool  # fit with class-balanced sample weights (the rare class weighted up)
    id_column: str
    target: str
    numeric: tuple[str, ...]  # float64 model inputs
    categorical: tuple[str, ...]  # string model inputs
    default_params: dict[str, Any]
    validation_seed: int  # the validation set's seed: no training run may use it
    floors: dict[str, float]  # the judge's minimum metrics on the validation set (a version below fails)
    generate: Callable[[int, int], pd.DataFrame]  # (rows, seed) -> raw table with the label
    engineer: Callable[[pd.DataFrame], pd.DataFrame]  # raw -> engineered columns (inputs only)
    estimator: Callable[[dict[str, Any]], Any]  # full params -> unfitted scikit-learn classifier

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def build_features(self, raw: pd.DataFrame) -> pd.DataFrame:
        """The feature table: id, the inputs in `features` order (typed), and the label if present."""
        missing = [c for c in (self.id_column,) if c not in raw.columns]
        if missing:
            raise ValueError(f"{self.name}: raw data is missing columns: {', '.join(missing)}")
        engineered = self.engineer(raw)
        out = pd.DataFrame({self.id_column: raw[self.id_column].astype(str)})
        for column in self.numeric:
            out[column] = engineered[column].astype("float64")
        for column in self.categorical:
            out[column] = engineered[column].astype(str)
        if self.target in raw.columns:
            out[self.target] = raw[self.target].astype(int)
        return out

    def fit(self, params: dict[str, Any], x: pd.DataFrame, y: pd.Series):
        """The estimator fitted on (x, y), with balanced sample weights when the model asks for them."""
        from sklearn.utils.class_weight import compute_sample_weight

        weights = {"classifier__sample_weight": compute_sample_weight("balanced", y)} if self.balanced else {}
        return self.estimator(params).fit(x, y, **weights)

    def x_y(self, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        return table[list(self.features)], table[self.target]

    def read_table(self, path) -> pd.DataFrame:
        """A feature table written with `to_csv`, with the dtypes the model expects."""
        dtypes: dict[str, Any] = {c: "float64" for c in self.numeric}
        dtypes.update({c: str for c in self.categorical})
        dtypes[self.id_column] = str
        return pd.read_csv(path, dtype=dtypes)


def preprocess(spec: ModelSpec):
    """Scaling and one-hot encoding of the spec's columns: built-in components only, so whoever loads the
    registered model needs scikit-learn and nothing of this project."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(spec.numeric)),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(spec.categorical)),
        ]
    )


def sigmoid(x):
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))
