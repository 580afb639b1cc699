"""ato_risk: is a login an account takeover? Gradient boosting on login-session features.

Synthetic logins from a seed: failed attempts in the last hour, a new device or country, the IP's
reputation, how many IPs the account logged in from today, a recent password reset or e-mail change,
MFA, the account's age and the channel. Takeover is a logistic function of these plus noise: about 5 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fraud_detection.spec import ModelSpec, preprocess, sigmoid

CHANNELS = ("web", "ios", "android", "api")
CHANNEL_P = (0.45, 0.25, 0.25, 0.05)

DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 120,
    "max_depth": 3,
    "learning_rate": 0.1,
    "min_samples_leaf": 10,
    "random_state": 42,
}


def generate(n_rows: int, seed: int) -> pd.DataFrame:
    """`n_rows` login sessions with a 0/1 `is_takeover` label, fully determined by `seed`."""
    if n_rows <= 0:
        raise ValueError("n_rows must be positive")
    rng = np.random.default_rng(seed)
    failed = rng.poisson(0.3, n_rows) + (rng.random(n_rows) < 0.05) * rng.poisson(4.0, n_rows)
    new_device = (rng.random(n_rows) < 0.12).astype(int)
    new_country = (rng.random(n_rows) < 0.04 + 0.1 * new_device).astype(int)
    ip_risk = np.round(rng.beta(1.2, 6.0, n_rows), 3)
    distinct_ips = 1 + rng.poisson(0.4, n_rows)
    reset_hours = np.round(rng.exponential(24 * 90, n_rows), 1)
    email_changed = (rng.random(n_rows) < 0.03).astype(int)
    mfa = (rng.random(n_rows) < 0.55).astype(int)
    account_age = rng.integers(1, 4000, n_rows)
    channel = rng.choice(CHANNELS, size=n_rows, p=CHANNEL_P)

    logit = (
        -4.4
        + 0.6 * np.minimum(failed, 8)
        + 1.6 * new_device
        + 1.5 * new_country
        + 5.0 * ip_risk
        + 0.5 * (distinct_ips - 1)
        + 1.1 * (reset_hours < 48)
        + 1.8 * email_changed
        - 1.5 * mfa
        - 0.5 * (account_age > 730)
        + 0.9 * (channel == "api")
        + rng.normal(0, 0.3, n_rows)
    )
    takeover = (rng.random(n_rows) < sigmoid(logit)).astype(int)
    return pd.DataFrame(
        {
            "session_id": [f"S{seed % 100_000:05d}-{i:07d}" for i in range(n_rows)],
            "failed_logins_1h": failed,
            "new_device": new_device,
            "new_country": new_country,
            "ip_risk_score": ip_risk,
            "distinct_ips_24h": distinct_ips,
            "hours_since_password_reset": reset_hours,
            "email_changed_7d": email_changed,
            "mfa_enabled": mfa,
            "account_age_days": account_age,
            "channel": channel,
            "is_takeover": takeover,
        }
    )


NUMERIC = (
    "failed_logins_1h",
    "new_device",
    "new_country",
    "ip_risk_score",
    "distinct_ips_24h",
    "recent_password_reset",
    "email_changed_7d",
    "mfa_enabled",
    "log_account_age",
)
CATEGORICAL = ("channel",)


def engineer(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "failed_logins_1h": raw["failed_logins_1h"].clip(upper=20),
            "new_device": raw["new_device"],
            "new_country": raw["new_country"],
            "ip_risk_score": raw["ip_risk_score"],
            "distinct_ips_24h": raw["distinct_ips_24h"],
            "recent_password_reset": (raw["hours_since_password_reset"] < 48).astype(float),
            "email_changed_7d": raw["email_changed_7d"],
            "mfa_enabled": raw["mfa_enabled"],
            "log_account_age": np.log1p(raw["account_age_days"].astype(float)),
            "channel": raw["channel"],
        }
    )


def estimator(params: dict[str, Any]):
    """Preprocessing + gradient-boosted trees."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    classifier = GradientBoostingClassifier(**params)
    return Pipeline([("preprocess", preprocess(SPEC)), ("classifier", classifier)])


SPEC = ModelSpec(
    name="ato_risk",
    description="Account-takeover risk of a login session (fraud-detection example).",
    family="gradient_boosting",
    balanced=False,
    id_column="session_id",
    target="is_takeover",
    numeric=NUMERIC,
    categorical=CATEGORICAL,
    default_params=DEFAULT_PARAMS,
    validation_seed=20_250_302,
    floors={"roc_auc": 0.75, "average_precision": 0.2},
    generate=generate,
    engineer=engineer,
    estimator=estimator,
)
