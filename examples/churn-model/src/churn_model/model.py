"""The scikit-learn pipeline and its hyper-parameters."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from churn_model.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES

#: Hyper-parameters `train.py --param k=v` accepts, with their defaults (the type of the
#: default is the type a value is parsed as).
DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 100,
    "max_depth": 3,
    "learning_rate": 0.1,
    "subsample": 1.0,
    "min_samples_leaf": 20,
    "random_state": 42,
}


class ParamError(ValueError):
    """A `--param` that is unknown or has a bad value; the message says which and why."""


_LIMITS = {
    "n_estimators": (1, 5_000),
    "max_depth": (1, 32),
    "learning_rate": (1e-6, 10.0),
    "subsample": (1e-6, 1.0),
    "min_samples_leaf": (1, 100_000),
    "random_state": (0, 2**32 - 1),
}


def split_params(text: str | None) -> list[str]:
    """`"n_estimators=200,max_depth=4"` (commas and/or spaces) -> `["n_estimators=200", "max_depth=4"]`."""
    return [item for item in re.split(r"[,\s]+", text or "") if item]


def parse_params(items: Iterable[str] | None) -> dict[str, Any]:
    """`["n_estimators=200", "learning_rate=0.05"]` -> the full parameter dict (defaults filled).

    Raises ParamError with a readable message for a malformed item, an unknown key or a value
    of the wrong type or range.
    """
    params = dict(DEFAULT_PARAMS)
    known = ", ".join(sorted(DEFAULT_PARAMS))
    for item in items or ():
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise ParamError(f"bad --param {item!r}: expected KEY=VALUE (known keys: {known})")
        if key not in DEFAULT_PARAMS:
            raise ParamError(f"unknown parameter {key!r} (known parameters: {known})")
        kind = type(DEFAULT_PARAMS[key])
        try:
            if kind is int:
                as_float = float(raw)
                if not as_float.is_integer():
                    raise ValueError
                value: Any = int(as_float)
            else:
                value = kind(raw)
        except ValueError:
            raise ParamError(f"parameter {key!r} must be {kind.__name__}, got {raw!r}") from None
        low, high = _LIMITS[key]
        if not low <= value <= high:
            raise ParamError(f"parameter {key!r} must be between {low} and {high}, got {raw!r}")
        params[key] = value
    return params


def build_pipeline(params: dict[str, Any] | None = None):
    """Preprocessing (scaling, one-hot) + gradient-boosted trees, all built-in components."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    merged = {**DEFAULT_PARAMS, **(params or {})}
    unknown = set(merged) - set(DEFAULT_PARAMS)
    if unknown:
        raise ParamError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(NUMERIC_FEATURES)),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL_FEATURES)),
        ]
    )
    classifier = GradientBoostingClassifier(**merged)
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def train_model(x, y, params: dict[str, Any] | None = None):
    pipeline = build_pipeline(params)
    pipeline.fit(x, y)
    return pipeline


def feature_importances(pipeline) -> dict[str, float]:
    """Importance per (transformed) input column, largest first."""
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    values = pipeline.named_steps["classifier"].feature_importances_
    pairs = sorted(zip(names, values), key=lambda p: -p[1])
    return {str(name).split("__", 1)[-1]: float(value) for name, value in pairs}
