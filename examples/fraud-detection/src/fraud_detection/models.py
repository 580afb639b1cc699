"""The project's models, chosen by name, and the hyper-parameters every one of them takes.

mlops-bot runs one workflow for both models and passes the registry name of the model it trains
(`--model-name {model}`): `dev.fraud.card_fraud`, `staging.fraud.ato_risk`, or an MLflow name such as
`card_fraud` or `card_fraud-dev`. Its last part names the model, so each model trains its own code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fraud_detection import ato_risk, card_fraud
from fraud_detection.spec import ModelSpec

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (card_fraud.SPEC, ato_risk.SPEC)}
# MLflow names of earlier stages when none are written: <model>-<stage> (Unity Catalog: <model>_<stage>)
_STAGE_SUFFIX = re.compile(r"[-_](dev|staging)$")


class ParamError(ValueError):
    """A hyper-parameter that is unknown or has a bad value; the message says which and why."""


class ModelError(ValueError):
    """A model name this project has no code for; the message names the known ones."""


def selector(model_name: str) -> str:
    """`dev.fraud.card_fraud` -> `card_fraud`; `ato_risk-staging` -> `ato_risk`."""
    last = model_name.strip().rsplit(".", 1)[-1]
    return last if last in MODELS else _STAGE_SUFFIX.sub("", last)


def select(model_name: str = "", model: str = "") -> ModelSpec:
    """The spec `model` names, else the one `model_name` (a registry name) ends with."""
    if not (model or model_name).strip():
        raise ModelError(f"name the model: --model-name <registry name> or --model ({', '.join(MODELS)})")
    chosen = model.strip() or selector(model_name)
    if chosen not in MODELS:
        given = f"--model {model!r}" if model.strip() else f"--model-name {model_name!r}"
        raise ModelError(f"{given} names no model of this project (known: {', '.join(MODELS)})")
    return MODELS[chosen]


# Every model takes the same knobs (the bot passes one {params} to whichever model it trains), each with its
# own defaults; the limits are the same for all.
_LIMITS: dict[str, tuple[float, float]] = {
    "n_estimators": (1, 5_000),
    "max_depth": (1, 32),
    "learning_rate": (1e-6, 10.0),
    "min_samples_leaf": (1, 100_000),
    "random_state": (0, 2**32 - 1),
}


def split_params(text: str | None) -> list[str]:
    """`"n_estimators=200,max_depth=4"` (commas and/or spaces) -> `["n_estimators=200", "max_depth=4"]`."""
    return [item for item in re.split(r"[,\s]+", text or "") if item]


def parse_params(spec: ModelSpec, items: Iterable[str] | None) -> dict[str, Any]:
    """`["n_estimators=200"]` -> the model's full parameter dict (its defaults filled in); ParamError otherwise."""
    params = dict(spec.default_params)
    known = ", ".join(sorted(spec.default_params))
    for item in items or ():
        key, sep, raw = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise ParamError(f"bad parameter {item!r}: expected KEY=VALUE (known keys: {known})")
        if key not in spec.default_params:
            raise ParamError(f"unknown parameter {key!r} for {spec.name} (known parameters: {known})")
        kind = type(spec.default_params[key])
        try:
            as_float = float(raw)
            if kind is int and not as_float.is_integer():
                raise ValueError
            value: Any = int(as_float) if kind is int else as_float
        except ValueError:
            raise ParamError(f"parameter {key!r} must be {kind.__name__}, got {raw!r}") from None
        low, high = _LIMITS[key]
        if not low <= value <= high:
            raise ParamError(f"parameter {key!r} must be between {low:g} and {high:g}, got {raw!r}")
        params[key] = value
    return params
