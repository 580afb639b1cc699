"""Validation in two steps: `score` loads the candidate and the champion and writes their predictions; `judge`
loads no model, makes the labels itself and prints the verdict.

Loading a model runs its code (a pickle can run anything as it loads), so the process whose last line is the
verdict never loads one: mlops-bot reads the verdict from the judge task alone (`verdict_task = "judge"`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fraud_detection import EXPERIMENT_NAME, VALIDATION_DATASET
from fraud_detection import metrics as metrics_mod
from fraud_detection.lineage import databricks_context
from fraud_detection.pipeline import StepError, resolve_version, validation_table
from fraud_detection.spec import ModelSpec


def parse_model_uri(uri: str) -> tuple[str, str]:
    """(name, version or alias) of `models:/NAME/VERSION` or `models:/NAME@ALIAS`."""
    body = uri.strip().removeprefix("models:/") if uri.strip().startswith("models:/") else ""
    name, _, ref = body.rpartition("@") if "@" in body else body.rpartition("/")
    if not name or not ref or "/" in name:
        raise StepError(f"cannot read model URI {uri!r}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    return name, ref


def registered_version(client, model_name: str, ref: str) -> str | None:
    """The version `ref` (a number or an alias) names, or None when the model or the alias does not exist yet.

    Read from the registered model's aliases rather than error codes, which differ: a missing alias is
    RESOURCE_DOES_NOT_EXIST in Unity Catalog but INVALID_PARAMETER_VALUE in MLflow OSS.
    """
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(model_name)
        if not ref.isdigit():
            version = (model.aliases or {}).get(ref.lstrip("@"))
            return str(version) if version is not None else None
        return str(client.get_model_version(model_name, ref).version)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def load_registered_model(uri: str):
    """(model, its input column names from the signature, or None)."""
    import mlflow

    info = mlflow.models.get_model_info(uri)
    return mlflow.sklearn.load_model(uri), info.signature.inputs.input_names() if info.signature else None


def _predict(spec: ModelSpec, model, input_names, x) -> dict[str, Any]:
    """What a loaded model says about the rows `x`, and the checks only a loaded model answers."""
    checks = {"signature": input_names == list(spec.features)}
    errors = (
        [] if checks["signature"] else [f"model inputs {input_names} != {spec.name}'s features {list(spec.features)}"]
    )
    try:
        pred, proba = metrics_mod.score(model, x)
    except Exception as exc:  # noqa: BLE001 - any failure to predict is a failed check
        return {"checks": {**checks, "predicts": False}, "errors": [*errors, f"prediction failed: {exc}".splitlines()[0]],
                "pred": None, "proba": None}  # fmt: skip
    plain = [[v.item() if hasattr(v, "item") else v for v in column] for column in (pred, proba)]
    return {"checks": {**checks, "predicts": True}, "errors": errors, "pred": plain[0], "proba": plain[1]}


def score(
    spec: ModelSpec, model_name: str, version: str, *, champion: str = "", dataset: str = VALIDATION_DATASET,
    client=None, load_model=None,
) -> dict[str, Any]:  # fmt: skip
    """Predictions of models:/NAME/VERSION and of the champion (when one exists) on the validation rows. Judges
    nothing. An empty `champion`, or one naming a model or alias that does not exist yet, is no champion."""
    import mlflow

    client = client or mlflow.MlflowClient()
    load_model = load_model or load_registered_model
    x, _ = spec.x_y(validation_table(spec, dataset))  # the labels stay with the judge
    requested = str(version).strip()
    try:
        found = resolve_version(client, model_name, requested)
        version, source_run_id = str(found.version), found.run_id
        candidate = _predict(spec, *load_model(f"models:/{model_name}/{version}"), x)
        candidate["checks"] = {"loads": True, **candidate["checks"]}
    except Exception as exc:  # noqa: BLE001 - any failure to load is a failed check
        version, source_run_id = requested, None
        error = f"cannot load models:/{model_name}/{requested}: {exc}".splitlines()[0]
        candidate = {"checks": {"loads": False}, "errors": [error], "pred": None, "proba": None}
    champion = (champion or "").strip()
    champion_version, champion_scored, champion_error = "", None, ""
    if champion:
        try:
            name, ref = parse_model_uri(champion)
            champion_version = registered_version(client, name, ref) or ""
            if champion_version:
                champion_scored = _predict(spec, *load_model(f"models:/{name}/{champion_version}"), x)
        except Exception as exc:  # noqa: BLE001 - shown next to the candidate's metrics, never a failed check
            champion_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return {
        "model": model_name, "version": version, "requested": requested, "source_run_id": source_run_id,
        "dataset": dataset, "candidate": candidate, "champion": champion, "champion_version": champion_version,
        "champion_scored": champion_scored, "champion_error": champion_error,
    }  # fmt: skip


def write_predictions(path: Path, predictions: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(predictions, sort_keys=True) + "\n")
    return path


def read_predictions(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise StepError(f"{path} not found: run `python steps/score.py --predictions {path} ...` first")
    try:
        predictions = json.loads(path.read_text())
    except ValueError as exc:
        raise StepError(f"{path} is not JSON: {exc}") from None
    if not isinstance(predictions, dict):
        raise StepError(f"{path} holds no predictions")
    return predictions


def judged(scored: dict[str, Any], y) -> tuple[dict[str, bool], dict[str, float], list[str]]:
    """Checks, metrics and errors of one model's predictions against the labels `y`: arithmetic, no model."""
    import numpy as np

    checks = {k: bool(v) for k, v in (scored.get("checks") or {}).items()}
    errors = [str(e) for e in scored.get("errors") or []]
    if scored.get("pred") is None or scored.get("proba") is None:
        return checks, {}, errors
    try:
        pred, proba = np.asarray(scored["pred"], dtype=float), np.asarray(scored["proba"], dtype=float)
    except (TypeError, ValueError):
        return {**checks, "shape": False}, {}, [*errors, "predictions are not numbers"]
    checks["shape"] = pred.shape == (len(y),) and proba.shape == (len(y),)
    checks["no_nan"] = bool(checks["shape"] and not np.isnan(proba).any() and not np.isnan(pred).any())
    checks["binary_labels"] = set(np.unique(pred).tolist()) <= {0, 1}
    if not checks["shape"]:
        errors.append(f"{pred.shape[0] if pred.ndim else 0} predictions for {len(y)} rows")
        return checks, {}, errors
    return checks, metrics_mod.compute_metrics(y, pred.astype(int), proba) if checks["no_nan"] else {}, errors


def _floors(metrics: dict[str, float], floors: dict[str, float]) -> tuple[dict[str, bool], list[str]]:
    checks, errors = {}, []
    for name, floor in floors.items():
        value = metrics.get(name, float("nan"))
        checks[f"min_{name}"] = bool(metrics) and not math.isnan(value) and value >= floor
        if metrics and not checks[f"min_{name}"]:
            errors.append(f"{name} {value:.4f} < minimum {floor}")
    return checks, errors


def _champion(predictions: dict[str, Any], y) -> tuple[dict[str, float] | None, str]:
    champion, error = str(predictions.get("champion") or ""), str(predictions.get("champion_error") or "")
    metrics = None
    if champion and predictions.get("champion_scored") and not error:
        _, metrics, errors = judged(predictions["champion_scored"], y)
        error = "" if metrics else "; ".join(errors) or "no metrics"
    return metrics or None, f"cannot score champion {champion}: {error}" if error else ""


def judge(
    spec: ModelSpec, model_name: str, version: str, predictions: dict[str, Any], *,
    dataset: str = VALIDATION_DATASET, floors: dict[str, float] | None = None, experiment: str = EXPERIMENT_NAME,
) -> dict[str, Any]:  # fmt: skip
    """The verdict on `model_name` version `version` from the scorer's predictions and labels the judge makes
    itself (the model's validation seed); the predictions must be of that model and version. Logs a run."""
    import mlflow

    table = validation_table(spec, dataset)
    _, y = spec.x_y(table)
    data = f"validation set: {len(table):,} generated rows, seed {spec.validation_seed} ({dataset})"
    checks, metrics, errors = judged(predictions.get("candidate") or {"checks": {"loads": False}}, y)
    said = (str(predictions.get("model") or ""), str(predictions.get("requested") or ""))
    checks["same_model"] = said == (model_name, str(version))
    if not checks["same_model"]:
        errors.append(f"the predictions are of {said[0] or '?'} version {said[1] or '?'}, not {model_name} {version}")
    floor_checks, floor_errors = _floors(metrics, floors or {})
    checks, errors = {**checks, **floor_checks}, [*errors, *floor_errors]
    passed = all(checks.values())
    champion_metrics, champion_error = _champion(predictions, y)
    delta = {k: round(metrics[k] - champion_metrics[k], 6) for k in metrics} if metrics and champion_metrics else None
    scored_version = str(predictions.get("version") or version)
    tags = {**databricks_context(), "validation_of": f"{model_name}/{scored_version}", "model": spec.name,
            "validation_passed": str(passed).lower(), "validation_data": data}  # fmt: skip
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"validate-{model_name}-v{scored_version}", tags=tags) as run:
        mlflow.log_params({**{f"min_{k}": v for k, v in (floors or {}).items()}, "validation_dataset": dataset})
        mlflow.log_metrics({**metrics, **{f"champion_{k}": v for k, v in (champion_metrics or {}).items()},
                            **{f"check_{k}": float(v) for k, v in checks.items()}})  # fmt: skip
        validation_run_id = run.info.run_id
    return {
        "model": model_name, "version": scored_version, "metrics": metrics, "checks": checks, "passed": passed,
        "errors": errors, "champion": str(predictions.get("champion") or ""),
        "champion_version": str(predictions.get("champion_version") or ""), "champion_metrics": champion_metrics,
        **({"champion_error": champion_error} if champion_error else {}), "delta": delta, "data": data,
        "dataset": dataset, "rows": int(len(table)), "validation_run_id": validation_run_id,
    }  # fmt: skip
