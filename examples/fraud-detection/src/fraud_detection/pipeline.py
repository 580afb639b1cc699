"""Build features, train, register and deploy a model, as functions; `steps/*.py` and the notebook wrap them.

The tasks of one job run share files under a work directory, one folder per model:

    <workdir>/<model>/prepare.json      dataset summary (the features notebook)
    <workdir>/<model>/data/train.csv    feature table for training
    <workdir>/<model>/data/holdout.csv  feature table for the holdout metrics
    <workdir>/<model>/train.json        mlflow_run_id, model_uri, params, metrics (train)
    <workdir>/<model>/register.json     the registered name and version (register)

mlflow is imported lazily so that building features (and argument errors) stays fast.
"""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraud_detection import DATASET_SIZES, DEFAULT_SEED, ENVIRONMENTS, EXPERIMENT_NAME, VALIDATION_DATASET
from fraud_detection import metrics as metrics_mod
from fraud_detection.lineage import databricks_context
from fraud_detection.spec import ModelSpec

# MLflow's hint about integer columns concerns the 0/1 label; every model input is float64 or a string.
warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")

MODEL_ARTIFACT_NAME = "model"
SERIALIZATION_FORMAT = "cloudpickle"  # what Databricks uses; faster to load than the skops default
DEFAULT_HOLDOUT_FRACTION = 0.2


class StepError(RuntimeError):
    """A step cannot run (missing input, unknown version...); the message says why."""


def model_dir(workdir: Path, spec: ModelSpec) -> Path:
    return Path(workdir) / spec.name


def _read_json(path: Path, produced_by: str) -> dict[str, Any]:
    if not path.exists():
        raise StepError(f"{path} not found: run {produced_by} first")
    return json.loads(path.read_text())


def _write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def _merge_lineage(*sources: dict[str, str] | None) -> dict[str, str]:
    """Later sources win; empty values never count."""
    merged: dict[str, str] = {}
    for source in sources:
        merged.update({k: str(v) for k, v in (source or {}).items() if v not in (None, "")})
    return merged


def dataset_size(dataset: str) -> int:
    if dataset not in DATASET_SIZES:
        raise StepError(f"unknown dataset {dataset!r} (known: {', '.join(DATASET_SIZES)})")
    return DATASET_SIZES[dataset]


def validation_table(spec: ModelSpec, dataset: str = VALIDATION_DATASET):
    """The model's validation set: fresh rows of `dataset`'s size from its validation seed, which no training
    run uses. Training scores the toy-size set, so a version's validation metrics equal its training run's,
    and a candidate and its champion are compared on the same rows whatever data either was trained on."""
    return spec.build_features(spec.generate(dataset_size(dataset), spec.validation_seed))


# --------------------------------------------------------------------------- features (the notebook)


def prepare(
    spec: ModelSpec,
    dataset: str,
    workdir: Path,
    *,
    seed: int = DEFAULT_SEED,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    lineage: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Generate the model's `dataset`, engineer its features, split stratified, write the tables."""
    from sklearn.model_selection import train_test_split

    if seed == spec.validation_seed:
        raise StepError(f"seed {seed} is reserved for {spec.name}'s validation set; choose another")
    if not 0 < holdout_fraction < 1:
        raise StepError("the holdout fraction must be between 0 and 1")
    table = spec.build_features(spec.generate(dataset_size(dataset), seed))
    train, holdout = train_test_split(table, test_size=holdout_fraction, random_state=seed, stratify=table[spec.target])
    out = model_dir(workdir, spec)
    (out / "data").mkdir(parents=True, exist_ok=True)
    train.to_csv(out / "data" / "train.csv", index=False)
    holdout.to_csv(out / "data" / "holdout.csv", index=False)
    result = {
        "model": spec.name,
        "dataset": dataset,
        "seed": seed,
        "rows": int(len(table)),
        "train_rows": int(len(train)),
        "holdout_rows": int(len(holdout)),
        "positive_rate": round(float(table[spec.target].mean()), 4),
        "features": list(spec.features),
        "lineage": _merge_lineage(lineage),
    }
    _write_json(out / "prepare.json", result)
    return result


# --------------------------------------------------------------------------- train


def _pip_requirements() -> list[str]:
    """The logged model's requirements, given explicitly (inferring them is slow)."""
    import mlflow.sklearn
    import numpy
    import pandas

    return [
        *mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True),
        f"pandas=={pandas.__version__}",
        f"numpy=={numpy.__version__}",
    ]


def _scored(spec: ModelSpec, model, table) -> dict[str, float]:
    x, y = spec.x_y(table)
    pred, proba = metrics_mod.score(model, x)
    return metrics_mod.compute_metrics(y, pred, proba)


def _run_tags(spec: ModelSpec, prepared: dict[str, Any], lineage: dict[str, str]) -> dict[str, str]:
    tags = {**databricks_context(), **lineage, "model": spec.name, "dataset": prepared["dataset"]}
    tags["model_family"] = spec.family
    if "commit" in lineage:
        tags["mlflow.source.git.commit"] = lineage["commit"]
    if "branch" in lineage:
        tags["mlflow.source.git.branch"] = lineage["branch"]
    return tags


def train(
    spec: ModelSpec,
    workdir: Path,
    params: dict[str, Any],
    *,
    lineage: dict[str, str] | None = None,
    experiment: str = EXPERIMENT_NAME,
) -> dict[str, Any]:
    """Fit the model on its train table; log params, metrics (validation set, holdout, train) and the model."""
    import mlflow
    from mlflow.models import infer_signature

    out = model_dir(workdir, spec)
    prepared = _read_json(out / "prepare.json", f"the features notebook for {spec.name}")
    train_table = spec.read_table(out / "data" / "train.csv")
    x, y = spec.x_y(train_table)
    model = spec.fit(params, x, y)
    metrics = _scored(spec, model, validation_table(spec))
    holdout = {
        f"holdout_{k}": v for k, v in _scored(spec, model, spec.read_table(out / "data" / "holdout.csv")).items()
    }
    trained = {f"train_{k}": v for k, v in _scored(spec, model, train_table).items()}

    lineage = _merge_lineage(prepared.get("lineage"), lineage)
    mlflow.set_experiment(experiment)
    run_name = f"train-{spec.name}-{prepared['dataset']}" + (f"-{lineage['branch']}" if lineage.get("branch") else "")
    with mlflow.start_run(run_name=run_name, tags=_run_tags(spec, prepared, lineage)) as run:
        mlflow.log_params({**params, "model": spec.name, "dataset": prepared["dataset"],
                           "dataset_seed": prepared["seed"], "n_train_rows": prepared["train_rows"]})  # fmt: skip
        mlflow.log_metrics({**metrics, **holdout, **trained})
        model_info = mlflow.sklearn.log_model(
            model,
            name=MODEL_ARTIFACT_NAME,
            signature=infer_signature(x, model.predict(x.head(50))),  # Unity Catalog requires one
            input_example=x.head(5),
            pip_requirements=_pip_requirements(),
            serialization_format=SERIALIZATION_FORMAT,
        )
        run_id = run.info.run_id
    result = {
        "model": spec.name,
        "mlflow_run_id": run_id,
        "model_uri": model_info.model_uri,
        "model_id": getattr(model_info, "model_id", None),
        "dataset": prepared["dataset"],
        "params": params,
        "metrics": metrics,
        "holdout_metrics": holdout,
        "train_metrics": trained,
        "lineage": lineage,
    }
    _write_json(out / "train.json", result)
    return result


# --------------------------------------------------------------------------- register


def register(spec: ModelSpec, workdir: Path, model_name: str, *, lineage: dict[str, str] | None = None) -> dict:
    """Register the trained model as a new version of `model_name`, lineage as version tags (and run tags)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    trained = _read_json(model_dir(workdir, spec) / "train.json", f"steps/train.py for {spec.name}")
    run_id = trained["mlflow_run_id"]
    lineage = _merge_lineage(trained.get("lineage"), lineage)
    tags = {**lineage, "mlflow_run_id": run_id, "model": spec.name}
    client = mlflow.MlflowClient()
    try:
        client.create_registered_model(model_name, description=spec.description)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    # Tags and run id given at creation travel in the `model_version.created` webhook payload.
    version = client.create_model_version(
        model_name,
        source=trained["model_uri"],
        run_id=run_id,
        tags=tags,
        description=f"{spec.name} trained on the {trained['dataset']} dataset"
        + (f" at {lineage['commit'][:12]}" if lineage.get("commit") else "")
        + ".",
        model_id=trained.get("model_id"),
    )
    for key, value in lineage.items():
        client.set_tag(run_id, key, value)
    client.set_tag(run_id, "registered_model_version", f"{model_name}/{version.version}")
    result = {
        "model_name": model_name,
        "version": str(version.version),
        "model_uri": f"models:/{model_name}/{version.version}",
        "mlflow_run_id": run_id,
        "metrics": trained["metrics"],
        "tags": tags,
    }
    _write_json(model_dir(workdir, spec) / "register.json", result)
    return result


# --------------------------------------------------------------------------- deploy


def resolve_version(client, model_name: str, version: str):
    """A ModelVersion from a version number or an alias (`champion`, `@staging`)."""
    version = str(version).strip()
    if version.isdigit():
        return client.get_model_version(model_name, version)
    return client.get_model_version_by_alias(model_name, version.lstrip("@"))


def deploy(model_name: str, version: str, environment: str) -> dict[str, Any]:
    """Stand-in deployment: alias `<environment>` -> the version, and a `deployed_<environment>_at` tag."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if environment not in ENVIRONMENTS:
        raise StepError(f"unknown environment {environment!r} (known: {', '.join(ENVIRONMENTS)})")
    client = mlflow.MlflowClient()
    try:
        version = str(resolve_version(client, model_name, version).version)
    except MlflowException as exc:
        raise StepError(f"model version {model_name}/{version} not found: {exc.message}") from None
    try:
        previous = str(client.get_model_version_by_alias(model_name, environment).version)
    except MlflowException:  # no version had this alias yet
        previous = None
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
