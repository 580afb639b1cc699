"""card_fraud: is a card transaction fraudulent? Gradient boosting, fraud weighted up, on transaction features.

Synthetic transactions from a seed: amount against the card's usual spend, merchant category, channel,
hour, distance from home, a foreign merchant, the card's age and its last-24-hour velocity. Fraud is a
logistic function of these plus noise: about 5 % of transactions, as imbalanced as real card data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fraud_detection.spec import ModelSpec, preprocess, sigmoid

CATEGORIES = ("grocery", "fuel", "restaurant", "travel", "electronics", "digital_goods", "gambling")
CATEGORY_P = (0.28, 0.14, 0.2, 0.08, 0.1, 0.14, 0.06)
CATEGORY_RISK = {"grocery": -0.6, "fuel": -0.3, "restaurant": -0.4, "travel": 0.3, "electronics": 0.7,
                 "digital_goods": 0.9, "gambling": 1.1}  # fmt: skip
CHANNELS = ("chip", "contactless", "swipe", "online")
CHANNEL_P = (0.36, 0.26, 0.08, 0.3)

DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 150,
    "max_depth": 3,
    "learning_rate": 0.1,
    "min_samples_leaf": 20,
    "random_state": 42,
}


def generate(n_rows: int, seed: int) -> pd.DataFrame:
    """`n_rows` transactions with a 0/1 `is_fraud` label, fully determined by `seed`."""
    if n_rows <= 0:
        raise ValueError("n_rows must be positive")
    rng = np.random.default_rng(seed)
    avg_amount = np.round(rng.lognormal(3.6, 0.6, n_rows), 2)  # the card's 30-day average spend
    category = rng.choice(CATEGORIES, size=n_rows, p=CATEGORY_P)
    channel = rng.choice(CHANNELS, size=n_rows, p=CHANNEL_P)
    spike = rng.random(n_rows) < 0.08  # an unusually large purchase
    amount = np.round(avg_amount * rng.lognormal(0.0, 0.45, n_rows) * np.where(spike, rng.uniform(3, 12, n_rows), 1), 2)
    hour = rng.integers(0, 24, n_rows)
    foreign = (rng.random(n_rows) < 0.07).astype(int)
    distance = np.round(np.where(foreign == 1, rng.gamma(2.0, 900.0, n_rows), rng.gamma(1.2, 12.0, n_rows)), 1)
    card_age = rng.integers(1, 3650, n_rows)
    txn_24h = rng.poisson(2.0, n_rows) + spike * rng.poisson(2.5, n_rows)

    logit = (
        -6.4
        + 1.6 * np.log(amount / avg_amount)
        + 1.5 * np.vectorize(CATEGORY_RISK.get)(category)
        + 1.4 * (channel == "online")
        + 0.8 * (channel == "swipe")
        + 1.2 * ((hour <= 5) | (hour >= 23))
        + 1.6 * foreign
        + 0.5 * np.log1p(distance / 50)
        + 0.35 * txn_24h
        - 0.8 * (card_age > 365)
        + rng.normal(0, 0.3, n_rows)
    )
    fraud = (rng.random(n_rows) < sigmoid(logit)).astype(int)
    return pd.DataFrame(
        {
            "transaction_id": [f"T{seed % 100_000:05d}-{i:07d}" for i in range(n_rows)],
            "amount": amount,
            "avg_amount_30d": avg_amount,
            "merchant_category": category,
            "channel": channel,
            "hour": hour,
            "is_foreign": foreign,
            "distance_from_home_km": distance,
            "card_age_days": card_age,
            "txn_count_24h": txn_24h,
            "is_fraud": fraud,
        }
    )


NUMERIC = ("log_amount", "amount_ratio", "is_night", "is_foreign", "log_distance", "card_age_years", "txn_count_24h")
CATEGORICAL = ("merchant_category", "channel")


def engineer(raw: pd.DataFrame) -> pd.DataFrame:
    hour = raw["hour"].astype(int)
    return pd.DataFrame(
        {
            "log_amount": np.log1p(raw["amount"].astype(float)),
            "amount_ratio": raw["amount"] / raw["avg_amount_30d"].clip(lower=1.0),
            "is_night": ((hour <= 5) | (hour >= 23)).astype(float),
            "is_foreign": raw["is_foreign"].astype(float),
            "log_distance": np.log1p(raw["distance_from_home_km"].astype(float)),
            "card_age_years": raw["card_age_days"] / 365.0,
            "txn_count_24h": raw["txn_count_24h"].astype(float),
            "merchant_category": raw["merchant_category"],
            "channel": raw["channel"],
        }
    )


def estimator(params: dict[str, Any]):
    """Preprocessing + stochastic gradient boosting (each tree sees 80 % of the rows)."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    classifier = GradientBoostingClassifier(**params, subsample=0.8)
    return Pipeline([("preprocess", preprocess(SPEC)), ("classifier", classifier)])


SPEC = ModelSpec(
    name="card_fraud",
    description="Card transaction fraud classifier (fraud-detection example).",
    family="gradient_boosting, fraud weighted up",
    balanced=True,
    id_column="transaction_id",
    target="is_fraud",
    numeric=NUMERIC,
    categorical=CATEGORICAL,
    default_params=DEFAULT_PARAMS,
    validation_seed=20_250_301,
    floors={"roc_auc": 0.8, "average_precision": 0.25},
    generate=generate,
    engineer=engineer,
    estimator=estimator,
)
