"""Deterministic synthetic customer-churn data.

Nothing is downloaded: every table is generated from a seed with numpy, so the same
(dataset, seed) always gives the same rows. The label follows a logistic model of
contract type, tenure, charges, support calls, internet service and payment method,
plus noise, which gives a churn rate of roughly a quarter, as in real telco data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Row counts of the named datasets. `tiny` is for the project's own integration test.
DATASET_SIZES: dict[str, int] = {"tiny": 400, "toy": 2_000, "full": 50_000}

DEFAULT_SEED = 7
#: Seed of the freshly generated data the validation step scores (never used for training).
VALIDATION_SEED = 20_240_601

CONTRACTS = ("month-to-month", "one-year", "two-year")
INTERNET_SERVICES = ("fiber", "dsl", "none")
PAYMENT_METHODS = ("electronic_check", "mailed_check", "bank_transfer", "credit_card")
REGIONS = ("north", "south", "east", "west")

RAW_COLUMNS = (
    "customer_id",
    "age",
    "tenure_months",
    "contract",
    "internet_service",
    "payment_method",
    "region",
    "num_products",
    "paperless_billing",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "churn",
)


def dataset_size(dataset: str) -> int:
    try:
        return DATASET_SIZES[dataset]
    except KeyError:
        known = ", ".join(DATASET_SIZES)
        raise ValueError(f"unknown dataset {dataset!r} (known: {known})") from None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def generate(n_rows: int, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """`n_rows` synthetic customers with a 0/1 `churn` label, fully determined by `seed`."""
    if n_rows <= 0:
        raise ValueError("n_rows must be positive")
    rng = np.random.default_rng(seed)

    age = np.clip(rng.normal(45, 14, n_rows), 18, 90).round().astype(int)
    tenure = np.clip(rng.gamma(1.6, 16.0, n_rows), 0, 72).round().astype(int)

    # Longer-tenured customers are more likely to be on long contracts.
    logits = np.stack(
        [
            np.full(n_rows, 1.2),
            -0.2 + 0.025 * tenure,
            -1.2 + 0.045 * tenure,
        ],
        axis=1,
    )
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    contract_idx = (rng.random(n_rows)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    contract = np.array(CONTRACTS)[np.minimum(contract_idx, len(CONTRACTS) - 1)]

    internet = rng.choice(INTERNET_SERVICES, size=n_rows, p=[0.44, 0.34, 0.22])
    payment = rng.choice(PAYMENT_METHODS, size=n_rows, p=[0.34, 0.23, 0.22, 0.21])
    region = rng.choice(REGIONS, size=n_rows)
    num_products = 1 + rng.binomial(3, 0.3, n_rows)
    paperless = (rng.random(n_rows) < 0.58).astype(int)

    base = np.select([internet == "fiber", internet == "dsl"], [72.0, 48.0], 21.0)
    monthly = np.clip(base + 9.5 * (num_products - 1) + rng.normal(0, 8, n_rows), 15, 140).round(2)
    total = np.clip(monthly * tenure * (1 + rng.normal(0, 0.05, n_rows)), 0, None).round(2)
    support_calls = rng.poisson(0.7 + 0.6 * (internet == "fiber") + 0.3 * (num_products > 2), n_rows)

    churn_logit = (
        -1.9
        + 1.25 * (contract == "month-to-month")
        - 1.0 * (contract == "two-year")
        - 0.035 * tenure
        + 0.02 * (monthly - 65)
        + 0.42 * support_calls
        + 0.45 * (internet == "fiber")
        + 0.5 * (payment == "electronic_check")
        + 0.25 * paperless
        - 0.012 * (age - 45)
        + rng.normal(0, 0.4, n_rows)
    )
    churn = (rng.random(n_rows) < _sigmoid(churn_logit)).astype(int)

    return pd.DataFrame(
        {
            "customer_id": [f"C{seed % 100_000:05d}-{i:06d}" for i in range(n_rows)],
            "age": age,
            "tenure_months": tenure,
            "contract": contract,
            "internet_service": internet,
            "payment_method": payment,
            "region": region,
            "num_products": num_products,
            "paperless_billing": paperless,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support_calls,
            "churn": churn,
        },
        columns=list(RAW_COLUMNS),
    )


def load_dataset(dataset: str, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The named dataset (`tiny`, `toy` ≈ 2,000 rows, `full` ≈ 50,000 rows)."""
    return generate(dataset_size(dataset), seed=seed)
