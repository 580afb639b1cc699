"""The steps of the project as functions: prepare, train, evaluate, register, validate, deploy.

`steps/*.py` are thin command-line wrappers around these, and `churn_model.cli` (the
`churn-train` wheel entry point) runs prepare + train + evaluate in one process.

Steps of one job run pass data through files in a work directory:

    <workdir>/prepare.json        dataset summary (written by prepare)
    <workdir>/data/train.csv      feature table used for training
    <workdir>/data/holdout.csv    feature table used for evaluation
    <workdir>/train.json          mlflow_run_id, model_uri, params, training metrics (train)
    <workdir>/evaluate.json       holdout metrics (evaluate)
    <workdir>/register.json       registered model name/version (register)
    <workdir>/plots/*.png         plots, also logged to the MLflow run

mlflow is imported lazily so that `prepare` (and argument errors) stay fast.
"""

from __future__ import annotations

import json
import math
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churn_model import ENVIRONMENTS, EXPERIMENT_NAME, MODEL_NAME, VALIDATION_DATASET
from churn_model import data as data_mod
from churn_model import evaluate as eval_mod
from churn_model import features as feat_mod
from churn_model import model as model_mod
from churn_model.lineage import databricks_context, default_workdir

# MLflow's hint about integer columns concerns the 0/1 label and the int label column of the
# logged datasets; none of the model inputs are integers (features.py makes them float64).
warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")

MODEL_ARTIFACT_NAME = "model"
SERIALIZATION_FORMAT = "cloudpickle"


class StepError(RuntimeError):
    """A step cannot run (missing input, unknown model version...); the message says why."""


# --------------------------------------------------------------------------- workdir files


def _read_json(workdir: Path, name: str, produced_by: str) -> dict[str, Any]:
    path = Path(workdir) / name
    if not path.exists():
        raise StepError(f"{path} not found: run `python steps/{produced_by}.py --workdir {workdir}` first")
    return json.loads(path.read_text())


def _write_json(workdir: Path, name: str, payload: dict[str, Any]) -> Path:
    path = Path(workdir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def _pip_requirements() -> list[str]:
    """Pinned requirements of the logged model, given explicitly (inferring them is slow)."""
    import mlflow.sklearn
    import numpy
    import pandas

    return [
        *mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True),
        f"pandas=={pandas.__version__}",
        f"numpy=={numpy.__version__}",
    ]


def _dataset(table, path: str | None, name: str):
    """An MLflow dataset entity for a feature table (source: its absolute file path, if any)."""
    import mlflow.data

    with warnings.catch_warnings():  # source-resolution and integer-column hints
        warnings.simplefilter("ignore", UserWarning)
        return mlflow.data.from_pandas(
            table, source=str(Path(path).resolve()) if path else None, targets=feat_mod.TARGET, name=name
        )


def _set_experiment(experiment: str):
    import mlflow

    return mlflow.set_experiment(experiment)


# --------------------------------------------------------------------------- prepare


def _merge_lineage(*sources: dict[str, str] | None) -> dict[str, str]:
    """Later sources win; empty values never count."""
    merged: dict[str, str] = {}
    for source in sources:
        merged.update({k: str(v) for k, v in (source or {}).items() if v not in (None, "")})
    return merged


def prepare(
    dataset: str,
    workdir: Path,
    *,
    seed: int = data_mod.DEFAULT_SEED,
    holdout_fraction: float = feat_mod.DEFAULT_HOLDOUT_FRACTION,
    lineage: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Generate `dataset`, engineer features, split, and write the feature tables."""
    workdir = Path(workdir)
    if seed == data_mod.VALIDATION_SEED:
        raise StepError(f"seed {seed} is reserved for the validation set; choose another")
    raw = data_mod.load_dataset(dataset, seed=seed)
    table = feat_mod.build_features(raw)
    train, holdout = feat_mod.split(table, holdout_fraction=holdout_fraction, seed=seed)
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    feat_mod.write_table(train, data_dir / "train.csv")
    feat_mod.write_table(holdout, data_dir / "holdout.csv")
    result = {
        "dataset": dataset,
        "seed": seed,
        "rows": int(len(table)),
        "train_rows": int(len(train)),
        "holdout_rows": int(len(holdout)),
        "churn_rate": round(float(table[feat_mod.TARGET].mean()), 4),
        "features": list(feat_mod.FEATURES),
        "workdir": str(workdir),
        "train_path": str(data_dir / "train.csv"),
        "holdout_path": str(data_dir / "holdout.csv"),
        "lineage": _merge_lineage(lineage),
    }
    _write_json(workdir, "prepare.json", result)
    return result


# --------------------------------------------------------------------------- train


def train(
    workdir: Path,
    params: dict[str, Any] | None = None,
    *,
    lineage: dict[str, str] | None = None,
    experiment: str = EXPERIMENT_NAME,
    run_name: str | None = None,
) -> dict[str, Any]:
    """Fit the pipeline on the train table and log params, metrics, plot and model to MLflow."""
    import mlflow
    from mlflow.models import infer_signature

    workdir = Path(workdir)
    prepared = _read_json(workdir, "prepare.json", "prepare")
    params = {**model_mod.DEFAULT_PARAMS, **(params or {})}
    train_table = feat_mod.read_table(workdir / "data" / "train.csv")
    x, y = feat_mod.x_y(train_table)

    pipeline = model_mod.train_model(x, y, params)
    pred, proba = eval_mod.score(pipeline, x)
    train_metrics = {f"train_{k}": v for k, v in eval_mod.compute_metrics(y, pred, proba).items()}
    importances = model_mod.feature_importances(pipeline)
    importance_plot = eval_mod.plot_feature_importance(importances, workdir / "plots" / "feature_importance.png")

    lineage = _merge_lineage(prepared.get("lineage"), lineage)
    tags = {
        **databricks_context(),
        **lineage,
        "dataset": prepared["dataset"],
        "model_family": "gradient_boosting",
    }
    if "commit" in lineage:
        tags["mlflow.source.git.commit"] = lineage["commit"]
    if "branch" in lineage:
        tags["mlflow.source.git.branch"] = lineage["branch"]

    experiment_obj = _set_experiment(experiment)
    if run_name is None:
        branch = lineage.get("branch")
        run_name = f"train-{prepared['dataset']}" + (f"-{branch}" if branch else "")
    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        mlflow.log_params(
            {
                **params,
                "dataset": prepared["dataset"],
                "dataset_seed": prepared["seed"],
                "n_train_rows": prepared["train_rows"],
                "n_holdout_rows": prepared["holdout_rows"],
                "n_features": len(feat_mod.FEATURES),
            }
        )
        train_ds = _dataset(train_table, prepared["train_path"], f"churn-{prepared['dataset']}-train")
        mlflow.log_input(train_ds, context="training")
        mlflow.log_metrics(train_metrics)
        mlflow.log_artifact(str(importance_plot), artifact_path="plots")
        mlflow.log_dict(importances, "feature_importance.json")
        signature = infer_signature(x, pred)
        model_info = mlflow.sklearn.log_model(
            pipeline,
            name=MODEL_ARTIFACT_NAME,
            signature=signature,
            input_example=x.head(5),
            pip_requirements=_pip_requirements(),
            # What Databricks uses; the skops default outside Databricks adds seconds of
            # import time to every step that logs or loads the model.
            serialization_format=SERIALIZATION_FORMAT,
        )
        run_id = run.info.run_id
    result = {
        "mlflow_run_id": run_id,
        "experiment_id": experiment_obj.experiment_id,
        "experiment": experiment,
        "model_uri": model_info.model_uri,
        "model_id": getattr(model_info, "model_id", None),
        "dataset": prepared["dataset"],
        "params": params,
        "metrics": train_metrics,
        "lineage": lineage,
    }
    _write_json(workdir, "train.json", result)
    result["_model"] = pipeline  # in-process callers (cli) reuse it; never serialized
    return result


# --------------------------------------------------------------------------- evaluate


def validation_table(seed: int = data_mod.VALIDATION_SEED, dataset: str = VALIDATION_DATASET):
    """The fixed validation set: fresh data of `dataset`'s size (toy) from a seed no training run uses.

    evaluate.py scores the toy-size set for the training run and validate.py a registered version
    (and the champion) on the size it is asked for, so a version's toy validation metrics equal the
    `accuracy`, `roc_auc`... of its training run, and versions trained on different datasets (toy,
    full) are compared on the same rows.
    """
    return feat_mod.build_features(data_mod.load_dataset(dataset, seed=seed))


def evaluate(workdir: Path, *, model=None, lineage: dict[str, str] | None = None) -> dict[str, Any]:
    """Score the validation set and the holdout split; log metrics and plots to the training run.

    Metrics: `accuracy`, `f1`, `roc_auc`, `precision`, `recall` on the validation set (the same
    rows validate.py scores) and `holdout_<metric>` on the holdout split of the training data.
    """
    import mlflow

    workdir = Path(workdir)
    trained = _read_json(workdir, "train.json", "train")
    prepared = _read_json(workdir, "prepare.json", "prepare")
    if model is None:
        model = mlflow.sklearn.load_model(trained["model_uri"])

    holdout = feat_mod.read_table(workdir / "data" / "holdout.csv")
    hx, hy = feat_mod.x_y(holdout)
    h_pred, h_proba = eval_mod.score(model, hx)
    holdout_metrics = {f"holdout_{k}": v for k, v in eval_mod.compute_metrics(hy, h_pred, h_proba).items()}

    validation = validation_table()
    vx, vy = feat_mod.x_y(validation)
    pred, proba = eval_mod.score(model, vx)
    metrics = eval_mod.compute_metrics(vy, pred, proba)

    plots_dir = workdir / "plots"
    cm = eval_mod.plot_confusion_matrix(
        vy, pred, plots_dir / "confusion_matrix.png", title="Confusion matrix (validation set)"
    )
    roc = eval_mod.plot_roc_curve(vy, proba, plots_dir / "roc_curve.png", title="ROC curve (validation set)")

    run_id = trained["mlflow_run_id"]
    model_id = trained.get("model_id")
    holdout_ds = _dataset(holdout, prepared["holdout_path"], f"churn-{prepared['dataset']}-holdout")
    validation_ds = _dataset(validation, None, f"churn-validation-{data_mod.VALIDATION_SEED}")
    mlflow.log_metrics(metrics, run_id=run_id, model_id=model_id, dataset=validation_ds)
    mlflow.log_metrics(holdout_metrics, run_id=run_id, model_id=model_id, dataset=holdout_ds)
    client = mlflow.MlflowClient()
    client.log_artifact(run_id, str(cm), artifact_path="plots")
    client.log_artifact(run_id, str(roc), artifact_path="plots")
    client.set_tag(run_id, "evaluated", "true")
    new_lineage = {k: v for k, v in _merge_lineage(lineage).items() if trained.get("lineage", {}).get(k) != v}
    for key, value in new_lineage.items():
        client.set_tag(run_id, key, value)
    if new_lineage:
        trained["lineage"] = _merge_lineage(trained.get("lineage"), new_lineage)
        _write_json(workdir, "train.json", trained)
    result = {
        "mlflow_run_id": run_id,
        "model_uri": trained["model_uri"],
        "metrics": metrics,
        "holdout_metrics": holdout_metrics,
        "validation_rows": int(len(validation)),
        "holdout_rows": int(len(holdout)),
        "artifacts": ["plots/confusion_matrix.png", "plots/roc_curve.png"],
    }
    _write_json(workdir, "evaluate.json", result)
    return result


# --------------------------------------------------------------------------- register


def _version_description(trained: dict[str, Any], lineage: dict[str, str]) -> str:
    text = f"Trained on the {trained.get('dataset', '?')} dataset"
    if lineage.get("repo"):
        text += f" from {lineage['repo']}"
        if lineage.get("branch"):
            text += f"@{lineage['branch']}"
    if lineage.get("commit"):
        text += f" ({lineage['commit'][:12]})"
    if lineage.get("pr"):
        text += f", PR #{lineage['pr']}"
    if lineage.get("triggered_by"):
        text += f", triggered by {lineage['triggered_by']}"
    return text + "."


def register(workdir: Path, model_name: str = MODEL_NAME, *, lineage: dict[str, str] | None = None) -> dict[str, Any]:
    """Register the trained model as a new version with lineage version tags (and run tags)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    workdir = Path(workdir)
    trained = _read_json(workdir, "train.json", "train")
    run_id = trained["mlflow_run_id"]
    # Lineage given to earlier steps of the job run (kept in train.json) counts too.
    lineage = _merge_lineage(trained.get("lineage"), lineage)
    version_tags = {**lineage, "mlflow_run_id": run_id}
    client = mlflow.MlflowClient()
    try:
        client.create_registered_model(
            model_name, description="Predicts which customers will cancel (churn-model example)."
        )
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    # Tags, run id and description given at creation travel in the `model_version.created`
    # webhook payload (mlflow.register_model would leave run_id out for a models:/ source).
    version = client.create_model_version(
        model_name,
        source=trained["model_uri"],
        run_id=run_id,
        tags=version_tags,
        description=_version_description(trained, lineage),
        model_id=trained.get("model_id"),
    )
    for key, value in lineage.items():
        client.set_tag(run_id, key, value)
    client.set_tag(run_id, "registered_model_version", f"{model_name}/{version.version}")
    result = {
        "model_name": model_name,
        "version": str(version.version),
        "model_uri": f"models:/{model_name}/{version.version}",
        "source": version.source,
        "mlflow_run_id": run_id,
        "tags": version_tags,
    }
    _write_json(workdir, "register.json", result)
    return result


# --------------------------------------------------------------------------- validate


def _resolve_version(client, model_name: str, version: str):
    """A ModelVersion from a version number or an alias (e.g. `champion`)."""
    version = str(version).strip()
    if version.isdigit():
        return client.get_model_version(model_name, version)
    return client.get_model_version_by_alias(model_name, version.lstrip("@"))


def parse_model_uri(uri: str) -> tuple[str, str]:
    """(name, version or alias) of `models:/NAME/VERSION`, `models:/NAME@ALIAS` or `models:/NAME/ALIAS`."""
    body = uri.strip().removeprefix("models:/") if uri.strip().startswith("models:/") else None
    if body and "@" in body:
        name, _, ref = body.rpartition("@")
    elif body and "/" in body:
        name, _, ref = body.rpartition("/")
    else:
        name = ref = ""
    if not name or not ref or "/" in name:
        raise StepError(f"cannot read model URI {uri!r}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    return name, ref


def _registered_version(client, model_name: str, ref: str) -> str | None:
    """The version number `ref` (a number or an alias) names, or None when the model or alias does not exist.

    Existence is read from the registered model (its aliases) rather than from error codes, which differ:
    a missing alias is RESOURCE_DOES_NOT_EXIST in Unity Catalog but INVALID_PARAMETER_VALUE in MLflow OSS.
    """
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    if not ref.isdigit():
        version = (model.aliases or {}).get(ref.lstrip("@"))
        return str(version) if version is not None else None
    try:
        return str(client.get_model_version(model_name, ref).version)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def load_registered_model(uri: str):
    """(sklearn model, input column names from its signature or None) of a registered version."""
    import mlflow

    model = mlflow.sklearn.load_model(uri)
    info = mlflow.models.get_model_info(uri)
    return model, info.signature.inputs.input_names() if info.signature else None


def _predict(model, input_names, x) -> dict[str, Any]:
    """What a loaded model says about the rows `x`: the checks only a loaded model can answer (signature,
    predicts), errors, and its predicted labels and churn probabilities (None when it cannot predict)."""
    checks: dict[str, bool] = {"signature": input_names == list(feat_mod.FEATURES)}
    errors: list[str] = []
    if not checks["signature"]:
        errors.append(f"model inputs {input_names} != expected features {list(feat_mod.FEATURES)}")
    try:
        pred, proba = eval_mod.score(model, x)
        checks["predicts"] = True
    except Exception as exc:  # noqa: BLE001 - any failure to predict is a failed check
        checks["predicts"] = False
        errors.append(f"prediction failed: {exc}".splitlines()[0])
        return {"checks": checks, "errors": errors, "pred": None, "proba": None}
    return {"checks": checks, "errors": errors, "pred": _plain(pred), "proba": _plain(proba)}


def _plain(values) -> list:
    """A column of predictions as JSON values (NaN stays NaN: the judge checks for it)."""
    return [v.item() if hasattr(v, "item") else v for v in list(values)]


def _judged(scored: dict[str, Any], y) -> tuple[dict[str, bool], dict[str, float], list[str], Any]:
    """Checks, metrics, errors and predicted labels of one model's predictions against the labels `y`:
    arithmetic on numbers, no model in sight."""
    import numpy as np

    checks = {k: bool(v) for k, v in (scored.get("checks") or {}).items()}
    errors = [str(e) for e in scored.get("errors") or []]
    if scored.get("pred") is None or scored.get("proba") is None:
        return checks, {}, errors, None
    try:
        pred = np.asarray(scored["pred"], dtype=float)
        proba = np.asarray(scored["proba"], dtype=float)
    except (TypeError, ValueError):
        return {**checks, "shape": False}, {}, [*errors, "predictions are not numbers"], None
    checks["shape"] = pred.shape == (len(y),) and proba.shape == (len(y),)
    checks["no_nan"] = bool(checks["shape"] and not np.isnan(proba).any() and not np.isnan(pred).any())
    checks["binary_labels"] = set(np.unique(pred).tolist()) <= {0, 1}
    if not checks["shape"]:
        errors.append(f"{pred.shape[0] if pred.ndim else 0} predictions for {len(y)} rows")
    metrics = eval_mod.compute_metrics(y, pred.astype(int), proba) if checks["shape"] and checks["no_nan"] else {}
    return checks, metrics, errors, pred.astype(int) if checks["shape"] else None


def describe_validation_data(dataset: str, rows: int, seed: int) -> str:
    return f"validation set: {rows:,} generated rows, seed {seed} ({dataset})"


def score(
    model_name: str,
    version: str,
    *,
    champion: str = "",
    dataset: str = VALIDATION_DATASET,
    seed: int = data_mod.VALIDATION_SEED,
    client=None,
    load_model=None,
) -> dict[str, Any]:
    """The scoring step: load the candidate (and the champion, when there is one) and predict the validation
    rows. The only step that loads a model — so the only one whose process the model's code can touch: it
    judges nothing, its predictions go to `judge`, which runs apart and prints the verdict.

    `champion` is a model URI (`models:/prod.ml.churn@champion`); empty, or naming a model or alias that
    does not exist yet (the first release), means no champion. `client` and `load_model` are for tests.
    """
    import mlflow

    if dataset not in data_mod.DATASET_SIZES:
        raise StepError(f"unknown dataset {dataset!r} (known: {', '.join(data_mod.DATASET_SIZES)})")
    champion = (champion or "").strip()
    champion_name, champion_ref = parse_model_uri(champion) if champion else ("", "")
    client = client or mlflow.MlflowClient()
    load_model = load_model or load_registered_model
    requested = str(version).strip()
    version, uri, source_run_id = requested, f"models:/{model_name}/{requested}", None
    x, _ = feat_mod.x_y(validation_table(seed, dataset))  # the labels stay with the judge
    try:
        model_version = _resolve_version(client, model_name, requested)
        version = str(model_version.version)
        uri, source_run_id = f"models:/{model_name}/{version}", model_version.run_id
        model, input_names = load_model(uri)
    except Exception as exc:  # noqa: BLE001 - any failure to load is a failed check
        model, error = None, f"cannot load {uri}: {exc}".splitlines()[0]
    if model is None:
        candidate = {"checks": {"loads": False}, "errors": [error], "pred": None, "proba": None}
    else:
        candidate = _predict(model, input_names, x)
        candidate["checks"] = {"loads": True, **candidate["checks"]}

    champion_version, champion_scored, champion_error = "", None, ""
    if champion:
        try:
            champion_version = _registered_version(client, champion_name, champion_ref) or ""
            if champion_version:
                champion_model, champion_inputs = load_model(f"models:/{champion_name}/{champion_version}")
                champion_scored = _predict(champion_model, champion_inputs, x)
        except Exception as exc:  # noqa: BLE001 - reported next to the candidate's metrics, never a failed check
            champion_error = f"{exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return {
        "model": model_name,
        "version": version,
        "requested": requested,
        "source_run_id": source_run_id,
        "dataset": dataset,
        "candidate": candidate,
        "champion": champion,
        "champion_version": champion_version,
        "champion_scored": champion_scored,
        "champion_error": champion_error,
    }


def write_predictions(path: Path, predictions: dict[str, Any]) -> Path:
    """The scoring step's output, for the judging step: one JSON file at a path both are given."""
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


def judge(
    predictions: dict[str, Any],
    *,
    dataset: str = VALIDATION_DATASET,
    min_accuracy: float = 0.6,
    min_roc_auc: float = 0.6,
    experiment: str = EXPERIMENT_NAME,
    seed: int = data_mod.VALIDATION_SEED,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """The judging step: metrics and checks from the scoring step's predictions and the labels, which it makes
    itself from `dataset` and the fixed seed (never from the predictions file); logs a validation run. It loads
    no model, so no model's code runs in the process that prints the verdict.
    """
    import mlflow

    if dataset not in data_mod.DATASET_SIZES:
        raise StepError(f"unknown dataset {dataset!r} (known: {', '.join(data_mod.DATASET_SIZES)})")
    model_name = str(predictions.get("model") or MODEL_NAME)
    version = str(predictions.get("version") or "")
    requested = str(predictions.get("requested") or version)
    table = validation_table(seed, dataset)
    _, y = feat_mod.x_y(table)
    data = describe_validation_data(dataset, len(table), seed)
    checks, metrics, errors, pred = _judged(predictions.get("candidate") or {"checks": {"loads": False}}, y)
    checks["min_accuracy"] = bool(metrics) and metrics["accuracy"] >= min_accuracy
    checks["min_roc_auc"] = bool(metrics) and not math.isnan(metrics["roc_auc"]) and metrics["roc_auc"] >= min_roc_auc
    if metrics and not checks["min_accuracy"]:
        errors.append(f"accuracy {metrics['accuracy']:.4f} < minimum {min_accuracy}")
    if metrics and not checks["min_roc_auc"]:
        errors.append(f"roc_auc {metrics['roc_auc']:.4f} < minimum {min_roc_auc}")
    passed = all(checks.values())

    champion = str(predictions.get("champion") or "")
    champion_version = str(predictions.get("champion_version") or "")
    champion_metrics: dict[str, float] | None = None
    champion_error = str(predictions.get("champion_error") or "")
    if champion and predictions.get("champion_scored") and not champion_error:
        _, scored, scored_errors, _ = _judged(predictions["champion_scored"], y)
        if scored:
            champion_metrics = scored
        else:
            champion_error = "; ".join(scored_errors) or "no metrics"
    if champion_error:
        champion_error = f"cannot score champion {champion}: {champion_error}"
    delta = (
        {k: round(metrics[k] - champion_metrics[k], 6) for k in metrics if k in champion_metrics}
        if metrics and champion_metrics
        else None
    )

    _set_experiment(experiment)
    tags = {
        **databricks_context(),
        "validation_of": f"{model_name}/{version}",
        "model_name": model_name,
        "model_version": version,
        "validation_passed": str(passed).lower(),
        "validation_data": data,
    }
    if predictions.get("source_run_id"):
        tags["source_run_id"] = str(predictions["source_run_id"])
    if champion:
        tags["champion"] = champion
    if champion_version:
        tags["champion_version"] = champion_version
    with mlflow.start_run(run_name=f"validate-{model_name}-v{version}", tags=tags) as run:
        mlflow.log_params(
            {
                "min_accuracy": min_accuracy,
                "min_roc_auc": min_roc_auc,
                "validation_dataset": dataset,
                "validation_seed": seed,
                "n_rows": len(table),
            }
        )
        if metrics:
            mlflow.log_metrics(metrics)
        if champion_metrics:
            mlflow.log_metrics({f"champion_{k}": v for k, v in champion_metrics.items()})
        mlflow.log_metrics({f"check_{k}": float(v) for k, v in checks.items()})
        mlflow.log_dict(
            {"checks": checks, "errors": errors, "champion_metrics": champion_metrics, "data": data},
            "validation.json",
        )
        if pred is not None:
            plots = Path(workdir) if workdir else default_workdir() / "validate"
            cm = eval_mod.plot_confusion_matrix(
                y,
                pred,
                plots / f"validation_{model_name}_v{version}.png",
                title=f"{model_name} v{version} (validation)",
            )
            mlflow.log_artifact(str(cm), artifact_path="plots")
        validation_run_id = run.info.run_id
    return {
        "model": model_name,
        "version": version,
        **({"requested": requested} if requested != version else {}),
        "metrics": metrics,
        "checks": checks,
        "passed": passed,
        "errors": errors,
        "thresholds": {"min_accuracy": min_accuracy, "min_roc_auc": min_roc_auc},
        "champion": champion,
        "champion_version": champion_version,
        "champion_metrics": champion_metrics,
        **({"champion_error": champion_error} if champion_error else {}),
        "delta": delta,
        "data": data,
        "dataset": dataset,
        "rows": int(len(table)),
        "seed": seed,
        "validation_run_id": validation_run_id,
    }


def validate(
    model_name: str,
    version: str,
    *,
    champion: str = "",
    dataset: str = VALIDATION_DATASET,
    min_accuracy: float = 0.6,
    min_roc_auc: float = 0.6,
    experiment: str = EXPERIMENT_NAME,
    seed: int = data_mod.VALIDATION_SEED,
    workdir: Path | None = None,
    client=None,
    load_model=None,
) -> dict[str, Any]:
    """score then judge in one process: for a person at a terminal. The bot's validate workflow runs them as two
    tasks (steps/score.py, then steps/judge.py), so that the verdict never comes from a process a model ran in."""
    predictions = score(
        model_name, version, champion=champion, dataset=dataset, seed=seed, client=client, load_model=load_model
    )
    return judge(
        predictions, dataset=dataset, min_accuracy=min_accuracy, min_roc_auc=min_roc_auc, experiment=experiment,
        seed=seed, workdir=workdir,
    )  # fmt: skip


# --------------------------------------------------------------------------- deploy


def deploy(model_name: str, version: str, environment: str) -> dict[str, Any]:
    """Stand-in deployment: alias `<environment>` -> version, and a `deployed_<env>_at` tag.

    `model_name` may be a Unity Catalog name (`prod.ml.churn`). The alias and tag names are valid in Unity
    Catalog as in MLflow OSS: an alias is `[A-Za-z0-9_-]`, neither `latest` nor `v<digits>`.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    if environment not in ENVIRONMENTS:
        raise StepError(f"unknown environment {environment!r} (known: {', '.join(ENVIRONMENTS)})")
    client = mlflow.MlflowClient()
    try:
        version = str(_resolve_version(client, model_name, version).version)
    except MlflowException as exc:
        raise StepError(f"model version {model_name}/{version} not found: {exc.message}") from None
    previous = None
    try:
        previous = str(client.get_model_version_by_alias(model_name, environment).version)
    except MlflowException:  # no version had this alias yet
        pass
    deployed_at = datetime.now(UTC).isoformat(timespec="seconds")
    client.set_registered_model_alias(model_name, environment, version)
    client.set_model_version_tag(model_name, version, f"deployed_{environment}_at", deployed_at)
    return {
        "model": model_name,
        "version": version,
        "environment": environment,
        "alias": environment,
        "previous_version": previous,
        "deployed_at": deployed_at,
        "model_uri": f"models:/{model_name}@{environment}",
    }
